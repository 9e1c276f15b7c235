"""Small building blocks shared by the networks."""

from torch import nn

from visionlab.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    """An activation module by name; unknown names fail with the list of choices."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ConfigError(f"model.activation={name!r} is not one of {sorted(ACTIVATIONS)}") from None
