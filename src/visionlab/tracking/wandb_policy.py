"""How a run appears in W&B: its group and job type, the summary next to the logged metrics, and its end.

Naming: a single run is grouped by its experiment (job type ``train``); a multirun job is grouped by the sweep
name with the experiment (the variant) as job type. Either way the config holds ``experiment_name``, which is
where the report reads the variant from (never from the group).
"""

from __future__ import annotations

from pytorch_lightning.loggers import Logger, WandbLogger

from visionlab.run_record import metric_keys as keys
from visionlab.tracking.wandb_logger import offline_run_dir

SINGLE_RUN_JOB_TYPE = "train"


def group_and_job_type(group: str | None, job_type: str | None, experiment: str, sweep: str | None) -> tuple:
    """Configured values win; else (experiment, "train") for a single run, (sweep, experiment) in a multirun."""
    if sweep:
        return group or sweep, job_type or experiment
    return group or experiment, job_type or SINGLE_RUN_JOB_TYPE


def find_wandb_logger(loggers: list[Logger]) -> WandbLogger | None:
    return next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)


def publish_summary(logger: WandbLogger, summary: dict) -> dict:
    """Adds the best epoch's metrics (``best/<key>``) and the parameter count to the W&B summary (test metrics
    are there already, logged under the same keys); returns the ``wandb`` section of summary.json."""
    run = logger.experiment
    for key, value in (summary.get("best") or {}).items():
        if keys.is_metric(key):
            run.summary[keys.best_key(key)] = value
    run.summary[keys.N_PARAMS] = summary.get(keys.N_PARAMS)
    run_dir = offline_run_dir(logger)
    return {"id": run.id, "mode": "offline" if logger._offline else "online",
            "sync_command": f"wandb sync {run_dir}" if run_dir else None}


def finish(completed: bool) -> None:
    """Close the W&B run (each sweep job is its own run, finished before the next starts)."""
    import wandb

    wandb.finish(exit_code=0 if completed else 1)
