"""Read back what W&B wrote offline (``run-*.wandb``), to check what a run really logged without a server, and
find a run's ``offline-run-*`` folders (what ``wandb sync`` uploads).

The file is a LevelDB-style log (32 KiB blocks of length-prefixed chunks) of ``wandb_internal_pb2.Record``
protobufs; wandb ships no reader for it any more, so this is a small one.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

HEADER = 7  # ":W&B" + magic (2 bytes) + version
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> Iterator[bytes]:
    pos, pending = HEADER, b""
    while pos + 7 <= len(data):
        block_left = BLOCK - pos % BLOCK
        if block_left < 7:  # trailer padding at a block end
            pos += block_left
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        payload = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = payload
        elif kind == MIDDLE:
            pending += payload
        elif kind == LAST:
            yield pending + payload
            pending = b""
        else:  # zero padding
            pos += block_left - 7 - length if kind == 0 else 0


def read_records(path: str | Path) -> Iterator:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B transaction log")
    for chunk in _chunks(data):
        record = pb.Record()
        record.ParseFromString(chunk)
        yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(run_dir: str | Path) -> dict:
    """``{"config": {...}, "history": [rows], "summary": {...}, "exited": bool}`` from an ``offline-run-*``
    folder (``exited``: W&B wrote the run's final ``exit`` record; its service process may write the file
    after ``wandb.finish`` returned)."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no run-*.wandb file")
    config: dict = {}
    history: list[dict] = []
    summary: dict = {}
    exited = False
    for record in read_records(files[0]):
        kind = record.WhichOneof("record_type")
        exited = exited or kind == "exit"
        if kind == "config":
            for item in record.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
    return {"config": config, "history": history, "summary": summary, "exited": exited}


def last_step(run_dir: str | Path) -> int | None:
    """The last history step an ``offline-run-*`` folder holds (None when it holds none or cannot be read)."""
    steps = []
    for path in sorted(Path(run_dir).glob("run-*.wandb")):
        try:
            steps += [
                record.history.step.num
                for record in read_records(path)
                if record.WhichOneof("record_type") == "history"
            ]
        except Exception:  # noqa: BLE001, S112 - a file cut short by a killed process: use what else there is
            continue
    return max(steps) if steps else None


def offline_run_dirs(logger) -> list[Path]:
    """Every ``offline-run-*`` folder of this W&B run in its save folder, oldest first: a resumed run writes
    one per process, and ``wandb sync`` needs them all."""
    current = offline_run_dir(logger)
    if current is None:
        return []
    return sorted({current, *current.parent.glob(f"offline-run-*-{logger.experiment.id}")})


def offline_run_dir(logger) -> Path | None:
    """The ``offline-run-*`` folder that ``wandb sync`` uploads, for an offline WandbLogger."""
    run = getattr(logger, "_experiment", None)
    if run is None or not getattr(run, "dir", None):
        return None
    folder = Path(run.dir).parent
    return folder if folder.name.startswith("offline-run") else None
