"""The index of a multirun's jobs (``sweep_index.json`` in the sweep folder): overrides, status, run folder,
headline metrics and error of every job, updated under a file lock as jobs start and finish."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionlab.record import layout
from visionlab.record.files import read_json, write_json


@dataclass
class SweepJob:
    overrides: list[str]
    status: str
    run_dir: str | None
    error: str | None
    index: Path  # the index file the job came from

    @property
    def run_path(self) -> Path | None:
        """The job's run folder, relative paths taken from the sweep folder. A sweep folder copied elsewhere
        (off a cluster or a GPU machine) keeps absolute paths of the machine that ran it: a missing absolute
        path is looked up by its folder name beside the index."""
        if not self.run_dir:
            return None
        path = Path(self.run_dir)
        try:
            if not path.is_absolute():
                return (self.index.parent / path).resolve()
            moved = self.index.parent / path.name
            return moved.resolve() if not path.exists() and moved.is_dir() else path.resolve()
        except (OSError, ValueError):  # a name too long for the file system: no such folder here
            return path


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ended_without_record(job: dict, slurm_alive: set[str] | None = None) -> bool:
    """A "running" job that nothing will record the end of (a process killed with -9, out of memory): a SLURM
    job that SLURM no longer runs or holds (``slurm_alive``: the ids SLURM still has, None when it cannot be
    asked), else a process of this machine that is gone. Other machines' processes are left as they are."""
    if job.get("status") != layout.Status.RUNNING:
        return False
    if slurm_alive is not None and job.get("slurm_job_id"):
        return str(job["slurm_job_id"]) not in slurm_alive
    pid = job.get("pid")
    return (
        job.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and not _process_alive(pid)
    )


KILLED = "its process ended without recording an end (killed, e.g. kill -9 or out of memory)"
# SLURM states of a job that still runs or will run again (a requeued job passes through COMPLETING)
_SLURM_ALIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
}


def _slurm_alive(jobs: list[dict]) -> set[str] | None:
    """Which of the running jobs' SLURM ids SLURM still runs or holds; None when no job has one or SLURM
    cannot be asked here (then the process check applies)."""
    ids = sorted(
        {
            str(job["slurm_job_id"])
            for job in jobs
            if job.get("status") == layout.Status.RUNNING and job.get("slurm_job_id")
        }
    )
    if not ids or shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i %T", "-j", ",".join(ids)],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if (
        out.returncode != 0
    ):  # every id unknown to SLURM (long gone) reads "Invalid job id"; anything else: unsure
        return set() if "invalid job id" in out.stderr.lower() else None
    alive = set()
    for line in out.stdout.splitlines():
        job_id, _, state = line.strip().partition(" ")
        if state.strip() in _SLURM_ALIVE:
            alive.add(job_id)
    return alive


def _mark_killed(jobs: dict, ask_slurm: bool = True) -> None:
    """``ask_slurm``: only where this process is on the sweep's cluster (the sweep command, its jobs); a
    reader elsewhere (a report over a copied sweep) must not ask another cluster about these ids."""
    entries = [job for job in jobs.values() if isinstance(job, dict)]
    alive = _slurm_alive(entries) if ask_slurm else None
    for job in entries:
        if ended_without_record(job, alive):
            cause = (
                f"its SLURM job {job['slurm_job_id']} ended without recording an end (a process killed, e.g. "
                "kill -9 or out of memory); run the sweep again to continue it"
                if alive is not None and job.get("slurm_job_id")
                else KILLED
            )
            job.update(status=layout.Status.INTERRUPTED, error=cause)


def settle_index(path: Path) -> None:
    """Mark the index's running jobs that ended without a record (see ``ended_without_record``), e.g. when the
    sweep command learns that a job died."""
    if not path.is_file():
        return
    with _locked(path):
        try:
            index = read_json(path)
        except (OSError, ValueError):
            return
        if not isinstance(index, dict) or not isinstance(index.get("jobs"), dict):
            return
        _mark_killed(index["jobs"])
        _recount(index)
        write_json(path, index)


def _recount(index: dict) -> None:
    index["counts"] = {}
    for item in index["jobs"].values():
        if isinstance(item, dict):
            index["counts"][item.get("status")] = index["counts"].get(item.get("status"), 0) + 1


def update_index(sweep_dir: Path, job_key: str, entry: dict[str, Any]) -> None:
    """Insert or update one job's entry (a running one with this machine and process, so a reader can tell
    when it was killed), mark jobs whose process died unrecorded, and recount the jobs per status."""
    path = sweep_dir / layout.SWEEP_INDEX
    with _locked(path):
        try:
            index = read_json(path)
        except (OSError, ValueError):
            index = {"jobs": {}}
        if entry.get("status") == layout.Status.RUNNING:
            entry = {**entry, "host": socket.gethostname(), "pid": os.getpid()}
        _mark_killed(index["jobs"])
        job = index["jobs"].setdefault(job_key, {})
        job.update(entry, updated=time.strftime("%Y-%m-%d %H:%M:%S"))
        index["jobs"] = dict(sorted(index["jobs"].items()))
        _recount(index)
        write_json(path, index)


def _job_problem(job) -> str | None:
    """Why an index entry cannot be read as a job (a crafted or damaged index), or None."""
    if not isinstance(job, dict):
        return "not a mapping"
    overrides = job.get("overrides")
    if overrides is not None and not (
        isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)
    ):
        return "overrides is not a list of strings"
    for key in ("status", "run_dir", "error"):
        if job.get(key) is not None and not isinstance(job[key], str):
            return f"{key} is not a string"
    if "\x00" in (job.get("run_dir") or ""):
        return "run_dir is not a path"
    return None


def read_index(path: Path, problems: list[str] | None = None) -> list[SweepJob]:
    """The jobs of one index file: a list, or a mapping from job key (raises ValueError when it is neither;
    the file is read through ``files.read_bounded`` inside its own folder). An entry of the wrong shape is
    left out, with a line naming it appended to ``problems``."""
    data = read_json(path, path.parent)
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if isinstance(jobs, dict):  # keyed by Hydra job number or folder name
        keys = sorted(jobs, key=lambda k: (len(str(k)), str(k)))
        jobs = [jobs[key] for key in keys]
    elif isinstance(jobs, list):
        keys = list(range(len(jobs)))
    else:
        raise ValueError(f"{path.name}: not a list of jobs")
    kept = []
    for key, job in zip(keys, jobs):
        why = _job_problem(job)
        if why is None:
            kept.append(job)
        elif problems is not None:
            problems.append(f"{path.name}: job {str(key)[:40]} skipped: {why}")
    _mark_killed(
        dict(enumerate(kept)), ask_slurm=False
    )  # on the copies read here; the file is corrected by the next update
    return [
        SweepJob(
            list(job.get("overrides") or []),
            str(job.get("status") or layout.Status.UNKNOWN),
            job.get("run_dir"),
            job.get("error"),
            path,
        )
        for job in kept
    ]


def find_indexes(root: Path) -> list[Path]:
    return sorted(root.rglob(layout.SWEEP_INDEX))
