"""Architecture card: per layer output shape, parameters, multiply-accumulates and receptive field.

Shapes, parameter counts and the execution order of the layers come from one forward pass of a single input
with a hook on every leaf module (a module called twice counts its parameters once). MACs are counted here as
weight multiply-accumulates only (conv: output elements × k·k·cin/groups, linear: in × out).

A card built from a run's config (``card_from_config``) never allocates real weights: the network is built on
PyTorch's meta device (shapes only) from bounded, type-checked arguments (``MODEL_LIMITS``), so a crafted
config (``model.width: 40``, ``num_classes: 10**9``) costs the report no memory; only networks in visionlab's
registry (``models.networks``) are built, never anything a config's ``_target_`` names. The spec is
allow-listed (``CARD_ARGS``): never ``pretrained`` (a card never fetches weights), no free-form library
``args`` beyond a few harmless, bounded ones (``CARD_LIBRARY_ARGS``: no cache folder, no URL, no size), no
model name a hub or a path names; what was left out is named on the card (``ArchCard.left_out``). While a card
is built no socket can connect.

Receptive field (along the height axis; all kernels in visionlab are square) follows the exact recursion
r ← r + (k − 1)·d·j, j ← j·s over conv and pooling layers in execution order, starting at r = j = 1.
Activations, normalisation, dropout and flatten pass it through unchanged; a linear layer (or a global
pooling) sees the whole input. The recursion is defined for a chain of layers, which is what a
classifier CNN and a U-Net's encoder are. From the first upsampling layer on (a U-Net's decoder,
where skip connections join features of different receptive fields) it is reported as "—".
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from visionlab.networks.registry import NetworkIO

WHOLE_INPUT = "whole input"
UNDEFINED = "—"

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_GLOBAL = (nn.Linear, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
_PASS_THROUGH_MODULES = ("activation", "batchnorm", "instancenorm", "normalization", "dropout", "flatten")


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]  # without the batch dimension
    params: int
    macs: int
    receptive_field: int | str  # pixels, WHOLE_INPUT or UNDEFINED


@dataclass
class ArchCard:
    HEADER = ("layer", "type", "output shape", "parameters", "MACs", "receptive field")

    title: str
    input_shape: tuple[int, ...]
    layers: list[LayerRow] = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0
    traits: dict[str, str] = field(default_factory=dict)  # e.g. upsampling mode and activation
    left_out: list[str] = field(default_factory=list)  # what of the record's spec the card was not built from

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def to_rows(self) -> list[list[str]]:
        """Table rows (strings) including a totals row, shared by the Markdown and HTML renderers."""
        rows = [
            [
                row.name,
                row.kind,
                _shape(row.output_shape),
                f"{row.params:,}",
                f"{row.macs:,}",
                str(row.receptive_field),
            ]
            for row in self.layers
        ]
        rows.append(
            [
                "**total**",
                "",
                _shape(self.output_shape),
                f"**{self.total_params:,}**",
                f"**{self.total_macs:,}**",
                "",
            ]
        )
        return rows


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def weight_macs(module: nn.Module, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one sample through ``module`` (shapes without the batch dimension)."""
    if isinstance(module, _CONV):
        kernel = math.prod(module.kernel_size)
        return _numel(output_shape) * kernel * module.in_channels // module.groups
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        kernel = math.prod(module.kernel_size)
        return _numel(input_shape) * kernel * module.out_channels // module.groups
    if isinstance(module, nn.Linear):
        return _numel(output_shape) * module.in_features
    return 0


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _torch_submodule(module: nn.Module) -> str:
    """'activation' for nn.ReLU (torch.nn.modules.activation), 'batchnorm' for nn.BatchNorm2d, ..."""
    return type(module).__module__.rsplit(".", 1)[-1]


