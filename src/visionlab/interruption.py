"""SIGTERM (what SLURM sends before preemption, and ``kill``) and Ctrl-C stop a run as *interrupted*: the run
record says so, W&B is finished, and the process exits non-zero (143 for SIGTERM, 130 for Ctrl-C) so a killed
job never looks successful."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGTERM_EXIT, SIGINT_EXIT = 128 + signal.SIGTERM, 128 + signal.SIGINT


class Terminated(BaseException):
    """SIGTERM arrived; a BaseException so that no ``except Exception`` on the way swallows it."""


def is_interruption(exc: BaseException) -> bool:
    # Lightning answers Ctrl-C inside fit/test with sys.exit(1) after its own clean-up
    return isinstance(exc, (Terminated, KeyboardInterrupt, SystemExit))


def describe(exc: BaseException) -> str:
    return "terminated by SIGTERM" if isinstance(exc, Terminated) else "interrupted by the user (Ctrl-C)"


def exit_code(exc: BaseException) -> int:
    return SIGTERM_EXIT if isinstance(exc, Terminated) else SIGINT_EXIT


@contextmanager
def sigterm_raises():
    """Inside: the first SIGTERM raises ``Terminated`` (later ones are ignored while the record is written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
