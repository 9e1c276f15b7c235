"""The logger-independent record of a run: metrics.csv per epoch, summary.json, test tables.

The report generator reads only these files, so every run is reportable whatever logger it used.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

SUMMARY = "summary.json"
METRICS = "metrics.csv"


def _scalar(value):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    return None


def write_json(path: Path, data: dict) -> None:
    """Atomic write, so a crash never leaves a half-written record behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    fieldnames = fieldnames or list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


INTEGER_COLUMNS = ("epoch", "step")


def _number(key: str, value: str | None):
    if value in ("", None):
        return None
    return int(float(value)) if key in INTEGER_COLUMNS else float(value)


def read_csv(path: Path) -> list[dict]:
    """Rows of a numeric CSV written by ``write_csv`` (epoch/step as int, everything else float)."""
    with path.open(newline="") as fh:
        return [{k: _number(k, v) for k, v in row.items()} for row in csv.DictReader(fh)]


class RunRecord(pl.Callback):
    """Appends one row per epoch to metrics.csv (kept across resumes) and measures training throughput."""

    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)
        self.rows: list[dict] = []
        self.train_images = 0
        self.train_seconds = 0.0
        self._epoch_start: float | None = None
        self._epoch_last_end: float | None = None
        self._epoch_images = 0

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / METRICS

    def on_train_start(self, trainer, pl_module):
        # after Lightning restored a checkpoint: keep the epochs it already covers, drop any beyond it
        if trainer.is_global_zero and self.metrics_path.exists():
            self.rows = [r for r in read_csv(self.metrics_path) if r.get("epoch", 0) < trainer.current_epoch]

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_start = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self._epoch_start is None:
            self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # first batch start → last batch end: includes data loading between batches, excludes validation
        self._epoch_images += len(batch[1])
        self._epoch_last_end = time.perf_counter()

    def _close_epoch(self) -> None:
        if self._epoch_start is not None and self._epoch_last_end is not None:
            self.train_seconds += self._epoch_last_end - self._epoch_start
            self.train_images += self._epoch_images
        self._epoch_start = self._epoch_last_end = None
        self._epoch_images = 0

    @property
    def images_per_second(self) -> float | None:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None

    def on_train_epoch_end(self, trainer, pl_module):
        self._close_epoch()
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in sorted(trainer.callback_metrics.items()):
            scalar = _scalar(value)
            if scalar is not None:
                row[key] = scalar
        for i, group in enumerate(trainer.optimizers[0].param_groups if trainer.optimizers else []):
            row["lr" if i == 0 else f"lr_{i}"] = group["lr"]
        row["time"] = time.time()
        self.rows.append(row)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_csv(self.metrics_path, self.rows)
