"""OmegaConf resolvers used by the configs; importing this module registers them (idempotent)."""

from __future__ import annotations

import functools
import hashlib
import os
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
    return str(Path(log_dir) / "runs" / experiment / f"{stamp}_{os.getpid()}{secrets.token_hex(2)}")


def job_dir(override_dirname: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides (stable across re-runs, so a re-run finds its jobs):
    experiment and seed first for readability, shortened with a hash of the full string when too long."""
    if not override_dirname:
        return "default"
    first = ("experiment=", "seed=")
    items = override_dirname.split(",")
    items.sort(key=lambda item: next((i for i, p in enumerate(first) if item.startswith(p)), len(first)))
    name = ",".join(items).replace("/", "_")  # path values must not create sub-folders
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
    return f"{name[: limit - 12]}__{digest}"


def register() -> None:
    if not OmegaConf.has_resolver("vl.run_dir"):
        OmegaConf.register_new_resolver("vl.run_dir", run_dir)
    if not OmegaConf.has_resolver("vl.cwd"):  # usable before Hydra sets its runtime (e.g. in hydra.sweep.dir)
        OmegaConf.register_new_resolver("vl.cwd", os.getcwd)
    if not OmegaConf.has_resolver("vl.job_dir"):
        OmegaConf.register_new_resolver("vl.job_dir", job_dir)


register()
