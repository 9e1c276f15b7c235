"""The network registry: every registered network trains a step in its task (timm's style: forward, backward,
one optimizer step), builds on the meta device with the same parameter count, and a bad spec is one
ConfigError naming ``model.net.<key>``. The task modules build only what the spec names."""

from __future__ import annotations

import sys

import pytest
import torch

from visionlab.config.errors import ConfigError
from visionlab.networks import registry as networks
from visionlab.networks.registry import CLASSIFICATION, REGISTRY, NetworkIO, build_network, build_on_meta
from visionlab.record.former_names import current_names
from visionlab.tasks.classification.module import ClassificationModule
from visionlab.tasks.segmentation.module import SegmentationModule

EXAMPLES = [
    (name, task, spec)
    for name, net in sorted(REGISTRY.items())
    for task in net.tasks
    for spec in net.examples
]


def _io(task: str, spec: dict) -> tuple[NetworkIO, tuple[int, ...]]:
    if task == CLASSIFICATION:
        return NetworkIO(task, 3, 5, 32), (2, 3, 32, 32)
    side = max(32, networks.size_multiple(spec)[0])
    return NetworkIO(task, 1, 1), (2, 1, side, side)


def _needs(network: networks.Network) -> None:
    if (why := networks.missing_extra(network)) is not None:
        pytest.skip(why)


def test_the_registry_serves_both_tasks():
    assert {"seed_cnn", "timm"} <= set(networks.names(CLASSIFICATION))
    assert {"unet", "smp"} <= set(networks.names("segmentation"))
    assert all(net.examples for net in REGISTRY.values())


@pytest.mark.parametrize(("name", "task", "spec"), EXAMPLES, ids=[f"{t}-{s}" for _, t, s in EXAMPLES])
def test_every_registered_network_takes_a_training_step(name, task, spec):
    _needs(REGISTRY[name])
    torch.manual_seed(0)
    io, shape = _io(task, spec)
    net = build_network(spec, io)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    out = net(torch.rand(shape))
    expected = (shape[0], io.out_channels) if task == CLASSIFICATION else (shape[0], 1, *shape[2:])
    assert tuple(out.shape) == expected and torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    optimizer.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, net.parameters()))
    meta = build_on_meta(spec, io)
    assert {p.device.type for p in meta.parameters()} == {"meta"}
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in net.parameters())


def test_the_task_modules_build_the_seed_networks_as_before():
    """Same networks through the registry: the counts of the seed study, the state_dict keys of old
    checkpoints."""
    cnn = ClassificationModule()
    assert sum(p.numel() for p in cnn.parameters()) == 87_403
    wide = ClassificationModule({"type": "seed_cnn", "batch_norm": True, "width": 2.0})
    assert sum(p.numel() for p in wide.parameters()) == 296_107
    assert list(cnn.state_dict())[:2] == ["net.0.weight", "net.0.bias"]
    unet = SegmentationModule()
    assert sum(p.numel() for p in unet.parameters()) == 28_941_633
    assert "net.inc.0.weight" in unet.state_dict() and "net.head.weight" in unet.state_dict()


@pytest.mark.parametrize(
    ("spec", "task", "message"),
    [
        (
            {"type": "resnet"},
            CLASSIFICATION,
            (
                r"model\.net\.type='resnet' is not a registered network; a "
                r"classification model takes one of seed_cnn, timm"
            ),
        ),
        ({"type": "unet"}, CLASSIFICATION, r"model\.net\.type=unet is a segmentation network"),
        (
            {"type": "seed_cnn", "depth": 3},
            CLASSIFICATION,
            r"model\.net\.depth: a seed_cnn network takes no 'depth'",
        ),
        ({"type": "seed_cnn", "width": 0}, CLASSIFICATION, r"model\.net\.width=0 must be positive"),
        (
            {"type": "seed_cnn", "activation": "swish"},
            CLASSIFICATION,
            r"model\.net\.activation='swish' is not one of",
        ),
        (
            {"type": "unet", "up_mode": "bicubic"},
            "segmentation",
            r"model\.net\.up_mode='bicubic' is not one of",
        ),
        ({"type": "unet", "depth": 0}, "segmentation", r"model\.net\.depth=0 must be an integer >= 1"),
        ("resnet18", CLASSIFICATION, r"model\.net='resnet18' must name a network and its arguments"),
    ],
)
def test_a_bad_spec_is_one_config_error_naming_the_key(spec, task, message):
    with pytest.raises(ConfigError, match=message):
        build_network(spec, NetworkIO(task, 3, 4, 28))


def test_a_missing_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    with pytest.raises(
        ConfigError,
        match=r"model\.net\.type=timm needs the optional package timm: "
        r"pip install -e \"\.\[models\]\"",
    ):
        build_network({"type": "timm", "name": "resnet18"}, NetworkIO(CLASSIFICATION, 3, 4, 28))


def test_timm_and_smp_specs_are_checked_against_the_libraries():
    _needs(REGISTRY["timm"])
    io = NetworkIO(CLASSIFICATION, 3, 4, 28)
    with pytest.raises(ConfigError, match=r"model\.net\.name='resnet1234' is not a timm model"):
        build_network({"type": "timm", "name": "resnet1234"}, io)
    with pytest.raises(ConfigError, match=r"model\.net\.batch_norm=false: a timm model keeps its own"):
        build_network({"type": "timm", "batch_norm": False}, io)
    _needs(REGISTRY["smp"])
    seg = NetworkIO("segmentation", 1, 1)
    with pytest.raises(
        ConfigError, match=r"model\.net\.arch='Unet3' is not a segmentation_models_pytorch architecture"
    ):
        build_network({"type": "smp", "arch": "Unet3"}, seg)
    with pytest.raises(ConfigError, match=r"model\.net\.encoder='resnet7' is not an smp encoder"):
        build_network({"type": "smp", "encoder": "resnet7"}, seg)
    elu = build_network({"type": "smp", "encoder_depth": 3, "activation": "elu"}, seg)
    assert not any(type(m) is torch.nn.ReLU for m in elu.modules())
    assert any(isinstance(m, torch.nn.ELU) for m in elu.modules())


def test_a_run_config_gives_its_network_on_the_meta_device_old_records_too():
    """What an architecture card needs: the spec and the data-fixed sizes from a resolved config.yaml's model
    section, with ``model.net`` or from before it (read in today's layout, as ``RunFolder.read_config`` reads
    a record); nothing the config names is imported."""
    new = {
        "_target_": "visionlab.tasks.classification.module.ClassificationModule",
        "num_classes": 43,
        "in_channels": 3,
        "input_size": 28,
        "net": {"type": "seed_cnn", "label": "cnn", "activation": "relu", "batch_norm": True, "width": 1.0},
    }
    old = {
        "_target_": "visionlab.models.classifier.ClassificationModule",
        "num_classes": 43,
        "in_channels": 3,
        "input_size": 28,
        "activation": "relu",
        "batch_norm": True,
        "width": 1.0,
    }
    for cfg in (new, old):
        net = build_on_meta(*networks.spec_and_io(current_names({"model": cfg})["model"]))
        assert sum(p.numel() for p in net.parameters()) == 87_659
    old_unet = {"_target_": "visionlab.models.segmenter.SegmentationModule", "in_channels": 1}
    unet = build_on_meta(
        *networks.spec_and_io(current_names({"model": {**old_unet, "up_mode": "transposed"}})["model"])
    )
    assert sum(p.numel() for p in unet.parameters()) == 31_030_593
    with pytest.raises(ConfigError, match="is not a visionlab model"):
        networks.spec_and_io({"_target_": "os.system"})
