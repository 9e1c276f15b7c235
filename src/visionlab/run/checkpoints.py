"""What a checkpoint given as ``ckpt_path`` may be: data, not code; a checkpoint of the configured model (and,
to resume training, of the configured optimizer); and never the author of a path this run writes or deletes.

Checked before anything is written, so a refused checkpoint leaves every run folder as it was. A checkpoint is
loaded with ``weights_only=True`` (tensors and plain values; nothing in it runs) unless the user passes
``trust_checkpoint=true`` for a checkpoint they trust. Our checkpoints also say which experiment and optimizer
wrote them (``CheckpointOrigin``), so a mismatch names them.

Lightning restores ``ModelCheckpoint``'s file paths from the checkpoint and later deletes "the previous
last/k-th best" file: ``RunModelCheckpoint`` keeps only paths that resolve inside this run's own checkpoint
folder."""

from __future__ import annotations

import contextlib
import re
import zipfile
from pathlib import Path
from weakref import proxy

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from visionlab.config.errors import ConfigError
from visionlab.record.checkpoint_files import remove_stale_temporaries
from visionlab.record.folder import RunFolder
from visionlab.record.resume import run_folder_of_checkpoint

ORIGIN = "visionlab"  # checkpoint entry: {"experiment": ..., "task": ..., "optimizer": ...}
_SHOWN = 3  # mismatching weights named in the message
FULL_STATE_ONLY = ("optimizer_states", "lr_schedulers")  # resume-only entries: in last.ckpt, not in best.ckpt
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # torch names the pickled global it refused this way
_PICKLE = b"\x80"  # a legacy (pre-zip) torch file is a pickle from its first byte


def optimizer_name(cls: type) -> str:
    """``torch.optim.Adam`` rather than ``torch.optim.adam.Adam``."""
    return (
        f"torch.optim.{cls.__name__}"
        if getattr(torch.optim, cls.__name__, None) is cls
        else f"{cls.__module__}.{cls.__qualname__}"
    )


class CheckpointOrigin(pl.Callback):
    """Stamps every checkpoint with the experiment, task and optimizer that wrote it, and the facts of the
    model's inputs (``inference.loading.InputFacts``: channels, size, crop, normalisation, class names), so a
    checkpoint away from its run folder can still be evaluated, predicted with and exported."""

    def __init__(self, experiment: str, inputs: dict | None = None):
        self.experiment, self.inputs = experiment, inputs

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        optimizers = getattr(trainer, "optimizers", None) or []
        checkpoint[ORIGIN] = {
            "experiment": self.experiment,
            "task": getattr(pl_module, "task", None),
            "optimizer": optimizer_name(type(optimizers[0])) if optimizers else None,
        }
        if self.inputs is not None:
            facts = getattr(getattr(trainer, "datamodule", None), "facts", None)
            names = list(facts.class_names) if facts is not None else self.inputs["class_names"]
            checkpoint[ORIGIN]["inputs"] = {**self.inputs, "class_names": names}


class RunModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that reads and removes files in its own folder only.

    A resumed checkpoint carries the callback's state: ``dirpath``, ``last_model_path``, ``best_model_path``,
    ``kth_best_model_path`` and ``best_k_models``, and Lightning later deletes the "previous" last or k-th
    best file it names (checking the folder without following ``..``). Here every restored path that does not
    resolve (``..`` and links followed) inside this run's checkpoint folder is dropped, the k-th best rebuilt
    from what is left, and a file is removed only when it resolves inside that folder. A checkpoint of this
    run restores exactly as before. Stale temporary files of killed saves are removed when training starts."""

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's own key, so checkpoints written with either class restore into this one."""
        return ModelCheckpoint.__qualname__ + super().state_key.removeprefix(type(self).__qualname__)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit" and trainer.is_global_zero and self.dirpath:
            remove_stale_temporaries(Path(self.dirpath))

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict) if isinstance(state_dict, dict) else {}
        super().load_state_dict({**self.state_dict(), **state})
        self._confine()

    def _own(self, path) -> bool:
        """Whether ``path`` resolves to a file inside this callback's folder."""
        if not isinstance(path, str) or not path or not self.dirpath:
            return False
        try:
            folder, target = Path(self.dirpath).resolve(), Path(path).resolve()
        except (OSError, RuntimeError, ValueError):
            return False
        return folder in target.parents

    def _confine(self) -> None:
        kept = self.best_k_models if isinstance(self.best_k_models, dict) else {}
        self.best_k_models = {p: s for p, s in kept.items() if self._own(p) and isinstance(s, torch.Tensor)}
        if not self._own(self.last_model_path):
            self.last_model_path = ""
        if not self._own(self.best_model_path):
            self.best_model_path, self.best_model_score = "", None
        if self.kth_best_model_path not in self.best_k_models:
            if self.best_k_models:
                worst = max if self.mode == "min" else min
                self.kth_best_model_path = worst(self.best_k_models, key=self.best_k_models.get)
                self.kth_value = self.best_k_models[self.kth_best_model_path]
            else:
                self.kth_best_model_path = ""
                self.kth_value = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        """``last.ckpt``: the full state (optimizer, schedulers, callbacks) for an exact resume. Every other
        file (``best.ckpt``): what evaluation and prediction need, without the optimizer's and schedulers'
        state (Adam keeps two more copies of the weights: a third of the size)."""
        if Path(filepath).name == self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION:
            return super()._save_checkpoint(trainer, filepath)
        with trainer.profiler.profile("save_checkpoint"):
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)  # with the stamps
            for key in FULL_STATE_ONLY:
                checkpoint.pop(key, None)
            trainer.strategy.save_checkpoint(checkpoint, filepath)
            trainer.strategy.barrier("Trainer.save_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _should_remove_checkpoint(self, trainer: pl.Trainer, previous: str, current: str) -> bool:
        return self._own(previous) and super()._should_remove_checkpoint(trainer, previous, current)

    # ``last.ckpt`` at the end of every epoch. Lightning 2.6 rewrites it only when a best checkpoint was saved
    # in the same step, so a run whose score stopped improving resumed (after a preemption) from an old epoch.
    def _save_last_every_epoch(self, trainer: pl.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(
            trainer
        ):  # skips when saved at this step
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)


def _written_by_torch(path: str) -> bool:
    """A torch.save file: a zip archive (the current format) or a pickle (the legacy one)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as fh:
        return fh.read(1) == _PICKLE


def load_checkpoint(path: str, trusted: bool = False) -> dict:
    """The checkpoint as data; one that needs Python objects (or is no checkpoint at all) is a ConfigError."""
    try:
        written_by_torch = _written_by_torch(path)
    except OSError as exc:
        raise ConfigError(
            f"ckpt_path={path} cannot be read ({exc.strerror or exc}); pass a checkpoint file you can read."
        ) from None
    if not written_by_torch:
        raise ConfigError(
            f"ckpt_path={path} is not a checkpoint: it is not a file torch.save wrote (or only part "
            "of one). Pass <run>/checkpoints/last.ckpt or best.ckpt of a visionlab run."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # noqa: BLE001 - whatever fails to load as data is refused the same way
        text = str(exc)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        refused = _GLOBAL.search(text)
        reason = (
            f"it holds the pickled Python object {refused.group(1)}, which only a full unpickle can load"
            if refused
            else f"{type(exc).__name__}: {lines[-1] if lines else exc}"
        )
        raise ConfigError(
            f"ckpt_path={path}: not a checkpoint visionlab can load as data only ({reason}). "
            "Pass a checkpoint written by visionlab (<run>/checkpoints/*.ckpt), or "
            "trust_checkpoint=true if you trust this file (it may run code)."
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(
            f"ckpt_path={path}: not a Lightning checkpoint (no state_dict). "
            "Pass <run>/checkpoints/last.ckpt or best.ckpt of a visionlab run."
        )
    return checkpoint


def origin_experiment(checkpoint: dict, path: str) -> str | None:
    """The experiment that wrote the checkpoint: its own stamp, else its run folder's config."""
    stamp = checkpoint.get(ORIGIN)
    if isinstance(stamp, dict) and stamp.get("experiment"):
        return str(stamp["experiment"])
    if (folder := run_folder_of_checkpoint(path)) is not None:
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


def _saved_param_groups(checkpoint: dict) -> list[dict] | None:
    states = checkpoint.get("optimizer_states")
    if not isinstance(states, list) or len(states) != 1 or not isinstance(states[0], dict):
        return None
    groups = states[0].get("param_groups")
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        return None
    return groups


def _lacking(optimizer: torch.optim.Optimizer, saved: dict) -> list[str]:
    """The settings ``optimizer`` steps with that a saved param group lacks once torch has filled in the ones
    it defaults when a state is loaded (``__setstate__``, as ``load_state_dict`` does)."""
    group = {k: v for k, v in saved.items() if k != "params"}
    group["params"] = []
    with contextlib.suppress(Exception):  # an optimizer that cannot take the state lacks what it looked for
        optimizer.__setstate__({"state": {}, "param_groups": [group]})
    return sorted(k for k in optimizer.defaults if k not in group)


# The settings that tell apart the optimizers visionlab's configs build (conf/model/optimizer/*.yaml), as
# their param groups save them: enough to name the optimizer of a checkpoint that carries no optimizer stamp
# (an older visionlab's). Adam and AdamW save the same settings, so both are named.
_OPTIMIZER_SETTINGS = {
    "torch.optim.SGD": frozenset({"momentum", "dampening", "nesterov"}),
    "torch.optim.Adam": frozenset({"betas", "eps", "amsgrad"}),
    "torch.optim.AdamW": frozenset({"betas", "eps", "amsgrad"}),
    "torch.optim.Rprop": frozenset({"etas", "step_sizes"}),
}


def _optimizers_with(keys: set[str]) -> list[str]:
    """The optimizers of visionlab's configs whose settings a saved param group holds, read from the saved
    keys alone (nothing is constructed); empty for an optimizer none of them is."""
    return [name for name, settings in _OPTIMIZER_SETTINGS.items() if settings <= keys]


def _config_options(target: str) -> list[str]:
    """The model/optimizer config options that build ``target`` (to say which one to pass)."""
    import yaml

    from visionlab.config.location import config_dir

    options = []
    for file in sorted((config_dir() / "model" / "optimizer").glob("*.yaml")):
        try:
            node = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(node, dict) and node.get("_target_") == target:
            options.append(file.stem)
    return options


def _check_optimizer(path: str, checkpoint: dict, model: torch.nn.Module) -> None:
    """Resuming restores the optimizer's state: it must hold every setting the configured optimizer steps with
    (an SGD state has no ``betas``: Adam would fail with a KeyError in its first step)."""
    factory = getattr(model, "optimizer_factory", None)
    if not callable(factory):
        return
    groups = _saved_param_groups(checkpoint)
    if groups is None:
        raise ConfigError(
            f"ckpt_path={path} holds no usable optimizer state (optimizer_states; best.ckpt keeps the "
            "weights only), so training cannot resume from it. Evaluate it with train=false, fine-tune "
            "its weights in a new run with init_from=<it>, or resume from <run>/checkpoints/last.ckpt."
        )
    try:
        probes = [factory(params=[torch.zeros(1, requires_grad=True)]) for _ in groups]
    except Exception:  # noqa: BLE001 - a bad optimizer config is reported where the optimizer is built
        return
    lacking = sorted({k for probe, group in zip(probes, groups) for k in _lacking(probe, group)})
    if not lacking:
        return
    stamp = checkpoint.get(ORIGIN)
    theirs = (
        [stamp["optimizer"]]
        if isinstance(stamp, dict) and isinstance(stamp.get("optimizer"), str)
        else _optimizers_with(set(groups[0]) - {"params"})
    )
    options = _config_options(theirs[0]) if theirs else []
    example = (
        f" (e.g. model/optimizer={options[0]})"
        if options
        else f" (model.optimizer._target_={theirs[0]})"
        if theirs
        else ""
    )
    raise ConfigError(
        f"ckpt_path={path} was trained with {' or '.join(theirs) or 'another optimizer'}, but this config's "
        f"optimizer is {optimizer_name(type(probes[0]))} (model.optimizer): the saved optimizer state lacks "
        f"its {', '.join(lacking)}, so resuming would fail at the first step. Resume with the optimizer it "
        f"was trained with{example}, or evaluate the checkpoint with train=false."
    )


def _selecting(experiment: str, path: str) -> str:
    """What to pass to get the model of ``experiment``'s checkpoint ``path``: its run folder alone (the
    folder's config.yaml defines the model and its inputs), else its preset; a run without either was composed
    from overrides nobody kept, and naming its experiment (``experiment_name=``) would not rebuild it."""
    from visionlab.config.location import config_dir
    from visionlab.record.layout import run_folder_with_config

    if (folder := run_folder_with_config(Path(path).expanduser())) is not None:
        return f"ckpt_path={folder} alone (its config.yaml defines the model and its inputs)"
    if (config_dir() / "experiment" / f"{experiment}.yaml").is_file():
        return f"experiment={experiment} (and its overrides)"
    return "the overrides it was trained with (its run folder's config.yaml holds them)"


def check_checkpoint(
    path: str, model: torch.nn.Module, experiment: str, train: bool, trusted: bool, key: str = "ckpt_path"
) -> None:
    """Refuse a checkpoint of another model, or (when resuming training) of another experiment or
    optimizer."""
    if not Path(path).is_file():
        raise ConfigError(f"{key}={path} does not exist or is not a file.")
    checkpoint = load_checkpoint(path, trusted)
    origin = origin_experiment(checkpoint, path)
    written_by = f"experiment {origin!r}" if origin else "an unknown experiment"
    problems = _mismatches(model.state_dict(), checkpoint["state_dict"])
    if problems:
        raise ConfigError(
            f"{key}={path} is a checkpoint of {written_by} whose weights do not fit this config's model "
            f"(experiment {experiment!r}): {len(problems)} differ, e.g. {'; '.join(problems[:_SHOWN])}. "
            + (
                f"Pass {_selecting(origin, path)}, or a checkpoint of {experiment!r}."
                if origin
                else f"Pass a checkpoint of {experiment!r}."
            )
        )
    if train and origin and origin != experiment:
        raise ConfigError(
            f"ckpt_path={path} is a checkpoint of experiment {origin!r}, but this run is {experiment!r}: "
            f"resuming would continue that run's record. Resume it with {_selecting(origin, path)}, or "
            "evaluate it with train=false."
        )
    if train:
        _check_optimizer(path, checkpoint, model)
