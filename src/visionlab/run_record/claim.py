"""A sweep job claims its folder before it runs, so the same sweep started twice at once runs each job once: the
second process waits for the first to finish that job, then skips it (its record is complete) or runs it."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from visionlab.run_record import layout
from visionlab.run_record.folder import RunFolder

log = logging.getLogger(__name__)


@contextmanager
def claim(folder: RunFolder) -> Iterator[bool]:
    """Hold the job's lock (a file beside its folder; the OS drops it if the process dies). Yields True when
    another process held it first and this one waited."""
    lock_path = folder.path.parent / layout.job_lock(folder.path.name)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        waited = False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            log.info("Waiting for %s: another process is running this job.", folder.path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield waited
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
