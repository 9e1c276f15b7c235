"""Hostile or unlucky input: every bad value, file or checkpoint ends in one line on stderr and exit code 2, the
input and every existing run folder byte-identical afterwards; crafted checkpoints and report configs run nothing;
SIGTERM is recorded as an interruption."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, compose
from seg_helpers import tiny_arrays

QUICK = ["data.tracks_per_class=2", "data.frames_per_track=3", "data.test_tracks_per_class=1", "data.num_workers=0",
         "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "callbacks.rich_progress_bar=null"]
SEG_NPZ = ("experiment=unet_baseline", "data=seg_npz", "data.image_size=64", "data.num_workers=0",
           "model.features_start=4", "model.depth=3", "logger=none")
UNET_ON_CNN = ("experiment=unet_elu", "data=synthetic_seg", "data.num_workers=0", "model.features_start=8")


class _Payload:
    """Unpickling this creates a file: a stand-in for a command hidden in a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def cli(args: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A completed CNN run made by the CLI (a real run folder with .hydra/ and checkpoints) and bad input files."""
    root = tmp_path_factory.mktemp("trust")
    made = cli([*QUICK, "logger=none", f"paths.log_dir={root / 'logs'}"], root)
    assert made.returncode == 0, made.stderr[-3000:]
    (run,) = (root / "logs" / "runs" / "cnn_synthetic").iterdir()
    inputs = root / "inputs"
    inputs.mkdir()
    np.savez_compressed(inputs / "good.npz", **tiny_arrays())
    data = (inputs / "good.npz").read_bytes()
    (inputs / "truncated.npz").write_bytes(data[: len(data) // 2])
    member = data.index(b"x_train.npy") + 200  # inside the first member's compressed bytes
    (inputs / "corrupt.npz").write_bytes(data[:member] + bytes(b ^ 0xFF for b in data[member:member + 64])
                                         + data[member + 64:])
    (inputs / "notes.ckpt").write_text("not a checkpoint, just text\n")
    torch.save({"state_dict": {}, "payload": _Payload(inputs / "code_ran")}, inputs / "evil.ckpt")
    return {"root": root, "run": run, "ckpt": run / "checkpoints" / "last.ckpt", "inputs": inputs}


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    message: str  # regex the one error line must match
    via: str = "inprocess"  # inprocess: composed here, through train.py's error path; cli: a real process
    fresh: bool = True  # the run gets a new folder, which records the failure
    config: str = "train"
    base: tuple[str, ...] = tuple(QUICK)  # overrides every case starts from


CASES = [
    Case("max_epochs_text", ("trainer.max_epochs=abc",),
         r"trainer\.max_epochs='abc' is not valid: expected an integer ≥ 1 \(-1: no limit\); e\.g\. trainer\.max_epochs=10",
         via="cli"),
    Case("batch_size_zero", ("data.batch_size=0",), r"data\.batch_size=0 is not valid: expected an integer ≥ 1"),
    Case("negative_lr", ("model.optimizer.lr=-1",), r"model\.optimizer\.lr=-1 is not valid: expected a number > 0"),
    Case("eval_without_ckpt", (), r"train=false evaluates a checkpoint: also pass ckpt_path=", config="eval"),
    Case("truncated_npz", ("data.data_dir={inputs}/truncated.npz",),
         r"truncated\.npz: cannot read as a \.npz file \(BadZipFile: .*\); re-create it", base=SEG_NPZ),
    Case("corrupt_npz", ("data.data_dir={inputs}/corrupt.npz",),
         r"corrupt\.npz: cannot read as a \.npz file \(\w+: .*\); re-create it", base=SEG_NPZ),
    Case("not_a_checkpoint", ("train=false", "ckpt_path={inputs}/notes.ckpt"),
         r"ckpt_path=.*notes\.ckpt: not a checkpoint visionlab can load as data only \(UnpicklingError"),
    Case("crafted_ckpt_eval", ("train=false", "ckpt_path={inputs}/evil.ckpt"),
         r"evil\.ckpt: not a checkpoint visionlab can load as data only \(WeightsUnpickler error: Unsupported global"),
    Case("crafted_ckpt_resume", ("ckpt_path={inputs}/evil.ckpt",),
         r"evil\.ckpt: not a checkpoint visionlab can load as data only .*trust_checkpoint=true", via="cli"),
    Case("other_model_eval", ("train=false", "ckpt_path={ckpt}"),
         r"is a checkpoint of experiment 'cnn_synthetic' whose weights do not fit this config's model "
         r"\(experiment 'unet_elu'\): \d+ differ, e\.g\. .*Pass experiment=cnn_synthetic", base=UNET_ON_CNN),
    Case("foreign_resume", ("ckpt_path={ckpt}", "trainer.max_epochs=1", "logger=none"),
         r"is a checkpoint of experiment 'cnn_synthetic' whose weights do not fit", via="cli", fresh=False,
         base=UNET_ON_CNN),
]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing_that_exists(world, case, capsys):
    root, inputs = world["root"], world["inputs"]
    args = [a.format(inputs=inputs, ckpt=world["ckpt"]) for a in case.args]
    run_folders = {p.parent for p in root.rglob("summary.json")}
    before = _files(root)
    if case.via == "cli":
        result = cli([*case.base, *args, f"paths.log_dir={root / 'logs'}"], root)
        code, stderr, stdout = result.returncode, result.stderr, result.stdout
    else:
        from visionlab.train import _run_reporting_errors

        cfg = compose(root, [*case.base, *args], config_name=case.config, output=f"inprocess/{case.name}")
        with pytest.raises(SystemExit) as exited:
            _run_reporting_errors(cfg, multirun=False)
        code, (stdout, stderr) = exited.value.code, capsys.readouterr()
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert code == 2, stderr[-3000:]
    assert len(errors) == 1 and re.search(case.message, errors[0]), stderr[-3000:]
    assert "Traceback" not in stderr + stdout
    after = _files(root)
    assert {k: v for k, v in after.items() if k in before} == before  # inputs and earlier records untouched
    new = [root / k for k in after if k not in before]
    assert not [p for p in new if any(folder in p.parents for folder in run_folders)]  # nothing added to one
    records = [p for p in new if p.name == "summary.json"]
    if case.fresh:
        (record,) = records
        summary = json.loads(record.read_text())
        assert summary["status"] == "failed" and summary["error"] == errors[0].removeprefix("error: ")
    else:
        assert records == []
    assert not (inputs / "code_ran").exists()


def test_trust_checkpoint_is_the_explicit_opt_in_for_a_checkpoint_holding_objects(world, tmp_path):
    """An otherwise valid checkpoint with one pickled object: refused by default, evaluated when trusted."""
    from visionlab.errors import ConfigError
    from visionlab.runner import run

    state = torch.load(world["ckpt"], weights_only=True)
    state["note"] = pathlib.PurePosixPath("made/by/an/older/version")
    ckpt = tmp_path / "older.ckpt"
    torch.save(state, ckpt)
    common = [*QUICK, "logger=none", "train=false", f"ckpt_path={ckpt}"]
    with pytest.raises(ConfigError, match=r"Unsupported global: GLOBAL pathlib.PurePosixPath.*trust_checkpoint=true"):
        run(compose(tmp_path, common, output="refused"))
    summary = run(compose(tmp_path, [*common, "trust_checkpoint=true"], output="trusted"))
    assert summary["status"] == "completed" and summary["evaluated_checkpoint"] == str(ckpt)


def test_a_crafted_report_config_runs_nothing_and_run_text_stays_text(world, tmp_path):
    """The report builds only visionlab's model classes from plain arguments, and REPORT.md carries no tag."""
    from visionlab.report.cli import main

    markers = [tmp_path / "top_level_ran", tmp_path / "nested_ran"]
    runs = tmp_path / "runs"
    for name, experiment, model in (
            ("a", "<img src=x onerror=alert(1)>", {"_target_": "pathlib.Path.touch", "_args_": [str(markers[0])]}),
            ("b", "cnn_nested", None)):
        shutil.copytree(world["run"], runs / name)
        config = yaml.safe_load((runs / name / "config.yaml").read_text())
        summary = json.loads((runs / name / "summary.json").read_text())
        config["experiment_name"] = summary["experiment"] = experiment
        (runs / name / "summary.json").write_text(json.dumps(summary))
        if model is None:
            config["model"]["optimizer"] = {"_target_": "pathlib.Path.touch", "_args_": [str(markers[1])]}
        else:
            config["model"] = model
        (runs / name / "config.yaml").write_text(yaml.safe_dump(config))
    assert main([str(runs), "--out", str(tmp_path / "report")]) == 0
    assert not any(marker.exists() for marker in markers)
    markdown = (tmp_path / "report" / "REPORT.md").read_text()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "<img src=x" not in (tmp_path / "report" / "report.html").read_text()
    warnings = json.loads((tmp_path / "report" / "report.json").read_text())["warnings"]
    assert any("model._target_='pathlib.Path.touch' is not a visionlab model" in w for w in warnings)
    assert "### cnn_nested" in markdown  # the allowed model's card, built without its nested _target_


def test_sigterm_records_interrupted_finishes_wandb_and_exits_non_zero(tmp_path):
    from visionlab.tracking.wandb_offline import read_records

    process = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *QUICK, "trainer.max_epochs=500", "callbacks.early_stopping=null",
         f"paths.log_dir={tmp_path}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    # wait for a recorded epoch and its checkpoint (the checkpoint may land a moment after metrics.csv)
    while (not (list(tmp_path.glob("runs/*/*/metrics.csv")) and list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")))
           and process.poll() is None and time.monotonic() < deadline):
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    (folder,) = tmp_path.glob("runs/*/*")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["error"] == "terminated by SIGTERM"
    assert 1 <= summary["epochs"] < 500 and "interrupted: cnn_synthetic" in stdout
    (wandb_file,) = folder.glob("wandb/offline-run-*/run-*.wandb")
    exits = [r.exit.exit_code for r in read_records(wandb_file) if r.WhichOneof("record_type") == "exit"]
    assert exits and exits[-1] != 0  # the W&B run was finished, as failed
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] >= 0


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from visionlab.checkpoint_io import AtomicCheckpointIO

    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, target)

    def killed_mid_write(obj, fh):
        fh.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_gtsrb_test_split_may_sit_in_its_own_file(tmp_path):
    from visionlab.data.classification.sources import load_gtsrb
    from visionlab.data.classification.synthetic import make_synthetic_signs

    arrays = make_synthetic_signs(seed=3, tracks_per_class=2, frames_per_track=2, test_tracks_per_class=1)
    np.savez(tmp_path / "train.npz", **{k: arrays[k] for k in ("x_train", "y_train", "track_train")})
    np.savez(tmp_path / "test.npz", x_test=arrays["x_test"], y_test=arrays["y_test"])
    loaded = load_gtsrb(tmp_path, tmp_path / "cache")
    assert np.array_equal(loaded["x_test"], arrays["x_test"]) and np.array_equal(loaded["y_test"], arrays["y_test"])
    assert len(loaded["x_train"]) == len(arrays["x_train"])
