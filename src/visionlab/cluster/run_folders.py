"""Where a run's folder is: the policy, in one place. Hydra asks for it while composing (``hydra.run.dir``
interpolates ``${vl.run_dir:...}``, ``hydra.sweep.subdir`` ``${vl.job_dir:...}``, registered in
``cli.resolvers``), so it is known before the run's checks; under SLURM it follows the job, so every rank of a
job and a job SLURM restarts find the same folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import time
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+\-@]")


def folder_name(text: str) -> str:
    """User text (an experiment name) as one safe path component: no separators, no ``..``, no hidden name."""
    name = _UNSAFE.sub("_", str(text)).lstrip(".") or "run"
    return name[:120]


@functools.cache
def run_dir(log_dir: str, experiment: str, ckpt_path: str | None = None, train: bool = True) -> str:
    """A fresh, unique run folder under ``<log_dir>/runs/<experiment>``, or the original folder when resuming
    training from one of its checkpoints.

    Under SLURM the name comes from the job (``slurm-<job>[.<step>]``): every rank of a multi-task job names
    the same folder, and a job SLURM restarts (requeue, preemption) finds its own and continues it. Elsewhere:
    timestamp plus pid plus random suffix, so two runs started in the same second never collide. Cached so the
    value is stable within a process."""
    from visionlab.record.resume import run_folder_to_resume  # imported here: it takes numpy, --help need not

    if (folder := run_folder_to_resume(ckpt_path, train)) is not None:
        return str(folder)
    parent = Path(log_dir) / "runs" / folder_name(experiment)
    if (name := slurm_run_name()) is not None:
        folder = parent / name
        restarted = int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0
        if restarted or int(os.environ.get("SLURM_NTASKS") or 1) > 1 or not folder.exists():
            return str(folder)
        for n in range(2, 10_000):  # another run of the same experiment earlier in this job step
            if not (candidate := parent / f"{name}-{n}").exists():
                return str(candidate)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    while True:  # 32 random bits (16 collided once in 20 same-second calls) and never a folder that exists
        folder = parent / f"{stamp}_{os.getpid()}_{secrets.token_hex(4)}"
        if not folder.exists():
            return str(folder)


def slurm_run_name() -> str | None:
    """``slurm-<job id>[_<array task>][.<step>]`` inside a SLURM job (batch or srun step), else None."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job or not job.isdigit():
        return None
    if (array := os.environ.get("SLURM_ARRAY_JOB_ID")) and array.isdigit():
        job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    step = os.environ.get("SLURM_STEP_ID", "")
    suffix = f".{step}" if step.isdigit() and int(step) < 0xFFFFFFF0 else ""  # batch/extern steps: none
    return f"slurm-{job}{suffix}"


_PLAIN = re.compile(r"[A-Za-z0-9=,._+\-@:]")


def job_dir(override_dirname: str, sweep_dir: str | None = None, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides, one folder per job and stable across re-runs (so a re-run
    finds its jobs): experiment and seed first for readability. A name that is too long or holds any other
    character (a path separator, a space) keeps a readable prefix and ends with ``__`` and a hash of the full
    overrides; a plain name never holds ``__``, so two jobs never map to one folder. The shortened name keeps
    experiment and seed, then the short plain overrides (the ones a sweep varies, e.g.
    ``model.optimizer.lr=0.01``) before long or path-like ones.

    ``sweep_dir``: where the sweep's job folders are. A job whose hashed folder an earlier version named
    differently (the readable prefix changed; the hash did not) is found there by its hash, so a sweep started
    before an upgrade resumes its jobs instead of starting them again."""
    name = _job_name(override_dirname, limit)
    digest = name.rpartition("__")[2] if "__" in name else None
    if digest and sweep_dir and not (Path(sweep_dir) / name).exists():
        earlier = [p.name for p in Path(sweep_dir).glob(f"*__{digest}") if p.is_dir()]
        if len(earlier) == 1:
            return earlier[0]
    return name


def _job_name(override_dirname: str, limit: int) -> str:
    if not override_dirname:
        return "default"
    first = ("experiment=", "seed=")
    items = override_dirname.split(",")

    def rank(item: str) -> int:
        return next((i for i, p in enumerate(first) if item.startswith(p)), len(first))

    items.sort(key=rank)
    name = ",".join(items)
    if len(name) <= limit and "__" not in name and all(_PLAIN.fullmatch(c) for c in name):
        return name

    # shortened: the short plain overrides first (what a sweep varies, lr=0.01, is rarely a path or a long
    # text), so the name still shows them; the hash of all the overrides tells the jobs apart
    def plain(item: str) -> bool:
        return all(_PLAIN.fullmatch(c) for c in item)

    ordered = sorted(items, key=lambda item: (rank(item), not plain(item), len(item)))
    shown = ",".join(_without_parent_folders(item) for item in ordered)
    readable = "".join(c if _PLAIN.fullmatch(c) else "_" for c in shown)[: limit - 12]
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
    return f"{readable}__{digest}"


def _without_parent_folders(item: str) -> str:
    """``data.data_dir=/home/ana/data/camvid`` → ``data.data_dir=camvid``: the folder name shows what the job
    used, not where it lay on one machine (a study's committed folders would otherwise carry the author's home
    path); the hash of the full overrides still tells two ``camvid`` folders apart."""
    key, sep, value = item.partition("=")
    if not sep or "/" not in value:
        return item
    return f"{key}={value.rstrip('/').rsplit('/', 1)[-1] or value}"
