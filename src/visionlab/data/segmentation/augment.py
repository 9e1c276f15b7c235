"""The U-Net paper's augmentation on whole batches (the default backend; ``albumentations_recipe`` is the
per-sample reference it is tested against).

In albumentations' order: flips and 90° turns, shift/scale/rotate (p = ``p_affine``), elastic deformation
(p = ``elastic.p``), brightness/contrast (p = ``p_intensity``). All geometric steps are folded into one map from
output to source pixels, sampled once for the image (bilinear) and once for the mask (nearest, so it stays exactly
binary), with mirrored borders. Parameters keep albumentations' meaning: ``shift`` a fraction of the side,
``rotate`` degrees, ``scale`` ± fraction per axis, elastic ``alpha`` (strength, px) and ``sigma`` (smoothness, px).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from visionlab.data.batched_ops import (
    apply_affine,
    bernoulli,
    brightness_contrast_shift,
    elastic_displacement,
    pixel_grid,
    rotation,
    sample,
    uniform,
)


class SegmentationBatchAugment:
    """(uint8 N×H×W×C images, uint8 N×H×W masks, generator) → (float N×C×H×W in [0, 1], uint8 N×H×W masks)."""

    def __init__(self, elastic: Mapping, flip: bool, shift: float, rotate: float, scale: float, brightness: float,
                 contrast: float, p_affine: float, p_intensity: float):
        self.elastic = {"alpha": float(elastic["alpha"]), "sigma": float(elastic["sigma"]), "p": float(elastic["p"])}
        self.flip, self.shift, self.rotate, self.scale = bool(flip), float(shift), float(rotate), float(scale)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.p_affine, self.p_intensity = float(p_affine), float(p_intensity)

    def dihedral(self, g: torch.Generator, n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward map of h-flip, v-flip and k·90° turns (turns only on square images), as (matrix, offset)."""
        matrix = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
        if not self.flip:
            return matrix, torch.zeros(n, 2, dtype=torch.float64)
        hflip, vflip = bernoulli(g, n, 0.5), bernoulli(g, n, 0.5)
        turns = torch.where(bernoulli(g, n, 0.5), torch.randint(0, 4, (n,), generator=g), 0)
        if height != width:
            turns = turns - turns % 2  # a quarter turn would change the shape: keep only 0° and 180°
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        # forward: flips first, then the turn; backward = inverse of that, about the centre
        signs = torch.stack([torch.where(hflip, -1.0, 1.0), torch.where(vflip, -1.0, 1.0)], -1)
        mirror = torch.diag_embed(signs.to(torch.float64))
        forward = rotation(turns.to(torch.float64) * 90.0).round() @ mirror
        matrix = torch.linalg.inv(forward)
        return matrix, centre - torch.einsum("nij,j->ni", matrix, centre)

    def affine(self, g: torch.Generator, n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward map of albumentations' Affine (rotate, per-axis scale about the centre, then translate)."""
        applied = bernoulli(g, n, self.p_affine)
        angle = torch.where(applied, uniform(g, n, -self.rotate, self.rotate), 0.0)
        scale = torch.where(applied[:, None], torch.stack([uniform(g, n, 1 - self.scale, 1 + self.scale),
                                                           uniform(g, n, 1 - self.scale, 1 + self.scale)], -1), 1.0)
        shift = torch.where(applied[:, None], torch.stack([uniform(g, n, -self.shift, self.shift) * width,
                                                           uniform(g, n, -self.shift, self.shift) * height], -1), 0.0)
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        forward = rotation(angle) @ torch.diag_embed(scale)
        matrix = torch.linalg.inv(forward)
        return matrix, centre - torch.einsum("nij,nj->ni", matrix, centre + shift)

    def source_points(self, g: torch.Generator, n: int, height: int, width: int, device) -> torch.Tensor:
        """(N, H, W, 2) source pixel of every output pixel: dihedral ∘ affine ∘ elastic, as one map."""
        d_matrix, d_offset = self.dihedral(g, n, height, width)
        a_matrix, a_offset = self.affine(g, n, height, width)
        matrix = d_matrix @ a_matrix
        offset = torch.einsum("nij,nj->ni", d_matrix, a_offset) + d_offset
        points = pixel_grid(height, width).to(device).expand(n, height, width, 2)
        elastic = self.elastic
        if elastic["p"] > 0 and elastic["alpha"] > 0:
            applied = bernoulli(g, n, elastic["p"]).to(device)
            field = elastic_displacement(g, n, height, width, elastic["alpha"], elastic["sigma"], device)
            points = points + field.to(torch.float64) * applied.view(n, 1, 1, 1)
        return apply_affine(points, matrix.to(device), offset.to(device))

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator):
        n, height, width, _ = images.shape
        source = self.source_points(generator, n, height, width, images.device)
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        x = sample(x, source, mode="bilinear", padding="reflection")
        y = sample(masks.reshape(n, 1, height, width).float(), source, mode="nearest", padding="reflection")
        applied = bernoulli(generator, n, self.p_intensity)
        contrast = torch.where(applied, uniform(generator, n, -self.contrast, self.contrast), 0.0)
        brightness = torch.where(applied, uniform(generator, n, -self.brightness, self.brightness), 0.0)
        x = brightness_contrast_shift(x, contrast, brightness)
        return x, y[:, 0].to(masks.dtype)
