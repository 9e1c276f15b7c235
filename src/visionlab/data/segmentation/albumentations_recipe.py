"""The U-Net paper's augmentation recipe with albumentations: elastic deformation, flips, small
shifts/rotations
(and scaling), brightness/contrast. Geometric transforms are applied identically to image and mask; masks use
nearest interpolation so they stay exactly binary (or exact class indices, every class warped alike). Borders
are mirrored (no black corners, no invented labels).
"""

from __future__ import annotations

from collections.abc import Mapping

import albumentations as A
import cv2

MIRROR = cv2.BORDER_REFLECT_101


def train_transform(
    elastic: Mapping,
    flip: bool,
    shift: float,
    rotate: float,
    scale: float,
    brightness: float,
    contrast: float,
    p_affine: float,
    p_intensity: float,
    gamma: float = 0.0,
    p_gamma: float = 0.0,
) -> A.Compose:
    """``elastic``: {alpha, sigma, p}; alpha is the displacement strength in pixels, sigma the smoothness of
    the
    displacement field (pixels). ``shift`` is a fraction of the side, ``rotate`` in degrees, ``scale`` ±
    fraction.
    The values come from ``conf/data/common/seg.yaml`` (no defaults here, so the two backends cannot
    drift)."""
    elastic = dict(elastic)
    transforms: list = []
    if flip == "horizontal":  # street scenes: left-right only
        transforms.append(A.HorizontalFlip(p=0.5))
    elif flip:
        transforms += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    if shift or rotate or scale:
        transforms.append(
            A.Affine(
                translate_percent=(-shift, shift),
                rotate=(-rotate, rotate),
                scale=(1 - scale, 1 + scale),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=MIRROR,
                p=p_affine,
            )
        )
    if elastic.get("p", 0.0) > 0 and elastic.get("alpha", 0.0) > 0:
        transforms.append(
            A.ElasticTransform(
                alpha=float(elastic["alpha"]),
                sigma=float(elastic["sigma"]),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=MIRROR,
                p=float(elastic["p"]),
            )
        )
    if brightness or contrast:
        transforms.append(
            A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=p_intensity)
        )
    if gamma and p_gamma:  # gamma_limit in percent: γ in [100(1 − gamma), 100(1 + gamma)] / 100
        transforms.append(A.RandomGamma(gamma_limit=(100 * (1 - gamma), 100 * (1 + gamma)), p=p_gamma))
    return A.Compose(transforms, seed=0)
