"""Per-image contrast normalisation, applied once to every split at load time (``data.contrast_norm``).

Why: GTSRB photographs range from near-black to washed-out; the classic GTSRB networks (Cireşan et al. 2012)
gained from equalising each image before training. The operations are torchvision's, on whole uint8 batches:
``autocontrast`` stretches each channel to 0..255, ``equalize`` flattens each channel's histogram."""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from visionlab.config.errors import ConfigError

METHODS = {"none": None, "autocontrast": TF.autocontrast, "equalize": TF.equalize}
CHUNK = 4096  # images per call: bounded memory on a large set


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(
            f"data.contrast_norm={method!r} is not one of {', '.join(METHODS)}; e.g. "
            "data.contrast_norm=equalize (none keeps the images as they are)."
        )
    return method


def normalise_contrast(images: np.ndarray, method: str) -> np.ndarray:
    """uint8 N×H×W×C → the same shape, each image normalised on its own (so no split sees another's)."""
    op = METHODS[check_method(method)]
    if op is None or len(images) == 0:
        return images
    out = np.empty_like(images)
    for start in range(0, len(images), CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + CHUNK])).permute(0, 3, 1, 2)
        out[start : start + CHUNK] = op(chunk).permute(0, 2, 3, 1).numpy()
    return out
