"""Procedurally generated 43-class traffic-sign-like images, so every run works offline with no files.

Each class is a (shape, colour scheme, glyph) combination. Every "track" is one physical sign seen in several
frames with small pose/lighting changes, mirroring GTSRB's track structure so the group split is exercised
too. Everything is deterministic from the seed."""

from __future__ import annotations

import itertools

import numpy as np

NUM_CLASSES = 43
SHAPES = ("circle", "triangle", "triangle_down", "diamond", "octagon")
# (outer/border colour, inner colour, glyph colour)
SCHEMES = (
    ((200, 30, 30), (235, 235, 235), (20, 20, 20)),
    ((30, 70, 190), (30, 70, 190), (240, 240, 240)),
    ((20, 20, 20), (240, 200, 30), (20, 20, 20)),
)
GLYPHS = ("hbar", "vbar", "dot")
CLASS_DEFS = list(itertools.product(SHAPES, SCHEMES, GLYPHS))[:NUM_CLASSES]


def class_names() -> list[str]:
    """What each synthetic class looks like, e.g. "circle red/white hbar" (label order)."""
    colours = {SCHEMES[0]: "red/white", SCHEMES[1]: "blue", SCHEMES[2]: "yellow/black"}
    return [f"{shape} {colours[scheme]} {glyph}" for shape, scheme, glyph in CLASS_DEFS]


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    ax, ay = np.abs(x), np.abs(y)
    if shape == "circle":
        return x * x + y * y <= r * r
    if shape == "diamond":
        return ax + ay <= r
    if shape == "octagon":
        return np.maximum(np.maximum(ax, ay), (ax + ay) / np.sqrt(2) * 1.08) <= r
    sy = y if shape == "triangle" else -y  # apex up or down
    return (sy <= 0.55 * r) & (sy >= -r + 1.732 * ax)


def _glyph_mask(glyph: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    ax, ay = np.abs(x), np.abs(y)
    if glyph == "hbar":
        return (ax <= 0.45 * r) & (ay <= 0.12 * r)
    if glyph == "vbar":
        return (ax <= 0.12 * r) & (ay <= 0.4 * r)
    return x * x + y * y <= (0.2 * r) ** 2


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """(angle, scale, tx, ty, background r/g/b, gradient r/g/b, brightness, contrast) of one physical sign."""
    return np.concatenate(
        [
            [rng.uniform(-0.2, 0.2), rng.uniform(0.75, 1.0)],
            rng.uniform(-0.12, 0.12, size=2),
            rng.uniform(40, 200, size=3),
            rng.uniform(-40, 40, size=3),
            [rng.uniform(0.6, 1.3), rng.uniform(0.7, 1.2)],
        ]
    )


FRAME_JITTER = np.array([0.03, 0.03, 0.02, 0.02, 5, 5, 5, 3, 3, 3, 0.05, 0.04])


def render_signs(
    label: int, poses: np.ndarray, rng: np.random.Generator, size: int = 32, supersample: int = 1
):
    """Render uint8 (B, size, size, 3) images of class ``label``, one per pose row (see ``random_pose``)."""
    shape, (outer, inner, glyph_colour), glyph = CLASS_DEFS[label]
    n = size * supersample
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    gx, gy = np.meshgrid(coords, coords)
    p = poses[:, :, None, None]
    angle, scale, tx, ty = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    c, s = np.cos(angle), np.sin(angle)
    x = (c * (gx - tx) + s * (gy - ty)) / scale
    y = (-s * (gx - tx) + c * (gy - ty)) / scale

    inner_mask = _shape_mask(shape, x, y, 0.62)
    region = (
        _shape_mask(shape, x, y, 0.85).astype(np.uint8)
        + inner_mask
        + (_glyph_mask(glyph, x, y, 0.85) & inner_mask)
    )  # 0 background, 1 border, 2 inner, 3 glyph
    palette = np.asarray([(0, 0, 0), outer, inner, glyph_colour], np.float32)
    background = (poses[:, None, None, 4:7] + poses[:, None, None, 7:10] * gy[None, ..., None]).astype(
        np.float32
    )
    img = np.where((region == 0)[..., None], background, palette[region])
    img = img.reshape(len(poses), size, supersample, size, supersample, 3).mean(axis=(2, 4), dtype=np.float32)
    brightness, contrast = poses[:, None, None, 10:11], poses[:, None, None, 11:12]
    img = (img - 128) * contrast + 128 * brightness
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_split(
    seed: int, tracks_per_class: int, frames_per_track: int, size: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (x uint8 NHWC, y uint8, track int16) for ``tracks_per_class`` signs per class."""
    rng = np.random.default_rng(seed)
    xs, ys, tracks = [], [], []
    for label in range(NUM_CLASSES):
        # frames of one track: the same physical sign with a little pose/lighting jitter
        track_poses = np.stack([random_pose(rng) for _ in range(tracks_per_class)])
        poses = np.repeat(track_poses, frames_per_track, axis=0)
        poses += rng.normal(0, 1, size=poses.shape) * FRAME_JITTER
        xs.append(render_signs(label, poses, rng, size))
        ys.append(np.full(len(poses), label, np.uint8))
        tracks.append(np.repeat(np.arange(tracks_per_class, dtype=np.int16), frames_per_track))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(tracks)


def make_synthetic_signs(
    seed: int = 0, tracks_per_class: int = 10, frames_per_track: int = 10, test_tracks_per_class: int = 3
) -> dict[str, np.ndarray]:
    """A GTSRB-shaped dictionary (``x_train``, ``y_train``, ``track_train``, ``x_test``, ``y_test``)."""
    x_train, y_train, track_train = make_split(seed, tracks_per_class, frames_per_track)
    x_test, y_test, _ = make_split(seed + 1_000_003, test_tracks_per_class, frames_per_track)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "track_train": track_train,
        "x_test": x_test,
        "y_test": y_test,
    }
