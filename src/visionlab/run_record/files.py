"""Atomic JSON/CSV writers and a numeric CSV reader: a crash never leaves a half-written record behind."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from visionlab.run_record.metric_keys import EPOCH, STEP

INTEGER_COLUMNS = (EPOCH, STEP)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_json(path: Path, data: dict) -> None:
    """Whole or not at all: a write that fails (a full disk) leaves the old file and no temporary behind."""
    tmp = _temporary(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, write) -> None:
    """``write(file)`` fills a temporary file beside ``path`` (same filesystem), flushed to disk, then renamed
    over ``path`` and the rename flushed too: killed at any moment (or on a power cut after it returned), ``path``
    is the old file or the new one, whole, never a truncated one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: Path):
    """Raises FileNotFoundError when absent and ValueError when it is not JSON."""
    return json.loads(path.read_text())


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> None:
    fieldnames = fieldnames or list(dict.fromkeys(k for row in rows for k in row))
    tmp = _temporary(path)
    try:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk: the old file stays, no temporary is left
        tmp.unlink(missing_ok=True)
        raise


def _number(key: str, value: str | None):
    if value in ("", None):
        return None
    try:
        return int(float(value)) if key in INTEGER_COLUMNS else float(value)
    except ValueError:
        return value


def read_csv(path: Path) -> list[dict]:
    """Rows of a numeric CSV (epoch/step as int, other numbers as float, anything else as text)."""
    with path.open(newline="") as fh:
        return [{k: _number(k, v) for k, v in row.items()} for row in csv.DictReader(fh)]
