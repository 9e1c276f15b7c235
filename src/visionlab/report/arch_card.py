"""Architecture card: per layer output shape, parameters, multiply-accumulates and receptive field.

Shapes, parameter counts and the execution order of the layers come from torchinfo. MACs are counted
here as weight multiply-accumulates only (conv: output elements × k·k·cin/groups, linear: in × out):
torchinfo's ``mult_adds`` also counts the bias additions, which is not what a MAC is.

Receptive field (along the height axis; all kernels in visionlab are square) follows the exact recursion
r ← r + (k − 1)·d·j, j ← j·s over conv and pooling layers in execution order, starting at r = j = 1.
Activations, normalisation, dropout and flatten pass it through unchanged; a linear layer (or a global
pooling) sees the whole input. The recursion is defined for a chain of layers, which is what a
classification CNN and a U-Net's encoder are. From the first upsampling layer on (a U-Net's decoder,
where skip connections join features of different receptive fields) it is reported as "—".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torchinfo
from torch import nn

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

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape if self.layers else self.input_shape

    def to_rows(self) -> list[list[str]]:
        """Table rows (strings) including a totals row, shared by the Markdown and HTML renderers."""
        rows = [[row.name, row.kind, _shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
                 str(row.receptive_field)] for row in self.layers]
        rows.append(["**total**", "", _shape(self.output_shape), f"**{self.total_params:,}**",
                     f"**{self.total_macs:,}**", ""])
        return rows


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def weight_macs(module: nn.Module, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one sample through ``module`` (shapes without the batch dimension)."""
    if isinstance(module, _CONV):
        kernel = int(torch.tensor(module.kernel_size).prod())
        return _numel(output_shape) * kernel * module.in_channels // module.groups
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        kernel = int(torch.tensor(module.kernel_size).prod())
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


def architecture_card(model: nn.Module, input_shape: tuple[int, ...], title: str = "") -> ArchCard:
    """Card for ``model`` applied to one float input of ``input_shape`` (C×H×W, no batch dimension)."""
    names = {id(module): name for name, module in model.named_modules()}
    stats = torchinfo.summary(model, input_size=(1, *input_shape), depth=100, verbose=0,
                              col_names=("output_size", "num_params", "mult_adds"), device="cpu")
    card = ArchCard(title or type(model).__name__, tuple(input_shape))
    rf = ReceptiveField()
    for layer in stats.summary_list:
        if not layer.is_leaf_layer or not layer.executed:
            continue
        out_shape = tuple(layer.output_size[1:])
        in_shape = tuple(layer.input_size[1:])
        card.layers.append(LayerRow(
            name=names.get(id(layer.module), layer.var_name),
            kind=layer.class_name,
            output_shape=out_shape,
            params=0 if layer.is_recursive else layer.num_params,
            macs=weight_macs(layer.module, in_shape, out_shape),
            receptive_field=rf.step(layer.module),
        ))
    card.traits = network_traits(model)
    card.total_params = sum(p.numel() for p in model.parameters())
    card.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return card


def network_traits(model: nn.Module) -> dict[str, str]:
    """What the layer table does not show: the upsampling mode(s) and the activation function(s)."""
    modes = {f"{m.mode} interpolation" for m in model.modules() if isinstance(m, nn.Upsample)}
    modes |= {"transposed convolution" for m in model.modules() if isinstance(m, nn.modules.conv._ConvTransposeNd)}
    acts = {type(m).__name__ for m in model.modules() if _torch_submodule(m) == "activation"}
    traits = {"activation": ", ".join(sorted(acts)) or "none"}
    if modes:
        traits["upsampling"] = ", ".join(sorted(modes))
    return traits


def model_input_shape(cfg: dict) -> tuple[int, int, int]:
    """C×H×W the run's network sees, from its resolved config (model first, then data, then task default)."""
    model_cfg, data_cfg = cfg.get("model", {}), cfg.get("data", {})
    segmentation = "segment" in str(model_cfg.get("_target_", "")).lower()
    channels = model_cfg.get("in_channels", 1 if segmentation else 3)
    size = next((c[key] for c in (model_cfg, data_cfg) for key in ("input_size", "image_size", "size")
                 if isinstance(c.get(key), int)), 256 if segmentation else 28)
    return int(channels), int(size), int(size)


# The only classes a report builds from a run's config.yaml (a run folder is input, not code to run).
REPORTABLE_MODELS = {
    "visionlab.models.classifier.ClassificationModule": ("visionlab.models.classifier", "ClassificationModule"),
    "visionlab.models.segmenter.SegmentationModule": ("visionlab.models.segmenter", "SegmentationModule"),
}


def _holds_target(value) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(_holds_target(v) for v in value.values())
    return isinstance(value, list) and any(_holds_target(v) for v in value)


def card_from_config(cfg: dict, title: str = "") -> ArchCard:
    """Build the run's model (a visionlab model class only, from its plain arguments; nested ``_target_`` nodes
    such as the optimizer are left out, nothing is instantiated from the config) and describe its network."""
    import importlib

    model_cfg = cfg.get("model") or {}
    target = model_cfg.get("_target_")
    if target not in REPORTABLE_MODELS:
        raise ValueError(f"model._target_={target!r} is not a visionlab model; a report builds only "
                         f"{', '.join(sorted(REPORTABLE_MODELS))}")
    module_name, class_name = REPORTABLE_MODELS[target]
    kwargs = {k: v for k, v in model_cfg.items() if not str(k).startswith("_") and not _holds_target(v)}
    module = getattr(importlib.import_module(module_name), class_name)(**kwargs)
    net = getattr(module, "net", module)
    return architecture_card(net, model_input_shape(cfg), title or type(net).__name__)
