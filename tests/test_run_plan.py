"""One run, one pass (issue 30): the config is checked once, the model and the datamodule are built once, and
nothing edits the composed config; the run's decisions (precision, W&B naming and ids) are the plan's and the
logger plug-in's, recorded in summary.json and W&B, not written back into config.yaml."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from helpers import TINY_SIGNS, compose, finished_wandb_run
from visionlab.config.errors import ConfigError


def _wandb_run_record(run_dir: Path):
    """The ``run`` record of the run's W&B offline file (group, job type and id as W&B got them)."""
    from visionlab.tracking.wandb.offline import read_records

    finished_wandb_run(run_dir)
    (folder,) = sorted((run_dir / "wandb").glob("offline-run-*"))
    (path,) = sorted(folder.glob("run-*.wandb"))
    return next(r.run for r in read_records(path) if r.WhichOneof("record_type") == "run")


def test_one_run_checks_once_builds_once_and_leaves_the_composed_config_as_it_was(tmp_path, monkeypatch):
    from visionlab.config import rules
    from visionlab.run import assembly
    from visionlab.run.execute import run

    built: list[str] = []
    checked: list[int] = []
    instantiate, check_config = assembly.instantiate, rules.check_config
    monkeypatch.setattr(
        assembly, "instantiate", lambda node, key, **kw: built.append(key) or instantiate(node, key, **kw)
    )
    monkeypatch.setattr(rules, "check_config", lambda cfg: checked.append(1) or check_config(cfg))
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose(tmp_path, [*TINY_SIGNS, "trainer.max_epochs=1", "test=false"])
    summary = run(cfg)

    assert len(checked) == 1
    assert built.count("model") == 1 and built.count("data") == 1  # no meta-device copy for checking
    folder = tmp_path / "run"
    written = yaml.safe_load((folder / "config.yaml").read_text())
    assert written["trainer"]["precision"] == "auto"  # as composed; what it stood for is in summary.json
    assert summary["precision"] in ("32-true", "bf16-mixed")
    assert json.loads((folder / "summary.json").read_text())["precision"] == summary["precision"]
    wandb_node = written["logger"]["wandb"]
    assert (wandb_node["group"], wandb_node["job_type"], wandb_node["id"]) == (None, None, None)
    # the W&B logger plug-in named the run: a single run is grouped by its experiment, job type "train"
    record = _wandb_run_record(folder)
    assert (record.run_group, record.job_type) == ("cnn_synthetic", "train")
    assert record.run_id == summary["wandb"]["id"] == (folder / "wandb_run_id.txt").read_text().strip()
    assert finished_wandb_run(folder)["summary"]["precision"] == summary["precision"]  # the report reads it


def test_the_wandb_plugin_continues_the_run_its_folder_recorded(tmp_path, monkeypatch):
    """A resumed run's W&B id comes from its folder's wandb_run_id.txt, decided where the logger is made; a
    fresh run (or an evaluation) gets a new id; a configured group/job type wins."""
    from visionlab.record.folder import RunFolder
    from visionlab.tracking.wandb.logger import make_wandb_logger

    monkeypatch.setenv("WANDB_MODE", "offline")
    RunFolder(tmp_path).create().write_wandb_id("abc123")
    last = str(tmp_path / "checkpoints" / "last.ckpt")
    resumed = make_wandb_logger(save_dir=str(tmp_path), experiment="cnn_x", resume_from=last, train=True)
    assert (resumed._wandb_init["id"], resumed._wandb_init["group"], resumed._wandb_init["job_type"]) == (
        "abc123",
        "cnn_x",
        "train",
    )
    evaluated = make_wandb_logger(save_dir=str(tmp_path), experiment="cnn_x", resume_from=last, train=False)
    assert evaluated._wandb_init.get("id") is None
    named = make_wandb_logger(save_dir=str(tmp_path), experiment="cnn_x", group="mine", job_type="probe")
    assert (named._wandb_init["group"], named._wandb_init["job_type"]) == ("mine", "probe")


