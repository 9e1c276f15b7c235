"""Procedural binary-segmentation data: grayscale images of smooth blob-like structures and their masks.

Every image is drawn from its own generator seeded by (seed, split, index), so the set is deterministic from
the seed and independent of how many images are asked for. The foreground is brighter than the background by a
random margin, but uneven illumination, blur and noise make a per-pixel threshold imperfect: a U-Net learns it
quickly, a threshold does not solve it."""

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


def make_synthetic_seg(
    n_train: int = 48, n_val: int = 12, n_test: int = 16, size: int = 256, seed: int = 0
) -> dict[str, np.ndarray]:
    """Course-layout arrays: x_* uint8 (N, size, size, 1), y_* uint8 (N, size, size) in {0,1}."""
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n <= 0:
            continue
        cases = [make_case(seed, split, i, size) for i in range(n)]
        arrays[f"x_{split}"] = np.stack([c[0] for c in cases])[..., None]
        arrays[f"y_{split}"] = np.stack([c[1] for c in cases])
    return arrays


def make_multiclass_case(
    seed: int, split: str, index: int, size: int = 64, num_classes: int = 4, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 H×W, mask uint8 H×W) pair with shapes of ``num_classes − 1`` kinds on a background
    (class 0): class k ≥ 1 is drawn as a filled shape of kind k (disc, square, triangle, ring, cross, …,
    cycling) with a grey level of its own, so a model must learn shape and brightness together; later shapes
    cover earlier ones. With ``ignore_index`` the one-pixel outline of every shape is marked ignored (as VOC
    marks its borders)."""
    rng = np.random.default_rng([seed, 1000 + _SPLIT_IDS[split], index, num_classes])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = np.zeros((size, size), np.uint8)
    outline = np.zeros((size, size), bool)
    levels = np.linspace(0.35, 0.9, num_classes - 1)
    image = np.full((size, size), 0.15) + 0.05 * _smooth_field(rng, size, size / 4.0)
    for _ in range(int(rng.integers(2, 5))):
        cls = int(rng.integers(1, num_classes))
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        r = rng.uniform(0.08, 0.2) * size
        dy, dx = yy - cy, xx - cx
        kind = (cls - 1) % 5
        if kind == 0:
            shape = dy**2 + dx**2 <= r**2
        elif kind == 1:
            shape = (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
        elif kind == 2:
            shape = (dy <= r * 0.7) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
        elif kind == 3:
            shape = (dy**2 + dx**2 <= r**2) & (dy**2 + dx**2 >= (0.55 * r) ** 2)
        else:
            shape = ((np.abs(dy) <= r * 0.25) & (np.abs(dx) <= r)) | (
                (np.abs(dx) <= r * 0.25) & (np.abs(dy) <= r)
            )
        mask[shape] = cls
        image[shape] = levels[cls - 1]
        edge = shape & ~(
            np.roll(shape, 1, 0) & np.roll(shape, -1, 0) & np.roll(shape, 1, 1) & np.roll(shape, -1, 1)
        )
        outline |= edge
    image = gaussian_filter(image, 0.7) + rng.normal(0.0, 0.04, (size, size))
    if ignore_index is not None:
        mask[outline] = ignore_index
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8), mask


def make_synthetic_multiclass(
    n_train: int = 24,
    n_val: int = 8,
    n_test: int = 8,
    size: int = 64,
    seed: int = 0,
    num_classes: int = 4,
    ignore_index: int | None = None,
) -> dict[str, np.ndarray]:
    """Course-layout arrays of ``make_multiclass_case``: x_* uint8 (N, size, size, 1), y_* uint8 (N, size,
    size)."""
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n <= 0:
            continue
        cases = [make_multiclass_case(seed, split, i, size, num_classes, ignore_index) for i in range(n)]
        arrays[f"x_{split}"] = np.stack([c[0] for c in cases])[..., None]
        arrays[f"y_{split}"] = np.stack([c[1] for c in cases])
    return arrays
