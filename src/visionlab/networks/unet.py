"""The course U-Net: same-padded 3×3 double convolutions, max-pool down, upsample (+1×1 conv) or transposed
conv up, skip concatenation, one output channel (logits). 256 in → 256 out.

With conf/model/net/unet.yaml's defaults (features_start=64, depth=5, bilinear): 64-128-256-512-1024
features, 28,941,633 parameters (31,030,593 with transposed convolutions up).
"""

from __future__ import annotations

import torch
from torch import nn

from visionlab.config.errors import ConfigError, DataError
from visionlab.networks.layers import activation as make_activation
from visionlab.networks.layers import check_activation, check_flag

UP_MODES = ("bilinear", "nearest", "transposed")


class DoubleConv(nn.Sequential):
    """(3×3 conv, [BatchNorm], activation) × 2, padding 1 so the spatial size is kept."""

    def __init__(self, in_ch: int, out_ch: int, activation: str, batch_norm: bool):
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(make_activation(activation))
        super().__init__(*layers)


class Down(nn.Sequential):
    """2×2 max-pool, then a double convolution doubling the features."""

    def __init__(self, in_ch: int, out_ch: int, activation: str, batch_norm: bool):
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch, activation, batch_norm))


class Up(nn.Module):
    """Upsample ×2 halving the features (interpolation + 1×1 conv, or a 2×2 transposed conv), concatenate the
    skip connection, double convolution."""

    def __init__(self, in_ch: int, out_ch: int, up_mode: str, activation: str, batch_norm: bool):
        super().__init__()
        if up_mode == "transposed":
            self.upsample = nn.ConvTranspose2d(in_ch, in_ch // 2, kernel_size=2, stride=2)
        elif up_mode in ("bilinear", "nearest"):
            align = {"align_corners": True} if up_mode == "bilinear" else {}
            self.upsample = nn.Sequential(
                nn.Upsample(scale_factor=2, mode=up_mode, **align),
                nn.Conv2d(in_ch, in_ch // 2, kernel_size=1),
            )
        else:  # checked once, by UNet
            raise AssertionError(up_mode)
        self.conv = DoubleConv(in_ch, out_ch, activation, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.upsample(x)], dim=1))


def check_args(features_start: int, depth: int, up_mode: str, activation: str, batch_norm: bool) -> None:
    """The one check of a U-Net's arguments (``model.net.*`` of ``model/net=unet``): a ConfigError naming the
    key."""
    for key, value, example in (("depth", depth, 5), ("features_start", features_start, 64)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"model.net.{key}={value!r} must be an integer >= 1, e.g. model.net.{key}={example}."
            )
    if up_mode not in UP_MODES:
        raise ConfigError(f"model.net.up_mode={up_mode!r} is not one of {UP_MODES}")
    check_activation(activation)
    check_flag("batch_norm", batch_norm)


class UNet(nn.Module):
    """``depth`` levels (``depth - 1`` poolings); input sides must be divisible by ``2 ** (depth - 1)``.
    Every argument is required: the defaults live in ``conf/model/net/unet.yaml`` (``build_network`` fills
    them in) and the data's facts."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        features_start: int,
        depth: int,
        up_mode: str,
        activation: str,
        batch_norm: bool,
    ):
        super().__init__()
        check_args(features_start, depth, up_mode, activation, batch_norm)
        self.depth = depth
        feats = [features_start * 2**i for i in range(depth)]
        self.inc = DoubleConv(in_channels, feats[0], activation, batch_norm)
        self.downs = nn.ModuleList(
            Down(feats[i], feats[i + 1], activation, batch_norm) for i in range(depth - 1)
        )
        self.ups = nn.ModuleList(
            Up(feats[i + 1], feats[i], up_mode, activation, batch_norm) for i in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(feats[0], out_channels, kernel_size=1)

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size_multiple or w % self.size_multiple:
            raise DataError(
                f"U-Net with depth {self.depth} needs image sides divisible by {self.size_multiple}, got "
                f"{h}×{w}: resize the data (data.image_size) or lower model.net.depth."
            )
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)
