"""Procedural binary-segmentation data: grayscale images of smooth blob-like structures and their masks.

Every image is drawn from its own generator seeded by (seed, split, index), so the set is deterministic from the
seed and independent of how many images are asked for. The foreground is brighter than the background by a random
margin, but uneven illumination, blur and noise make a per-pixel threshold imperfect: a U-Net learns it quickly,
a threshold does not solve it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _smooth_field(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """White noise low-passed with a Gaussian of ``sigma`` pixels (in Fourier space: fast for any sigma),
    standardised to zero mean and unit variance."""
    noise = np.fft.rfft2(rng.standard_normal((size, size)))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    field = np.fft.irfft2(noise * np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2)), s=(size, size))
    return (field - field.mean()) / (field.std() + 1e-8)


def make_case(seed: int, split: str, index: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 H×W, mask uint8 H×W in {0,1}) pair."""
    rng = np.random.default_rng([seed, _SPLIT_IDS[split], index])
    blob_scale = size / rng.uniform(12.0, 20.0)
    field = _smooth_field(rng, size, blob_scale)
    mask = (field > rng.uniform(-0.3, 0.6)).astype(np.uint8)
    contrast = rng.uniform(0.18, 0.4)
    soft = gaussian_filter(mask.astype(np.float64), sigma=rng.uniform(0.8, 2.0))
    illumination = 0.12 * _smooth_field(rng, size, size / 3.0)
    texture = 0.05 * _smooth_field(rng, size, 1.5)
    image = rng.uniform(0.25, 0.45) + contrast * soft + illumination + texture
    image += rng.normal(0.0, rng.uniform(0.03, 0.08), (size, size))
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8), mask


def make_synthetic_seg(n_train: int = 48, n_val: int = 12, n_test: int = 16, size: int = 256,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Course-layout arrays: x_* uint8 (N, size, size, 1), y_* uint8 (N, size, size) in {0,1}."""
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n <= 0:
            continue
        cases = [make_case(seed, split, i, size) for i in range(n)]
        arrays[f"x_{split}"] = np.stack([c[0] for c in cases])[..., None]
        arrays[f"y_{split}"] = np.stack([c[1] for c in cases])
    return arrays
