"""What the Hydra runtime says about the current job: multirun or not, its overrides, its share of the
cores."""

from __future__ import annotations

import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def is_multirun() -> bool:
    """True inside a ``--multirun`` job. A config composed by ``hydra.compose`` (tests, the benchmark) may
    leave Hydra's runtime set without a mode: that is no multirun."""
    mode = HydraConfig.get().mode if HydraConfig.initialized() else None
    return getattr(mode, "name", None) == "MULTIRUN"


def task_overrides() -> list[str]:
    """The command-line overrides of this job (the report shows them as the run's command)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def hydra_files(cfg: DictConfig) -> tuple[str, str, list[str]] | None:
    """What Hydra would save in the run's .hydra/ (the config, Hydra's settings, the overrides); the runner
    writes it once its checks passed (``hydra.output_subdir: null``), so a refused run leaves no trace."""
    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_yaml(cfg), OmegaConf.to_yaml({"hydra": HydraConfig.get()}), task_overrides()


def close_log_files_in(folder: str | Path) -> None:
    """Detach and close every logging file handler that writes into ``folder``: Hydra's ``train.log`` handler
    of a job whose (empty) folder is about to be removed. Left attached, the next line logged (submitit logs
    after the job) would reopen the file in a folder that no longer exists and fail with FileNotFoundError."""
    import logging

    root = Path(folder).resolve()
    loggers = [
        logging.getLogger(),
        *(item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)),
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and Path(
                handler.baseFilename
            ).resolve().is_relative_to(root):
                logger.removeHandler(handler)
                handler.close()


def cpu_threads(requested: int | None) -> int | None:
    """Explicit ``threads``, or cores / n_jobs when the joblib launcher runs jobs side by side."""
    if requested:
        return int(requested)
    if not is_multirun():
        return None
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")).lower() else None
    if n_jobs and n_jobs > 0:
        return max(1, (os.cpu_count() or 1) // n_jobs)
    return None


def point_ddp_children_at_job(output_dir: str, ckpt_path: str | None) -> None:
    """Lightning starts DDP ranks 1.. by re-running this command with ``hydra.run.dir=<run.dir>``: inside a
    multirun that would start the whole sweep again in each child. Make the re-run command this one job
    instead: its own overrides (plus the checkpoint it resumes) as a single run in its job folder."""
    import sys

    from omegaconf import read_write

    from visionlab.config.errors import ConfigError

    launcher = str(HydraConfig.get().launcher.get("_target_", ""))
    if "joblib" in launcher.lower():
        raise ConfigError(
            "trainer: DDP with several processes on this machine cannot run inside "
            "hydra/launcher=joblib (Lightning re-runs the command for each rank). Run the sweep with "
            "the default launcher, or with hydra/launcher=slurm and hydra.launcher.tasks_per_node=N."
        )
    keep = [o for o in task_overrides() if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "resume")]
    if ckpt_path:
        keep.append(f'ckpt_path="{ckpt_path}"')
    sys.argv = [sys.argv[0], *keep]
    hydra_cfg = HydraConfig.get()
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = str(output_dir)
