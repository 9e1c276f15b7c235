"""End-to-end runs on the tiny synthetic set: run record, W&B offline contents, resume, eval, bad input."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import CONF, QUIET_SHORT, REPO, TINY_SIGNS, compose, finished_wandb_run
from visionlab.run.execute import run


def metrics_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def offline_run(run_dir: Path) -> dict:
    return finished_wandb_run(run_dir)


# each preset's own parameter count: the seed CNN, plus 2 × (64 + 32 + 32) BatchNorm affine parameters
# (cnn_best: twice the width, 296,107 parameters)
CNN_PARAMETERS = {
    "cnn_baseline": 87_403,
    "cnn_batchnorm": 87_659,
    "cnn_rprop": 87_403,
    "cnn_sgd": 87_403,
    "cnn_sgd_momentum": 87_403,
    "cnn_fast": 87_659,
    "cnn_best": 296_107,
}


def test_the_cnn_presets_are_the_counted_ones():
    assert sorted(p.stem for p in (CONF / "experiment").glob("cnn_*.yaml")) == sorted(CNN_PARAMETERS)


@pytest.mark.parametrize("experiment", sorted(CNN_PARAMETERS))
def test_every_cnn_experiment_composes_and_trains_one_batch(tmp_path, tiny_gtsrb_dir, experiment):
    cfg = compose(
        tmp_path,
        [
            f"experiment={experiment}",
            f"data.data_dir={tiny_gtsrb_dir}",
            "logger=none",
            "+trainer.fast_dev_run=1",
            *QUIET_SHORT,
        ],
    )
    assert cfg.experiment_name == experiment
    summary = run(cfg)
    assert summary["status"] == "completed"
    assert summary["experiment"] == experiment and summary["n_params"] == CNN_PARAMETERS[experiment]


def test_run_record_and_wandb_offline_hold_the_trainers_numbers(tmp_path):
    cfg = compose(tmp_path, [*TINY_SIGNS, "seed=3", "model.optimizer.lr=3e-3"])
    summary = run(cfg)
    run_dir = tmp_path / "run"
    rows = metrics_rows(run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["status"] == "completed" and saved["seed"] == 3 and saved["epochs"] == 2
    assert saved["final"]["val/acc"] == pytest.approx(float(rows[-1]["val/acc"]))
    assert saved["test"]["test/acc"] > 0.0 and saved["test_split"] == "available"
    assert saved["train_images_per_s"] > 0 and saved["precision"] in ("bf16-mixed", "32-true")
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (
        run_dir / "checkpoints" / "last.ckpt"
    ).is_file()
    assert (run_dir / "config.yaml").read_text().count("lr: 0.003") == 1
    confusion = [
        list(map(int, line.split(","))) for line in (run_dir / "confusion_matrix.csv").read_text().split()
    ]
    assert len(confusion) == 43 and sum(map(sum, confusion)) == 43 * 2 * 5

    wb = offline_run(run_dir)
    assert wb["config"]["seed"] == 3 and wb["config"]["model"]["optimizer"]["lr"] == 3e-3
    assert wb["config"]["n_params"] == 87_403
    logged_val = [h["val/acc"] for h in wb["history"] if "val/acc" in h]
    assert logged_val == pytest.approx([float(r["val/acc"]) for r in rows])
    logged_train = [h["train/loss"] for h in wb["history"] if "train/loss" in h]
    assert logged_train == pytest.approx([float(r["train/loss"]) for r in rows])
    assert wb["summary"]["test/acc"] == pytest.approx(saved["test"]["test/acc"])
    media = {k.split("/_type")[0] for h in wb["history"] for k in h if k.endswith("/_type")}
    media |= {k.split("/_type")[0] for k in wb["summary"] if k.endswith("/_type")}
    assert {"train/augmented_inputs", "test/confusion_matrix", "test/misclassified"} <= media
    assert summary["wandb"]["sync_command"].startswith("wandb sync ")


# one case per backend in the default suite (the albumentations one with 2 loader workers, where order could
# slip); the other worker counts with the slow set
@pytest.mark.parametrize(
    ("backend", "workers"),
    [
        pytest.param(
            backend,
            workers,
            marks=() if (backend, workers) in {("batched", 0), ("albumentations", 2)} else pytest.mark.slow,
        )
        for backend in ("batched", "albumentations")
        for workers in (0, 1, 2)
    ],
)
def test_resume_from_last_ckpt_reproduces_the_uninterrupted_run(tmp_path, backend, workers):
    """Exact resume for both augmentation backends at any loader worker count (1 is the default)."""
    common = [
        *TINY_SIGNS,
        "seed=11",
        "test=false",
        f"data.augment_backend={backend}",
        f"data.num_workers={workers}",
    ]
    full = run(compose(tmp_path, [*common, "trainer.max_epochs=3"], output="full"))
    run(compose(tmp_path, [*common, "trainer.max_epochs=2"], output="part"))
    part_dir = tmp_path / "part"
    first_id = (part_dir / "wandb_run_id.txt").read_text()
    resumed = run(
        compose(
            tmp_path,
            [*common, "trainer.max_epochs=3", f"ckpt_path={part_dir / 'checkpoints' / 'last.ckpt'}"],
            output="part",
        )
    )
    assert resumed["epochs"] == full["epochs"] == 3
    full_rows, resumed_rows = metrics_rows(tmp_path / "full"), metrics_rows(part_dir)
    assert [r["epoch"] for r in resumed_rows] == ["0", "1", "2"]
    for row, reference in zip(resumed_rows, full_rows):
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            assert float(row[key]) == pytest.approx(float(reference[key]), rel=1e-6), (row["epoch"], key)
    assert resumed["wandb"]["id"] == first_id
    # the resumed W&B history continues the first one's steps, and the sync line uploads both folders
    from visionlab.tracking.wandb.offline import last_step, read_records

    folders = sorted((part_dir / "wandb").glob(f"offline-run-*-{first_id}"))
    assert len(folders) == 2 and resumed["wandb"]["sync_command"] == "wandb sync " + " ".join(
        map(str, folders)
    )
    (second_file,) = folders[1].glob("run-*.wandb")
    deadline = time.monotonic() + 20  # wandb's service process may still be flushing the offline file
    while True:
        second_steps = [
            r.history.step.num for r in read_records(second_file) if r.WhichOneof("record_type") == "history"
        ]
        if second_steps or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert second_steps and min(second_steps) > last_step(folders[0])


def test_eval_only_tests_a_checkpoint_without_training(tmp_path):
    trained = run(compose(tmp_path, [*TINY_SIGNS, "logger=none"], output="trained"))
    ckpt = tmp_path / "trained" / "checkpoints" / "best.ckpt"
    evaluated = run(
        compose(
            tmp_path, [*TINY_SIGNS, "logger=none", f"ckpt_path={ckpt}"], config_name="eval", output="eval"
        )
    )
    assert evaluated["epochs"] == 0 and evaluated["evaluated_checkpoint"] == str(ckpt)
    assert evaluated["test"]["test/acc"] == pytest.approx(trained["test"]["test/acc"], abs=1e-6)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    from visionlab.config.errors import NonFiniteLossError

    cfg = compose(
        tmp_path,
        [
            *TINY_SIGNS,
            "logger=none",
            "trainer.max_epochs=3",
            "+callbacks.poison._target_=helpers.PoisonWeightsAtEpoch",
            "+callbacks.poison.epoch=1",
        ],
    )
    with pytest.raises(NonFiniteLossError, match="at epoch 1, step"):
        run(cfg)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "epoch 1" in summary["error"]
    assert len(metrics_rows(tmp_path / "run")) == 1  # epoch 0 is recorded
    import torch

    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())


def cli(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_bad_data_dir_is_one_clear_message_and_exit_code_2(tmp_path, capsys):
    """What the CLI does with the composed config (in-process: the subprocess CLI path is the trust
    table's)."""
    from visionlab.cli.train import _run_reporting_errors

    cfg = compose(
        tmp_path, ["experiment=cnn_baseline", f"data.data_dir={tmp_path / 'missing'}", "logger=none"]
    )
    with pytest.raises(SystemExit) as exited:
        _run_reporting_errors(cfg, multirun=False)
    stdout, stderr = capsys.readouterr()
    assert exited.value.code == 2
    assert f"GTSRB data directory {tmp_path / 'missing'} does not exist" in stderr
    assert "Traceback" not in stderr + stdout


def test_cli_runs_get_unique_folders_and_help_shows_the_config(tmp_path):
    from visionlab.cluster.run_folders import run_dir

    folders = {run_dir.__wrapped__(str(tmp_path), "x") for _ in range(500)}
    assert len(folders) == 500  # same second, same process: still distinct
    shown = cli(["experiment=cnn_sgd", "--cfg", "job"], tmp_path, timeout=60)
    assert (
        shown.returncode == 0
        and "torch.optim.SGD" in shown.stdout
        and "experiment_name: cnn_sgd" in shown.stdout
    )


@pytest.mark.slow  # the run record and W&B offline agreement stays in the default suite
def test_csv_and_tensorboard_loggers_record_the_same_validation_accuracy(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(compose(tmp_path, [*TINY_SIGNS, "logger=csv"], output="csv"))
    ours = [float(r["val/acc"]) for r in metrics_rows(tmp_path / "csv")]
    with (tmp_path / "csv" / "csv" / "metrics.csv").open() as fh:
        logged = [float(r["val/acc"]) for r in csv.DictReader(fh) if r.get("val/acc")]
    assert logged == pytest.approx(ours)

    run(compose(tmp_path, [*TINY_SIGNS, "logger=tensorboard"], output="tb"))
    events = EventAccumulator(
        str(next((tmp_path / "tb" / "tensorboard").rglob("events.out.tfevents.*")).parent)
    )
    events.Reload()
    logged = [e.value for e in events.Scalars("val/acc")]
    assert logged == pytest.approx([float(r["val/acc"]) for r in metrics_rows(tmp_path / "tb")])
