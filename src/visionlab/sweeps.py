"""Sweep bookkeeping: an index of a multirun's jobs, kept current as they start and finish, and the rule that
re-running a sweep skips jobs whose run record is already complete.

The index is written by a Hydra callback, which runs inside each job's process, so it works the same for the
sequential, joblib and submitit launchers; a file lock serialises concurrent updates.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from visionlab.tracking.run_record import SUMMARY, write_json

log = logging.getLogger(__name__)
INDEX = "sweep_index.json"
HEADLINE = ("val/acc", "val/f1", "test/acc", "test/f1", "test/f1_mean")


def completed_summary(run_dir: Path) -> dict | None:
    """The run's summary if the run finished completely (used to skip it when a sweep is re-run)."""
    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summary if summary.get("status") == "completed" else None


def should_skip(cfg: DictConfig, run_dir: Path) -> dict | None:
    """In a re-run sweep, a job whose run record is complete is skipped unless ``force=true``."""
    return None if cfg.get("force", False) else completed_summary(run_dir)


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_index(sweep_dir: Path, job_key: str, entry: dict[str, Any]) -> None:
    """Insert or update one job's entry in ``<sweep_dir>/sweep_index.json``."""
    path = sweep_dir / INDEX
    with _locked(path):
        try:
            index = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            index = {"jobs": {}}
        job = index["jobs"].setdefault(job_key, {})
        job.update(entry, updated=time.strftime("%Y-%m-%d %H:%M:%S"))
        index["jobs"] = dict(sorted(index["jobs"].items()))
        index["counts"] = {}
        for item in index["jobs"].values():
            index["counts"][item["status"]] = index["counts"].get(item["status"], 0) + 1
        write_json(path, index)


def _headline(summary: dict | None) -> dict:
    if not summary:
        return {}
    flat = {**(summary.get("best") or {}), **(summary.get("test") or {}), **(summary.get("segmentation") or {})}
    return {k: flat[k] for k in HEADLINE if k in flat}


def _job() -> tuple[Path, str, Path] | None:
    """(sweep dir, job key, run folder) of the current multirun job, or None outside a multirun."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode.name != "MULTIRUN":
        return None
    return Path(hydra_cfg.sweep.dir), str(hydra_cfg.sweep.subdir), Path(hydra_cfg.runtime.output_dir)


class SweepIndexCallback(Callback):
    """Hydra callback: records every multirun job (overrides, status, run folder, headline metrics, error)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        if (job := _job()) is None:
            return
        sweep_dir, key, run_dir = job
        update_index(sweep_dir, key, {
            "overrides": list(HydraConfig.get().overrides.task),
            "run_dir": str(run_dir),
            "status": "running",
            "skipped": should_skip(config, run_dir) is not None,
        })

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if (job := _job()) is None:
            return
        sweep_dir, key, run_dir = job
        summary = completed_summary(run_dir)
        if job_return.status == JobStatus.COMPLETED and summary is not None:
            entry = {"status": "completed", "error": None, "metrics": _headline(summary)}
        elif job_return.status == JobStatus.COMPLETED:
            entry = {"status": "failed", "error": "the job returned but its run record is incomplete", "metrics": {}}
        else:
            error = job_return._return_value
            entry = {"status": "failed", "error": f"{type(error).__name__}: {error}", "metrics": {}}
        update_index(sweep_dir, key, entry)
