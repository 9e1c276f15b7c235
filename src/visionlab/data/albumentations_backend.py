"""What the per-sample albumentations backend needs to be reproducible and safe in loader workers.

Seeding: albumentations 2.0.8's ``Compose.set_random_seed(s)`` hands the same seed ``s`` to every child
transform, so each child replays the same random numbers: HorizontalFlip and VerticalFlip then always fire
together, and a crop's offset moves with the rotation angle drawn before it. Giving child ``i`` its own seed
restores independence."""

from __future__ import annotations

from typing import TYPE_CHECKING

if (
    TYPE_CHECKING
):  # albumentations and OpenCV load only when this backend runs (~1.5 s at every start otherwise)
    import albumentations as A


def keep_opencv_single_threaded() -> None:
    """OpenCV's thread pool does not survive ``fork``: once albumentations has run in a process
    (``num_workers=0``), a DataLoader worker forked from it later deadlocks in its first OpenCV call.
    Per-sample ops on small images gain nothing from threads anyway, so the pool is never started."""
    import cv2

    cv2.setNumThreads(1)


def reseed(pipeline: A.Compose, seed: int) -> None:
    """Seed ``pipeline`` for one batch: a distinct, reproducible stream per transform."""
    pipeline.set_random_seed(seed & 0xFFFFFFFF)
    for i, transform in enumerate(pipeline.transforms):
        transform.set_random_seed((seed * 1_000_003 + 7_919 * (i + 1)) & 0xFFFFFFFF)
