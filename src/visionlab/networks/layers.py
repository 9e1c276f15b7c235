"""Small building blocks shared by the networks, and the checks of the arguments they share."""

from torch import nn

from visionlab.config.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def check_activation(name) -> str:
    """The activation's canonical name; an unknown one is a ConfigError with the list of choices."""
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ConfigError(f"model.net.activation={name!r} is not one of {sorted(ACTIVATIONS)}")
    return name.lower()


def check_flag(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"model.net.{key}={value!r} must be true or false.")
    return value


def activation(name: str) -> nn.Module:
    """An activation module by name; unknown names fail with the list of choices."""
    return ACTIVATIONS[check_activation(name)]()


def replace_relus(module: nn.Module, name: str) -> int:
    """Swap every ``nn.ReLU`` module of a (third-party) network for ``name``'s activation; returns how many.
    Used when a spec asks a timm or smp network for another activation (e.g. ``experiment=unet_elu``)."""
    make = ACTIVATIONS[check_activation(name)]
    swapped = 0
    for parent in module.modules():
        for child_name, child in list(parent.named_children()):
            if type(child) is nn.ReLU:
                setattr(parent, child_name, make())
                swapped += 1
    return swapped
