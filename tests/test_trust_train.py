"""Training-side trust of issue 28 beyond the bad-input table (``test_trust.CASES``): what a full disk leaves,
how much memory one huge 16-bit image costs, and what the symbolic-link policy of image folders lets
through."""

from __future__ import annotations

import errno
import json
import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import trust_train_inputs as hostile
from helpers import compose
from test_trust import QUICK


def test_a_checkpoint_save_on_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    from visionlab.config.errors import DiskFullError
    from visionlab.record.checkpoint_files import AtomicCheckpointIO

    folder = tmp_path / "checkpoints"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, folder / "last.ckpt")
    hostile.full_disk_saves(monkeypatch, room=100)
    with pytest.raises(DiskFullError) as refused:
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(1000)}, folder / "last.ckpt")
    monkeypatch.undo()
    message = str(refused.value)
    assert re.fullmatch(
        rf"disk full: cannot write {re.escape(str(folder))}/last\.ckpt \(No space left on device; "
        r"[\d.]+ \w+ free\)\. The previous last\.ckpt is whole; continue later with "
        rf"ckpt_path={re.escape(str(folder))}/last\.ckpt\. Free space there, or set "
        r"paths\.log_dir=<a folder on a disk with room>\.",
        message,
    ), message
    assert "unexpected pos" not in message and refused.value.__cause__ is None
    assert torch.equal(torch.load(folder / "last.ckpt", weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]  # the half-written temporary is gone


def test_a_quota_exceeded_is_a_full_disk_too(tmp_path):
    from visionlab.record.disk_full import disk_full_error

    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "metrics.csv"))
    wrapped = RuntimeError("a library's own words")
    wrapped.__context__ = quota  # raised while handling it, the way torch's zip writer answers a failed write
    full = disk_full_error(wrapped)
    assert full is not None and str(full).startswith(f"disk full: cannot write {tmp_path / 'metrics.csv'} (")
    assert disk_full_error(RuntimeError("unrelated")) is None


def test_when_even_summary_json_cannot_be_written_the_one_line_says_so(tmp_path, monkeypatch, capsys):
    """The disk fills during the checkpoint save and stays full: no summary.json, no temporary left behind,
    and the line says both the checkpoint and the record were not written (exit code 2, no traceback)."""
    from visionlab.cli.train import _run_reporting_errors
    from visionlab.record import files

    hostile.full_disk_saves(monkeypatch)
    write_text = Path.write_text

    def full_for_the_summary(path, text, *args, **kwargs):
        if path.name == ".summary.json.tmp":
            write_text(path, text[:10], *args, **kwargs)  # a part lands, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, text, *args, **kwargs)

    monkeypatch.setattr(files.Path, "write_text", full_for_the_summary)
    cfg = compose(tmp_path, [*QUICK, "logger=none"], output="run")
    with pytest.raises(SystemExit) as exited:
        _run_reporting_errors(cfg, multirun=False)
    monkeypatch.undo()
    stderr = capsys.readouterr().err
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert exited.value.code == 2 and "Traceback" not in stderr
    run = tmp_path / "run"
    assert re.fullmatch(
        rf"error: disk full: cannot write {re.escape(str(run))}/checkpoints/(best|last)\.ckpt .*"
        rf"Its summary\.json was not written either, so {re.escape(str(run))} does not record "
        r"this attempt\.",
        line,
    ), line
    assert not (run / "summary.json").exists() and not list(run.glob(".*.tmp"))
    assert not list((run / "checkpoints").iterdir())


def test_a_run_completed_on_a_full_disk_still_records_failed_with_the_cause(tmp_path, monkeypatch):
    """What the table checks in one line, read back from the record: the status, the cause, no library
    text."""
    from visionlab.config.errors import DiskFullError
    from visionlab.run.execute import run

    hostile.full_disk_saves(monkeypatch)
    with pytest.raises(DiskFullError):
        run(compose(tmp_path, [*QUICK, "logger=none"], output="run"))
    monkeypatch.undo()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("disk full: cannot write ")
    assert "inline_container" not in summary["error"] and "RuntimeError" not in summary["error"]