class ReceptiveField:
    """The r/j recursion along a chain of layers (see the module docstring for the rules)."""

    def __init__(self):
        self.r: int | str = 1
        self.jump = 1

    def step(self, module: nn.Module) -> int | str:
        if isinstance(self.r, str):
            return self.r
        if isinstance(module, _CONV + _POOL):
            kernel, stride = _first(module.kernel_size), _first(module.stride)
            dilation = _first(getattr(module, "dilation", 1))
            self.r += (kernel - 1) * dilation * self.jump
            self.jump *= stride
        elif isinstance(module, _GLOBAL):
            self.r = WHOLE_INPUT
        elif not (isinstance(module, nn.Identity) or _torch_submodule(module) in _PASS_THROUGH_MODULES):
            self.r = UNDEFINED  # upsampling or anything else the chain recursion cannot describe
        return self.r


def _shape_of(value) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        value = next((v for v in value if isinstance(v, torch.Tensor)), None)
    return tuple(value.shape) if isinstance(value, torch.Tensor) else ()


def _device(model: nn.Module) -> torch.device:
    tensor = next((t for t in (*model.parameters(), *model.buffers())), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def architecture_card(model: nn.Module, input_shape: tuple[int, ...], title: str = "") -> ArchCard:
    """Card for ``model`` applied to one float input of ``input_shape`` (C×H×W, no batch dimension), on the
    model's device (the meta device for a card built from a config: no memory, no arithmetic)."""
    names = {id(module): name for name, module in model.named_modules()}
    calls: list[tuple[nn.Module, tuple, tuple]] = []
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [
        m.register_forward_hook(lambda m, args, out: calls.append((m, _shape_of(args), _shape_of(out))))
        for m in leaves
    ]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=_device(model)))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(training)
    card = ArchCard(title or type(model).__name__, tuple(input_shape))
    rf, seen = ReceptiveField(), set()
    for module, in_shape, out_shape in calls:
        params = 0 if id(module) in seen else sum(p.numel() for p in module.parameters())
        seen.add(id(module))
        card.layers.append(
            LayerRow(
                name=names.get(id(module)) or type(module).__name__,
                kind=type(module).__name__,
                output_shape=out_shape[1:],
                params=params,
                macs=weight_macs(module, in_shape[1:], out_shape[1:]),
                receptive_field=rf.step(module),
            )
        )
    card.traits = network_traits(model)
    card.total_params = sum(p.numel() for p in model.parameters())
    card.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return card


def network_traits(model: nn.Module) -> dict[str, str]:
    """What the layer table does not show: the upsampling mode(s) and the activation function(s)."""
    modes = {f"{m.mode} interpolation" for m in model.modules() if isinstance(m, nn.Upsample)}
    modes |= {
        "transposed convolution" for m in model.modules() if isinstance(m, nn.modules.conv._ConvTransposeNd)
    }
    acts = {type(m).__name__ for m in model.modules() if _torch_submodule(m) == "activation"}
    traits = {"activation": ", ".join(sorted(acts)) or "none"}
    if modes:
        traits["upsampling"] = ", ".join(sorted(modes))
    return traits


def _size(value) -> tuple[int, int] | None:
    """(H, W) of a size value: an int (square) or a two-int list (``data.image_size: [120, 160]``)."""
    if _is_int(value):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        return value[0], value[1]
    return None


def model_input_shape(cfg: dict) -> tuple[int, int, int]:
    """C×H×W the run's network sees, from its resolved config (model first, then data, then task default)."""
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    data_cfg = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    from visionlab.tasks.registry import get_task, task_of_module

    task = get_task(task_of_module(str(model_cfg.get("_target_", ""))) or "")
    default_channels, default_size = task.input_defaults if task else (3, 28)
    channels = model_cfg.get("in_channels", default_channels)
    height, width = next(
        (
            size
            for c in (model_cfg, data_cfg)
            for key in ("input_size", "image_size", "size")
            if (size := _size(c.get(key)))
        ),
        (default_size, default_size),
    )
    return _bounded("in_channels", channels), _bounded("input_size", height), _bounded("input_size", width)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What a config may ask a card to build: (type, low, high) per argument; anything else is refused with a
