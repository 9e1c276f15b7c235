"""Checkpoints written whole or not at all: into a temporary file beside the target, then renamed over it
(Lightning's own writer stages the file in ``TMPDIR``, possibly another filesystem, and a kill mid-copy left a
truncated ``last.ckpt``)."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from visionlab.run_record.files import write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, lambda fh: torch.save(checkpoint, fh))