def _sixteen_bit_png(path: Path, side: int) -> Path:
    """Left half 0, right half 40000 (the maximum): 8-bit grey 0 and 255 after scaling."""
    array = np.zeros((side, side), np.uint16)
    array[:, side // 2 :] = 40000
    Image.fromarray(array).save(path, compress_level=1)
    return path


def test_a_huge_16_bit_image_is_reduced_while_decoded_in_bounded_memory(tmp_path):
    """A 4000×4000 16-bit PNG (decoded by Pillow: 32 MB): the float64 work beyond it used to be three
    full-size copies (3 × 128 MB); reduced in strips it is a few MB (numpy's allocations, as tracemalloc sees
    them)."""
    from visionlab.data.classification.folders import STRIP_PIXELS, decode

    path = _sixteen_bit_png(tmp_path / "big.png", 4000)
    tracemalloc.start()
    try:
        image = decode(path, 32, 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * STRIP_PIXELS * 8, (
        f"{peak / 2**20:.0f} MB"
    )  # a strip in float64, its mean, the small result
    assert image.shape == (32, 32, 1)
    assert (image[:, :15] == 0).all() and (image[:, 17:] == 255).all()


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_a_small_16_bit_image_decodes_as_before(tmp_path, mode):
    """Below 4× the target size nothing is reduced first: value / maximum × 255, then the antialiased resize;
    in either byte order (Pillow's getextrema refuses I;16B)."""
    from visionlab.data.classification.folders import decode

    array = np.random.default_rng(0).integers(0, 65535, (60, 50), dtype=np.uint16)
    raw = array.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
    Image.frombytes(mode, (50, 60), raw).save(tmp_path / "small.tif")
    assert Image.open(tmp_path / "small.tif").mode == mode
    scaled = Image.fromarray(np.clip(array / array.max() * 255.0, 0, 255).astype(np.uint8))
    expected = np.asarray(ImageOps.fit(scaled, (32, 32), method=Image.Resampling.BILINEAR))[..., None]
    assert np.array_equal(decode(tmp_path / "small.tif", 32, 1), expected)


def _two_classes(root: Path) -> Path:
    for label in ("a", "b"):
        for i in range(2):
            hostile.png(root / label / f"{label}_{i}.png", seed=i)
    return root


def test_links_inside_the_folder_are_followed_and_outside_ones_only_with_the_flag(tmp_path):
    from visionlab.config.errors import DataError
    from visionlab.data.classification.folders import load_image_folder

    data = _two_classes(tmp_path / "data")
    (data / "a" / "also_b").symlink_to(data / "b")  # inside: followed
    outside = hostile.png(tmp_path / "elsewhere" / "x.png", seed=5)
    arrays = load_image_folder(data, tmp_path / "cache", 16, 3)
    assert sorted(arrays["files_train"].tolist()) == [
        "a/a_0.png",
        "a/a_1.png",
        "a/also_b/b_0.png",
        "a/also_b/b_1.png",
        "b/b_0.png",
        "b/b_1.png",
    ]
    (data / "b" / "x.png").symlink_to(outside)
    with pytest.raises(DataError, match=rf"^{re.escape(str(data / 'b' / 'x.png'))}: a symbolic link to "):
        load_image_folder(data, tmp_path / "cache", 16, 3)
    followed = load_image_folder(data, tmp_path / "cache", 16, 3, follow_symlinks=True)
    files = followed["files_train"].tolist()
    assert {"b/x.png", "a/also_b/x.png"} <= set(files) and len(files) == 8


def test_follow_symlinks_is_a_config_key_checked_as_a_boolean(tmp_path):
    from visionlab.config.errors import ConfigError
    from visionlab.run.execute import run

    data = _two_classes(tmp_path / "data")
    with pytest.raises(
        ConfigError, match=r"data\.follow_symlinks='yes' is not valid: expected true or false"
    ):
        run(
            compose(
                tmp_path,
                ["data=image_folder", f"data.data_dir={data}", "data.follow_symlinks=yes", "logger=none"],
                output="refused",
            )
        )
    assert not (tmp_path / "refused").exists()


def test_a_job_that_would_continue_its_unfinished_run_in_a_read_only_folder_is_one_line(
    tmp_path, monkeypatch, capsys
):
    """A sweep job run again (or a requeued SLURM job) continues the unfinished run in its folder: checked
    before the first log line would open train.log there."""
    from visionlab.cli.train import _continue_unfinished

    folder = tmp_path / "job"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"an unfinished run's checkpoint")
    (folder / "summary.json").write_text('{"status": "interrupted"}')
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    hostile.read_only(folder, monkeypatch)
    with pytest.raises(SystemExit) as exited:
        _continue_unfinished(
            compose(tmp_path, [*QUICK, "logger=none"], output="job"),
            str(folder / "checkpoints" / "last.ckpt"),
        )
    stderr = capsys.readouterr().err
    (line,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert exited.value.code == 2 and "Traceback" not in stderr
    assert line.startswith(
        f"error: this job continues the unfinished run in {folder} (from {folder}/checkpoints/"
        "last.ckpt), but that folder cannot be written ("
    )
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
