"""The course's traffic-sign augmentation recipe, built with albumentations: the per-sample reference backend
(``data.augment_backend=albumentations``). Its values, and the mirror-symmetric classes that may be flipped,
come from ``conf/data/common/signs.yaml``."""

from __future__ import annotations

import albumentations as A


def train_transform(
    crop: int, rotation: float, brightness: float, contrast: float, flip: bool, scale: float = 0.0
) -> A.Compose:
    """Rotation ±``rotation``°, random ``crop``×``crop`` crop, a zoom in [1 − ``scale``, 1 + ``scale``] (only
    when ``scale`` > 0: the course's recipe has none), brightness/contrast jitter, optional h-flip."""
    transforms = [
        A.Rotate(limit=rotation, border_mode=1, p=1.0),  # replicate border, no black corners
        A.RandomCrop(crop, crop),
        *(
            [A.Affine(scale=(1 - scale, 1 + scale), border_mode=1, p=1.0)] if scale > 0 else []
        ),  # about the crop's centre
        A.ColorJitter(brightness=brightness, contrast=contrast, saturation=0.0, hue=0.0, p=1.0),
    ]
    if flip:
        transforms.append(A.HorizontalFlip(p=0.5))
    return A.Compose(transforms, seed=0)
