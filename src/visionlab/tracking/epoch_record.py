"""The per-epoch part of the run record: one row per epoch in metrics.csv (kept across resumes) and the
training throughput. It records whatever the model logged, under the logged keys, whatever logger the run
uses."""

from __future__ import annotations

import math
import time

import pytorch_lightning as pl
import torch

from visionlab.cluster.ranks import sum_over_ranks
from visionlab.record import metric_keys as keys
from visionlab.record.folder import RunFolder
from visionlab.record.resume import epochs_to_keep


def _scalar(value):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    return None


class EpochRecord(pl.Callback):
    """Appends one row per epoch to the run folder's metrics.csv and measures training images per second
    (summed over the ranks of a DDP run: images of all ranks per wall second of rank 0)."""

    def __init__(self, folder: RunFolder):
        self.folder = folder
        self.rows: list[dict] = []
        self.train_images = 0
        self.train_seconds = 0.0
        self._epoch_start: float | None = None
        self._epoch_last_end: float | None = None
        self._epoch_images = 0
        self._epoch_lrs: list[float] = []

    def on_train_start(self, trainer, pl_module):
        # after Lightning restored a checkpoint: keep the epochs it already covers, drop any beyond it
        if trainer.is_global_zero:
            try:
                self.rows = epochs_to_keep(self.folder.read_metrics(), trainer.current_epoch)
            except FileNotFoundError:
                self.rows = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = None
        # the learning rates this epoch trains with (an epoch-wise scheduler steps after the epoch's end
        # hooks)
        self._epoch_lrs = [
            group["lr"] for group in (trainer.optimizers[0].param_groups if trainer.optimizers else [])
        ]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._epoch_start is None:
            self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # first batch start → last batch end: includes data loading between batches, excludes validation
        self._epoch_images += len(batch[1])
        self._epoch_last_end = time.perf_counter()

    def _close_epoch(self, device="cpu") -> None:
        # every rank takes part in the sum (a collective under DDP), even one that trained no batch
        images = sum_over_ranks(self._epoch_images, device)
        if self._epoch_start is not None and self._epoch_last_end is not None:
            self.train_seconds += self._epoch_last_end - self._epoch_start
            self.train_images += images
        self._epoch_start = self._epoch_last_end = None
        self._epoch_images = 0

    @property
    def images_per_second(self) -> float | None:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None

    def on_train_epoch_end(self, trainer, pl_module):
        self._close_epoch(pl_module.device)
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {keys.EPOCH: trainer.current_epoch, keys.STEP: trainer.global_step}
        for key, value in sorted(trainer.callback_metrics.items()):
            scalar = _scalar(value)
            if scalar is not None:
                row[key] = scalar
        for i, lr in enumerate(self._epoch_lrs):
            row[keys.lr_column(i)] = lr
        row[keys.TIME] = time.time()
        self.rows.append(row)
        self.folder.create().write_metrics(self.rows)
