"""OmegaConf resolvers used by the configs; importing this module registers them (idempotent)."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import time
from pathlib import Path

from omegaconf import OmegaConf

from visionlab.run_record.resume import run_folder_to_resume


@functools.cache
def run_dir(log_dir: str, experiment: str, ckpt_path: str | None = None, train: bool = True) -> str:
    """A fresh, unique run folder, or the original folder when resuming training from one of its checkpoints.

    Timestamp plus pid plus random suffix, so two runs started in the same second never collide. Cached so
    the value is stable within a process.
    """
    if (folder := run_folder_to_resume(ckpt_path, train)) is not None:
        return str(folder)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    while True:  # 32 random bits (16 collided once in 20 same-second calls) and never a folder that exists
        folder = Path(log_dir) / "runs" / experiment / f"{stamp}_{os.getpid()}_{secrets.token_hex(4)}"
        if not folder.exists():
            return str(folder)


_PLAIN = re.compile(r"[A-Za-z0-9=,._+\-@:]")


def job_dir(override_dirname: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides, one folder per job and stable across re-runs (so a re-run
    finds its jobs): experiment and seed first for readability. A name that is too long or holds any other
    character (a path separator, a space) keeps a readable prefix and ends with ``__`` and a hash of the full
    overrides; a plain name never holds ``__``, so two jobs never map to one folder."""
    if not override_dirname:
        return "default"
    first = ("experiment=", "seed=")
    items = override_dirname.split(",")
    items.sort(key=lambda item: next((i for i, p in enumerate(first) if item.startswith(p)), len(first)))
    name = ",".join(items)
    if len(name) <= limit and "__" not in name and all(_PLAIN.fullmatch(c) for c in name):
        return name
    readable = "".join(c if _PLAIN.fullmatch(c) else "_" for c in name)[: limit - 12]
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
    return f"{readable}__{digest}"


def register() -> None:
    if not OmegaConf.has_resolver("vl.run_dir"):
        OmegaConf.register_new_resolver("vl.run_dir", run_dir)
    if not OmegaConf.has_resolver("vl.cwd"):  # usable before Hydra sets its runtime (e.g. in hydra.sweep.dir)
        OmegaConf.register_new_resolver("vl.cwd", os.getcwd)
    if not OmegaConf.has_resolver("vl.job_dir"):
        OmegaConf.register_new_resolver("vl.job_dir", job_dir)


register()
