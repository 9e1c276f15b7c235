"""What a checkpoint given as ``ckpt_path`` may be: data, not code, and a checkpoint of the configured model.

Checked before anything is written, so a refused checkpoint leaves every run folder as it was. A checkpoint is
loaded with ``weights_only=True`` (tensors and plain values; nothing in it runs) unless the user passes
``trust_checkpoint=true`` for a checkpoint they trust. Our checkpoints also say which experiment wrote them
(``CheckpointOrigin``), so a mismatch names it.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from visionlab.errors import ConfigError
from visionlab.run_record.folder import RunFolder
from visionlab.run_record.resume import run_folder_to_resume

ORIGIN = "visionlab"  # checkpoint entry: {"experiment": ..., "task": ...}
_SHOWN = 3  # mismatching weights named in the message


class CheckpointOrigin(pl.Callback):
    """Stamps every checkpoint with the experiment and task that wrote it."""

    def __init__(self, experiment: str):
        self.experiment = experiment

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[ORIGIN] = {"experiment": self.experiment, "task": getattr(pl_module, "task", None)}


def load_checkpoint(path: str, trusted: bool = False) -> dict:
    """The checkpoint as data; one that needs Python objects (or is no checkpoint at all) is a ConfigError."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # noqa: BLE001 - whatever fails to load as data is refused the same way
        lines = str(exc).splitlines()
        reason = next((line.split(" was not")[0].strip() for line in lines if "Unsupported global" in line),
                      f"{type(exc).__name__}: {lines[-1] if lines else exc}")
        raise ConfigError(f"ckpt_path={path}: not a checkpoint visionlab can load as data only ({reason}). "
                          "Pass a checkpoint written by visionlab (<run>/checkpoints/*.ckpt), or "
                          "trust_checkpoint=true if you trust this file (it may run code).") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"ckpt_path={path}: not a Lightning checkpoint (no state_dict). "
                          "Pass <run>/checkpoints/last.ckpt or best.ckpt of a visionlab run.")
    return checkpoint


def origin_experiment(checkpoint: dict, path: str) -> str | None:
    """The experiment that wrote the checkpoint: its own stamp, else its run folder's config."""
    stamp = checkpoint.get(ORIGIN)
    if isinstance(stamp, dict) and stamp.get("experiment"):
        return str(stamp["experiment"])
    if (folder := run_folder_to_resume(path)) is not None:
        try:
            return RunFolder(folder).read_config().get("experiment_name")
        except (OSError, ValueError, AttributeError):
            return None
    return None


def _mismatches(expected: dict, found: dict) -> list[str]:
    shapes = {k: tuple(v.shape) for k, v in found.items() if isinstance(v, torch.Tensor)}
    wanted = {k: tuple(v.shape) for k, v in expected.items()}
    missing = [f"{k} missing" for k in wanted if k not in shapes]
    extra = [f"{k} unexpected" for k in shapes if k not in wanted]
    differ = [f"{k} {shapes[k]} vs {wanted[k]}" for k in wanted if k in shapes and shapes[k] != wanted[k]]
    return differ + missing + extra


def check_checkpoint(path: str, model: torch.nn.Module, experiment: str, train: bool, trusted: bool) -> None:
    """Refuse a checkpoint of another model, or (when resuming training) of another experiment."""
    if not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path} does not exist or is not a file.")
    checkpoint = load_checkpoint(path, trusted)
    origin = origin_experiment(checkpoint, path)
    written_by = f"experiment {origin!r}" if origin else "an unknown experiment"
    problems = _mismatches(model.state_dict(), checkpoint["state_dict"])
    if problems:
        raise ConfigError(
            f"ckpt_path={path} is a checkpoint of {written_by} whose weights do not fit this config's model "
            f"(experiment {experiment!r}): {len(problems)} differ, e.g. {'; '.join(problems[:_SHOWN])}. "
            + (f"Pass experiment={origin} (and its overrides), or a checkpoint of {experiment!r}." if origin
               else f"Pass a checkpoint of {experiment!r}."))
    if train and origin and origin != experiment:
        raise ConfigError(
            f"ckpt_path={path} is a checkpoint of experiment {origin!r}, but this run is {experiment!r}: resuming "
            f"would continue that run's record. Resume it with experiment={origin}, or evaluate it with train=false.")
