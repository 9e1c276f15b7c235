"""The network registry: ``model.net`` names a network and its arguments as plain data, and the task modules
build whatever it names through ``build_network``; they never name a network themselves.

A spec is a mapping: ``type`` (a registered name: ``seed_cnn``, ``unet``, ``timm``, ``smp``), ``label`` (the
network's short name in run names; not an argument) and the network's own arguments. Every argument and its
default lives in one place, ``conf/model/net/<type>.yaml``: Hydra composes it into a run's config, and a spec
that leaves an argument out (a test's, a task module's default network) gets the same value read from that
file. What the data fixes (input channels, classes or output channels, input size) comes from the task module,
which takes it from the data's facts, never from the spec.

A spec is data, not code: only the builders registered here run (nothing a config or a checkpoint names is
imported), so checkpoints keep loading with ``weights_only=True`` and a report can build any registered
network from a run's config on the meta device (``build_on_meta``: shapes only, no weights, no memory). Run
records from before ``model.net`` are read in today's layout (``record.former_names``).

timm and segmentation_models_pytorch are an optional extra (``pip install -e ".[models]"``), imported only
when a spec names them; weights are never fetched unless the spec says ``pretrained: true`` (default false).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from visionlab.config.errors import ConfigError
from visionlab.config.location import config_dir
from visionlab.networks.layers import check_flag, replace_relus

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"
RESERVED = ("type", "label")  # spec keys that are not arguments of the network
EXTRA = 'pip install -e ".[models]"'
# the network of a task module built without one in Python (a config always names one: conf/model/*.yaml)
DEFAULT_NETWORK = {CLASSIFICATION: "seed_cnn", SEGMENTATION: "unet"}


@dataclass(frozen=True)
class NetworkIO:
    """What the data fixes: the task, input channels, outputs (classes; 1 for binary masks) and input size."""

    task: str
    in_channels: int
    out_channels: int
    input_size: int | None = None


NET_CONFIGS = "model/net"  # the config group holding one <name>.yaml per registered network


@functools.cache
def _defaults(name: str) -> dict:
    """The arguments and defaults ``conf/model/net/<name>.yaml`` gives the network (as Hydra parses them)."""
    from omegaconf import OmegaConf

    path = config_dir() / NET_CONFIGS / f"{name}.yaml"
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {key: value for key, value in node.items() if key not in RESERVED}


@dataclass(frozen=True)
class Network:
    """One registered network: the tasks it serves, its builder and the check of its arguments (the one home
    of those checks; a ConfigError names ``model.net.<key>``). Its arguments and their defaults are those of
    its config, ``conf/model/net/<name>.yaml`` (``defaults``)."""

    name: str
    tasks: tuple[str, ...]
    build: Callable[[dict, NetworkIO], nn.Module]
    check: Callable[[dict], None] = lambda args: None
    size_multiple: Callable[[dict], tuple[int, str]] | None = (
        None  # segmentation: (multiple, why) of the sides
    )
    extra: str | None = None  # the optional package it needs
    description: str = ""
    examples: tuple[dict, ...] = field(default_factory=tuple)  # small specs the tests build, train and count

    @property
    def defaults(self) -> dict:
        """Every argument the network takes, with its default (read from its config; a copy)."""
        return copy.deepcopy(_defaults(self.name))


REGISTRY: dict[str, Network] = {}


def register(network: Network) -> Network:
    REGISTRY[network.name] = network
    return network


def missing_extra(network: Network) -> str | None:
    """Why the network cannot be built here (its optional package is not installed), else None."""
    if network.extra is None:
        return None
    try:
        importlib.import_module(network.extra)
    except ImportError:
        return f"model.net.type={network.name} needs the optional package {network.extra}: {EXTRA}"
    return None


def resolve(spec, task: str) -> tuple[Network, dict]:
    """The registered network a spec names and its complete arguments (defaults filled in, checked)."""
    if spec is None:
        spec = {"type": DEFAULT_NETWORK[task]}
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"model.net={spec!r} must name a network and its arguments, e.g. model/net=seed_cnn."
        )
    kind = spec.get("type")
    served = sorted(name for name, net in REGISTRY.items() if task in net.tasks)
    if kind not in REGISTRY:
        raise ConfigError(
            f"model.net.type={kind!r} is not a registered network; a {task} model takes one of "
            f"{', '.join(served)} (model/net=<name>)."
        )
    network = REGISTRY[kind]
    if task not in network.tasks:
        raise ConfigError(
            f"model.net.type={kind} is a {'/'.join(network.tasks)} network; a {task} model takes one "
            f"of {', '.join(served)} (model/net=<name>)."
        )
    args = {key: value for key, value in spec.items() if key not in RESERVED}
    unknown = sorted(set(args) - set(network.defaults))
    if unknown:
        raise ConfigError(
            f"model.net.{unknown[0]}: a {kind} network takes no {unknown[0]!r} (it takes "
            f"{', '.join(sorted(network.defaults))}); remove it or pick another model/net."
        )
    args = {**network.defaults, **args}
    network.check(args)
    return network, args


def build_network(spec, io: NetworkIO) -> nn.Module:
    """The network ``spec`` names, for the data ``io`` describes (a ConfigError for a bad spec or a missing
    extra)."""
    network, args = resolve(spec, io.task)
    if (why := missing_extra(network)) is not None:
        raise ConfigError(why)
    return network.build(args, io)


def build_on_meta(spec, io: NetworkIO) -> nn.Module:
    """The network on PyTorch's meta device: every layer, shape and parameter count, no weights and no memory
    (for architecture cards and checkpoint checks). The global random state is left as it was."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        net = build_network(spec, io)
    return net.to("meta")  # some third-party builders make a tensor on the CPU (smp's patched first conv)


