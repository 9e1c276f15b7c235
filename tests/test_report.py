"""The report over real (tiny) runs: tables hold exactly the runs' numbers; broken and mixed runs are
reported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from report_fixtures import write_report
from visionlab.report.analysis.stats import choose_baseline, welch_p_value

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("cnn_baseline", "cnn_batchnorm")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """2 variants (without/with BatchNorm) × 2 seeds of the seed CNN on a tiny synthetic sign set, 2
    batches."""
    log_dir = tmp_path_factory.mktemp("logs")
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "-m",
            f"experiment={','.join(VARIANTS)}",
            "data=synthetic_signs",
            "seed=1,2",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=2",
            "++trainer.limit_val_batches=1",
            "++trainer.limit_test_batches=2",
            "data.tracks_per_class=3",
            "data.frames_per_track=4",
            "data.test_tracks_per_class=1",
            "logger=none",
            "callbacks=none",
            f"paths.log_dir={log_dir}",
            "hydra.sweep.subdir=${hydra.job.num}",
        ],  # short job folders: the overrides exceed 255 characters
        check=False,
        env=env,
        cwd=log_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (multirun_yaml,) = log_dir.rglob("multirun.yaml")  # Hydra writes it into the sweep folder
    return multirun_yaml.parent


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("summary.json"))]


def _report(tmp_path: Path, *args: str, figures: bool = False) -> tuple[str, dict, str]:
    return write_report(tmp_path / "report", *args, figures=figures)


def test_report_tables_hold_the_runs_numbers(sweep, tmp_path):
    markdown, numbers, page = _report(tmp_path, str(sweep), figures=True)
    summaries = _summaries(sweep)
    assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries)
    acc = {
        v: [s["test"]["test/acc"] for s in sorted(summaries, key=lambda s: s["seed"]) if s["experiment"] == v]
        for v in VARIANTS
    }

    # one row per run with its test accuracy, % with 2 decimals
    for s in summaries:
        assert (
            f"| {s['experiment']} | {s['seed']} | completed | {100 * s['test']['test/acc']:.2f} % |"
            in markdown
        )

    by_variant = {v["variant"]: v for v in numbers["tasks"]["classification"]["variants"]}
    assert numbers["tasks"]["classification"]["baseline"] == "cnn_baseline"
    base = acc["cnn_baseline"]
    for variant, values in acc.items():
        row = by_variant[variant]
        mean, std = np.mean(values), np.std(values, ddof=1)
        assert row["values"] == values and row["n"] == 2 and row["split"] == "test"
        assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std)
        assert (row["min"], row["max"]) == (min(values), max(values))
        assert f"{100 * mean:.2f} ± {100 * std:.2f} %" in markdown
        assert f"{100 * min(values):.2f} % – {100 * max(values):.2f} %" in markdown
    p = stats.ttest_ind(acc["cnn_batchnorm"], base, equal_var=False).pvalue
    delta = np.mean(acc["cnn_batchnorm"]) - np.mean(base)
    if np.isnan(p):  # identical seeds' values on both sides: no variance, no test
        assert by_variant["cnn_batchnorm"]["p_value"] is None
    else:
        assert by_variant["cnn_batchnorm"]["p_value"] == pytest.approx(p)
        assert f"{p:.4f}" in markdown or p < 1e-4
    assert by_variant["cnn_batchnorm"]["delta"] == pytest.approx(delta)
    assert f"{100 * delta:+.2f} pp" in markdown

    # the rest of the report: curves, confusion matrices, cards, provenance; HTML is self-contained
    assert "figures/classification_curves.png" in markdown
    assert (tmp_path / "report" / "figures" / "classification_curves.png").stat().st_size > 0
    assert "confusion_cnn_baseline.png" in markdown
    assert "worst classes on test: 0 circle red/white" in markdown
    # the synthetic signs' config names no classes: the generator's names come from summary.json's data facts
    assert "Class names: from the runs' data facts (summary.json `data_facts.class_names`)." in markdown
    assert "87,403 parameters" in markdown and "87,659 parameters" in markdown  # + BatchNorm's 2 × 128
    assert "python train.py experiment=cnn_baseline data=synthetic_signs seed=1" in markdown
    assert (
        "| `model.net.batch_norm` | false | true |" in markdown
    )  # the config difference between the variants
    assert "excluded" not in markdown.split("## Caveats")[1].split("## ")[0]
    assert page.count("data:image/png;base64,") >= 3 and "figures/" not in page


def test_report_over_failed_and_missing_runs(sweep, tmp_path):
    runs = tmp_path / "runs"
    good = next(
        p.parent
        for p in sweep.rglob("summary.json")
        if '"experiment": "cnn_baseline"' in p.read_text() and '"seed": 1,' in p.read_text()
    )
    shutil.copytree(good, runs / "good")
    failed = runs / "failed"
    shutil.copytree(good, failed)
    summary = json.loads((failed / "summary.json").read_text())
    summary.update(seed=2, status="failed", error="NonFiniteLossError: Training loss became nan", test=None)
    summary.pop("health", None)  # a record from before run health: the report derives it from the error
    (failed / "summary.json").write_text(json.dumps(summary))
    (failed / "metrics.csv").unlink()
    crashed = runs / "crashed"  # killed before it wrote summary.json or metrics
    (crashed / ".hydra").mkdir(parents=True)
    shutil.copy(good / "config.yaml", crashed / ".hydra" / "config.yaml")
    (runs / "corrupt").mkdir()
    (runs / "corrupt" / "summary.json").write_text("{not json")
    (runs / "sweep_index.json").write_text(
        json.dumps(
            [
                {
                    "overrides": ["seed=9"],
                    "status": "failed",
                    "run_dir": None,
                    "error": "launcher lost the job",
                },
                {"overrides": ["seed=1"], "status": "completed", "run_dir": "good", "error": None},
            ]
        )
    )

    markdown, numbers, _ = _report(tmp_path, str(runs))
    assert "excluded, **failed**: cnn_baseline seed 2" in markdown and "Training loss became nan" in markdown
    assert "| cnn_baseline | 2 | failed; **diverged** at epoch ? | — |" in markdown
    assert "**no summary**" in markdown and "summary.json unreadable" in markdown
    assert "sweep job **failed** without a run folder: `seed=9`: launcher lost the job" in markdown
    assert "seed=1`" not in markdown.split("## Caveats")[1].split("##")[0]  # the indexed job that has its run
    (variant,) = numbers["tasks"]["classification"]["variants"]
    assert variant["n"] == 1 and variant["n_runs"] == 3 and variant["std"] is None
    assert "| cnn_baseline | 1 of 3 |" in markdown and "% (1 run)" in markdown


def _segmentation_run(
    folder: Path,
    experiment: str,
    seed: int,
    f1: list[float],
    health: dict | None = None,
    extra: dict | None = None,
) -> None:
    """A hand-written segmentation run record (no training): per-case F1 and the test metrics computed from
    them."""
    folder.mkdir(parents=True)
    f1 = np.array(f1)
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "experiment": experiment,
                "task": "segmentation",
                "seed": seed,
                "status": "completed",
                "test": {
                    "test/cases": len(f1),
                    "test/f1": float(f1.mean()),
                    "test/f1_std": float(f1.std()),
                    "test/f1_min": float(f1.min()),
                    "test/iou": 0.4,
                    **(extra or {}),
                },
                "best": {"epoch": 0, "val/f1": 0.5},
                **({"health": health} if health else {}),
            }
        )
    )
    (folder / "metrics.csv").write_text("epoch,train/loss,val/loss,train/f1,val/f1\n0,0.7,0.6,0.4,0.5\n")


def test_report_over_mixed_tasks(sweep, tmp_path):
    _segmentation_run(tmp_path / "seg" / "s1", "unet_baseline", 1, [0.5, 0.7, 0.9])
    _segmentation_run(tmp_path / "seg" / "s2", "unet_baseline", 2, [0.6, 0.9])
    markdown, numbers, _ = _report(tmp_path, str(sweep), str(tmp_path / "seg"))
    assert "The runs mix tasks: classification (4 runs), segmentation (2 runs)" in markdown
    assert "## Results: classification" in markdown and "## Results: segmentation" in markdown
    # test cases, then mean ± std (min) of F1 over the cases, 4 decimals; no value is bolded for being the
    # best variant, seed, state, cases, F1 over cases, best epoch / epochs (not recorded)
    assert "| unet_baseline | 1 | completed | 3 | 0.7000 ± 0.1633 (min 0.5000) | 1 / — |" in markdown
    assert "| unet_baseline | 2 | completed | 2 | 0.7500 ± 0.1500 (min 0.6000) | 1 / — |" in markdown
    (variant,) = numbers["tasks"]["segmentation"]["variants"]
    assert variant["metric"] == "test/f1" and variant["values"] == pytest.approx([0.7, 0.75])
    assert f"0.7250 ± {np.std([0.7, 0.75], ddof=1):.4f}" in markdown
    assert "unet_baseline: no resolved model config, no card." in markdown


def test_stuck_and_diverged_runs_are_flagged_and_never_averaged(tmp_path):
    both = {"test/f1_bg": 0.75, "test/f1_bg_min": 0.7, "test/f1_trivial": 0.87}
    _segmentation_run(tmp_path / "seg" / "s1", "unet_elu", 1, [0.9, 1.0], extra=both)
    _segmentation_run(
        tmp_path / "seg" / "s2",
        "unet_elu",
        2,
        [0.8, 1.0],
        extra=both,
        health={"status": "ok", "epoch": None, "reason": None, "collapsed_epochs": 2},
    )
    _segmentation_run(
        tmp_path / "seg" / "s3",
        "unet_elu",
        3,
        [0.87, 0.87],
        extra={**both, "test/f1_bg": 0.0},
        health={
            "status": "stuck",
            "epoch": 4,
            "reason": "best epoch 4 predicts one class",
            "collapsed_epochs": 9,
        },
    )
    markdown, numbers, _ = _report(tmp_path, str(tmp_path / "seg"))
    measures = {m["key"]: m for m in numbers["tasks"]["segmentation"]["measures"]}
    (variant,) = measures["test/f1"]["variants"]
    assert variant["seeds"] == [1, 2] and variant["values"] == pytest.approx([0.95, 0.9])  # seed 3 left out
    assert "| unet_elu | 2 of 3 | 0.9250 ± 0.0354 |" in markdown  # no bold for a std or a lone variant
    # the background class is aggregated over the same seeds, and comes first: the trivial all-foreground
    # prediction (F1 0.87: 77 % foreground) makes the background the minority class
    (background,) = measures["test/f1_bg"]["variants"]
    assert background["values"] == [0.75, 0.75] and list(measures) == ["test/f1_bg", "test/f1"]
    assert variant["also"] == {"test/f1_bg": [0.75, 0.75], "test/f1_trivial": [0.87, 0.87]}
    assert "| unet_elu | 2 of 3 | 0.7500 ± 0.0000 |" in markdown
    # epochs are numbered from 1 on the page: the record's epoch 4 is the page's epoch 5
    assert (
        "| unet_elu | 3 | completed; **stuck** at epoch 5 | 2 | 0.0000 (min 0.7000) | 0.8700 ± 0.0000 (min "
        "0.8700) |" in markdown
    )
    caveats = markdown.split("## Caveats")[1].split("\n## ")[0]
    assert "**stuck** at epoch 5: unet_elu seed 3 (best epoch 4 predicts one class" in caveats
    assert "excluded from every average" in caveats
    # both classes per run, never bolded
    assert "| unet_elu | 1 | completed | 2 | 0.7500 (min 0.7000) | 0.9500 ± 0.0500 (min 0.9000) |" in markdown
    assert [r["health"]["status"] for r in numbers["runs"]] == ["ok", "ok", "stuck"]


def test_report_module_entry_point(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "visionlab.report", str(empty), "--out", str(tmp_path / "r")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no run folders" in (tmp_path / "r" / "REPORT.md").read_text()


def test_welch_and_baseline_rules():
    assert welch_p_value([0.9], [0.8, 0.7]) is None  # n < 2: no test
    a, b = [0.91, 0.93, 0.92], [0.88, 0.90, 0.87]
    assert welch_p_value(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert choose_baseline(["relu", "elu", "cnn_baseline"]) == "cnn_baseline"
    assert choose_baseline(["relu", "elu"]) == "elu"
    assert choose_baseline(["relu", "elu"], requested="relu") == "relu"


class _FakeWandbRun:
    def __init__(self, run_id: str, seed: int, acc: float, state: str = "finished"):
        self.id, self.name, self.group, self.state, self.url = run_id, f"r{seed}", "cnn_baseline", state, ""
        self.config = {
            "seed": seed,
            "experiment_name": "cnn_baseline",
            "monitor": "val/acc",
            "model": {"_target_": "visionlab.tasks.classification.module.ClassificationModule"},
        }
        self.summary = {"test/acc": acc, "best/val/acc": acc - 0.1, "n_params": 87403}
        self.metadata = {"cpu_count": 2}

    def scan_history(self):
        yield {"epoch": 0, "train/loss": 1.0, "_step": 1}
        yield {"epoch": 0, "val/loss": 0.9, "val/acc": 0.5, "_step": 2}


def test_wandb_runs_become_run_records(tmp_path, monkeypatch):
    import wandb

    class _Api:
        def runs(self, project, filters):
            assert project == "team/signs" and filters == {"group": "cnn_baseline"}
            return [
                _FakeWandbRun("a", 1, 0.8),
                _FakeWandbRun("b", 2, 0.9),
                _FakeWandbRun("c", 3, 0.0, "crashed"),
            ]

    monkeypatch.setattr(wandb, "Api", _Api)
    markdown, numbers, _ = _report(tmp_path, "--wandb-project", "team/signs", "--wandb-group", "cnn_baseline")
    (variant,) = numbers["tasks"]["classification"]["variants"]
    assert variant["values"] == [0.8, 0.9] and variant["n_runs"] == 3
    assert "| cnn_baseline | 3 | failed | — |" in markdown and "W&B state: crashed" in markdown
    assert "train/loss" in (tmp_path / "report" / "wandb_runs" / "a" / "metrics.csv").read_text()


class _FakeSweepRun:
    """A W&B run as a multirun job logs it: grouped by the sweep, the variant as job type and in the
    config."""

    def __init__(self, run_id: str, variant: str, seed: int, summary: dict, model: str, sweep: str):
        self.id, self.name, self.state, self.url = run_id, f"{variant}_seed{seed}", "finished", ""
        self.group, self.job_type = sweep, variant
        self.config = {"seed": seed, "experiment_name": variant, "model": {"_target_": model}}
        self.summary = summary
        self.metadata = {}

    def scan_history(self):
        yield {"epoch": 0, "train/loss": 1.0, "_step": 1}


def _report_from_wandb(tmp_path, monkeypatch, runs: list, group: str) -> dict:
    import wandb

    class _Api:
        def runs(self, project, filters):
            assert filters == {"group": group}
            return runs

    monkeypatch.setattr(wandb, "Api", _Api)
    return _report(tmp_path, "--wandb-project", "team/p", "--wandb-group", group)[1]


def test_wandb_sweep_runs_keep_their_variants_apart(tmp_path, monkeypatch):
    """A multirun groups its W&B runs by the sweep name: the variant must come from experiment_name."""
    model = "visionlab.tasks.classification.module.ClassificationModule"
    runs = [
        _FakeSweepRun(
            f"{v}{seed}", v, seed, {"test/acc": acc, "best/val/acc": acc - 0.1}, model, "cnn_ablation"
        )
        for v, seed, acc in [
            ("cnn_baseline", 1, 0.80),
            ("cnn_baseline", 2, 0.82),
            ("cnn_sgd", 1, 0.60),
            ("cnn_sgd", 2, 0.64),
        ]
    ]
    numbers = _report_from_wandb(tmp_path, monkeypatch, runs, "cnn_ablation")
    variants = {v["variant"]: v["values"] for v in numbers["tasks"]["classification"]["variants"]}
    assert variants == {"cnn_baseline": [0.80, 0.82], "cnn_sgd": [0.60, 0.64]}


def test_wandb_segmentation_runs_are_scored_on_their_logged_test_metrics(tmp_path, monkeypatch):
    """W&B holds the test metrics under the logged names (test/f1, ...): the report must find them there
    instead of falling back to the validation scores."""
    model = "visionlab.tasks.segmentation.module.SegmentationModule"
    runs = [
        _FakeSweepRun(
            f"u{seed}",
            "unet_baseline",
            seed,
            {
                "test/f1": f1,
                "test/f1_std": 0.01,
                "test/f1_min": f1 - 0.05,
                "test/cases": 6.0,
                "test/iou": f1 - 0.1,
                "test/loss": 0.2,
                "best/val/f1": 0.5,
                "best/epoch": 3,
            },
            model,
            "unet_ablation",
        )
        for seed, f1 in [(1, 0.97), (2, 0.95)]
    ]
    numbers = _report_from_wandb(tmp_path, monkeypatch, runs, "unet_ablation")
    (variant,) = numbers["tasks"]["segmentation"]["variants"]
    assert variant["split"] == "test" and variant["metric"] == "test/f1"
    assert variant["values"] == pytest.approx([0.97, 0.95])


def test_a_sweep_folder_copied_off_the_machine_that_ran_it_keeps_its_jobs(sweep, tmp_path):
    """The index holds absolute run folders of the machine that ran the sweep; a copy elsewhere (a cluster's
    results fetched home) must still match every job to its run folder, not report it as missing."""
    copied = tmp_path / "fetched" / sweep.name
    shutil.copytree(sweep, copied)
    index = json.loads((copied / "sweep_index.json").read_text())
    for job in index["jobs"].values():
        job["run_dir"] = "/nonexistent/cluster/scratch/" + Path(job["run_dir"]).name
    (copied / "sweep_index.json").write_text(json.dumps(index))
    markdown, numbers, _ = _report(tmp_path, str(copied))
    assert "without a run folder" not in markdown
    assert len(numbers["runs"]) == len(index["jobs"]) == 4
