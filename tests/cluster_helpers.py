"""Test-only callbacks for the cluster scenarios, referenced from configs as `cluster_helpers.<Name>`: kill
one DDP rank once, or make each epoch take a known time (to run into a SLURM time limit). Neither changes a
number."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytorch_lightning as pl


class KillRankOnce(pl.Callback):
    """``kill -9`` the process of global rank ``rank`` at the start of ``epoch`` (after the previous epoch's
    checkpoints were written), once per ``marker`` file: the resumed run goes through."""

    def __init__(self, marker: str, rank: int = 0, epoch: int = 1):
        self.marker, self.rank, self.epoch = Path(marker), rank, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.global_rank != self.rank or trainer.current_epoch != self.epoch or self.marker.exists():
            return
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(f"killed rank {self.rank} at epoch {self.epoch}")
        os.kill(os.getpid(), signal.SIGKILL)


class SlowEpochs(pl.Callback):
    """Each training epoch takes at least ``seconds`` more (a sleep at its start)."""

    def __init__(self, seconds: float = 10.0):
        self.seconds = seconds

    def on_train_epoch_start(self, trainer, pl_module):
        time.sleep(self.seconds)
