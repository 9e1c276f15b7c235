"""The run-record contract: the only place that spells file names and metric keys, one name per quantity, the
interfaces the runner checks, the scheduler path, and a console without library noise."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

from helpers import REPO, TINY_SIGNS, compose, finished_wandb_run
from seg_helpers import TINY_SEG
from visionlab.config.errors import ConfigError
from visionlab.record import layout
from visionlab.record import metric_keys as keys
from visionlab.record.folder import RunFolder
from visionlab.run.execute import run

SRC = REPO / "src" / "visionlab"
CONTRACT = SRC / "record"
FILE_NAMES = {value for name, value in vars(layout).items() if name.isupper() and isinstance(value, str)}
METRIC_KEY = re.compile(r"^(train|val|test|best)/")


def _literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_run_record_file_name_or_metric_key_outside_the_contract():
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {value!r}"
        for path in sorted(SRC.rglob("*.py"))
        if CONTRACT not in path.parents
        for line, value in _literals(path)
        if value in FILE_NAMES or METRIC_KEY.match(value)
    ]
    assert offenders == []
    assert {
        "summary.json",
        "metrics.csv",
        "test_cases.csv",
        "qualitative.npz",
        "wandb_run_id.txt",
    } <= FILE_NAMES


def test_the_metric_tables_give_every_quantity_one_key():
    for table in keys.TASKS.values():
        listed = [m.key for m in (*table.per_epoch, *table.test)]
        assert len(listed) == len(set(listed)), table.task
        assert {
            table.headline,
            table.validation_headline,
            *table.report_test,
            *table.curves,
            *table.also_over_seeds,
            *table.collapse,
        } <= table.keys
        assert table.metric(table.headline).label == table.metric(table.validation_headline).label


def test_classification_run_logs_exactly_its_table(tmp_path):
    """metrics.csv, summary.json and the W&B run of one run use the table's keys and nothing renamed."""

    summary = run(compose(tmp_path, [*TINY_SIGNS, "trainer.max_epochs=1"]))
    folder = RunFolder(tmp_path / "run")
    table = keys.CLASSIFICATION
    columns = set(folder.read_metrics()[0])
    assert {m.key for m in table.per_epoch} == {c for c in columns if keys.is_metric(c)}
    assert set(summary["test"]) == {m.key for m in table.test}
    wb = finished_wandb_run(tmp_path / "run")
    for key, value in summary["test"].items():
        assert wb["summary"][key] == pytest.approx(value), key
    for key, value in summary["best"].items():
        if keys.is_metric(key):
            assert wb["summary"][keys.best_key(key)] == pytest.approx(value), key
    # validation results of the best epoch for runs without a test split; mistakes also go to W&B during
    # training
    from visionlab.record.folder import VALIDATION

    assert folder.read_confusion(VALIDATION).shape == (43, 43)
    wrong = folder.read_misclassified(VALIDATION)
    assert len(wrong["images"]) == len(wrong["true"]) > 0 and (wrong["true"] != wrong["pred"]).all()
    assert any(key.startswith(f"{keys.MEDIA_VAL_MISCLASSIFIED}/") for row in wb["history"] for key in row)


def test_a_model_without_the_run_record_hooks_is_a_config_error(tmp_path):
    cfg = compose(tmp_path, [*TINY_SIGNS, "logger=none", "model._target_=helpers.PlainLightningModule"])
    with pytest.raises(
        ConfigError,
        match=r"model._target_=helpers.PlainLightningModule is not a visionlab model: "
        r"it lacks media_callback, save_fit_artifacts, save_test_artifacts, summary_section, task",
    ):
        run(cfg)


def test_a_monitor_the_model_does_not_log_is_a_config_error(tmp_path):
    cfg = compose(tmp_path, ["experiment=unet_baseline", *TINY_SEG, "logger=none", "monitor=val/acc"])
    with pytest.raises(
        ConfigError, match="monitor=val/acc is not logged by a segmentation model; it logs .*val/f1"
    ):
        run(cfg)


def test_cosine_scheduler_sets_the_learning_rate_of_every_epoch(tmp_path):
    run(
        compose(
            tmp_path,
            [
                *TINY_SIGNS,
                "logger=none",
                "test=false",
                "trainer.max_epochs=3",
                "model/scheduler=cosine",
                "model.optimizer.lr=0.01",
            ],
        )
    )
    lrs = [row[keys.lr_column(0)] for row in RunFolder(tmp_path / "run").read_metrics()]
    expected = [0.01 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]  # T_max = max_epochs
    assert lrs == pytest.approx(expected)


def test_plateau_scheduler_runs_on_the_monitored_metric(tmp_path):
    summary = run(
        compose(
            tmp_path,
            [
                *TINY_SIGNS,
                "logger=none",
                "test=false",
                "trainer.max_epochs=3",
                "model/scheduler=plateau",
                "model.scheduler.patience=0",
                "model.optimizer.lr=0.01",
            ],
        )
    )
    assert summary["status"] == "completed"
    lrs = [row[keys.lr_column(0)] for row in RunFolder(tmp_path / "run").read_metrics()]
    assert lrs[0] == pytest.approx(0.01)
    assert all(any(lr == pytest.approx(0.01 * 0.5**k) for k in range(4)) for lr in lrs)  # only halvings


class _Payload:
    """Unpickling this would create a file: a stand-in for code hidden in a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_is_loaded_as_data_never_as_code(tmp_path):
    import torch

    marker = tmp_path / "code_ran"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, ckpt)
    cfg = compose(tmp_path, [*TINY_SIGNS, "logger=none", f"ckpt_path={ckpt}"], config_name="eval")
    with pytest.raises(
        ConfigError, match=r"ckpt_path=.*evil.ckpt: not a checkpoint visionlab can load as data"
    ):
        run(cfg)
    assert not marker.exists()


def test_git_state_is_what_the_environment_declares_else_what_git_says(tmp_path, monkeypatch):
    from visionlab.record.provenance import git_state

    for key in ("VISIONLAB_GIT_COMMIT", "VISIONLAB_GIT_DIRTY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # tmp_path is no checkout
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    monkeypatch.setenv("VISIONLAB_GIT_COMMIT", "abc123")
    assert git_state(tmp_path) == {"commit": "abc123", "dirty": None}
    monkeypatch.setenv("VISIONLAB_GIT_DIRTY", "false")
    assert git_state(tmp_path) == {"commit": "abc123", "dirty": False}
    assert git_state()["commit"] == "abc123"  # a declaration wins even inside a checkout (it may be stale)
    monkeypatch.delenv("VISIONLAB_GIT_COMMIT")
    assert len(git_state()["commit"]) == 40  # this checkout, undeclared: git answers
