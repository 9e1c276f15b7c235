"""How a run appears in W&B: its group and job type, the summary next to the logged metrics, and its end.

Naming: a single run is grouped by its experiment (job type ``train``); a multirun job is grouped by the sweep
name with the experiment (the variant) as job type. Either way the config holds ``experiment_name``, which is
where the report reads the variant from (never from the group).
"""

from __future__ import annotations

from pytorch_lightning.loggers import WandbLogger

from visionlab.config.errors import TrackingError
from visionlab.record import metric_keys as keys
from visionlab.record.layout import Status
from visionlab.tracking.wandb.mode import base_url
from visionlab.tracking.wandb.offline import last_step, offline_run_dir, offline_run_dirs

SINGLE_RUN_JOB_TYPE = "train"


def group_and_job_type(group: str | None, job_type: str | None, experiment: str, sweep: str | None) -> tuple:
    """Configured values win; else (experiment, "train") for a single run, (sweep, experiment) in a
    multirun."""
    if sweep:
        return group or sweep, job_type or experiment
    return group or experiment, job_type or SINGLE_RUN_JOB_TYPE


def start(logger: WandbLogger):
    """Start the W&B run. An online start that fails (bad key, unreachable or silent server) ends within the
    configured ``init_timeout`` as one TrackingError; a resumed offline run continues its earlier steps."""
    try:
        run = logger.experiment
    except Exception as exc:  # noqa: BLE001 - CommError, AuthenticationError, UsageError, timeouts: all one answer
        reason = (str(exc).splitlines() or [""])[0]
        raise TrackingError(
            f"W&B could not start the online run at {base_url()} ({type(exc).__name__}: {reason}). "
            "Check WANDB_API_KEY and the server, raise logger.wandb.init_timeout, or run with "
            "logger.wandb.mode=offline (upload later with `wandb sync`)."
        ) from None
    earlier = [folder for folder in offline_run_dirs(logger) if folder != offline_run_dir(logger)]
    steps = [step for folder in earlier if (step := last_step(folder)) is not None]
    if (
        steps
    ):  # offline, no server to ask where the history ended: continue after the earlier folders' last step
        run.log({}, step=max(steps) + 1, commit=False)
    return run


def record_section(logger: WandbLogger) -> dict:
    """The ``wandb`` section of summary.json (run id, mode, how to upload), from local state only: it is
    written before W&B is asked anything, so it holds even when W&B's service is gone."""
    run = logger.experiment
    folders = offline_run_dirs(logger)
    return {
        "id": run.id,
        "mode": "offline" if logger._offline else "online",
        "sync_command": f"wandb sync {' '.join(map(str, folders))}" if folders else None,
    }


def publish_summary(logger: WandbLogger, summary: dict) -> dict:
    """Adds the best epoch's metrics (``best/<key>``), the parameter count and the precision the run used to
    the W&B summary (test metrics are there already, logged under the same keys); returns the ``wandb``
    section of summary.json."""
    run = logger.experiment
    for key, value in (summary.get("best") or {}).items():
        if keys.is_metric(key):
            run.summary[keys.best_key(key)] = value
    run.summary[keys.N_PARAMS] = summary.get(keys.N_PARAMS)
    # what the run decided on top of its config (the config W&B holds is the composed one: trainer.precision
    # may say auto); the report reads it from here
    run.summary["precision"] = summary.get("precision")
    return record_section(logger)


def finish(completed: bool) -> None:
    """Close the W&B run (each sweep job is its own run, finished before the next starts)."""
    import wandb

    wandb.finish(exit_code=0 if completed else 1)


# How long W&B may take to take the summary and finish the run: a stopped job has SLURM's KillWait (30 s by
# default) between SIGTERM and SIGKILL, and must exit within it; a run that ended by itself may upload for
# longer.
TRACKER_FINISH_S = {Status.INTERRUPTED: 10.0}
TRACKER_FINISH_DEFAULT_S = 300.0


class WandbTracker:
    """The W&B logger's part of a run (``tracking.plugins.RunTracker``): start the W&B run and record its id
    in the run folder, the ``wandb`` section of summary.json, and the summary published when the run ends."""

    section = "wandb"
    title = "W&B"
    shows_media = True

    def __init__(self, logger: WandbLogger):
        self.logger = logger

    def start(self, folder, writes_record: bool) -> None:
        if writes_record:
            folder.write_wandb_id(start(self.logger).id)

    def record_section(self) -> dict:
        try:
            return record_section(self.logger)
        except Exception as exc:  # noqa: BLE001 - the record is written whatever state W&B is in
            return {"id": None, "error": f"{type(exc).__name__}: {exc}"}

    def sync_hint(self, section: dict) -> str:
        command = section.get("sync_command")
        return f"; upload what W&B wrote with `{command}`" if command else ""

    def finish(self, summary: dict) -> str | None:
        """Publish the summary to W&B and finish its run, best effort and bounded in time; returns what went
        wrong (None when W&B took it all). Runs beside the main thread, which waits at most
        ``TRACKER_FINISH_S``: SLURM signals every process of a job, W&B's service included, so after a stop
        W&B may be gone and any call to it raise (ConnectionResetError, MailboxClosedError)."""
        import threading

        outcome: list[str] = []
        completed = summary["status"] == Status.COMPLETED

        def publish_and_finish():
            try:
                publish_summary(self.logger, summary)
                finish(completed)
            except BaseException as exc:  # noqa: BLE001 - W&B's service may be gone (killed with the job's step)
                outcome.append(f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
            else:
                outcome.append("")

        worker = threading.Thread(target=publish_and_finish, name="visionlab-wandb-finish", daemon=True)
        worker.start()
        timeout = TRACKER_FINISH_S.get(summary["status"], TRACKER_FINISH_DEFAULT_S)
        worker.join(timeout)
        if not outcome:
            return f"W&B did not finish within {timeout:.0f} s"
        return outcome[0] or None