def test_the_plan_is_decided_once_and_frozen(tmp_path):
    from visionlab.run.plan import check_composed, make_plan

    cfg = compose(tmp_path, [*TINY_SIGNS, "logger=none", "trainer.precision=32-true"])
    check_composed(cfg)
    plan = make_plan(cfg, records_failure=True, earlier=[], started=0.0)
    assert (plan.folder.path, plan.precision, plan.writes_record, plan.continues_in_place, plan.multirun) == (
        tmp_path / "run",
        "32-true",
        True,
        False,
        False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.precision = "16-mixed"
    assert not (tmp_path / "run").exists()  # deciding writes nothing


def test_a_model_that_cannot_be_built_is_refused_before_anything_is_written(tmp_path):
    """The model is built before the run folder is made: a monitor the model does not log is one
    ConfigError, and no folder is left behind."""
    from visionlab.run.execute import run

    cfg = compose(tmp_path, [*TINY_SIGNS, "logger=none", "monitor=val/f1"])
    with pytest.raises(ConfigError, match="monitor=val/f1 is not logged by a classification model"):
        run(cfg)
    assert not (tmp_path / "run").exists()


def test_wandb_settings_are_checked_by_the_plugin_before_anything_is_written(tmp_path, monkeypatch):
    from visionlab.run.execute import run

    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose(tmp_path, [*TINY_SIGNS, "logger.wandb.init_timeout=0"])
    with pytest.raises(
        ConfigError, match=r"logger\.wandb\.init_timeout=0 is not valid: expected a number of"
    ):
        run(cfg)
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match="WANDB_MODE=sometimes"):
        run(compose(tmp_path, TINY_SIGNS))
    assert not (tmp_path / "run").exists()


def test_help_lists_the_config_groups_from_one_shared_repository(monkeypatch, capsys):
    """``--help`` (Hydra's own) lists every config group; the ~120 questions it asks share one config
    repository instead of building one each (what made --help take over a second)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from visionlab.cli import train

    built: list[tuple] = []
    build = ConfigLoaderImpl._parse_overrides_and_create_caching_repo

    def counting(self, config_name, overrides):
        built.append((config_name, tuple(overrides)))
        return build(self, config_name, overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "_parse_overrides_and_create_caching_repo", counting)
    monkeypatch.setattr("sys.argv", ["train.py", "--help"])
    try:
        train.main()
    except SystemExit as exited:
        assert exited.code in (None, 0)
    shown = capsys.readouterr().out
    assert "model/optimizer: adam, adam_course, adamw, rprop, rprop_course, sgd, sgd_course" in shown
    assert "experiment: cnn_baseline, cnn_batchnorm" in shown and "seed: 12345" in shown
    assert len(built) == len(set(built)) <= 3  # each distinct question built once
    assert ConfigLoaderImpl._parse_overrides_and_create_caching_repo is counting  # restored after help


def test_the_report_reads_a_wandb_runs_precision_from_its_summary_or_an_older_runs_config():
    """config.yaml (and the config W&B holds) says trainer.precision as composed (``auto``); the precision the
    run used is in W&B's summary. Runs of earlier versions had it only in their (rewritten) config."""
    from types import SimpleNamespace

    from visionlab.report.wandb_source import _summary

    def wandb_run(config: dict, summary: dict):
        return SimpleNamespace(
            id="r1", name="r1", group="g", job_type="train", state="finished", url="", metadata={},
            config={"experiment_name": "cnn_x", "seed": 1, **config}, summary=summary,
        )  # fmt: skip

    now = wandb_run({"trainer": {"precision": "auto"}}, {"precision": "bf16-mixed"})
    earlier = wandb_run({"trainer": {"precision": "32-true"}}, {})
    assert (_summary(now)["precision"], _summary(earlier)["precision"]) == ("bf16-mixed", "32-true")
