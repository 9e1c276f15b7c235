"""One run, on one screen: build → fit/test → record. Training, resuming and evaluating all go through ``run``.

Where the rest lives: building the parts (``assembly``), W&B naming and publishing (``tracking.wandb_policy``),
resume rules (``run_record.resume``), the run record's files and keys (``run_record``), summary.json
(``recording``), what gets printed (``console``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint

from visionlab.assembly import (
    build_datamodule,
    build_model,
    build_trainer,
    check_checkpoint_is_data,
    instantiate_group,
)
from visionlab.console import print_result
from visionlab.errors import ConfigError, UserError
from visionlab.hydra_runtime import cpu_threads, is_multirun
from visionlab.interfaces import TaskDataModule, TaskModel
from visionlab.recording import finish_record, start_summary
from visionlab.run_record.folder import RunFolder
from visionlab.run_record.layout import Status
from visionlab.run_record.metric_keys import N_PARAMS
from visionlab.run_record.resume import wandb_id_to_resume
from visionlab.tracking.epoch_record import EpochRecord
from visionlab.tracking.wandb_policy import find_wandb_logger, group_and_job_type
from visionlab.utils.precision import resolve_precision

log = logging.getLogger("visionlab")


def run(cfg: DictConfig) -> dict:
    """Train (or resume, or only evaluate) as configured; returns the summary written to summary.json."""
    started = time.time()
    folder = RunFolder(cfg.paths.output_dir).create()
    _prepare(cfg, folder)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    folder.write_config(resolved)
    datamodule, model = build_datamodule(cfg), build_model(cfg)
    loggers = instantiate_group(cfg.get("logger"), "logger")
    record = EpochRecord(folder)
    trainer = build_trainer(cfg, model, loggers, record)
    summary = start_summary(cfg, model, datamodule, folder)
    for logger in loggers:
        logger.log_hyperparams({**resolved, N_PARAMS: summary[N_PARAMS]})
    wandb_logger = find_wandb_logger(loggers)
    if wandb_logger is not None and trainer.is_global_zero:
        folder.write_wandb_id(wandb_logger.experiment.id)

    error: BaseException | None = None
    test_metrics = None
    try:
        if cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
        if cfg.test:
            test_metrics = _test(cfg, trainer, model, datamodule, summary, folder)
        summary["status"] = Status.COMPLETED
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - recorded in summary.json, then raised again
        error = exc
        summary.update(status=Status.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else Status.FAILED,
                       error=_describe(exc))
    finally:
        if trainer.is_global_zero:
            finish_record(summary, cfg, trainer, model, record, test_metrics, started, wandb_logger, error)
            print_result(summary)
    if error is not None:
        raise error
    return summary


def _prepare(cfg: DictConfig, folder: RunFolder) -> None:
    """Check the checkpoint arguments, seed, size the CPU threads, pick the precision, name the W&B run."""
    if not cfg.train and not cfg.ckpt_path:
        raise ConfigError("train=false evaluates a checkpoint: also pass ckpt_path=<run>/checkpoints/best.ckpt")
    if cfg.ckpt_path and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist or is not a file.")
    if cfg.ckpt_path:
        check_checkpoint_is_data(cfg.ckpt_path)
    pl.seed_everything(cfg.seed, workers=True)
    if threads := cpu_threads(cfg.get("threads")):
        torch.set_num_threads(threads)
    with open_dict(cfg):
        cfg.trainer.precision = resolve_precision(cfg.trainer.get("precision", "auto"), cfg.trainer.accelerator)
        if cfg.get("logger") and cfg.logger.get("wandb"):
            wandb_cfg = cfg.logger.wandb
            wandb_cfg.group, wandb_cfg.job_type = group_and_job_type(
                wandb_cfg.group, wandb_cfg.job_type, cfg.experiment_name, cfg.sweep_name if is_multirun() else None)
            wandb_cfg.id = wandb_cfg.id or wandb_id_to_resume(folder, cfg.ckpt_path, cfg.train)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by the user (Ctrl-C)"
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _test(cfg: DictConfig, trainer: pl.Trainer, model: TaskModel, datamodule: TaskDataModule, summary: dict,
          folder: RunFolder) -> dict | None:
    """Test the best checkpoint of this training (or the given one when only evaluating) and save the task's
    test files; without a test split, say so and skip."""
    if not datamodule.test_available:
        log.warning("No test split available for %s: skipping the test stage.", datamodule.description)
        return None
    ckpt = cfg.ckpt_path
    if cfg.train:
        checkpoint = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)
        ckpt = checkpoint.best_model_path if checkpoint is not None and checkpoint.best_model_path else None
    summary["evaluated_checkpoint"] = ckpt or "final weights"
    results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True, verbose=False)
    model.save_test_artifacts(folder)
    return dict(results[0]) if results else {}
