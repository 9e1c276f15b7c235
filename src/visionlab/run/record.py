"""The record step of a run: what summary.json says about it, written when the run ends however it ends, and
published to W&B under the same keys."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from visionlab.config.hydra_job import task_overrides
from visionlab.record import health, layout
from visionlab.record.folder import RunFolder
from visionlab.record.layout import Status
from visionlab.record.metric_keys import EPOCH, N_PARAMS, TIME_TO
from visionlab.record.provenance import device_description, git_state, package_versions
from visionlab.record.summary import best_metrics, final_metrics, time_to_milestones
from visionlab.tasks.protocol import TaskDataModule, TaskModel
from visionlab.tracking.epoch_record import EpochRecord

log = logging.getLogger(__name__)
ATTEMPT_WALL = (
    "wall_time_this_attempt_s"  # summary.json of a continued run: this attempt alone (wall_time_s: all)
)


def start_summary(
    cfg: DictConfig,
    model: TaskModel,
    datamodule: TaskDataModule,
    folder: RunFolder,
    trainer: pl.Trainer | None = None,
    earlier: list[dict] | None = None,
    precision: str | None = None,
) -> dict:
    """Everything known before training: what runs, on what data and hardware, from which code, in how many
    processes (``world_size``) with which batch (``batch_size``: the global batch, the per-process share), at
    which precision (the run plan's decision; the config's value when None)."""
    world_size = trainer.world_size if trainer is not None else 1
    return {
        "experiment": cfg.experiment_name,
        "run_name": cfg.run_name,
        "task": model.task,
        "seed": cfg.seed,
        "status": Status.RUNNING,
        "output_dir": str(folder.path),
        "overrides": task_overrides(),
        "resumed_from": cfg.ckpt_path if cfg.train else None,
        "evaluated_checkpoint": None,
        N_PARAMS: sum(p.numel() for p in model.parameters()),
        "monitor": cfg.monitor,
        "precision": precision or str(cfg.trainer.precision),
        "device": device_description(),
        "git": git_state(),
        "versions": package_versions(),
        "data": datamodule.description,
        "data_facts": datamodule.facts.record() if datamodule.facts is not None else None,
        "test_split": "available" if datamodule.test_available else "unavailable",
        "world_size": world_size,
        "batch_size": {
            "global": getattr(datamodule, "global_batch_size", None),
            "per_process": getattr(datamodule, "batch_size", None),
        },
        "slurm": slurm_record(),
        "interruptions": earlier_attempts(cfg, folder) if earlier is None else earlier,
    }


def earlier_attempts(cfg: DictConfig, folder: RunFolder) -> list[dict]:
    """How the earlier attempts of this run ended, asked before this attempt writes anything: when it resumes
    a checkpoint in its folder, or (a job restarted by SLURM before its first ``last.ckpt``) starts again in a
    folder that holds an unfinished attempt (a record that is not complete, or only its ``.hydra``).
    ``resume=false`` starts over: the earlier attempts are not this run's."""

    def value(key: str, default):
        return OmegaConf.select(
            cfg, key, default=default, throw_on_missing=False, throw_on_resolution_failure=False
        )

    if value("train", True) is False:
        return []
    unfinished = folder.completed_summary() is None and (folder.has(layout.SUMMARY) or folder.hydra.is_dir())
    if isinstance(value("ckpt_path", None), str) or (value("resume", True) is not False and unfinished):
        return earlier_interruptions(folder)
    return []


def earlier_interruptions(folder: RunFolder) -> list[dict]:
    """When a run continues in its own folder: how the earlier attempts ended (cause, epochs done), so a
    record that was stopped and resumed says so."""
    try:
        previous = folder.read_summary()
    except (OSError, ValueError):
        previous = None
    recorded_epochs = _epochs_in_metrics(folder)
    if previous is None:  # an attempt that died before writing any record (e.g. rank 0 killed with -9)
        if not folder.hydra.is_dir():
            return []
        return [_unrecorded_attempt(recorded_epochs)]
    history = [item for item in previous.get("interruptions") or [] if isinstance(item, dict)]
    if previous.get("status") in (Status.INTERRUPTED, Status.FAILED):
        # the attempt's own wall time: a summary that already continued a run holds the total in wall_time_s
        attempt = previous.get(ATTEMPT_WALL, previous.get("wall_time_s"))
        history.append(
            {
                "status": previous.get("status"),
                "cause": previous.get("error"),
                "epochs": previous.get("epochs"),
                "wall_time_s": attempt,
                "started_at": previous.get("started_at"),
            }
        )
        epochs = previous.get("epochs")
        if (
            isinstance(epochs, int) and recorded_epochs > epochs
        ):  # a later attempt trained on and died unrecorded
            history.append(_unrecorded_attempt(recorded_epochs))
    return history


