"""Whatever stops a run from outside ends it as *interrupted*: the run record and the sweep index say so with
the cause, W&B is finished, and the process exits non-zero (128 + the signal) so a stopped job never looks
successful.

The signals:
- SIGTERM: ``kill``, ``scancel``, ``scontrol requeue`` and SLURM preemption send it (exit 143).
- Ctrl-C (exit 130).
- SIGUSR1: Lightning's SLURM requeue signal (``#SBATCH --signal=USR1@90``). Lightning's own handler would save
  a mid-epoch checkpoint that does not resume exactly; ours requeues the job (global rank 0, in a batch job)
  and stops, and the restarted job continues from the last epoch's ``last.ckpt`` (``run_record.resume``).
- SIGUSR2: submitit's preemption/time-limit signal. submitit's own handler (installed before the job starts)
  still decides whether to requeue; we only record what it decided.
A requeued job restarts in the same folder and resumes from ``checkpoints/last.ckpt`` (exact: a resume always
starts at an epoch boundary).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
import time
from contextlib import contextmanager

import pytorch_lightning as pl

from visionlab.cluster.ranks import is_rank_zero, slurm_job_id

log = logging.getLogger(__name__)
SIGTERM_EXIT, SIGINT_EXIT = 128 + signal.SIGTERM, 128 + signal.SIGINT


class Stopped(BaseException):
    """A stop signal arrived; a BaseException so that no ``except Exception`` on the way swallows it.
    ``reraise``: what the launcher's own handler raised (submitit's "not requeued" error), raised again once
    the run is recorded so the launcher learns it too."""

    def __init__(self, signum: int, cause: str, reraise: BaseException | None = None):
        super().__init__(cause)
        self.signum, self.cause, self.reraise = signum, cause, reraise


Terminated = Stopped  # the name older code and tests use


def is_interruption(exc: BaseException) -> bool:
    # Lightning answers Ctrl-C inside fit/test with sys.exit(1) after its own clean-up
    return isinstance(exc, (Stopped, KeyboardInterrupt, SystemExit))


def describe(exc: BaseException) -> str:
    return exc.cause if isinstance(exc, Stopped) else "interrupted by the user (Ctrl-C)"


def exit_code(exc: BaseException) -> int:
    return 128 + int(exc.signum) if isinstance(exc, Stopped) else SIGINT_EXIT


def _requeue() -> str:
    """Ask SLURM to requeue this job (as Lightning's auto-requeue does); say what happened."""
    job = slurm_job_id()
    if not job:
        return "not under SLURM: not requeued"
    if not is_rank_zero():
        return f"SLURM job {job}: rank 0 requeues it"
    try:
        done = subprocess.run(
            ["scontrol", "requeue", job], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"SLURM job {job}: requeue failed ({exc})"
    if done.returncode != 0:
        return f"SLURM job {job}: requeue failed ({(done.stderr or done.stdout).strip()})"
    return f"SLURM job {job} requeued: it resumes from checkpoints/last.ckpt when it restarts"


@contextmanager
def stop_signals():
    """Inside: SIGTERM, SIGUSR1 and SIGUSR2 raise ``Stopped`` with their cause (the first one only; later ones
    are ignored while the record is written)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []
    in_launcher: list[
        int
    ] = []  # signals that came while submitit's USR2 handler ran (its requeue sends SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}

    def on_sigterm(signum, frame):
        if _HOLD and not fired:  # the record is being written: this stop is noted, the record goes on
            fired.append(signum)
            _received(Stopped(signum, "terminated by SIGTERM"))
            return
        if not fired:
            fired.append(signum)
            raise _received(Stopped(signum, "terminated by SIGTERM"))
        if signal.SIGUSR2 in fired:
            in_launcher.append(signum)

    def on_usr1(signum, frame):
        if _HOLD:
            return
        if not fired:
            fired.append(signum)
            raise _received(Stopped(signum, f"stopped by SIGUSR1 (SLURM requeue signal): {_requeue()}"))

    launcher_handler = previous[signal.SIGUSR2]

    def on_usr2(signum, frame):
        if fired or _HOLD:
            return
        if not callable(launcher_handler):
            fired.append(signum)
            raise _received(Stopped(signum, "stopped by SIGUSR2"))
        # Marked as fired before submitit's handler runs: its `scontrol requeue` makes SLURM send SIGTERM,
        # which can arrive while the handler still runs; that SIGTERM is part of this stop, not a second
        # cause.
        fired.append(signum)
        try:  # submitit's handler: requeues (then exits) or refuses (raises); ranks > 0 return and go on
            launcher_handler(signum, frame)
        except SystemExit:
            raise _received(Stopped(signum, REQUEUED_BY_SUBMITIT)) from None
        except Exception as exc:  # noqa: BLE001 - submitit's "not requeued" error, raised again after recording
            if requeued_by_slurm():  # SLURM's requeue SIGTERM killed submitit's own `scontrol requeue` child
                raise _received(Stopped(signum, REQUEUED_BY_SUBMITIT)) from None
            raise _received(
                Stopped(
                    signum,
                    f"stopped by SIGUSR2 (SLURM preemption or time limit), not requeued: {exc}",
                    reraise=exc,
                )
            ) from None
        fired.remove(signum)
        if in_launcher:  # SLURM's SIGTERM came while the handler ran: stop for it now
            fired.append(signal.SIGTERM)
            raise _received(Stopped(signal.SIGTERM, "terminated by SIGTERM"))
        log.info("SIGUSR2: the job is requeued by global rank 0; this rank goes on until SLURM stops it")

    _RECEIVED.clear()
    ours = {signal.SIGTERM: on_sigterm, signal.SIGUSR1: on_usr1, signal.SIGUSR2: on_usr2}
    _ACTIVE.update(ours)
    _install(ours)
    try:
        yield
    finally:
        _ACTIVE.clear()
        _install(previous)


_ACTIVE: dict = {}
_RECEIVED: list[Stopped] = []  # the stop this process received inside ``stop_signals`` (at most one)
REQUEUED_BY_SUBMITIT = (
    "stopped by SIGUSR2 (SLURM preemption or time limit): requeued by submitit; it resumes "
    "from checkpoints/last.ckpt when it restarts"
)


_HOLD: list[bool] = []  # non-empty while a run's record is written: a stop signal then does not cut it short


@contextmanager
def hold_stops():
    """While a run's end is recorded (it failed, or completed): a SIGTERM that comes now (SLURM ending the
    step after another rank died) is noted, not raised, so the record is written whole."""
    _HOLD.append(True)
    try:
        yield
    finally:
        _HOLD.pop()


def _received(stop: Stopped) -> Stopped:
    _RECEIVED.append(stop)
    return stop


def requeued_by_slurm() -> bool:
    """Whether SLURM requeued this job since this attempt started: its restart count (``scontrol show job``)
    is higher than the one this attempt started with. submitit's ``scontrol requeue`` can succeed and still be
    reported as failed: SLURM's requeue sends SIGTERM to every process of the job, that command included."""
    job = slurm_job_id()
    if not job:
        return False
    try:
        shown = subprocess.run(
            ["scontrol", "show", "job", "-o", job], check=False, capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    restarts = re.search(r"\bRestarts=(\d+)", shown.stdout)
    started_with = os.environ.get("SLURM_RESTART_COUNT", "0")
    return bool(restarts) and int(restarts.group(1)) > (int(started_with) if started_with.isdigit() else 0)


def _tracker_lost(exc: BaseException) -> bool:
    """An error of a lost connection to a tracker's service (W&B's wandb-core killed with the job's step)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ConnectionError) or type(exc).__module__.startswith("wandb"):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def stop_behind(exc: BaseException, wait_s: float = 2.0) -> Stopped | None:
    """The stop signal behind ``exc``, when ``exc`` is a tracker's lost connection: SLURM signals every
    process of a job at once, and W&B's service may die (and a W&B call fail) before this process runs its
    handler. Waits up to ``wait_s`` for that signal; None when none comes (then ``exc`` is a failure of its
    own)."""
    if isinstance(exc, Stopped):
        return exc
    if not _ACTIVE or not _tracker_lost(exc):
        return None
    try:
        deadline = time.monotonic() + wait_s
        while not _RECEIVED and time.monotonic() < deadline:
            time.sleep(0.05)
    except Stopped as stop:
        return stop
    return _RECEIVED[0] if _RECEIVED else None


def _install(handlers: dict) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class KeepStopSignals(pl.Callback):
    """Lightning replaces the SIGTERM handler when a stage starts, with one that broadcasts over DDP from
    inside the signal handler (a collective that can pair with another rank's gradient all-reduce and hang).
    Ours stop the run without collectives; this puts them back once Lightning has set its own."""

    def _reinstall(self, *args) -> None:
        if _ACTIVE and threading.current_thread() is threading.main_thread():
            _install(_ACTIVE)

    on_sanity_check_start = on_train_start = on_validation_start = on_test_start = _reinstall


sigterm_raises = stop_signals  # the name older code uses


def exit_promptly(code: int, grace_s: float = 3.0) -> None:
    """Exit now that the run is recorded: give W&B ``grace_s`` to shut its service down, then leave even if it
    is still waiting on a server (SLURM kills a job ~30 s after SIGTERM; an online start that hangs used to
    hold the exit for 25 s). Python's exit handlers are skipped: logging and the standard streams are flushed
    here."""
    import sys

    if "wandb" in sys.modules:

        def teardown():
            try:
                import wandb

                wandb.teardown()
            except Exception:  # noqa: BLE001, S110 - best effort: we are leaving anyway
                pass

        worker = threading.Thread(target=teardown, daemon=True)
        worker.start()
        worker.join(grace_s)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
