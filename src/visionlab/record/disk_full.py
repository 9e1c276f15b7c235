"""A full disk said as such: one line naming the file that could not be written, the room left and what was
kept.

A disk that fills up mid-save surfaces deep inside a library: torch's zip writer answers the ``OSError: [Errno
28]`` of its file with ``RuntimeError: [enforce fail at inline_container.cc:672] unexpected pos …``, which
never says the disk is full. ``no_space`` finds the ENOSPC (or EDQUOT, a full quota) anywhere in an
exception's chain, and ``disk_full_error`` turns it into a ``DiskFullError`` (a user error: one line, exit
code 2, the run recorded as "failed" with that line as its cause)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from visionlab.config.errors import DiskFullError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
ADVICE = "Free space there, or set paths.log_dir=<a folder on a disk with room>"


def no_space(exc: BaseException | None) -> OSError | None:
    """The OSError saying the disk or quota is full, wherever it is in ``exc``'s chain (cause or context)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _room(path: Path) -> str:
    """How much is free on the disk holding ``path`` (its nearest existing folder), e.g. '312 KB free'."""
    for folder in (path, *path.parents):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
            if free >= size:
                return f"{free / size:.3g} {unit} free"
        return f"{free} bytes free"
    return "free space unknown"


def disk_full_error(
    exc: BaseException,
    path: str | os.PathLike | None = None,
    kept: str = "",
    folder: str | os.PathLike | None = None,
) -> DiskFullError | None:
    """The one-line error for ``exc`` when a full disk caused it (else None): ``path`` (or the file the
    OSError names, or else ``folder``, where the write went) could not be written; ``kept`` says what stayed
    whole."""
    full = no_space(exc)
    if full is None:
        return None
    if isinstance(exc, DiskFullError):
        return exc
    reason = full.strerror or os.strerror(full.errno)
    if path is not None or full.filename:
        where = Path(path if path is not None else full.filename)
        message = f"disk full: cannot write {where} ({reason}; {_room(where.parent)})."
    else:  # a write that names no file (a file object's write): say where it went
        where = Path(folder if folder is not None else ".").absolute()
        message = f"disk full: cannot write into {where} ({reason}; {_room(where)})."
    if kept:
        message += f" {kept}."
    return DiskFullError(f"{message} {ADVICE}.")
