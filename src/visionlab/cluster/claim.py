"""A run folder is run by one process at a time. A sweep job claims its folder before it runs, so the same
sweep started twice at once runs each job once: the second process waits for the first to finish that job,
then skips it (its record is complete) or runs it. A single run that continues a folder (a resume) takes the
same lock, and a second resume of that folder is refused at once, naming the process that holds it."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from visionlab.record import layout
from visionlab.record.folder import RunFolder

log = logging.getLogger(__name__)


def _lock_path(folder: RunFolder) -> Path:
    path = folder.path.parent / layout.job_lock(folder.path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _holder() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    return f"process {os.getpid()} on {socket.gethostname()}" + (f", SLURM job {job}" if job else "")


def _say_holder(lock) -> None:
    """Write who holds the lock into the lock file (read by a process that is refused)."""
    try:
        lock.seek(0)
        lock.truncate()
        lock.write(_holder())
        lock.flush()
    except OSError:
        pass


def _read_holder(lock) -> str:
    try:
        lock.seek(0)
        return lock.read(300).strip().replace("\n", " ") or "another process"
    except (OSError, UnicodeDecodeError):
        return "another process"


@contextmanager
def claim(folder: RunFolder) -> Iterator[bool]:
    """Hold the job's lock (a file beside its folder; the OS drops it if the process dies). Yields True when
    another process held it first and this one waited."""
    with open(_lock_path(folder), "a+") as lock:
        waited = False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            log.info("Waiting for %s: %s is running this job.", folder.path, _read_holder(lock))
            fcntl.flock(lock, fcntl.LOCK_EX)
        _say_holder(lock)
        try:
            yield waited
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def hold_or_refuse(folder: RunFolder) -> Iterator[None]:
    """Hold the folder's lock (the one sweep jobs claim) while a run continues in it; when another process
    holds it, refuse at once with a ConfigError naming that process (two resumes of one folder would write one
    record, one metrics.csv and one last.ckpt at the same time)."""
    from visionlab.config.errors import ConfigError

    with open(_lock_path(folder), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{folder.path}: {_read_holder(lock)} is already running this run; wait for it to "
                "end (or stop it), then resume again."
            ) from None
        _say_holder(lock)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
