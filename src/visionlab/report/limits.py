"""Bounds on what a run record can make the report read or allocate (a run folder is input, possibly crafted).

Every record file is read through ``run_record.files.read_bounded`` (the one reader), which enforces:

- only regular files whose real path is inside their run folder (no link out of it, no FIFO, no device);
- text files (summary.json, config.yaml, metrics.csv, per-case and confusion CSVs): at most
  ``MAX_TEXT_BYTES``, counted on what is read;
- ``.npz`` arrays: their headers are read first, and the arrays are loaded only when all of them together hold
  at most ``MAX_ARRAY_BYTES`` once uncompressed (a few KB of compressed zeros can unpack to gigabytes);
- JSON and YAML at most ``files.MAX_DEPTH`` levels deep; a config at most ``MAX_CONFIG_NODES`` entries (YAML
  aliases can make a small file an exponentially large tree);
- architecture cards are built on PyTorch's meta device from an allow-listed, bounded spec (``arch_card``).

A run with a file refused by these bounds is skipped, named on the page with the file and why; a file read
later (a confusion matrix, an .npz) that turns out malformed is a problem of its run, and the rest of the
report is written."""

from __future__ import annotations

from visionlab.record.files import (  # noqa: F401 - the bounds, in one place for the report
    MAX_ARRAY_BYTES,
    MAX_DEPTH,
    MAX_NPZ_MEMBERS,
    RefusedFile,
    TooLarge,
)
from visionlab.record.files import MAX_RECORD_BYTES as MAX_TEXT_BYTES  # noqa: F401

MAX_CONFIG_NODES = 20_000
