"""Test set-up: offline W&B, no albumentations update check, and the shared fixtures. Helpers live in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def tiny_gtsrb_dir(tmp_path: Path) -> Path:
    """A prepared GTSRB-format .npz (x_train/y_train/track_train + test) made from the synthetic generator."""
    import numpy as np

    from visionlab.data.classification.synthetic import make_synthetic_signs

    arrays = make_synthetic_signs(seed=3, tracks_per_class=3, frames_per_track=3, test_tracks_per_class=1)
    folder = tmp_path / "gtsrb_npz"
    folder.mkdir()
    np.savez(folder / "part1.npz", **arrays)
    return folder
