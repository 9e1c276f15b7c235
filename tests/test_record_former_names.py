"""Run records from before the renovation are read in today's names and layout (``record.former_names``), and
a network's defaults have one home, its ``conf/model/net/<type>.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from visionlab.config.errors import ConfigError
from visionlab.networks.registry import REGISTRY, SEGMENTATION, NetworkIO, build_network, spec_and_io
from visionlab.record.folder import RunFolder
from visionlab.record.former_names import current_names

REPO = Path(__file__).resolve().parents[1]
GTSRB_ABLATION = REPO / "experiments/gtsrb_ablation/runs"
ISBI_ABLATION = REPO / "experiments/isbi_unet_ablation/runs"


def _one_run(root: Path, experiment: str) -> RunFolder:
    runs = sorted(root.glob(f"experiment={experiment},seed=1,*"))
    if not runs:
        pytest.skip(f"the committed run records of {root} are not in this checkout")
    return RunFolder(runs[0])


def test_a_committed_record_from_before_model_net_reads_in_todays_layout():
    cnn = _one_run(GTSRB_ABLATION, "cnn_fast").read_config()["model"]
    assert cnn["_target_"] == "visionlab.tasks.classification.module.ClassificationModule"
    assert cnn["net"] == {
        "type": "seed_cnn",
        "label": "cnn",
        "activation": "relu",
        "batch_norm": True,
        "width": 1.0,
    }
    assert not {"activation", "batch_norm", "width"} & set(cnn)
    assert cnn["label_smoothing"] == 0.1  # the model's own keys stay where they were
    unet = _one_run(ISBI_ABLATION, "unet_elu").read_config()["model"]
    assert unet["net"] == {
        "type": "unet",
        "label": "unet",
        "features_start": 64,
        "depth": 5,
        "up_mode": "bilinear",
        "activation": "elu",
        "batch_norm": True,
    }
    spec, io = spec_and_io(unet)
    assert (spec["activation"], io) == ("elu", NetworkIO(SEGMENTATION, 1, 1))


def test_a_record_with_model_net_and_the_argument_are_left_as_they_are():
    model = {
        "_target_": "visionlab.tasks.segmentation.module.SegmentationModule",
        "net": {"type": "smp", "activation": None},
        "activation": "elu",  # not a former layout: a record with model.net keeps every key where it is
    }
    config = {"model": model, "data": {"_target_": "x.y"}}
    assert current_names(config) == config
    assert config["model"] is model and "net" in model  # the argument is never changed


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_network_takes_exactly_the_arguments_of_its_config(name):
    """The registry has no defaults of its own: what a spec leaves out comes from conf/model/net/<name>.yaml
    (the file Hydra composes), so a spec naming a key that file lacks is refused."""
    config = yaml.safe_load((REPO / "conf/model/net" / f"{name}.yaml").read_text())
    arguments = {key: value for key, value in config.items() if key not in ("type", "label")}
    assert REGISTRY[name].defaults == arguments
    task = REGISTRY[name].tasks[0]
    with pytest.raises(ConfigError, match=rf"model\.net\.not_an_argument: a {name} network takes no"):
        build_network({"type": name, "not_an_argument": 1}, NetworkIO(task, 3, 4, 32))


def test_a_default_changed_in_the_config_is_the_default_the_network_gets(monkeypatch, tmp_path):
    """One home: editing conf/model/net/unet.yaml changes what ``build_network`` fills in."""
    from visionlab.networks import registry

    conf = tmp_path / "conf"
    (conf / "model/net").mkdir(parents=True)
    (conf / "model/net/unet.yaml").write_text(
        (REPO / "conf/model/net/unet.yaml").read_text().replace("features_start: 64", "features_start: 8")
    )
    monkeypatch.setattr(registry, "config_dir", lambda: conf)
    registry._defaults.cache_clear()
    try:
        net = build_network({"type": "unet", "depth": 2}, NetworkIO(SEGMENTATION, 1, 1))
        assert net.inc[0].out_channels == 8
    finally:
        registry._defaults.cache_clear()
