"""Configs: every option of every config group composes and resolves (the `--cfg job` level), its `_target_`s
exist, monitored keys are the task's metric keys, and the one conf/ folder ships inside an installed wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

import visionlab.cli.resolvers  # noqa: F401  (registers ${vl.*}: data options list their classes)
from helpers import CONF, REPO, compose
from visionlab.record.metric_keys import TASKS

NOT_GROUPS = {"data/common"}  # snippets the data options include (`common/signs@_here_`), not a choice
ADDED_GROUPS = {"sweep"}  # not in train.yaml's defaults: selected with +sweep=…
PLUGINS = {"cnn_optuna": "hydra_plugins.hydra_optuna_sweeper"}  # optional extras
# an option that only makes sense with the data and monitor of its task is composed on that task's experiment
TASK_CONTEXT = {
    ("model", "unet"): ["experiment=unet_baseline"],
    ("model/net", "unet"): ["experiment=unet_baseline"],
    ("model/net", "smp"): ["experiment=unet_baseline"],
}
# an option that reads its facts from the data at composition is given a (tiny) folder of that data
DATA_CONTEXT = {("data", "image_folder"): lambda root: _class_folders(root)}


def _class_folders(root):
    for name in ("cat", "dog"):
        (root / "images" / name).mkdir(parents=True)
    return [f"data.data_dir={root / 'images'}"]


def _options() -> list[tuple[str, str]]:
    groups = {p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml") if p.parent != CONF}
    return sorted((group, p.stem) for group in groups - NOT_GROUPS for p in (CONF / group).glob("*.yaml"))


def _targets(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return found + [t for value in node.values() for t in _targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in _targets(value)]
    return []


def test_the_option_list_covers_the_groups():
    groups = {group for group, _ in _options()}
    assert {
        "data",
        "model",
        "model/optimizer",
        "model/scheduler",
        "trainer",
        "logger",
        "callbacks",
        "experiment",
        "debug",
        "sweep",
        "hydra/launcher",
    } <= groups
    assert len(_options()) >= 40


@pytest.mark.parametrize(("group", "option"), _options(), ids=lambda value: str(value))
def test_every_option_of_every_group_composes_and_resolves(tmp_path, group, option):
    if option in PLUGINS:
        pytest.importorskip(PLUGINS[option], reason="optional extra: pip install -e '.[optuna]'")
    prefix = "+" if group in ADDED_GROUPS else ""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        context = DATA_CONTEXT[(group, option)](tmp_path) if (group, option) in DATA_CONTEXT else []
        cfg = hydra_compose(
            "train",
            overrides=[
                *TASK_CONTEXT.get((group, option), []),
                f"{prefix}{group}={option}",
                *context,
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path / 'run'}",
            ],
            return_hydra_config=True,
        )
    hydra_node = OmegaConf.to_container(cfg.hydra, resolve=False)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # as a run has it: ${hydra:runtime.choices.*} resolves
    try:
        job = {key: cfg[key] for key in cfg if key != "hydra"}
        resolved = OmegaConf.to_container(OmegaConf.create(job), resolve=True)  # every interpolation resolves
    finally:
        HydraConfig.instance().cfg = None  # the process's later in-process runs are not Hydra jobs
    for target in _targets(resolved) + _targets(hydra_node):
        get_object(target)  # every _target_ names something that exists
    task = get_object(resolved["model"]["_target_"]).task
    if task == "segmentation" and int((resolved.get("data") or {}).get("num_classes") or 2) > 2:
        task = "multiclass_segmentation"  # K classes log the K-class table (softmax scores)
    assert resolved["monitor"] in TASKS[task].keys  # checkpointing/early stopping watch a logged key


def test_eval_config_composes_with_a_checkpoint(tmp_path):
    cfg = compose(tmp_path, ["ckpt_path=/some/run/checkpoints/best.ckpt"], config_name="eval")
    assert cfg.train is False and cfg.test is True and cfg.ckpt_path.endswith("best.ckpt")


def test_configs_live_in_one_real_folder():
    assert CONF == REPO / "conf" and not CONF.is_symlink()
    assert not (CONF / "__init__.py").exists()
    assert not (REPO / "src" / "visionlab" / "conf").exists()  # no symlink or copy inside the package


def test_an_installed_wheel_finds_its_configs_from_any_directory(tmp_path):
    """Build the wheel (offline, from a copy of the checkout), install it into a folder of its own, and
    compose a config through the installed entry point from an unrelated working directory."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "conf", source / "conf")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("visionlab-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import sys, visionlab, visionlab.config.location as c; print('package', visionlab.__file__); "
        "print('configs', c.config_dir()); sys.argv = ['visionlab-train', 'experiment=unet_elu', '--cfg', "
        "'job']; from visionlab.cli.train import main; main()"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(site),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "HOME": str(tmp_path),
    }
    shown = subprocess.run(
        [sys.executable, "-c", script],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"package {site}" in shown.stdout and f"configs {site / 'visionlab' / 'conf'}" in shown.stdout
    assert "experiment_name: unet_elu" in shown.stdout and "activation: elu" in shown.stdout


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ([], "cnn_synthetic"),
        (["data=gtsrb"], "cnn_gtsrb"),
        (["model=unet", "data=synthetic_seg", "monitor=val/f1"], "unet_synthetic_seg"),
        (["experiment=cnn_baseline"], "cnn_baseline"),
        (["experiment=cnn_sgd", "data=synthetic_signs"], "cnn_sgd"),
        (["experiment=unet_baseline", "data=synthetic_seg"], "unet_baseline"),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, list) else value,
)
def test_the_experiment_name_says_what_runs(tmp_path, overrides, name):
    """Without a preset the run is named (and recorded and W&B-grouped) by its model and data; a preset keeps
    its own name whatever data it runs on."""
    cfg = compose(tmp_path, overrides)
    assert cfg.experiment_name == name and name in cfg.tags and cfg.run_name == f"{name}_seed{cfg.seed}"


def test_a_network_argument_of_earlier_versions_is_refused_naming_model_net(tmp_path):
    """``model.features_start=32`` (the key before networks moved under model.net) is not rewritten: the run
    is refused with one line and exit code 2 that names the new key, and nothing is written. ``++`` (which
    Hydra would add as a new key) is refused the same way, by the config rules. The documented spelling
    runs."""

    def train(*overrides: str) -> subprocess.CompletedProcess:
        # --cfg job answers before the training stack is imported (a second or two)
        return subprocess.run(
            [sys.executable, str(REPO / "train.py"), "experiment=unet_baseline", *overrides],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = train("model.features_start=32", "--cfg", "job")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        (
            "error: model.features_start: no such config key: the network's arguments live under model.net "
            "(the network model/net names); use model.net.features_start."
        )
    ]
    added = train("++model.depth=3", "paths.log_dir=logs", "trainer.max_epochs=1")
    assert added.returncode == 2, added.stderr[-2000:]
    assert added.stderr.strip().splitlines()[-1] == (
        "error: model.depth: the network's arguments moved under model.net (the network model/net names): "
        "write model.net.depth instead (in a config file, under model: net:)."
    )
    assert not [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]  # refused before any write
    shown = train("model.net.features_start=32", "--cfg", "job")
    assert shown.returncode == 0, shown.stderr[-2000:]
    net = OmegaConf.create(shown.stdout)["model"]["net"]
    assert net["type"] == "unet" and net["features_start"] == 32
    assert "note:" not in shown.stderr
