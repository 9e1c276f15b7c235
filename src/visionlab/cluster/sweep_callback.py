"""Sweep bookkeeping: a Hydra callback that keeps the sweep index (``run_record.sweep_index``) current as jobs
start and finish. It runs inside each job's process, so it works the same for the sequential, joblib and
submitit launchers. Which jobs a re-run skips is a resume rule (``run_record.resume``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from visionlab.cluster.ranks import is_rank_zero, slurm_job_id
from visionlab.cluster.sweep_index import settle_index, update_index
from visionlab.record.files import read_json
from visionlab.record.folder import RunFolder
from visionlab.record.layout import SWEEP_INDEX, Status
from visionlab.record.resume import completed_run_to_skip
from visionlab.record.summary import headline

log = logging.getLogger(__name__)


def _job() -> tuple[Path, str, RunFolder] | None:
    """(sweep dir, job key, run folder) of the current multirun job, or None outside a multirun and on DDP
    ranks other than 0 (one process keeps the index)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode.name != "MULTIRUN" or not is_rank_zero():
        return None
    return Path(hydra_cfg.sweep.dir), str(hydra_cfg.sweep.subdir), RunFolder(hydra_cfg.runtime.output_dir)


class SweepIndexCallback(Callback):
    """Hydra callback: records every multirun job (overrides, status, run folder, headline metrics, error)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        if (job := _job()) is None:
            return
        sweep_dir, key, folder = job
        skipped = completed_run_to_skip(folder, config.get("force", False)) is not None
        entry = {
            "overrides": list(HydraConfig.get().overrides.task),
            "run_dir": str(folder.path),
            "status": Status.RUNNING,
            "skipped": skipped,
        }
        if not skipped:  # the SLURM job that ran it stays on record; a rerun's skip is not it
            entry["slurm_job_id"] = slurm_job_id()
        update_index(sweep_dir, key, entry)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """In the process that starts the sweep, before any job is submitted: fit the launcher's warning
        signal to its time limit, and remember the sweep folder for the report at its end
        (``sweep_failure_report``)."""
        from visionlab.config.errors import UserError

        try:
            fit_signal_delay_to_time_limit(config)
        except UserError as exc:  # Hydra turns a callback's exception into a warning and goes on: exit here
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        _STARTED_SWEEPS.append(Path(str(config.hydra.sweep.dir)))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if (job := _job()) is None:
            return
        sweep_dir, key, folder = job
        summary = folder.completed_summary()
        recorded = _recorded_status(folder)
        if job_return.status == JobStatus.COMPLETED and summary is not None:
            entry = {"status": Status.COMPLETED, "error": None, "metrics": headline(summary)}
        elif recorded is not None and recorded[0] == Status.INTERRUPTED:  # e.g. a time limit, not requeued
            entry = {"status": Status.INTERRUPTED, "error": recorded[1], "metrics": {}}
        elif job_return.status == JobStatus.COMPLETED:
            entry = {
                "status": Status.FAILED,
                "error": "the job returned but its run record is incomplete",
                "metrics": {},
            }
        else:
            error = job_return._return_value
            entry = {"status": Status.FAILED, "error": f"{type(error).__name__}: {error}", "metrics": {}}
        update_index(sweep_dir, key, entry)


def _recorded_status(folder: RunFolder) -> tuple[str, str | None] | None:
    try:
        summary = folder.read_summary()
    except (OSError, ValueError):
        return None
    return str(summary.get("status")), summary.get("error")


def record_interrupted_job(cause: str) -> None:
    """The current sweep job stopped on a signal: its process exits without Hydra's job-end callback, so the
    index is updated here (a requeued job sets it to running again when it restarts)."""
    if (job := _job()) is None:
        return
    sweep_dir, key, _ = job
    update_index(sweep_dir, key, {"status": Status.INTERRUPTED, "error": cause, "metrics": {}})


_STARTED_SWEEPS: list[Path] = []  # sweep folders started by this process (the submitting one)
SHORTEST_TIME_LIMIT_MIN = 2  # SLURM checks time limits every ~30 s: a warning signal can come that much early


def fit_signal_delay_to_time_limit(config: DictConfig) -> None:
    """submitit's ``signal_delay_s`` (SIGUSR2 this long before the time limit) must leave an attempt time to
    train: with a delay as long as the limit, the signal comes at SLURM's first check, the job is requeued
    every ~30 s and never finishes an epoch. A delay over a third of the limit is cut to a third, with one
    line; a limit under ``SHORTEST_TIME_LIMIT_MIN`` minutes is refused (SLURM's checks are ~30 s apart)."""
    from omegaconf import open_dict

    from visionlab.config.errors import ConfigError

    launcher = config.hydra.get("launcher")
    if launcher is None or "submitit" not in str(launcher.get("_target_", "")).lower():
        return
    timeout_min, delay = launcher.get("timeout_min"), launcher.get("signal_delay_s")
    if not isinstance(timeout_min, (int, float)) or not isinstance(delay, (int, float)):
        return
    if timeout_min < SHORTEST_TIME_LIMIT_MIN:
        raise ConfigError(
            f"hydra.launcher.timeout_min={timeout_min}: too short for a job that is stopped and "
            f"requeued at its time limit (SLURM checks limits ~30 s apart); use "
            f"hydra.launcher.timeout_min={SHORTEST_TIME_LIMIT_MIN} or more."
        )
    limit_s = int(timeout_min * 60)
    if (
        delay > limit_s // 3
    ):  # SLURM may send it ~30 s before it is due: keep two thirds of the limit to train
        fitted = limit_s // 3
        print(
            f"note: hydra.launcher.signal_delay_s={delay} leaves too little of hydra.launcher.timeout_min="
            f"{timeout_min} ({limit_s} s) to train before the warning signal; using signal_delay_s={fitted}.",
            file=sys.stderr,
        )
        with open_dict(launcher):
            launcher.signal_delay_s = fitted


def sweep_failure_report(exc: BaseException) -> tuple[list[str], int] | None:
    """When a sweep this process started ends with an error (a job's own error raised again by Hydra, or the
    launcher's for a job that ended without a result): one line per job that failed, was interrupted or is
    still running, and a summary with where the errors are; exit code 1. None outside such a sweep."""
    if not _STARTED_SWEEPS:
        return None
    sweep_dir = _STARTED_SWEEPS[-1]
    path = sweep_dir / SWEEP_INDEX
    try:
        settle_index(path)
        jobs = read_json(path).get("jobs") or {}
    except (OSError, ValueError, AttributeError):
        jobs = {}
    jobs = {key: job for key, job in jobs.items() if isinstance(job, dict)}
    lines, counts, running_ids = [], {}, []
    for key, job in jobs.items():
        status = str(job.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status == Status.FAILED:
            lines.append(f"error: job {key} failed: {_one_line(job.get('error'))}")
        elif status == Status.INTERRUPTED:
            lines.append(f"job {key} interrupted: {_one_line(job.get('error'))}")
        elif status == Status.RUNNING:
            running_ids += [str(job["slurm_job_id"])] if job.get("slurm_job_id") else []
            lines.append(
                f"job {key} is still running"
                + (f" (SLURM job {job['slurm_job_id']})" if job.get("slurm_job_id") else "")
            )
    own = _one_line(f"{type(exc).__name__}: {exc}")
    if not any(own.split(": ", 1)[-1] in line for line in lines):  # the launcher's error, not a recorded one
        lines.insert(0, f"error: {own}")
    tally = ", ".join(
        f"{counts.get(s, 0)} {s}" for s in (Status.COMPLETED, Status.FAILED, Status.INTERRUPTED)
    )
    running = counts.get(Status.RUNNING, 0)
    lines.append(
        f"sweep {sweep_dir}: {tally}"
        + (f", {running} still running" if running else "")
        + f"; the errors are in {path}."
    )
    if running:
        wait = f"`squeue -j {','.join(running_ids)}`" if running_ids else "their processes"
        lines.append(
            f"The sweep command stopped waiting: wait for the running jobs ({wait}), then run the same "
            "command again: completed jobs are skipped, unfinished ones continue."
        )
    elif counts.get(Status.INTERRUPTED) or counts.get(Status.FAILED):
        lines.append(
            "Fix what failed and run the same command again: completed jobs are skipped, interrupted "
            "ones continue."
        )
    return lines, 1


def _one_line(text) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), str(text))
