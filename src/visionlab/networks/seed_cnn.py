"""The seed study's small traffic-sign CNN (87,403 parameters for 3×28×28 input and 43 classes)."""

from torch import nn

from visionlab.config.errors import ConfigError
from visionlab.networks.layers import activation as make_activation
from visionlab.networks.layers import check_activation, check_flag

MIN_INPUT = 16  # two 5×5 convolutions, a pool, a 3×3 convolution and a pool leave at least 1×1


def _conv(cin: int, cout: int, k: int, act: str, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(make_activation(act))
    return layers


def check_args(activation: str, batch_norm: bool, width: float, input_size: int | None = None) -> None:
    """The one check of the seed CNN's arguments (``model.net.*`` of ``model/net=seed_cnn``) and of its
    input."""
    check_activation(activation)
    check_flag("batch_norm", batch_norm)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConfigError(f"model.net.width={width!r} must be positive (1 = the seed's network).")
    if input_size is not None and input_size < MIN_INPUT:
        raise ConfigError(
            f"the seed CNN needs inputs of at least {MIN_INPUT}×{MIN_INPUT}, got {input_size}×"
            f"{input_size} (data.input_size): use larger images or another model.net."
        )


class SeedCNN(nn.Sequential):
    """conv 3→64 k5 → act → conv 64→32 k5 → act → pool → conv 32→32 k3 → act → pool → linear 512→classes.

    ``width`` scales every convolution's channels (1 = the seed's network; the cnn_best preset widens it).
    Every argument is required: the defaults live in ``conf/model/net/seed_cnn.yaml`` (``build_network`` fills
    them in) and the data's facts."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        activation: str,
        batch_norm: bool,
        input_size: int,
        width: float,
    ):
        check_args(activation, batch_norm, width, input_size)
        wide, narrow = round(64 * width), round(32 * width)
        flat = narrow * ((((input_size - 8) // 2) - 2) // 2) ** 2
        super().__init__(
            *_conv(in_channels, wide, 5, activation, batch_norm),
            *_conv(wide, narrow, 5, activation, batch_norm),
            nn.MaxPool2d(2),
            *_conv(narrow, narrow, 3, activation, batch_norm),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(flat, num_classes),
        )
