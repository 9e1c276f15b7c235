"""Sweep bookkeeping: a Hydra callback that keeps the sweep index (``run_record.sweep_index``) current as jobs
start and finish. It runs inside each job's process, so it works the same for the sequential, joblib and
submitit launchers. Which jobs a re-run skips is a resume rule (``run_record.resume``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from visionlab.distributed import is_rank_zero, slurm_job_id
from visionlab.run_record.folder import RunFolder
from visionlab.run_record.layout import Status
from visionlab.run_record.resume import completed_run_to_skip
from visionlab.run_record.summary import headline
from visionlab.run_record.sweep_index import update_index

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
        update_index(sweep_dir, key, {
            "overrides": list(HydraConfig.get().overrides.task),
            "run_dir": str(folder.path),
            "status": Status.RUNNING,
            "skipped": completed_run_to_skip(folder, config.get("force", False)) is not None,
            "slurm_job_id": slurm_job_id(),
        })

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
            entry = {"status": Status.FAILED, "error": "the job returned but its run record is incomplete",
                     "metrics": {}}
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