# message. ``None`` in a type means null is allowed (timm and smp take null for "the network's own" activation
# and norm).
MODEL_LIMITS = {
    "in_channels": (int, 1, 64),
    "input_size": (int, 8, 8192),
    "num_classes": (int, 1, 100_000),
    "width": ((int, float), 1 / 64, 64),
    "batch_norm": (bool, None, None),
    "activation": (str, None, None),
    "features_start": (int, 1, 4096),
    "depth": (int, 1, 10),
    "up_mode": (str, None, None),
    "encoder_depth": (int, 1, 5),
    "name": (str, None, None),
    "arch": (str, None, None),
    "encoder": (str, None, None),
    "drop_rate": ((int, float), 0, 1),
    "drop_path_rate": ((int, float), 0, 1),
    "decoder_attention_type": (str, None, None),
}
# Per registered network, the arguments a card builds it from (all in MODEL_LIMITS); ``nullable``: those that
# may be null. Any other key of ``model.net``, ``pretrained`` (a card never fetches weights) and every
# ``args`` key not in CARD_LIBRARY_ARGS are left out, and the card names them.
CARD_ARGS = {
    "seed_cnn": ("activation", "batch_norm", "width"),
    "unet": ("features_start", "depth", "up_mode", "activation", "batch_norm"),
    "timm": ("name", "activation", "batch_norm"),
    "smp": ("arch", "encoder", "encoder_depth", "activation", "batch_norm"),
}
NULLABLE = {"timm": ("activation", "batch_norm"), "smp": ("activation", "batch_norm")}
# library keyword arguments (``model.net.args``) a card keeps: they change no download, no path, no size
CARD_LIBRARY_ARGS = {
    "timm": ("drop_rate", "drop_path_rate"),
    "smp": ("decoder_attention_type", "decoder_channels"),
}
MAX_DECODER_STAGES, MAX_CHANNELS = 5, 4096
_LIBRARY_NAME = re.compile(
    r"[A-Za-z0-9_.\-]{1,100}"
)  # a model, architecture or encoder name: no hub, no path


def _bounded(name: str, value, prefix: str = "model.", nullable: bool = False):
    kind, low, high = MODEL_LIMITS[name]
    if value is None and nullable:
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{prefix}{name}={_short(value)} must be true or false" + (" or null" * nullable))
        return value
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{prefix}{name}={_short(value)} has the wrong type for an architecture card")
    if low is not None and not low <= value <= high:
        raise ValueError(
            f"{prefix}{name}={_short(value)} is outside what a report builds a card for ({low}–{high})"
        )
    if kind is str and not _LIBRARY_NAME.fullmatch(value):
        raise ValueError(f"{prefix}{name}={_short(value)} is not a plain name (letters, digits, _ . -)")
    return value


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _channels(value, key: str) -> list[int]:
    """smp's decoder channels: one whole number per decoder stage, each bounded."""
    if (
        not isinstance(value, (list, tuple))
        or not 1 <= len(value) <= MAX_DECODER_STAGES
        or not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= MAX_CHANNELS for c in value)
    ):
        raise ValueError(
            f"{key}={_short(value)} is not 1–{MAX_DECODER_STAGES} channel counts of 1–{MAX_CHANNELS}"
        )
    return list(value)


def _library_name_check(kind: str, spec: dict, prefix: str) -> None:
    """A timm model (or smp's ``tu-`` encoder) must be one timm lists by that name: nothing a hub or a path
    names."""
    name = spec.get("name") if kind == "timm" else spec.get("encoder", "")
    if kind == "smp" and not name.startswith("tu-"):
        return
    try:
        import timm
    except ImportError:
        return  # the build says the extra is missing
    plain = name[3:] if kind == "smp" else name
    if not timm.is_model(plain):
        raise ValueError(
            f"{prefix}{'name' if kind == 'timm' else 'encoder'}={_short(name)} is not a model timm "
            "lists by that name"
        )


