"""The U-Net paper's augmentation recipe with albumentations: elastic deformation, flips, small shifts/rotations
(and scaling), brightness/contrast. Geometric transforms are applied identically to image and mask; masks use
nearest interpolation so they stay exactly binary. Borders are mirrored (no black corners, no invented labels).
"""

from __future__ import annotations

from collections.abc import Mapping

import albumentations as A
import cv2

MIRROR = cv2.BORDER_REFLECT_101


def train_transform(
    elastic: Mapping | None = None,
    flip: bool = True,
    shift: float = 0.05,
    rotate: float = 10.0,
    scale: float = 0.05,
    brightness: float = 0.1,
    contrast: float = 0.1,
    p_affine: float = 0.7,
) -> A.Compose:
    """``elastic``: {alpha, sigma, p}; alpha is the displacement strength in pixels, sigma the smoothness of the
    displacement field (pixels). ``shift`` is a fraction of the side, ``rotate`` in degrees, ``scale`` ± fraction."""
    elastic = dict(elastic or {})
    transforms: list = []
    if flip:
        transforms += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]
    if shift or rotate or scale:
        transforms.append(
            A.Affine(translate_percent=(-shift, shift), rotate=(-rotate, rotate), scale=(1 - scale, 1 + scale),
                     interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST, border_mode=MIRROR,
                     p=p_affine)
        )
    if elastic.get("p", 0.0) > 0 and elastic.get("alpha", 0.0) > 0:
        transforms.append(
            A.ElasticTransform(alpha=float(elastic["alpha"]), sigma=float(elastic.get("sigma", 10.0)),
                               interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                               approximate=bool(elastic.get("approximate", False)), border_mode=MIRROR,
                               p=float(elastic["p"]))
        )
    if brightness or contrast:
        transforms.append(A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=0.8))
    return A.Compose(transforms, seed=0)
