"""Hostile or unlucky input: every bad value, file or checkpoint ends in one line on stderr and exit code 2,
the input and every existing run folder byte-identical afterwards; crafted checkpoints and report configs run
nothing; SIGTERM is recorded as an interruption."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import trust_train_inputs as hostile
from helpers import REPO, compose
from seg_helpers import tiny_arrays

QUICK = [
    "data.tracks_per_class=2",
    "data.frames_per_track=3",
    "data.test_tracks_per_class=1",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]
SEG_NPZ = (
    "experiment=unet_baseline",
    "data=seg_npz",
    "data.image_size=64",
    "data.num_workers=0",
    "model.net.features_start=4",
    "model.net.depth=3",
    "logger=none",
)
UNET_ON_CNN = (
    "experiment=unet_elu",
    "data=synthetic_seg",
    "data.num_workers=0",
    "model.net.features_start=8",
)


class _Payload:
    """Unpickling this creates a file: a stand-in for a command hidden in a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _SystemPayload:
    """Unpickling this runs a shell command (torch names the refused global ``posix.system``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cli(
    args: list[str], cwd: Path, timeout: int = 240, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A completed CNN run made by the CLI (a real run folder with .hydra/ and checkpoints) and bad input
    files."""
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
    (inputs / "corrupt.npz").write_bytes(
        data[:member] + bytes(b ^ 0xFF for b in data[member : member + 64]) + data[member + 64 :]
    )
    (inputs / "notes.ckpt").write_text("not a checkpoint, just text\n")
    torch.save({"state_dict": {}, "payload": _Payload(inputs / "code_ran")}, inputs / "evil.ckpt")
    torch.save(
        {"state_dict": {}, "payload": _SystemPayload(inputs / "code_ran")}, inputs / "evil_system.ckpt"
    )
    _as_if_trained_with_sgd(run / "checkpoints" / "last.ckpt", inputs / "sgd.ckpt")
    return {"root": root, "run": run, "ckpt": run / "checkpoints" / "last.ckpt", "inputs": inputs}


def _as_if_trained_with_sgd(ckpt: Path, out: Path) -> None:
    """The run's checkpoint with the optimizer state an SGD run (model/optimizer=sgd) saves, and no optimizer
    stamp (as a checkpoint of an older visionlab): the optimizer is named from the state's settings."""
    state = torch.load(ckpt, weights_only=True)
    (saved,) = state["optimizer_states"]
    sgd = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.9).state_dict()[
        "param_groups"
    ]
    saved["param_groups"] = [{**sgd[0], "params": group["params"]} for group in saved["param_groups"]]
    saved["state"] = {}
    state["visionlab"].pop("optimizer", None)
    torch.save(state, out)


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    message: str  # regex the one error line must match
    via: str = "inprocess"  # inprocess: composed here, through train.py's error path; cli: a real process
    # False: refused by the checks before anything is written, so no run folder at all; True: refused while
    # the run is set up (e.g. its data is read), so a new run folder records the failure in summary.json
    recorded: bool = False
    config: str = "train"
    base: tuple[str, ...] = tuple(QUICK)  # overrides every case starts from
    env: tuple[tuple[str, str], ...] = ()  # environment variables of the run
    # makes the case's input (or simulates its condition) before the run: prepare(world, monkeypatch) returns
    # the extra {name} fields of args
    prepare: Callable[[dict, pytest.MonkeyPatch], dict] | None = None


IMAGES = (
    "data=image_folder",
    "data.image_size=32",
    "data.crop=28",
    "data.num_workers=0",
    "logger=none",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
)
SIGNS_NPZ = ("data=gtsrb", "data.num_workers=0", "logger=none", "trainer.max_epochs=1")
OUTSIDE = (
    r": a symbolic link to {target}, outside the data folder .*; images are read only from inside "
    r"data\.data_dir\. .*set data\.follow_symlinks=true"
)