UNRECORDED = (
    "the attempt ended without recording an end (a process killed, e.g. kill -9 or out of memory, or "
    "its node lost)"
)


def _unrecorded_attempt(epochs: int) -> dict:
    return {
        "status": Status.INTERRUPTED,
        "cause": UNRECORDED,
        "epochs": epochs,
        "wall_time_s": None,
        "started_at": None,
    }


def _epochs_in_metrics(folder: RunFolder) -> int:
    """Epochs metrics.csv holds (its rows are written at each epoch's end)."""
    try:
        rows = folder.read_metrics()
    except (OSError, ValueError):
        return 0
    epochs = [int(float(row[EPOCH])) for row in rows if str(row.get(EPOCH, "")).strip().lstrip("-").isdigit()]
    return max(epochs) + 1 if epochs else 0


def attempts(summary: dict, started: float, now: float) -> list[tuple[float | None, float | None]]:
    """(start time, wall seconds) of every attempt of this run, the earlier (interrupted) ones first."""
    earlier = [
        (item.get("started_at"), item.get("wall_time_s")) for item in summary.get("interruptions") or []
    ]
    return [*earlier, (started, now - started)]


def slurm_record() -> dict | None:
    """The SLURM job this run ran in (None outside SLURM): which job, and how often SLURM restarted it."""
    import os

    if not os.environ.get("SLURM_JOB_ID"):
        return None
    return {
        "job_id": os.environ.get("SLURM_JOB_ID"),
        "restart_count": int(os.environ.get("SLURM_RESTART_COUNT") or 0),
        "ntasks": int(os.environ.get("SLURM_NTASKS") or 1),
    }


def setup_failure_summary(
    cfg: DictConfig, folder: RunFolder, status: str, error: str, started: float
) -> dict:
    """What is known of a run that failed (or was interrupted) before training started."""
    return {
        **{
            name: OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
            for name, key in (("experiment", "experiment_name"), ("run_name", "run_name"), ("seed", "seed"))
        },
        "status": status,
        "error": error,
        "output_dir": str(folder.path),
        "overrides": task_overrides(),
        "wall_time_s": round(time.time() - started, 2),
    }


def finish_record(
    summary: dict,
    cfg: DictConfig,
    trainer: pl.Trainer,
    model: TaskModel,
    record: EpochRecord,
    test_metrics: dict | None,
    started: float,
    trackers: list,
    error: BaseException | None = None,
) -> None:
    """Fill in the results and the run's health, write summary.json, and finish the run's trackers
    (``tracking.plugins``: W&B) with the same numbers."""
    rows = record.rows
    now = time.time()
    runs = attempts(summary, started, now)
    earlier_wall = sum(wall for _, wall in runs[:-1] if isinstance(wall, (int, float)))
    summary.update(
        epochs=len(rows) and int(rows[-1][EPOCH]) + 1,
        steps=trainer.global_step,
        final=final_metrics(rows),
        best=best_metrics(rows, cfg.monitor, cfg.monitor_mode),
        test={k: float(v) for k, v in test_metrics.items()} if test_metrics else None,
        # a run continued after an interruption costs all its attempts: wall_time_s and time_to count them all
        wall_time_s=round(earlier_wall + now - started, 2),
        train_images_per_s=record.images_per_second and round(record.images_per_second, 1),
        started_at=round(started, 3),
    )
    if len(runs) > 1:
        summary[ATTEMPT_WALL] = round(now - started, 2)
    if milestones := time_to_milestones(rows, model.task, runs):
        summary[TIME_TO] = milestones
    if section := model.summary_section():
        summary[model.task] = section
    summary["objective"] = (summary["best"] or {}).get(cfg.monitor)
    summary["health"] = health.assess(
        rows,
        model.task,
        cfg.monitor,
        cfg.monitor_mode,
        error,
        num_classes=(summary.get("data_facts") or {}).get("num_classes"),
    )
    for tracker in trackers:
        summary[tracker.section] = tracker.record_section()
    # First: the record must never depend on the trackers (W&B's service may be gone after a stop).
    record.folder.write_summary(summary)
    for tracker in trackers:
        problem = tracker.finish(summary)
        if problem is not None:
            log.warning(
                "%s run not finished (%s); the run record in %s is complete%s.",
                tracker.title,
                problem,
                record.folder.path,
                tracker.sync_hint(summary[tracker.section]),
            )
            summary[tracker.section]["not_finished"] = problem
            record.folder.write_summary(summary)
