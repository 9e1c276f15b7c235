"""The course's traffic-sign recipe on whole batches (the default backend; ``albumentations_recipe`` is the
per-sample reference it is tested against).

Rotation ±``rotation``° about the image centre with replicated borders, a random ``crop``×``crop`` window,
brightness/contrast jitter, and a horizontal flip (p = 0.5) only for the mirror-symmetric classes. Rotation, crop
and flip are one sampling grid; jitter is two multiply-adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from visionlab.data.batched_ops import (
    apply_affine,
    bernoulli,
    color_jitter,
    pixel_grid,
    rotation,
    sample,
    uniform,
)


class SignBatchAugment:
    """(uint8 N×H×W×C images, labels, generator) → (float N×C×crop×crop in [0, 1], labels)."""

    def __init__(self, crop: int, rotation: float, brightness: float, contrast: float,
                 flip_classes: Sequence[int]):
        self.crop, self.rotation = int(crop), float(rotation)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.flip_classes = torch.as_tensor(list(flip_classes), dtype=torch.int64)
        self.base = pixel_grid(self.crop, self.crop)

    def params(self, labels: torch.Tensor, height: int, width: int, generator: torch.Generator) -> dict:
        """Per-sample random parameters, drawn on the CPU (cheap, and identical on every device)."""
        n = len(labels)
        return {
            "angle": uniform(generator, n, -self.rotation, self.rotation),
            "offset_x": torch.randint(0, width - self.crop + 1, (n,), generator=generator),
            "offset_y": torch.randint(0, height - self.crop + 1, (n,), generator=generator),
            "flip": bernoulli(generator, n, 0.5) & torch.isin(labels.cpu(), self.flip_classes),
            "brightness": uniform(generator, n, max(0.0, 1 - self.brightness), 1 + self.brightness),
            "contrast": uniform(generator, n, max(0.0, 1 - self.contrast), 1 + self.contrast),
        }

    def source_points(self, p: dict, height: int, width: int) -> torch.Tensor:
        """Output pixel → source pixel: flip inside the crop, shift by the crop offset, rotate about the centre."""
        n = len(p["angle"])
        mirror = torch.where(p["flip"], -1.0, 1.0).to(torch.float64)
        flip = torch.zeros(n, 2, 2, dtype=torch.float64)
        flip[:, 0, 0], flip[:, 1, 1] = mirror, 1.0
        shift = torch.stack([torch.where(p["flip"], self.crop - 1.0, 0.0) + p["offset_x"],
                             p["offset_y"].to(torch.float64)], -1)
        centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        rot = rotation(p["angle"])
        matrix = rot @ flip
        offset = torch.einsum("nij,nj->ni", rot, shift - centre) + centre
        return apply_affine(self.base, matrix, offset)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        n, height, width, _ = images.shape
        p = self.params(labels, height, width, generator)
        x = images.permute(0, 3, 1, 2).float().div_(255.0)  # NHWC storage: a channels_last NCHW view
        x = sample(x, self.source_points(p, height, width), mode="bilinear", padding="border")
        return color_jitter(x, p["brightness"], p["contrast"]), labels
