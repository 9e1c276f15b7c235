"""The W&B logger plug-in: a WandbLogger that never prompts, hangs or crashes (its mode from ``mode.py``),
with the run tracker that names, resumes and finishes its W&B run (``policy.py``), and the check of its
settings."""

from __future__ import annotations

import logging
from pathlib import Path

from visionlab.tracking.wandb.mode import MODES, environment_mode, resolve_mode

log = logging.getLogger(__name__)


def make_wandb_logger(
    mode: str = "auto",
    save_dir: str = ".",
    init_timeout: float = 30.0,
    group: str | None = None,
    job_type: str | None = None,
    id: str | None = None,  # wandb.init's own name for it
    experiment: str | None = None,
    sweep: str | None = None,
    resume_from: str | None = None,
    train: bool = True,
    **kwargs,
):
    """A Lightning ``WandbLogger`` (or None for ``disabled``); extra kwargs go to ``wandb.init``, which gives
    up after ``init_timeout`` seconds (see ``wandb_policy.start``).

    W&B's naming is decided here, from the logger's config (``conf/logger/wandb.yaml``), not written back
    into the run's config: the group and job type (``policy.group_and_job_type``: the experiment, or in a
    multirun the sweep), and, when training resumes from ``resume_from``, the id the run folder (``save_dir``)
    recorded, so the same W&B run continues."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    from visionlab.config.hydra_job import is_multirun
    from visionlab.record.folder import RunFolder
    from visionlab.record.resume import wandb_id_to_resume
    from visionlab.tracking.wandb.policy import WandbTracker, group_and_job_type

    resolved = resolve_mode(mode)
    if resolved == "disabled":
        return None
    group, job_type = group_and_job_type(group, job_type, experiment or "", sweep if is_multirun() else None)
    id = id or wandb_id_to_resume(RunFolder(save_dir), resume_from, train)
    _no_sdk_analytics()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    log.info("W&B mode: %s", resolved)
    # the mode goes into the settings: Lightning's offline flag only sets WANDB_MODE, which wandb no longer
    # reads once its settings were loaded (base_url() loads them), so an offline run would still try to log in
    settings = wandb.Settings(init_timeout=init_timeout, silent=True, mode=resolved)
    logger = WandbLogger(
        save_dir=save_dir,
        offline=resolved == "offline",
        settings=settings,
        group=group,
        job_type=job_type,
        id=id,
        **kwargs,
    )
    # Lightning always passes anonymous=None, which wandb answers with a deprecation warning on every run;
    # not passing it means the same (resume="allow", which a resumed id relies on, stays Lightning's default)
    logger._wandb_init.pop("anonymous", None)
    logger.visionlab_tracker = WandbTracker(
        logger
    )  # the run starts, records and finishes it (tracking.plugins)
    return logger


def check_settings(node, key: str) -> None:
    """The logger's own values, checked with the run's config before anything is written (``config.rules``
    asks the module of every visionlab logger plug-in for its ``check_settings``): its mode and start
    timeout, and WANDB_MODE, which wins over the mode."""
    from visionlab.config.checks import expect, is_number

    if "mode" in node:
        expect(
            f"{key}.mode",
            node.get("mode"),
            lambda v: v in MODES,
            "one of auto, online, offline, disabled",
            f"{key}.mode=offline",
        )
    if "init_timeout" in node:
        expect(
            f"{key}.init_timeout",
            node.get("init_timeout"),
            lambda v: is_number(v) and v > 0,
            "a number of seconds > 0",
            f"{key}.init_timeout=30",
        )
    environment_mode()


def _no_sdk_analytics() -> None:
    """wandb's own usage analytics post to the server at exit with a 10 s timeout each: a silent server kept a
    failed run's process alive long after its error line. Our runs send W&B the run's data only."""
    try:
        from wandb.analytics.opentelemetry import opentelemetry_proxy
    except ImportError:  # other wandb versions: nothing to switch off
        return
    opentelemetry_proxy.disable()