CASES = [
    Case(
        "max_epochs_text",
        ("trainer.max_epochs=abc",),
        r"trainer\.max_epochs='abc' is not valid: expected an integer ≥ 1 \(-1: no limit\); e\.g\. "
        r"trainer\.max_epochs=10",
        via="cli",
    ),
    Case(
        "batch_size_zero", ("data.batch_size=0",), r"data\.batch_size=0 is not valid: expected an integer ≥ 1"
    ),
    Case(
        "negative_lr",
        ("model.optimizer.lr=-1",),
        r"model\.optimizer\.lr=-1 is not valid: expected a number > 0",
    ),
    Case(
        "seed_negative",
        ("seed=-5",),
        r"seed=-5 is not valid: expected an integer in \[0, 4294967295\]",
        via="cli",
    ),
    Case(
        "seed_too_large",
        ("seed=99999999999",),
        r"seed=99999999999 is not valid: expected an integer in \[0, 4294967295\]",
    ),
    Case(
        "flip_class_out_of_range",
        ("data.flip_classes=[99]",),
        r"data\.flip_classes=\[99\] is not valid: 99 is not a class id; class ids are in \[0, 43\) "
        r"\(data\.num_classes=43\)",
    ),
    Case(
        "model_input_not_the_data",
        ("model.input_size=40",),
        r"model\.input_size=40 does not match data\.input_size=28: the model follows the data .*Drop the "
        r"model\.input_size override",
    ),
    Case(
        "crop_larger_than_images",
        ("data.crop=40",),
        r"data\.crop=40 is larger than the 32×32 images of synthetic signs: set data\.crop ≤ 32",
        recorded=True,
    ),
    Case(
        "val_fraction_zero",
        ("data.val_fraction=0",),
        r"data\.val_fraction=0 is not valid: expected a fraction in \(0, 1\); e\.g\. data\.val_fraction=0\.2",
    ),
    Case("network_argument", ("model.net.width=0",), r"model\.net\.width=0 must be positive"),
    Case(
        "network_argument_of_another_network",
        ("+model.net.depth=3",),
        r"model\.net\.depth: a seed_cnn network takes no 'depth'",
    ),
    Case(
        "unknown_network",
        ("model/net=resnet",),
        r"model/net=resnet: no such config \(conf/model/net/resnet\.yaml\); model/net is one of ",
        via="cli",
    ),
    Case(
        "missing_image_folder",
        ("data=image_folder", "data.data_dir=/nonexistent/images"),
        r"data\.data_dir=/nonexistent/images does not exist: an image folder holds one sub-folder per class",
        base=("data.num_workers=0", "logger=none"),
    ),
    Case(
        "wandb_mode_env",
        (),
        r"WANDB_MODE=banana \(environment variable\) is not a W&B mode: it must be one of "
        r"online, offline or disabled",
        via="cli",
        env=(("WANDB_MODE", "banana"),),
    ),
    Case("eval_without_ckpt", (), r"train=false evaluates a checkpoint: also pass ckpt_path=", config="eval"),
    Case(
        "train_false_without_ckpt",
        ("train=false",),
        r"train=false evaluates a checkpoint: also pass ckpt_path=",
        via="cli",
    ),
    Case(
        "log_dir_not_writable",
        ("paths.log_dir=/sys/visionlab_logs",),
        r"paths\.log_dir: cannot create the run folder /sys/visionlab_logs.*\(\w[^)]*: "
        r"/sys/visionlab_logs\)\. "
        r"Set paths\.log_dir=<a folder you can write to>",
        via="cli",
    ),
    Case(
        "unknown_key",
        ("nosuchkey=1",),
        r"nosuchkey: no such config key .*Check its spelling .*add it as a new key with \+nosuchkey=1",
        via="cli",
    ),
    Case(
        "unknown_experiment",
        ("experiment=nope",),
        r"experiment=nope: no such config \(conf/experiment/nope\.yaml\); experiment is one of "
        r"cnn_baseline, ",
        via="cli",
    ),
    Case(
        "truncated_npz",
        ("data.data_dir={inputs}/truncated.npz",),
        r"truncated\.npz: cannot read as a \.npz file \(BadZipFile: .*\); re-create it",
        base=SEG_NPZ,
        recorded=True,
    ),
    Case(
        "corrupt_npz",
        ("data.data_dir={inputs}/corrupt.npz",),
        r"corrupt\.npz: cannot read as a \.npz file \(\w+: .*\); re-create it",
        base=SEG_NPZ,
        recorded=True,
    ),
    Case(
        "not_a_checkpoint",
        ("train=false", "ckpt_path={inputs}/notes.ckpt"),
        r"ckpt_path=.*notes\.ckpt is not a checkpoint: it is not a file torch\.save wrote",
    ),
    Case(
        "crafted_ckpt_eval",
        ("train=false", "ckpt_path={inputs}/evil.ckpt"),
        r"evil\.ckpt: not a checkpoint visionlab can load as data only \(it holds the pickled Python object "
        r"getattr,",
    ),
    Case(
        "crafted_ckpt_names_its_global",
        ("train=false", "ckpt_path={inputs}/evil_system.ckpt"),
        r"evil_system\.ckpt: not a checkpoint visionlab can load as data only \(it holds the pickled Python "
        r"object "
        r"(posix|nt)\.system,",
    ),
    Case(
        "crafted_ckpt_resume",
        ("ckpt_path={inputs}/evil.ckpt",),
        r"evil\.ckpt: not a checkpoint visionlab can load as data only .*trust_checkpoint=true",
    ),
    Case(
        "other_optimizer_resume",
        ("ckpt_path={inputs}/sgd.ckpt",),
        r"sgd\.ckpt was trained with torch\.optim\.SGD, but this config's optimizer is torch\.optim\.Adam "
        r"\(model\.optimizer\): the saved optimizer state lacks its betas, eps, .*model/optimizer=sgd",
    ),
    Case(
        "other_model_eval",
        ("train=false", "ckpt_path={ckpt}"),
        r"is a checkpoint of experiment 'cnn_synthetic' whose weights do not fit this config's model "
        r"\(experiment 'unet_elu'\): \d+ differ, e\.g\. .*Pass ckpt_path=\S+ alone \(its config\.yaml "
        r"defines the "
        r"model and its inputs\)",
        base=UNET_ON_CNN,
    ),
    Case(
        "foreign_resume",
        ("ckpt_path={ckpt}", "trainer.max_epochs=1", "logger=none"),
        r"is a checkpoint of experiment 'cnn_synthetic' whose weights do not fit",
        base=UNET_ON_CNN,
    ),
    # issue 28, training side
    Case(
        "disk_full_during_checkpoint_save",
        (),
        r"^error: disk full: cannot write \S+/checkpoints/(best|last)\.ckpt \(No space left on device; "
        r"[\d.]+ \w+ "
        r"free\)\. No (best|last)\.ckpt was written\. Free space there, or set paths\.log_dir=<a folder on "
        r"a disk "
        r"with room>\.$",
        recorded=True,
        base=(*QUICK, "logger=none"),
        prepare=hostile.prepare_full_disk,
    ),
    Case(
        "resume_in_a_read_only_run_folder",
        ("ckpt_path={run}/checkpoints/last.ckpt", "paths.output_dir={run}"),
        r"ckpt_path=\S+/read_only_run/checkpoints/last\.ckpt: training continues in its run folder "
        r"\S+/read_only_run, which cannot be written \((Read-only file system|Permission denied): "
        r"\S+/read_only_run\S*\); nothing was changed\. Make the folder writable, or copy it",
        base=(*QUICK, "logger=none", "trainer.max_epochs=2"),
        prepare=hostile.prepare_read_only_run,
    ),
    Case(
        "class_folder_linked_to_root",
        ("data.data_dir={data}",),
        r"^error: \S+/link_to_root/c" + OUTSIDE.format(target="/"),
        recorded=True,
        base=IMAGES,
        prepare=hostile.prepare_class_link_to_root,
    ),
    Case(
        "class_folder_linked_to_usr",
        ("data.data_dir={data}",),
        r"^error: \S+/link_to_usr/c" + OUTSIDE.format(target="/usr"),
        recorded=True,
        base=IMAGES,
        prepare=hostile.prepare_class_link_to_usr,
    ),
    Case(
        "image_linked_outside_the_folder",
        ("data.data_dir={data}",),
        r"^error: \S+/file_link_outside/a/evil\.png" + OUTSIDE.format(target=r"\S+/outside/secret\.png"),
        recorded=True,
        base=IMAGES,
        prepare=hostile.prepare_file_link_outside,
    ),
    Case(
        "image_folder_link_cycle",
        ("data.data_dir={data}",),
        r"^error: \S+/link_cycle/a/loop: a symbolic link to \S+/link_cycle, a folder that holds the link "
        r"itself "
        r"\(a cycle\); remove the link\.$",
        recorded=True,
        base=IMAGES,
        prepare=hostile.prepare_link_cycle,
    ),
    Case(
        "image_folder_unreadable_sub_folder",
        ("data.data_dir={data}",),
        r"^error: \S+/unreadable_folder/a/locked: cannot read this folder \(Permission denied\)\. Make it "
        r"readable, or remove it from the data folder\.$",
        recorded=True,
        base=IMAGES,
        prepare=hostile.prepare_unreadable_folder,
    ),
    Case(
        "text_file_named_npz",
        ("data.data_dir={data}",),
        r"^error: \S+/text_npz/train\.npz: it is not an \.npz archive \(not a zip file as numpy\.savez "
        r"writes\)\. "
        r"Re-create it with numpy\.savez, or remove it\.$",
        recorded=True,
        base=SIGNS_NPZ,
        prepare=hostile.prepare_text_named_npz,
    ),
    Case(
        "npy_file_named_npz",
        ("data.data_dir={data}",),
        r"^error: \S+/npy_npz/train\.npz: it is a single \.npy array, not an \.npz archive",
        recorded=True,
        base=SIGNS_NPZ,
        prepare=hostile.prepare_npy_named_npz,
    ),
    Case(
        "complex_valued_images",
        ("data.data_dir={data}",),
        r"^error: \S+/complex_images/train\.npz: x_train has dtype complex64, expected uint8",
        recorded=True,
        base=SIGNS_NPZ,
        prepare=hostile.prepare_complex_images,
    ),
    Case(
        "complex_valued_track_ids",
        ("data.data_dir={data}",),
        r"^error: \S+/complex_tracks/train\.npz: track_train has dtype complex64, expected integer track ids",
        recorded=True,
        base=SIGNS_NPZ,
        prepare=hostile.prepare_complex_tracks,
    ),
    Case(
        "unet_argument_on_the_cnn",
        ("model.net.features_start=8",),
        r"^error: model\.net\.features_start: a seed_cnn network \(model/net=seed_cnn\) takes no "
        r"'features_start' "
        r"\(it takes activation, batch_norm, width\); features_start is an argument of unet "
        r"\(model/net=unet\)\. "
        r"Remove it or pick another model/net\.$",
        via="cli",
    ),
    Case(
        "own_config_with_a_moved_key",
        ("hydra.searchpath=[file://{conf}]", "experiment=mine"),
        r"^error: model\.width: the network's arguments moved under model\.net .*write model\.net\.width "
        r"instead",
        via="cli",
        prepare=hostile.prepare_own_config_with_moved_key,
    ),
]


