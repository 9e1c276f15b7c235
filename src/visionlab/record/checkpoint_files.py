"""Checkpoints written whole or not at all: into a temporary file beside the target, then renamed over it and
the rename made durable (Lightning's own writer stages the file in ``TMPDIR``, possibly another filesystem,
and a kill mid-copy left a truncated ``last.ckpt``). A save killed before its rename leaves
``.<name>.<pid>.tmp``: the next save into that folder (and the start of training) removes the ones of
processes that are gone. A save the full disk stops is a ``DiskFullError`` naming the checkpoint (not torch's
"unexpected pos"); the previous one stays whole."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from visionlab.record.disk_full import disk_full_error
from visionlab.record.files import write_bytes
from visionlab.record.layout import LAST_CHECKPOINT

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")  # write_bytes' temporary name: .<name>.<pid>.tmp
STALE_AFTER_S = 60.0  # a temporary untouched this long, of a pid not running here, is a dead save's leftover


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temporaries(folder: Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files that killed saves left in ``folder``: their pid no longer runs and they were
    not written to for ``stale_after_s`` seconds (a save on another machine sharing the folder keeps its file
    fresh). Returns what was removed."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now = time.time()
    for path in entries:
        match = _TEMPORARY.match(path.name)
        if match is None or _running(int(match.group(1))):
            continue
        try:
            if not path.is_file() or now - path.stat().st_mtime < stale_after_s:
                continue
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _what_was_kept(target: Path) -> str:
    """After a failed save of ``target``: the checkpoint that stayed whole, and how to continue from it."""
    kept = f"the previous {target.name} is whole" if target.is_file() else f"no {target.name} was written"
    last = target.with_name(LAST_CHECKPOINT)
    if last.is_file():
        return f"{kept[0].upper()}{kept[1:]}; continue later with ckpt_path={last}"
    return f"{kept[0].upper()}{kept[1:]}"


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(target.parent)
            write_bytes(target, lambda fh: torch.save(checkpoint, fh))
        except Exception as exc:
            if (full := disk_full_error(exc, target, _what_was_kept(target))) is not None:
                raise full from None
            raise
