"""Bounds on what a run record can make the report read or allocate (a run folder is input, possibly crafted).

- text files (summary.json, config.yaml, metrics.csv, per-case and confusion CSVs): at most ``MAX_TEXT_BYTES``;
- ``.npz`` arrays: their headers are read first, and the arrays are loaded only when all of them together hold
  at most ``MAX_ARRAY_BYTES`` once uncompressed (a few KB of compressed zeros can unpack to gigabytes);
- a config is walked at most ``MAX_CONFIG_NODES`` nodes deep and wide (YAML aliases can make a small file an
  exponentially large tree);
- architecture cards are built on PyTorch's meta device from bounded arguments (``arch_card.MODEL_LIMITS``).

A file over a bound is reported as a problem of its run, and the rest of the report is written.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

MAX_TEXT_BYTES = 16 * 2**20
MAX_ARRAY_BYTES = 64 * 2**20
MAX_NPZ_MEMBERS = 48  # qualitative.npz: 5 cases × up to 7 fields (K classes add the source and the image's mIoU)
MAX_CONFIG_NODES = 20_000


class TooLarge(ValueError):
    """A run-record file over the report's bounds."""


def check_text(path: Path, limit: int = MAX_TEXT_BYTES) -> None:
    """Raise ``TooLarge`` for a file of more than ``limit`` bytes (an absent file passes: the reader says so)."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return
    if size > limit:
        raise TooLarge(f"{Path(path).name} is {size:,} bytes, more than the {limit:,} the report reads")


def check_npz(path: Path, limit: int = MAX_ARRAY_BYTES) -> None:
    """Raise ``TooLarge`` when the arrays of an .npz would need more than ``limit`` bytes, or ``ValueError`` when
    it is not a plain .npz of numeric arrays; only the archive's directory and each array's header are read."""
    path = Path(path)
    if not path.is_file():
        return
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise TooLarge(f"{path.name} holds {len(members)} arrays, more than {MAX_NPZ_MEMBERS}")
            for info in members:
                with archive.open(info) as stream:
                    version = np.lib.format.read_magic(stream)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = reader(stream)
                if dtype.hasobject:
                    raise ValueError(f"{path.name}: {info.filename} holds Python objects, not numbers")
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                if total > limit:
                    raise TooLarge(f"{path.name} unpacks to more than the {limit:,} bytes the report reads")
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path.name}: not an .npz archive: {exc}") from exc


def check_file(path: Path) -> None:
    (check_npz if Path(path).suffix == ".npz" else check_text)(path)


def config_within_bounds(node, limit: int = MAX_CONFIG_NODES) -> bool:
    """Whether walking ``node`` (dicts and lists, aliases counted each time they are reached) visits at most
    ``limit`` nodes; stops counting as soon as it has seen more."""
    stack, seen = [node], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
