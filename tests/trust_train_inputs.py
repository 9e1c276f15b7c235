"""Hostile training inputs of issue 28 for the bad-input table (``test_trust.CASES``): each ``prepare_*``
makes its input under the table's ``inputs`` folder (or simulates a condition with ``monkeypatch``) and
returns the extra ``{name}`` fields its case's arguments use.

Two conditions cannot be made for real in a test: a full disk (``full_disk_saves``: the checkpoint's file
object raises ENOSPC part-way, the way a full disk makes torch's zip writer fail, with its own "unexpected
pos" error) and, when the tests run as root, a folder that cannot be written or read (root writes and reads
through any mode bits; then the file system's refusal is simulated where visionlab asks for it, and each
function says so)."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class FullDisk(io.RawIOBase):
    """A file object over ``fh`` that takes ``room`` bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, fh, room: int):
        super().__init__()
        self.fh, self.room = fh, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)


def full_disk_saves(monkeypatch, room: int = 4096) -> None:
    """Every torch.save into a file object hits a full disk after ``room`` bytes."""
    save = torch.save

    def save_on_a_full_disk(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            return save(obj, f, *args, **kwargs)
        return save(obj, FullDisk(f, room), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)


def prepare_full_disk(world: dict, monkeypatch) -> dict:
    full_disk_saves(monkeypatch)
    return {}


def _copy_interrupted(world: dict, name: str) -> Path:
    """A copy of the table's completed run that says it was interrupted (training continues in its folder)."""
    copy = world["inputs"] / name
    if not copy.exists():
        shutil.copytree(world["run"], copy)
        summary = json.loads((copy / "summary.json").read_text())
        summary["status"] = "interrupted"
        (copy / "summary.json").write_text(json.dumps(summary))
    return copy


def read_only(folder: Path, monkeypatch) -> None:
    """``folder`` cannot be written: read-only modes; as root (who writes through them) the file system's
    refusal (EROFS, as on a read-only mount) is simulated for temporary files created in that folder, which is
    how visionlab asks before it writes there."""
    if IS_ROOT:
        mkstemp = tempfile.mkstemp

        def read_only_mount(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
            return mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", read_only_mount)
    else:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)


def prepare_read_only_run(world: dict, monkeypatch) -> dict:
    copy = _copy_interrupted(world, "read_only_run")
    read_only(copy, monkeypatch)
    return {"run": copy}


def png(path: Path, size: int = 24, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def image_folder(world: dict, name: str) -> Path:
    """Two classes of two small images each, under ``inputs/<name>`` (made afresh)."""
    folder = world["inputs"] / name
    shutil.rmtree(folder, ignore_errors=True)
    for label in ("a", "b"):
        for i in range(2):
            png(folder / label / f"{label}_{i}.png", seed=i)
    return folder


def prepare_class_link_to_root(world: dict, monkeypatch) -> dict:
    folder = image_folder(world, "link_to_root")
    (folder / "c").symlink_to("/")
    return {"data": folder}


def prepare_class_link_to_usr(world: dict, monkeypatch) -> dict:
    folder = image_folder(world, "link_to_usr")
    (folder / "c").symlink_to("/usr")
    return {"data": folder}


def prepare_file_link_outside(world: dict, monkeypatch) -> dict:
    folder = image_folder(world, "file_link_outside")
    outside = png(world["inputs"] / "outside" / "secret.png", seed=7)
    (folder / "a" / "evil.png").symlink_to(outside)
    return {"data": folder}


def prepare_link_cycle(world: dict, monkeypatch) -> dict:
    folder = image_folder(world, "link_cycle")
    (folder / "a" / "loop").symlink_to(folder)
    return {"data": folder}


def prepare_unreadable_folder(world: dict, monkeypatch) -> dict:
    """A sub-folder of a class that cannot be listed: mode 000; as root (who lists it anyway) the
    PermissionError the listing would get is simulated."""
    folder = image_folder(world, "unreadable_folder")
    locked = folder / "a" / "locked"
    png(locked / "x.png")
    if IS_ROOT:
        scandir = os.scandir

        def permission_denied(path="."):
            if Path(path) == locked:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return scandir(path)

        monkeypatch.setattr(os, "scandir", permission_denied)
    else:
        locked.chmod(0)
    return {"data": folder}


def _signs(kind: str) -> dict[str, np.ndarray]:
    from visionlab.data.classification.synthetic import make_synthetic_signs

    arrays = make_synthetic_signs(seed=3, tracks_per_class=2, frames_per_track=2, test_tracks_per_class=1)
    arrays = {key: arrays[key] for key in ("x_train", "y_train", "track_train")}
    if kind == "complex_images":
        arrays["x_train"] = arrays["x_train"].astype(np.complex64) + 1j
    if kind == "complex_tracks":
        arrays["track_train"] = arrays["track_train"].astype(np.complex64) + 1j
    return arrays


def _npz_folder(world: dict, name: str) -> Path:
    folder = world["inputs"] / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def prepare_text_named_npz(world: dict, monkeypatch) -> dict:
    folder = _npz_folder(world, "text_npz")
    (folder / "train.npz").write_text("x_train,y_train\n1,2\n")
    return {"data": folder}


def prepare_npy_named_npz(world: dict, monkeypatch) -> dict:
    folder = _npz_folder(world, "npy_npz")
    with (folder / "train.npz").open("wb") as fh:
        np.save(fh, _signs("")["x_train"])
    return {"data": folder}


def prepare_complex_images(world: dict, monkeypatch) -> dict:
    folder = _npz_folder(world, "complex_images")
    np.savez(folder / "train.npz", **_signs("complex_images"))
    return {"data": folder}


def prepare_complex_tracks(world: dict, monkeypatch) -> dict:
    folder = _npz_folder(world, "complex_tracks")
    np.savez(folder / "train.npz", **_signs("complex_tracks"))
    return {"data": folder}


def prepare_own_config_with_moved_key(world: dict, monkeypatch) -> dict:
    """The user's own experiment config of an earlier version: the network's width directly under model."""
    conf = world["inputs"] / "own_conf"
    (conf / "experiment").mkdir(parents=True, exist_ok=True)
    (conf / "experiment" / "mine.yaml").write_text("# @package _global_\nmodel:\n  width: 0.5\n")
    return {"conf": conf}