def card_spec(model_cfg: dict) -> tuple[dict, NetworkIO, list[str]]:
    """The network spec a card builds (allow-listed, bounded: ``CARD_ARGS``), the data-fixed sizes, and what
    of the record's spec was left out (``model.net.pretrained=true``, other keys, ``args`` keys not kept)."""
    from visionlab.networks.registry import REGISTRY, NetworkIO, spec_and_io

    prefix = "model.net." if isinstance(model_cfg.get("net"), dict) else "model."
    raw, io = spec_and_io(model_cfg)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CARD_ARGS or kind not in REGISTRY:
        raise ValueError(
            f"{prefix}type={_short(kind)} is not a network a report builds a card for "
            f"({', '.join(sorted(CARD_ARGS))})"
        )
    spec, left_out = {"type": kind}, []
    for key, value in raw.items():
        if key in ("type", "label"):
            continue
        if key in CARD_ARGS[kind]:
            spec[key] = _bounded(key, value, prefix, key in NULLABLE.get(kind, ()))
        elif key == "pretrained":
            if value is not False and value is not None:
                left_out.append(f"{prefix}pretrained={_short(value, 20)} (a card never fetches weights)")
        elif key == "args" and kind in CARD_LIBRARY_ARGS:
            if not isinstance(value, dict):
                if value not in (None, {}):
                    left_out.append(f"{prefix}args (not a mapping)")
                continue
            kept = {}
            for arg, arg_value in value.items():
                if arg == "decoder_channels":
                    kept[arg] = _channels(arg_value, f"{prefix}args.{arg}")
                elif arg in CARD_LIBRARY_ARGS[kind]:
                    kept[arg] = _bounded(arg, arg_value, f"{prefix}args.")
                else:
                    left_out.append(f"{prefix}args.{_short(arg, 40).strip(chr(39))}")
            spec["args"] = kept
        else:
            left_out.append(f"{prefix}{_short(key, 40).strip(chr(39))}")
    if kind in ("timm", "smp"):
        spec["pretrained"] = False
        _library_name_check(kind, {**REGISTRY[kind].defaults, **spec}, prefix)
    io = NetworkIO(
        io.task,
        _bounded("in_channels", io.in_channels),
        _bounded("num_classes", io.out_channels),
        io.input_size,
    )
    return spec, io, left_out


@contextmanager
def _no_network():
    """While a card is built: any socket connect fails (a library must not fetch anything for a card, whatever
    a record's config says); restored afterwards."""

    def refuse(*args, **kwargs):
        raise OSError("an architecture card never uses the network")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = saved


def card_from_config(cfg: dict, title: str = "", cache: dict | None = None) -> ArchCard:
    """Describe the run's network, built on the meta device from its config's plain, bounded model arguments
    (nested ``_target_`` nodes such as the optimizer are ignored; nothing is instantiated from the config).
    ``cache``: cards already built, by network spec and input shape (a study's variants often share one
    network, and tracing a U-Net costs about a second)."""
    from visionlab.networks.registry import MODEL_TASKS, NetworkIO, build_on_meta

    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    target = model_cfg.get("_target_")
    if not isinstance(target, str) or target not in MODEL_TASKS:
        raise ValueError(
            f"model._target_={target!r} is not a visionlab model; a report builds only "
            f"{', '.join(sorted(MODEL_TASKS))}"
        )
    input_shape = model_input_shape(cfg)
    spec, io, left_out = card_spec(model_cfg)
    io = NetworkIO(io.task, input_shape[0], io.out_channels, input_shape[1])
    key = json.dumps([target, spec, repr(io), list(input_shape), title], sort_keys=True, default=repr)
    if cache is not None and key in cache:
        return dataclasses.replace(cache[key], left_out=left_out)
    with _no_network():
        net = build_on_meta(spec, io)
        card = architecture_card(net, input_shape, title or type(net).__name__)
    if cache is not None:
        cache[key] = card
    return dataclasses.replace(card, left_out=left_out)
