"""The U-Net paper's augmentation recipe with albumentations: elastic deformation, flips, small
shifts/rotations (and scaling), brightness/contrast. Geometric transforms are applied identically to image and
mask; masks use nearest interpolation so they stay exactly binary (or exact class indices, every class warped
alike). Borders are mirrored (no black corners, no invented labels)."""

from __future__ import annotations

import albumentations as A
import cv2

from visionlab.data.segmentation.recipe import SegmentationRecipe

MIRROR = cv2.BORDER_REFLECT_101


def train_transform(recipe: SegmentationRecipe) -> A.Compose:
    """The recipe's settings keep albumentations' meaning (``recipe.py`` lists them, conf/data/common/seg.yaml
    holds their values: the two backends cannot drift)."""
    r, elastic = recipe, recipe.elastic
    flip, shift, rotate, scale = r.flip, r.shift, r.rotate, r.scale
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
                p=r.p_affine,
            )
        )
    if elastic["p"] > 0 and elastic["alpha"] > 0:
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
    if r.brightness or r.contrast:
        transforms.append(
            A.RandomBrightnessContrast(
                brightness_limit=r.brightness, contrast_limit=r.contrast, p=r.p_intensity
            )
        )
    if r.gamma and r.p_gamma:  # gamma_limit in percent: γ in [100(1 − gamma), 100(1 + gamma)] / 100
        transforms.append(A.RandomGamma(gamma_limit=(100 * (1 - r.gamma), 100 * (1 + r.gamma)), p=r.p_gamma))
    return A.Compose(transforms, seed=0)