# the task each visionlab model class solves, by its config's _target_ (a string compared, never imported)
MODEL_TASKS = {
    "visionlab.tasks.classification.module.ClassificationModule": CLASSIFICATION,
    "visionlab.tasks.segmentation.module.SegmentationModule": SEGMENTATION,
}


def spec_and_io(model_cfg: Mapping) -> tuple[dict, NetworkIO]:
    """The network spec and the data-fixed inputs/outputs of a run's resolved ``model`` config (its
    ``config.yaml`` as ``RunFolder.read_config`` gives it: plain data, a record from before ``model.net`` in
    today's layout), e.g. for an architecture card."""
    task = MODEL_TASKS.get(str(model_cfg.get("_target_")))
    if task is None:
        raise ConfigError(
            f"model._target_={model_cfg.get('_target_')!r} is not a visionlab model; one of "
            f"{', '.join(sorted(MODEL_TASKS))}"
        )
    spec = model_cfg.get("net") or {"type": DEFAULT_NETWORK[task]}
    if task == CLASSIFICATION:
        io = NetworkIO(
            task,
            model_cfg.get("in_channels", 3),
            model_cfg.get("num_classes", 43),
            model_cfg.get("input_size", 28),
        )
    else:
        io = NetworkIO(task, model_cfg.get("in_channels", 1), 1)
    return dict(spec), io


def size_multiple(spec, task: str = SEGMENTATION) -> tuple[int, str]:
    """(n, why): image sides the network takes must be divisible by n (1: any size)."""
    network, args = resolve(spec, task)
    return network.size_multiple(args) if network.size_multiple else (1, "")


def names(task: str | None = None) -> list[str]:
    return sorted(name for name, net in REGISTRY.items() if task is None or task in net.tasks)


# --------------------------------------------------------------------------------------------- visionlab's
# own
def _seed_cnn(args: dict, io: NetworkIO) -> nn.Module:
    from visionlab.networks.seed_cnn import SeedCNN

    return SeedCNN(
        io.out_channels,
        io.in_channels,
        args["activation"],
        args["batch_norm"],
        io.input_size or 28,
        float(args["width"]),
    )


def _check_seed_cnn(args: dict) -> None:
    from visionlab.networks.seed_cnn import check_args

    check_args(args["activation"], args["batch_norm"], args["width"])


register(
    Network(
        "seed_cnn",
        (CLASSIFICATION,),
        _seed_cnn,
        _check_seed_cnn,
        description="the seed study's CNN: conv 64 k5, conv 32 k5, pool, conv 32 k3, pool, linear "
        "(87,403 parameters at 3×28×28 and 43 classes; width scales the channels)",
        examples=(
            {"type": "seed_cnn"},
            {"type": "seed_cnn", "batch_norm": True, "activation": "elu", "width": 0.5},
        ),
    )
)


