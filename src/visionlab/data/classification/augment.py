"""The course's traffic-sign recipe on whole batches (the default backend; ``albumentations_recipe`` is the
per-sample reference it is tested against).

Rotation ±``rotation``° about the image centre with replicated borders, a random ``crop``×``crop`` window, a
zoom in [1 − ``scale``, 1 + ``scale``] about the window's centre (0 = the course's recipe, which has none),
brightness/contrast jitter, and a horizontal flip (p = 0.5) only for the mirror-symmetric classes.

Cost (the training loop waits for it every step): rotation, crop and flip are one 2×3 map per image, composed
on the CPU and expanded on the device by ``affine_grid``; the brightness gain rides on the uint8 → float
conversion (sampling is linear, so gain·sample(x) = sample(gain·x)); one ``grid_sample``; then the clip, the
grey means and the contrast multiply-add, which writes the channels_last layout the model runs in. All
per-sample numbers travel to the device in one small copy, and the flip decision (which needs the labels) is
taken there, so nothing waits for the device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from visionlab.data.batched_ops import bernoulli, contrast_about_grey, to_device, uniform


class SignBatchAugment:
    """(uint8 N×H×W×C images, labels, generator) → (float N×C×crop×crop in [0, 1], channels_last, labels)."""

    def __init__(
        self,
        crop: int,
        rotation: float,
        brightness: float,
        contrast: float,
        flip_classes: Sequence[int],
        scale: float = 0.0,
    ):
        self.crop, self.rotation, self.scale = int(crop), float(rotation), float(scale)
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.flip_classes = torch.as_tensor(list(flip_classes), dtype=torch.int64)
        self._classes_on: dict[str, torch.Tensor] = {}

    def params(self, n: int, height: int, width: int, generator: torch.Generator) -> dict:
        """Per-sample random parameters, drawn on the CPU (cheap, and identical on every device). ``flip`` is
        the coin; only the mirror-symmetric classes obey it (``flips``)."""
        return {
            "angle": uniform(generator, n, -self.rotation, self.rotation),
            "zoom": uniform(generator, n, 1 - self.scale, 1 + self.scale),
            "offset_x": torch.randint(0, width - self.crop + 1, (n,), generator=generator),
            "offset_y": torch.randint(0, height - self.crop + 1, (n,), generator=generator),
            "flip": bernoulli(generator, n, 0.5),
            "brightness": uniform(generator, n, max(0.0, 1 - self.brightness), 1 + self.brightness),
            "contrast": uniform(generator, n, max(0.0, 1 - self.contrast), 1 + self.contrast),
        }

    def thetas(self, p: dict, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(plain, mirrored) ``affine_grid`` maps as float64 (N, 6) rows of θ: output pixel q → flip inside
        the crop (mirrored only) → shift by the crop offset → rotate R about the image centre c → source
        pixel, i.e. source = R·F·q + R·(offset + f − c) + c with F = diag(±1, 1), f = (crop − 1, 0) when
        mirrored, the zoom z scaling q about the window's centre (R·F becomes R·F / z; the centre's source
        stays put); then in ``grid_sample``'s [-1, 1] units (``batched_ops.normalised_theta``, written out: N
        numbers, NumPy is ~3× faster than torch at this size)."""
        a = np.deg2rad(p["angle"].numpy())
        cos, sin = np.cos(a), np.sin(a)
        shrink = 1.0 / p["zoom"].numpy()  # a zoom z > 1 magnifies: each output pixel covers 1/z source pixels
        cx, cy = (width - 1) / 2, (height - 1) / 2
        ox, oy = p["offset_x"].numpy() - cx, p["offset_y"].numpy() - cy
        to_x, to_y = 2.0 / width, 2.0 / height  # source pixels → [-1, 1]
        half, mid = self.crop / 2, (self.crop - 1) / 2  # output [-1, 1] → pixels: q = half·u + mid
        maps = []
        for mirror, extra in ((1.0, 0.0), (-1.0, self.crop - 1.0)):
            m00, m01, m10, m11 = mirror * cos, -sin, mirror * sin, cos  # R·F
            source_x = cos * (ox + extra) - sin * oy + cx + (m00 + m01) * mid  # where the output centre lands
            source_y = sin * (ox + extra) + cos * oy + cy + (m10 + m11) * mid
            k_x, k_y = to_x * half * shrink, to_y * half * shrink
            maps.append(
                np.stack(
                    [
                        k_x * m00,
                        k_x * m01,
                        to_x * (source_x + 0.5) - 1.0,
                        k_y * m10,
                        k_y * m11,
                        to_y * (source_y + 0.5) - 1.0,
                    ],
                    1,
                )
            )
        return maps[0], maps[1]

    def flips(self, coin: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(N,) bool on the labels' device: the coin, for the mirror-symmetric classes only."""
        key = str(labels.device)
        if key not in self._classes_on:
            self._classes_on[key] = self.flip_classes.to(labels.device)
        return coin & torch.isin(labels, self._classes_on[key])

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        n, height, width, _ = images.shape
        p = self.params(n, height, width, generator)
        plain, mirrored = self.thetas(p, height, width)
        # one host → device copy for every per-sample number: 2 maps, the coin, 255 / brightness and the
        # contrast factor (a division: v / 255 is exact where v · (1/255) is not, so untouched pixels keep
        # their values)
        with np.errstate(divide="ignore"):
            divisor = 255.0 / p["brightness"].numpy()
        packed = np.concatenate(
            [plain, mirrored, p["flip"].numpy()[:, None], divisor[:, None], p["contrast"].numpy()[:, None]], 1
        )
        packed = to_device(torch.from_numpy(packed.astype(np.float32)), images.device)
        flip = self.flips(packed[:, 12] > 0.5, labels)
        theta = torch.where(flip[:, None], packed[:, 6:12], packed[:, :6]).view(n, 2, 3)
        grid = F.affine_grid(theta, [n, 1, self.crop, self.crop], align_corners=False)
        # uint8 NHWC → float N×C×H×W (a channels_last view) × brightness / 255, in one pass
        x = torch.div(images.permute(0, 3, 1, 2), packed[:, 13].view(n, 1, 1, 1))
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return contrast_about_grey(x, packed[:, 14], clip_input=True, channels_last=True), labels
