"""The U-Net paper's augmentation on whole batches (the default backend; ``albumentations_recipe`` is the
per-sample reference it is tested against).

In albumentations' order: flips and 90° turns, shift/scale/rotate (p = ``p_affine``), elastic deformation (p =
``elastic.p``), brightness/contrast (p = ``p_intensity``), gamma (p = ``p_gamma``: x^γ, γ in 1 ± ``gamma``).
All geometric steps are folded into one map from output to source pixels, sampled once for the image
(bilinear) and once for the mask (nearest, so it stays exactly binary or class indices exact: every class is
warped alike), with mirrored borders, so no pixel is ever filled with an invented value (no fill class;
``ignore_index`` pixels move like any other class); the image comes back channels_last, the layout the model
runs in. Parameters keep albumentations' meaning: ``shift`` a fraction of the side, ``rotate`` degrees,
``scale`` ± fraction per axis, elastic ``alpha`` (strength, px) and ``sigma`` (smoothness, px)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from visionlab.data.batched_ops import (
    bernoulli,
    elastic_noise,
    normalised_theta,
    rotation,
    separable_affine_grid,
    smooth_noise,
    to_device,
    uniform,
)
from visionlab.data.segmentation.recipe import SegmentationRecipe


class SegmentationBatchAugment:
    """(uint8 N×H×W×C images, uint8 N×H×W masks, generator) → (float N×C×H×W in [0, 1], uint8 N×H×W masks)."""

    def __init__(self, recipe: SegmentationRecipe):
        self.recipe = recipe

    def dihedral(
        self, g: torch.Generator, n: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward map of h-flip, v-flip and k·90° turns (turns only on square images), as (matrix,
        offset)."""
        matrix = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
        if not self.recipe.flip:
            return matrix, torch.zeros(n, 2, dtype=torch.float64)
        if self.recipe.flip == "horizontal":  # left-right only: the sky stays on top
            hflip, vflip, turns = (
                bernoulli(g, n, 0.5),
                torch.zeros(n, dtype=torch.bool),
                torch.zeros(n, dtype=torch.int64),
            )
        else:
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

    def affine(
        self, g: torch.Generator, n: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward map of albumentations' Affine (rotate, per-axis scale about the centre, then
        translate)."""
        r = self.recipe
        applied = bernoulli(g, n, r.p_affine)
        angle = torch.where(applied, uniform(g, n, -r.rotate, r.rotate), 0.0)
        scale = torch.where(
            applied[:, None],
            torch.stack(
                [
                    uniform(g, n, 1 - r.scale, 1 + r.scale),
                    uniform(g, n, 1 - r.scale, 1 + r.scale),
                ],
                -1,
            ),
            1.0,
        )
        shift = torch.where(
            applied[:, None],
            torch.stack(
                [
                    uniform(g, n, -r.shift, r.shift) * width,
                    uniform(g, n, -r.shift, r.shift) * height,
                ],
                -1,
            ),
            0.0,
        )
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        forward = rotation(angle) @ torch.diag_embed(scale)
        matrix = torch.linalg.inv(forward)
        return matrix, centre - torch.einsum("nij,nj->ni", matrix, centre + shift)

    def theta(self, g: torch.Generator, n: int, height: int, width: int) -> torch.Tensor:
        """(N, 2, 3) ``affine_grid`` map of dihedral ∘ affine (output → source), composed in float64 on the
        CPU."""
        d_matrix, d_offset = self.dihedral(g, n, height, width)
        a_matrix, a_offset = self.affine(g, n, height, width)
        matrix = d_matrix @ a_matrix
        offset = torch.einsum("nij,nj->ni", d_matrix, a_offset) + d_offset
        return normalised_theta(matrix, offset, (height, width), (height, width))

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator):
        """Every random number is drawn on the CPU first, in a fixed order (dihedral, affine, elastic,
        intensity); then the device builds one float32 grid (the affine map plus the elastic field, which is
        blurred, scaled and mixed into grid units on its coarse grid), samples the image (intensity folded
        into the uint8 → float conversion: sampling is affine-equivariant, so a·sample(x) + b = sample(a·x +
        b)) and the mask."""
        n, height, width, _ = images.shape
        device, g, r = images.device, generator, self.recipe
        theta = self.theta(g, n, height, width)
        columns = [theta.reshape(n, 6)]
        noise = None
        elastic = r.elastic
        if elastic["p"] > 0 and elastic["alpha"] > 0:
            applied = bernoulli(g, n, elastic["p"])
            noise = elastic_noise(g, n, height, width, pin=device.type == "cuda")
            # field in px = α · blur(noise / max|noise|) (where applied); in the grid it enters as θ_A · field
            # in [-1, 1] units (the elastic step displaces output pixels before the affine map)
            gain = torch.where(applied, elastic["alpha"], 0.0)
            to_unit = torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64)
            columns.append((theta[:, :, :2] * to_unit * gain[:, None, None]).reshape(n, 4))
        applied = bernoulli(g, n, r.p_intensity)
        contrast = torch.where(applied, uniform(g, n, -r.contrast, r.contrast), 0.0)
        brightness = torch.where(applied, uniform(g, n, -r.brightness, r.brightness), 0.0)
        gamma = None
        if r.p_gamma > 0 and r.gamma > 0:  # drawn last: without it every other draw is as before
            applied = bernoulli(g, n, r.p_gamma)
            gamma = torch.where(applied, uniform(g, n, 1.0 - r.gamma, 1.0 + r.gamma), 1.0)
            columns.append(gamma[:, None])
        columns += [(255.0 / (1.0 + contrast))[:, None], brightness[:, None]]  # a divisor: v / 255 is exact
        packed = to_device(torch.cat(columns, 1).to(torch.float32), device)  # one small copy per batch

        grid = separable_affine_grid(packed[:, :6].view(n, 2, 3), height, width)
        if noise is not None:
            noise = to_device(noise, device)
            peak = noise.abs().amax(dim=(1, 2, 3)).clamp(min=1e-6)  # on the device: a reduction, no read-back
            field = smooth_noise(noise, elastic["sigma"], packed[:, 6:10].view(n, 2, 2) / peak[:, None, None])
            grid = grid.add_(field.permute(0, 2, 3, 1))
        divisor, shift = packed[:, -2].view(n, 1, 1, 1), packed[:, -1].view(n, 1, 1, 1)
        x = torch.addcdiv(shift, images.permute(0, 3, 1, 2), divisor)  # uint8 NHWC → float: v·(1 + c)/255 + b
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        x = torch.clamp(x, 0.0, 1.0, out=torch.empty_like(x, memory_format=torch.channels_last))
        if gamma is not None:  # as albumentations' RandomGamma: x ** γ on [0, 1], after brightness/contrast
            x = x.pow_(packed[:, -3].view(n, 1, 1, 1))
        y = F.grid_sample(
            masks.reshape(n, 1, height, width).to(grid.dtype),
            grid,
            mode="nearest",
            padding_mode="reflection",
            align_corners=False,
        )
        return x, y[:, 0].to(masks.dtype)
