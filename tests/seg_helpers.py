"""Helpers for the segmentation tests: tiny U-Net + 64×64 synthetic data overrides and data-file makers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionlab.data.segmentation.synthetic import make_synthetic_seg

# A whole tiny run (27 K-parameter... here 4-feature, 3-level U-Net on 64×64) takes a few seconds on 2 cores.
TINY_SEG = [
    "data=synthetic_seg",
    "data.image_size=64",
    "data.n_train=8",
    "data.n_val=4",
    "data.n_test=6",
    "data.samples_per_epoch=null",  # one pass over the 8 images (the presets' fixed epoch is 160 samples)
    "data.num_workers=0",
    "data.batch_size=4",
    "data.eval_batch_size=4",
    "model.net.features_start=4",
    "model.net.depth=3",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


def tiny_arrays(seed: int = 0, size: int = 64, n_train: int = 6, n_val: int = 2, n_test: int = 3) -> dict:
    return make_synthetic_seg(n_train=n_train, n_val=n_val, n_test=n_test, size=size, seed=seed)


def save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def f1_iou(mask: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Independent numpy reference for the per-image scores (both empty → 1.0)."""
    mask, pred = mask.astype(bool), pred.astype(bool)
    tp = np.sum(mask & pred)
    fp = np.sum(~mask & pred)
    fn = np.sum(mask & ~pred)
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)