def _unet(args: dict, io: NetworkIO) -> nn.Module:
    from visionlab.networks.unet import UNet

    return UNet(
        io.in_channels,
        io.out_channels,
        args["features_start"],
        args["depth"],
        args["up_mode"],
        args["activation"],
        args["batch_norm"],
    )


def _check_unet(args: dict) -> None:
    from visionlab.networks.unet import check_args

    check_args(args["features_start"], args["depth"], args["up_mode"], args["activation"], args["batch_norm"])


def _unet_multiple(args: dict) -> tuple[int, str]:
    n = 2 ** (args["depth"] - 1)
    return n, f"a U-Net with model.net.depth={args['depth']} needs sides divisible by 2^(depth-1)={n}"


register(
    Network(
        "unet",
        (SEGMENTATION,),
        _unet,
        _check_unet,
        _unet_multiple,
        description="the course U-Net: 3×3 double convs, max-pool down, upsampling + 1×1 "
        "conv (or transposed conv) up, skip concatenation (28,941,633 parameters at features_start 64, "
        "depth 5)",
        examples=(
            {"type": "unet", "features_start": 4, "depth": 3},
            {
                "type": "unet",
                "features_start": 4,
                "depth": 3,
                "up_mode": "transposed",
                "batch_norm": True,
                "activation": "elu",
            },
        ),
    )
)


# --------------------------------------------------------------------------------------------- optional:
# timm, smp
def _common(args: dict, kind: str) -> None:
    """``activation`` (null: the network's own; a name swaps its ReLUs), ``batch_norm`` (null: its own),
    ``pretrained`` and ``args`` (further keyword arguments of the library's constructor, plain values)."""
    from visionlab.networks.layers import check_activation

    if args["activation"] is not None:
        check_activation(args["activation"])
    if args["batch_norm"] is not None:
        check_flag("batch_norm", args["batch_norm"])
    check_flag("pretrained", args["pretrained"])
    if not isinstance(args["args"], Mapping):
        raise ConfigError(
            f"model.net.args={args['args']!r} must be a mapping of further {kind} arguments, e.g. "
            "model.net.args={drop_rate: 0.1}."
        )


def _pretrained_failed(kind: str, exc: Exception) -> ConfigError:
    return ConfigError(
        f"model.net.pretrained=true: {kind} could not load the pretrained weights ({type(exc).__name__}:"
        f" {str(exc).splitlines()[0] if str(exc) else ''}); this machine may have no network. Use "
        "model.net.pretrained=false (the default) to train from scratch."
    )


def _check_timm(args: dict) -> None:
    _common(args, "timm.create_model")
    if not isinstance(args["name"], str) or not args["name"]:
        raise ConfigError(
            f"model.net.name={args['name']!r} must name a timm model, e.g. model.net.name=resnet18."
        )
    if args["batch_norm"] is False:
        raise ConfigError(
            "model.net.batch_norm=false: a timm model keeps its own normalisation layers; leave "
            "model.net.batch_norm unset (null)."
        )
    try:
        import timm
    except ImportError:
        return  # said when it is built
    if not timm.is_model(args["name"]):
        near = timm.list_models(f"*{args['name']}*")[:5]
        raise ConfigError(
            f"model.net.name={args['name']!r} is not a timm model"
            + (f"; close: {', '.join(near)}" if near else "")
            + " (timm.list_models() lists them)."
        )


def _timm(args: dict, io: NetworkIO) -> nn.Module:
    import timm

    try:
        net = timm.create_model(
            args["name"],
            pretrained=args["pretrained"],
            num_classes=io.out_channels,
            in_chans=io.in_channels,
            **dict(args["args"]),
        )
    except TypeError as exc:
        raise ConfigError(
            f"model.net.args: timm model {args['name']} refused its arguments ({exc})."
        ) from None
    except Exception as exc:
        if args["pretrained"]:
            raise _pretrained_failed("timm", exc) from None
        raise
    if args["activation"] is not None:
        replace_relus(net, args["activation"])
    return net


register(
    Network(
        "timm",
        (CLASSIFICATION,),
        _timm,
        _check_timm,
        extra="timm",
        description="any timm model (timm.create_model(name, num_classes, in_chans))",
        examples=({"type": "timm", "name": "resnet18"}, {"type": "timm", "name": "mobilenetv3_small_050"}),
    )
)