def _run_folders(root: Path) -> set[Path]:
    """The run folders under the CLI's log dir and the in-process cases' folder."""
    return {p for p in (*root.glob("logs/runs/*/*"), *root.glob("inprocess/*")) if p.is_dir()}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing_that_exists(world, case, capsys, monkeypatch):
    root, inputs = world["root"], world["inputs"]
    fields = case.prepare(world, monkeypatch) if case.prepare else {}
    args = [a.format(inputs=inputs, ckpt=world["ckpt"], **fields) for a in case.args]
    run_folders = {p.parent for p in root.rglob("summary.json")}
    folders_before = _run_folders(root)
    before = _files(root)
    if case.via == "cli":
        result = cli([*case.base, f"paths.log_dir={root / 'logs'}", *args], root, env=dict(case.env))
        code, stderr, stdout = result.returncode, result.stderr, result.stdout
    else:
        from visionlab.cli.train import _run_reporting_errors

        for name, value in case.env:
            monkeypatch.setenv(name, value)
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
    new_folders = _run_folders(root) - folders_before
    if case.recorded:
        (folder,) = new_folders
        assert [p.relative_to(folder).as_posix() for p in new if p.name == "summary.json"] == ["summary.json"]
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["error"] == errors[0].removeprefix("error: ")
    else:  # refused before anything was written: no folder, no file
        assert new_folders == set() and new == []
    assert not (inputs / "code_ran").exists()


