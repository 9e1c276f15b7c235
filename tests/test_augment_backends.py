"""The batched backend draws from the same distributions as the albumentations reference backend.

Inputs encode their own pixel coordinates (or a known intensity), so every random parameter can be read back
from the output of either backend and the two distributions compared on a few hundred samples.
"""

import numpy as np
import pytest
import torch

from data_helpers import recipe
from visionlab.data.batched_ops import batch_generator
from visionlab.data.classification.augment import SignBatchAugment
from visionlab.data.classification.datamodule import AugmentedSigns
from visionlab.data.segmentation.augment import SegmentationBatchAugment
from visionlab.data.segmentation.datamodule import AugmentedSegmentation

N = 512
SYMMETRIC = 11  # a mirror-symmetric GTSRB class (flipped with p = 0.5)
ASYMMETRIC = 14  # stop sign: never flipped


def coordinate_images(n: int, size: int = 32) -> np.ndarray:
    """uint8 N×size×size×3: red = 8·x, green = 8·y, blue = 128."""
    ys, xs = np.mgrid[0:size, 0:size]
    image = np.stack([xs * 8, ys * 8, np.full_like(xs, 128)], -1).astype(np.uint8)
    return np.repeat(image[None], n, axis=0)


def augment(
    backend: str, data: str, images: np.ndarray, targets: np.ndarray, batch: int, **changes
) -> np.ndarray:
    """Augmented float N×H×W×C in [0, 255] from either backend with the recipe of conf/data/<data>.yaml."""
    rec = recipe(data, **changes)
    reference, batched = {
        "synthetic_signs": (AugmentedSigns, SignBatchAugment),
        "synthetic_seg": (AugmentedSegmentation, SegmentationBatchAugment),
    }[data]
    out = []
    for start in range(0, len(images), batch):
        idx = list(range(start, min(start + batch, len(images))))
        if backend == "albumentations":
            x, _ = reference(images, targets, seed=7, recipe=rec).__getitems__(idx)
            out.append(x.float().numpy())
        else:
            augmenter = batched(**rec) if isinstance(rec, dict) else batched(rec)
            x, _ = augmenter(
                torch.from_numpy(images[idx]), torch.from_numpy(targets[idx]), batch_generator(7, 0, start)
            )
            out.append((x * 255).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def signs(backend: str, images: np.ndarray, labels: np.ndarray, **changes) -> np.ndarray:
    return augment(backend, "synthetic_signs", images, labels, 64, **changes)


@pytest.mark.parametrize("backend", ["batched", "albumentations"])
def test_crop_offsets_and_flips_by_class(backend):
    labels = np.array([SYMMETRIC, ASYMMETRIC] * (N // 2), dtype=np.int64)
    out = signs(backend, coordinate_images(N), labels, rotation=0.0, brightness=0.0, contrast=0.0)
    red = out[..., 0]
    flipped = red[:, 0, 0] > red[:, 0, -1]  # x decreases left to right
    offset_x = np.where(flipped, red[:, 0, -1], red[:, 0, 0]) / 8
    offset_y = out[:, 0, 0, 1] / 8
    for offsets in (offset_x, offset_y):
        assert set(np.round(offsets).astype(int)) == {0, 1, 2, 3, 4}  # every 28-px window of 32 px
        np.testing.assert_allclose(offsets, np.round(offsets), atol=0.01)  # no sub-pixel shifts
        counts = np.bincount(np.round(offsets).astype(int), minlength=5) / N
        assert counts.min() > 0.12 and counts.max() < 0.28, counts  # uniform (0.2 each)
    assert not flipped[labels == ASYMMETRIC].any()
    assert 0.38 < flipped[labels == SYMMETRIC].mean() < 0.62


def _angles(out: np.ndarray) -> np.ndarray:
    """Rotation of each sample, read off the gradient of the x-coordinate channel in the centre."""
    red = out[:, 8:20, 8:20, 0]
    d_dy = (red[:, 1:, :] - red[:, :-1, :]).mean(axis=(1, 2))
    d_dx = (red[:, :, 1:] - red[:, :, :-1]).mean(axis=(1, 2))
    return np.degrees(np.arctan2(d_dy, d_dx))


def test_rotation_range_matches():
    labels = np.full(N, ASYMMETRIC, dtype=np.int64)
    angles = {
        b: np.abs(_angles(signs(b, coordinate_images(N), labels, brightness=0.0, contrast=0.0)))
        for b in ("batched", "albumentations")
    }
    for backend, a in angles.items():
        assert 4.0 < a.max() < 5.3, (backend, a.max())  # ±5°
        assert 2.0 < a.mean() < 3.0, (backend, a.mean())  # uniform: mean |angle| 2.5°
    assert abs(angles["batched"].mean() - angles["albumentations"].mean()) < 0.4


def test_zoom_range_matches_and_is_off_in_the_seed_recipe():
    """With ``scale`` the x-coordinate gradient (8 per source pixel) reads back each sample's zoom z = 8 /
    gradient."""
    labels = np.full(N, ASYMMETRIC, dtype=np.int64)
    zooms = {}
    for backend in ("batched", "albumentations"):
        out = signs(
            backend, coordinate_images(N), labels, rotation=0.0, brightness=0.0, contrast=0.0, scale=0.15
        )
        zooms[backend] = z = 8 / (out[:, 8:20, 9:21, 0] - out[:, 8:20, 8:20, 0]).mean(axis=(1, 2))
        assert z.min() < 0.9 and z.max() > 1.1, backend  # uniform in [0.85, 1.15]
        assert 0.84 < z.min() and z.max() < 1.16 and 0.97 < z.mean() < 1.03, backend
    assert abs(zooms["batched"].mean() - zooms["albumentations"].mean()) < 0.02
    assert recipe("synthetic_signs")["scale"] == 0.0  # the course's recipe has no zoom
    plain = signs("batched", coordinate_images(64), labels[:64], rotation=0.0, brightness=0.0, contrast=0.0)
    np.testing.assert_allclose(np.diff(plain[..., 0], axis=2), 8, atol=1e-3)  # scale 0: pixel for pixel


def test_brightness_and_contrast_jitter_ranges_match():
    labels = np.full(N, ASYMMETRIC, dtype=np.int64)
    flat = np.full(
        (N, 32, 32, 3), 100, np.uint8
    )  # contrast leaves a flat image alone: output = 100·brightness
    halves = np.full((N, 32, 32, 3), 64, np.uint8)  # contrast factor = spread / original spread
    halves[:, :, 16:] = 192
    for backend in ("batched", "albumentations"):
        brightness = signs(backend, flat, labels, rotation=0.0, contrast=0.0)[:, 14, 14, 0] / 100
        assert brightness.min() < 0.3 and brightness.max() > 1.7, backend  # factors in [0.2, 1.8]
        assert 0.9 < brightness.mean() < 1.1, backend
        out = signs(backend, halves, labels, rotation=0.0, brightness=0.0)
        contrast = (out[:, :, 26:, 0].mean(axis=(1, 2)) - out[:, :, :2, 0].mean(axis=(1, 2))) / 128
        assert contrast.min() < 0.65 and contrast.max() > 1.35 and 0.93 < contrast.mean() < 1.07, backend


def _seg(backend: str, images: np.ndarray, **changes) -> np.ndarray:
    return augment(backend, "synthetic_seg", images, np.zeros(images.shape[:3], np.uint8), 16, **changes)


def test_gamma_ranges_match_and_off_by_default():
    """Only the gamma step on a flat 0.5 grey image: out = 0.5^γ, so γ is read back per image."""
    n = 64
    flat = np.full((n, 32, 32, 1), 128, np.uint8)
    only_gamma = {
        "elastic": {"alpha": 0.0, "sigma": 1.0, "p": 0.0},
        "flip": False,
        "p_affine": 0.0,
        "p_intensity": 0.0,
        "gamma": 0.4,
        "p_gamma": 1.0,
    }
    for backend in ("batched", "albumentations"):
        out = _seg(backend, flat, **only_gamma)[:, 16, 16, 0] / 255
        gammas = np.log(out) / np.log(128 / 255)
        assert gammas.min() < 0.7 and gammas.max() > 1.3, backend  # γ spans [0.6, 1.4]
        assert 0.6 - 0.02 <= gammas.min() and gammas.max() <= 1.4 + 0.02 and 0.9 < gammas.mean() < 1.1, (
            backend
        )
        untouched = _seg(backend, flat, **{**only_gamma, "p_gamma": 0.0})[:, 16, 16, 0]
        np.testing.assert_allclose(untouched, 128, atol=0.51)  # off: the image stays as it was
    assert recipe("synthetic_seg").p_gamma == 0.0  # the seed recipe has no gamma step


@pytest.mark.parametrize(("alpha", "sigma"), [(300.0, 8.0), (120.0, 5.0)])
def test_elastic_displacement_magnitude_matches(alpha, sigma):
    """Only the elastic step: the displacement of every centre pixel is read back from the coordinate
    image."""
    size, n = 64, 48
    images = coordinate_images(n, size)[..., :2] // 2  # 4 levels per pixel: x·4, y·4
    only_elastic = {
        "elastic": {"alpha": alpha, "sigma": sigma, "p": 1.0},
        "flip": False,
        "p_affine": 0.0,
        "p_intensity": 0.0,
    }
    ys, xs = np.mgrid[0:size, 0:size]
    centre = slice(16, 48)
    magnitude = {}
    for backend in ("batched", "albumentations"):
        out = _seg(backend, images, **only_elastic)
        dx, dy = out[..., 0] / 4 - xs, out[..., 1] / 4 - ys
        magnitude[backend] = np.hypot(dx, dy)[:, centre, centre].mean()
    assert magnitude["albumentations"] > 0.5
    assert magnitude["batched"] == pytest.approx(magnitude["albumentations"], rel=0.15), magnitude


def test_flip_and_turn_rates_match():
    size = 32
    images = coordinate_images(256, size)[..., :2]
    stats = {}
    for backend in ("batched", "albumentations"):
        out = _seg(
            backend, images, elastic={"alpha": 0.0, "sigma": 1.0, "p": 0.0}, p_affine=0.0, p_intensity=0.0
        )
        corner = out[:, 0, 0, :2] / 8  # which source corner landed top-left
        stats[backend] = np.array(
            [np.mean((corner == c).all(axis=1)) for c in ([0, 0], [31, 0], [0, 31], [31, 31])]
        )
        assert stats[backend].sum() == pytest.approx(1.0)  # only flips and quarter turns: always a corner
    # p(identity corner) = P(no flip net effect) — both backends put a quarter of the mass on each corner
    for backend, s in stats.items():
        assert (np.abs(s - 0.25) < 0.08).all(), (backend, s)
