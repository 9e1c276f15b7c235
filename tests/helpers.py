"""Shared test helpers (imported by the tests; conftest.py only holds fixtures): compose configs in-process,
tiny data settings, RunIf-style skips, and test-only callbacks referenced from configs as `helpers.<Name>`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from visionlab.config.location import config_dir

REPO = Path(__file__).resolve().parents[1]
CONF = config_dir()

# A tiny synthetic sign set and a short, quiet trainer: a whole run takes a few seconds on 2 cores.
QUIET_SHORT = [
    "data.num_workers=0",
    "data.batch_size=64",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]
TINY_SIGNS = [
    "data.tracks_per_class=4",
    "data.frames_per_track=5",
    "data.test_tracks_per_class=2",
    *QUIET_SHORT,
]


def compose(tmp_path: Path, overrides: list[str], config_name: str = "train", output: str = "run"):
    """Compose like `python train.py overrides...`, with the run folder at tmp_path/output."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import visionlab.cli.resolvers  # noqa: F401

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(
            config_name,
            overrides=[f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / output}", *overrides],
        )


def shared_data_dir() -> Path | None:
    """The real data folder (../shared/data), found through $VISIONLAB_SHARED_DATA that .ci/run sets."""
    value = os.environ.get("VISIONLAB_SHARED_DATA")
    return Path(value) if value and Path(value).is_dir() else None


def run_if(shared_data: str | None = None, min_gpus: int = 0):
    """Skip unless the requirements hold (Lightning-Hydra-template's RunIf, trimmed to what we need)."""
    reasons = []
    if shared_data is not None:
        root = shared_data_dir()
        if root is None or not (root / shared_data).exists():
            reasons.append(f"real data {shared_data} not found: set VISIONLAB_SHARED_DATA to ../shared/data")
    if min_gpus:
        import torch

        if torch.cuda.device_count() < min_gpus:
            reasons.append(f"needs {min_gpus} GPU(s)")
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons))


class PoisonWeightsAtEpoch(pl.Callback):
    """Sets every weight to NaN at the start of ``epoch`` to provoke a non-finite loss."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))


class PlainLightningModule(pl.LightningModule):
    """A LightningModule that is not a visionlab model (no task, no run-record hooks)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)


class PauseOnce(pl.Callback):
    """Pauses at the start of ``epoch`` (after the previous epoch's checkpoints were written) until
    ``seconds`` have passed, once per ``marker`` file: a test can stop a job at a known point, and the
    restarted job runs through. Changes no number."""

    def __init__(self, marker: str, epoch: int = 1, seconds: float = 60.0):
        self.marker, self.epoch, self.seconds = Path(marker), epoch, seconds

    def on_train_epoch_start(self, trainer, pl_module):
        import time

        if trainer.current_epoch != self.epoch or self.marker.exists():
            return
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text("paused")
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(0.2)


def finished_wandb_run(run_dir: Path, timeout: float = 30.0) -> dict:
    """The run's W&B offline record once W&B wrote its final ``exit`` record: wandb's service process may
    still be writing the file when ``wandb.finish`` (or the training process) has returned."""
    import time

    from visionlab.tracking.wandb.offline import read_offline_run

    folders = sorted((Path(run_dir) / "wandb").glob("offline-run-*"))
    assert folders, f"no W&B offline run under {run_dir}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            record = read_offline_run(folders[-1])
        except Exception:  # noqa: BLE001 - a record cut mid-write: read again
            record = None
        if record is not None and record["exited"]:
            return record
        assert time.monotonic() < deadline, f"W&B never finished its offline file in {folders[-1]}"
        time.sleep(0.2)