def test_trust_checkpoint_is_the_explicit_opt_in_for_a_checkpoint_holding_objects(world, tmp_path):
    """An otherwise valid checkpoint with one pickled object: refused by default, evaluated when trusted."""
    from visionlab.config.errors import ConfigError
    from visionlab.run.execute import run

    state = torch.load(world["ckpt"], weights_only=True)
    state["note"] = pathlib.PurePosixPath("made/by/an/older/version")
    ckpt = tmp_path / "older.ckpt"
    torch.save(state, ckpt)
    common = [*QUICK, "logger=none", "train=false", f"ckpt_path={ckpt}"]
    with pytest.raises(
        ConfigError, match=r"pickled Python object pathlib\.PurePosixPath.*trust_checkpoint=true"
    ):
        run(compose(tmp_path, common, output="refused"))
    summary = run(compose(tmp_path, [*common, "trust_checkpoint=true"], output="trusted"))
    assert summary["status"] == "completed" and summary["evaluated_checkpoint"] == str(ckpt)


def test_a_crafted_report_config_runs_nothing_and_run_text_stays_text(world, tmp_path):
    """The report builds only visionlab's model classes from plain arguments, and REPORT.md carries no tag."""
    from visionlab.cli.report import main

    markers = [tmp_path / "top_level_ran", tmp_path / "nested_ran"]
    runs = tmp_path / "runs"
    for name, experiment, model in (
        (
            "a",
            "<img src=x onerror=alert(1)>",
            {"_target_": "pathlib.Path.touch", "_args_": [str(markers[0])]},
        ),
        ("b", "cnn_nested", None),
    ):
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
    from visionlab.tracking.wandb.offline import read_records

    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "train.py"),
            *QUICK,
            "trainer.max_epochs=500",
            "callbacks.early_stopping=null",
            f"paths.log_dir={tmp_path}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    # wait for a recorded epoch and its checkpoint (the checkpoint may land a moment after metrics.csv)
    while (
        not (
            list(tmp_path.glob("runs/*/*/metrics.csv"))
            and list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt"))
        )
        and process.poll() is None
        and time.monotonic() < deadline
    ):
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
    from visionlab.record.checkpoint_files import AtomicCheckpointIO

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
    assert np.array_equal(loaded["x_test"], arrays["x_test"]) and np.array_equal(
        loaded["y_test"], arrays["y_test"]
    )
    assert len(loaded["x_train"]) == len(arrays["x_train"])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_checkpoint_naming_files_outside_its_folder_deletes_nothing_and_still_resumes(world, tmp_path):
    """Lightning restores ModelCheckpoint's paths from the checkpoint and later deletes the "previous" last
    and k-th best files they name. A copied run whose last.ckpt names files outside its folder (through
    ``..``) resumes from its weights and continues its epochs; every file outside stays, and the leftover of a
    save killed mid-write goes."""
    from visionlab.run.execute import run

    copy = Path(os.path.realpath(tmp_path)) / "copy"
    shutil.copytree(world["run"], copy)
    victims = copy.parent / "victims"
    victims.mkdir()
    up = "/".join([".."] * len((copy / "checkpoints").parts))

    def outside(name: str) -> str:
        (victims / name).write_text("precious\n")
        return f"{copy}/checkpoints/{up}{victims}/{name}"

    ckpt = copy / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    (key,) = [k for k in state["callbacks"] if k.startswith("ModelCheckpoint{")]
    kth = outside("kth.txt")
    state["callbacks"][key].update(
        dirpath=str(copy / "checkpoints"),
        last_model_path=outside("last.txt"),
        best_model_path=outside("best.txt"),
        best_model_score=torch.tensor(-1.0),
        kth_best_model_path=kth,
        kth_value=torch.tensor(-1.0),
        best_k_models={kth: torch.tensor(-1.0)},
    )
    torch.save(state, ckpt)
    stale = copy / "checkpoints" / f".last.ckpt.{_dead_pid()}.tmp"  # a save killed before its rename
    stale.write_bytes(b"half a checkpoint")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    summary = run(
        compose(
            copy.parent,
            [*QUICK, "logger=none", "seed=7", "trainer.max_epochs=3", f"ckpt_path={ckpt}"],
            output="copy",
        )
    )

    assert sorted(p.name for p in victims.iterdir()) == ["best.txt", "kth.txt", "last.txt"]
    assert all(p.read_text() == "precious\n" for p in victims.iterdir())
    assert summary["status"] == "completed" and summary["epochs"] == 3  # epoch 0 restored, 1 and 2 trained
    assert [int(line.split(",")[0]) for line in (copy / "metrics.csv").read_text().splitlines()[1:]] == [
        0,
        1,
        2,
    ]
    resumed = torch.load(ckpt, weights_only=True)
    assert (
        resumed["epoch"] >= 1 and resumed["global_step"] > state["global_step"]
    )  # saved by the resumed training
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    (saved,) = [v for k, v in resumed["callbacks"].items() if k.startswith("ModelCheckpoint{")]
    paths = [
        saved["last_model_path"],
        saved["best_model_path"],
        saved["kth_best_model_path"],
        *saved["best_k_models"],
    ]
    assert {Path(p).resolve().parent for p in paths} == {copy / "checkpoints"}
    assert summary["evaluated_checkpoint"] == str(copy / "checkpoints" / "best.ckpt")