def _check_smp(args: dict) -> None:
    _common(args, "segmentation_models_pytorch.create_model")
    for key in ("arch", "encoder"):
        if not isinstance(args[key], str) or not args[key]:
            raise ConfigError(
                f"model.net.{key}={args[key]!r} must be a name, e.g. model.net.arch=Unet "
                "model.net.encoder=resnet18."
            )
    depth = args["encoder_depth"]
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 5:
        raise ConfigError(f"model.net.encoder_depth={depth!r} must be an integer in 1..5 (smp's encoders).")
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return  # said when it is built
    archs = {cls.__name__.lower(): cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
    if args["arch"].lower() not in archs:
        raise ConfigError(
            f"model.net.arch={args['arch']!r} is not a segmentation_models_pytorch architecture; one "
            f"of {', '.join(sorted(archs.values()))}."
        )
    encoders = smp.encoders.get_encoder_names()
    if args["encoder"] not in encoders and not args["encoder"].startswith("tu-"):
        raise ConfigError(
            f"model.net.encoder={args['encoder']!r} is not an smp encoder; e.g. resnet18, resnet34, "
            "efficientnet-b0, or tu-<any timm model>."
        )


def _smp_class(arch: str):
    import segmentation_models_pytorch as smp

    mapping = {cls.__name__.lower(): cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
    return mapping[arch.lower()]


def _smp(args: dict, io: NetworkIO) -> nn.Module:
    cls = _smp_class(args["arch"])
    kwargs = dict(args["args"])
    accepted = inspect.signature(cls.__init__).parameters
    if args["batch_norm"] is not None:
        if "decoder_use_norm" in accepted:
            kwargs.setdefault("decoder_use_norm", "batchnorm" if args["batch_norm"] else False)
        elif "decoder_use_batchnorm" in accepted:
            kwargs.setdefault("decoder_use_batchnorm", args["batch_norm"])
        elif args["batch_norm"] is False:
            raise ConfigError(
                f"model.net.batch_norm=false: smp's {cls.__name__} has no switch for its decoder's "
                "normalisation; leave model.net.batch_norm unset (null)."
            )
    depth = args["encoder_depth"]
    if "encoder_depth" in accepted:
        kwargs.setdefault("encoder_depth", depth)
    channels = accepted["decoder_channels"].default if "decoder_channels" in accepted else None
    if isinstance(channels, (tuple, list)) and len(channels) != depth:  # one decoder block per encoder stage
        kwargs.setdefault("decoder_channels", tuple(channels[:depth]))
    try:
        net = cls(
            encoder_name=args["encoder"],
            encoder_weights="imagenet" if args["pretrained"] else None,
            in_channels=io.in_channels,
            classes=io.out_channels,
            **kwargs,
        )
    except TypeError as exc:
        raise ConfigError(f"model.net.args: smp {cls.__name__} refused its arguments ({exc}).") from None
    except (ValueError, KeyError) as exc:  # e.g. an encoder that does not support this architecture or depth
        raise ConfigError(
            f"model.net: smp {cls.__name__} with encoder {args['encoder']} cannot be built ({exc})."
        ) from None
    except Exception as exc:
        if args["pretrained"]:
            raise _pretrained_failed("smp", exc) from None
        raise
    if args["activation"] is not None:
        replace_relus(net, args["activation"])
    return net


def _smp_multiple(args: dict) -> tuple[int, str]:
    n = 2 ** args["encoder_depth"]
    return n, (
        f"smp {args['arch']} with encoder {args['encoder']} "
        f"(model.net.encoder_depth={args['encoder_depth']}) "
        f"needs sides divisible by 2^encoder_depth={n}"
    )


register(
    Network(
        "smp",
        (SEGMENTATION,),
        _smp,
        _check_smp,
        _smp_multiple,
        extra="segmentation_models_pytorch",
        description="any segmentation_models_pytorch architecture and encoder (smp.create_model(arch, "
        "encoder_name, "
        "in_channels, classes=1))",
        examples=(
            {"type": "smp", "arch": "Unet", "encoder": "resnet18"},
            {"type": "smp", "arch": "FPN", "encoder": "resnet18", "activation": "elu", "batch_norm": True},
        ),
    )
)
