"""Random training crops, a share of them centred on a pixel of a rarer ("foreground") class (nnU-Net's
foreground oversampling, there p = 0.33): with a few small classes and a large one (CamVid: poles and signs
beside road and sky), uniform crops would rarely hold the classes the model has most to learn.

Used by both augmentation backends before augmentation, on whole batches: every random number is drawn from
the batch's CPU generator in a fixed order (whether foreground, the uniform offsets, the class pick, the pixel
pick), so a batch's crops depend only on (seed, epoch, the batch's indices), as the rest of the augmentation
does."""

from __future__ import annotations

import torch

from visionlab.data.batched_ops import bernoulli


class RandomCrops:
    """(uint8 N×H×W×C images, uint8 N×H×W masks, generator) → the same cropped to ``size`` = (height,
    width)."""

    def __init__(self, size: tuple[int, int], p_foreground: float = 0.0, classes: tuple[int, ...] = ()):
        self.height, self.width = int(size[0]), int(size[1])
        self.p_foreground, self.classes = float(p_foreground), tuple(int(c) for c in classes)

    def offsets(self, masks: torch.Tensor, generator: torch.Generator) -> list[tuple[int, int]]:
        """Top-left corner of each crop."""
        n, height, width = masks.shape
        g = generator
        centred = (
            bernoulli(g, n, self.p_foreground)
            if self.p_foreground > 0 and self.classes
            else torch.zeros(n, dtype=torch.bool)
        )
        top = torch.randint(0, height - self.height + 1, (n,), generator=g)
        left = torch.randint(0, width - self.width + 1, (n,), generator=g)
        pick_class, pick_pixel = (
            torch.rand(n, generator=g, dtype=torch.float64),
            torch.rand(n, generator=g, dtype=torch.float64),
        )
        corners = []
        for i in range(n):
            y0, x0 = int(top[i]), int(left[i])
            if centred[i]:
                mask = masks[i]
                present = [c for c in self.classes if bool((mask == c).any())]
                if present:  # an image without any of them keeps its uniform crop
                    cls = present[min(len(present) - 1, int(pick_class[i] * len(present)))]
                    pixels = (mask == cls).nonzero()
                    y, x = (int(v) for v in pixels[min(len(pixels) - 1, int(pick_pixel[i] * len(pixels)))])
                    y0 = min(max(0, y - self.height // 2), height - self.height)
                    x0 = min(max(0, x - self.width // 2), width - self.width)
            corners.append((y0, x0))
        return corners

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator):
        if tuple(masks.shape[1:3]) == (self.height, self.width) and not self.p_foreground:
            return images, masks
        corners = self.offsets(masks.cpu() if masks.device.type != "cpu" else masks, generator)
        h, w = self.height, self.width
        return (
            torch.stack([images[i, y : y + h, x : x + w] for i, (y, x) in enumerate(corners)]),
            torch.stack([masks[i, y : y + h, x : x + w] for i, (y, x) in enumerate(corners)]),
        )