def test_a_save_removes_what_killed_saves_left_and_makes_its_rename_durable(tmp_path, monkeypatch):
    import stat

    from visionlab.record.checkpoint_files import AtomicCheckpointIO

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    dead, hour_ago = _dead_pid(), time.time() - 3600
    stale = folder / f".last.ckpt.{dead}.tmp"  # killed an hour ago: removed
    recent = (
        folder / f".best.ckpt.{dead}.tmp"
    )  # written just now (e.g. by another machine sharing the folder): kept
    running = folder / f".best.ckpt.{os.getppid()}.tmp"  # its process still runs: kept
    for path in (stale, recent, running):
        path.write_bytes(b"half a checkpoint")
    for path in (stale, running):
        os.utime(path, (hour_ago, hour_ago))
    synced, fsync = [], os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, folder / "last.ckpt")
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.ckpt", recent.name, running.name])
    assert synced == [False, True]  # the file's bytes, then the folder holding its new name
    assert torch.equal(torch.load(folder / "last.ckpt", weights_only=True)["w"], torch.ones(2))


def test_a_run_folder_that_cannot_be_made_is_one_line_naming_it(tmp_path, capsys):
    from visionlab.cli.train import _run_reporting_errors

    (tmp_path / "a_file").write_text("not a folder\n")
    cfg = compose(tmp_path, [*QUICK, "logger=none"], output="a_file/run")
    with pytest.raises(SystemExit) as exited:
        _run_reporting_errors(cfg, multirun=False)
    stderr = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert re.search(
        rf"paths\.log_dir: cannot create the run folder {re.escape(str(tmp_path))}/a_file/run .*"
        r"Set paths\.log_dir=<a folder you can write to>",
        line,
    ), line
    assert (tmp_path / "a_file").read_text() == "not a folder\n"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into a read-only folder"
)
def test_a_read_only_log_dir_is_one_line_from_the_cli(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o555)
    result = cli([*QUICK, "logger=none", f"paths.log_dir={logs}"], tmp_path, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr
    assert f"cannot create the run folder {logs}" in errors[0] and list(logs.iterdir()) == []
