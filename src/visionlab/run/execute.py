"""One run, on one screen: build → fit/test → record. Training, resuming and evaluating all go through
``run``.

Where the rest lives: config checks (``config_checks``), what a checkpoint may be (``checkpoints``), building
the parts (``assembly``), SIGTERM/Ctrl-C (``interruption``), W&B naming and publishing
(``tracking.wandb_policy``),
resume rules (``run_record.resume``), the run record's files and keys (``run_record``), summary.json
(``recording``), what gets printed (``console``).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint

from visionlab.cli.console import print_result
from visionlab.cluster.claim import hold_or_refuse
from visionlab.cluster.ranks import check_slurm_tasks, end_process_group, is_rank_zero
from visionlab.config.errors import DiskFullError, UserError
from visionlab.config.hydra_job import (
    close_log_files_in,
    cpu_threads,
    hydra_files,
    is_multirun,
    point_ddp_children_at_job,
    task_overrides,
)
from visionlab.config.rules import check_config
from visionlab.inference.run_config import adopt_run, load_initial_weights
from visionlab.record import layout
from visionlab.record.disk_full import disk_full_error
from visionlab.record.folder import RunFolder
from visionlab.record.layout import Status
from visionlab.record.metric_keys import N_PARAMS
from visionlab.record.resume import may_record_setup_failure, run_folder_to_resume, wandb_id_to_resume
from visionlab.record.writable import refuse_unwritable_folder_to_continue
from visionlab.run.assembly import (
    build_datamodule,
    build_model,
    build_trainer,
    datamodule_for_checking,
    instantiate_group,
    model_for_checking,
    spawns_ranks,
)
from visionlab.run.checkpoints import check_checkpoint
from visionlab.run.precision import resolve_precision
from visionlab.run.record import earlier_attempts, finish_record, setup_failure_summary, start_summary
from visionlab.run.signals import describe as describe_interruption
from visionlab.run.signals import hold_stops, is_interruption, stop_behind, stop_signals
from visionlab.tasks.protocol import TaskDataModule, TaskModel
from visionlab.tracking.epoch_record import EpochRecord
from visionlab.tracking.wandb import policy as wandb_policy
from visionlab.tracking.wandb.policy import find_wandb_logger, group_and_job_type

log = logging.getLogger("visionlab")


def run(cfg: DictConfig) -> dict:
    """Train (or resume, or only evaluate) as configured; returns the summary written to summary.json.

    Config values and the checkpoint are checked before anything is written; a run that fails after that
    (while being set up or trained) leaves summary.json with its status and error, never over a record that is
    not its own (``may_record_setup_failure``). SIGTERM and Ctrl-C end it as "interrupted"."""
    started = time.time()
    folder = RunFolder(cfg.paths.output_dir)
    ckpt = OmegaConf.select(
        cfg, "ckpt_path", default=None, throw_on_missing=False, throw_on_resolution_failure=False
    )
    recordable = may_record_setup_failure(
        folder, ckpt if isinstance(ckpt, str) else None, cfg.get("train") is not False
    )
    earlier = earlier_attempts(cfg, folder)  # before this attempt writes anything into the folder
    with stop_signals(), ExitStack() as held:
        checked = False
        try:
            adopt_run(
                cfg, task_overrides() if HydraConfig.initialized() else None
            )  # ckpt_path=<run> defines it
            ckpt = cfg.get("ckpt_path")  # a run folder given as ckpt_path is its checkpoint from here on
            check_slurm_tasks()
            if (
                cfg.train and cfg.ckpt_path
            ):  # before the lock, which would leave its file beside a refused folder
                refuse_unwritable_folder_to_continue(folder, cfg.ckpt_path)
            if _continues_in_place(cfg, folder, ckpt):  # one process at a time continues a run folder
                held.enter_context(hold_or_refuse(folder))
            check_config(cfg)
            model = model_for_checking(cfg)  # the model and the datamodule check their own values when built
            datamodule_for_checking(cfg)
            if cfg.ckpt_path:
                check_checkpoint(
                    cfg.ckpt_path, model, cfg.experiment_name, cfg.train, cfg.get("trust_checkpoint", False)
                )
            if cfg.train and cfg.ckpt_path:
                refuse_unwritable_folder_to_continue(folder, cfg.ckpt_path)
            if cfg.get("init_from"):
                check_checkpoint(
                    cfg.init_from,
                    model,
                    cfg.experiment_name,
                    False,
                    cfg.get("trust_checkpoint", False),
                    "init_from",
                )
            checked = True
            parts = _set_up(cfg, folder, earlier)
        except BaseException as caught:
            exc = (
                stop_behind(caught) or caught
            )  # W&B's service killed by the same stop may fail its start first
            failure = disk_full_error(exc, folder=folder.path) or exc  # a full disk said as such
            if not checked and isinstance(
                failure, UserError
            ):  # refused before anything is written: no record,
                close_log_files_in(
                    folder.path
                )  # and no folder (Hydra made it, empty; its train.log not yet written)
                folder.discard_if_empty()
            elif recordable and is_rank_zero():  # one rank records; the others follow it
                status = Status.INTERRUPTED if is_interruption(exc) else Status.FAILED
                try:
                    with hold_stops():
                        folder.create().write_summary(
                            setup_failure_summary(cfg, folder, status, _describe(failure), started)
                        )
                except Exception as unwritten:
                    full = disk_full_error(unwritten, folder.file(layout.SUMMARY))
                    if full is None:
                        raise
                    failure = _record_lost(failure, full, folder)
            if failure is caught:
                raise
            raise failure from None
        return _fit_test_record(cfg, parts, started)


def _continues_in_place(cfg: DictConfig, folder: RunFolder, ckpt) -> bool:
    """A single run (rank 0) that resumes training in its own folder: it takes the folder's lock. A sweep job
    holds it already (``run_record.claim``, taken by the process that runs the job)."""
    if is_multirun() or not is_rank_zero() or cfg.get("train") is False or not isinstance(ckpt, str):
        return False
    resumed = run_folder_to_resume(ckpt, True)
    return resumed is not None and resumed == folder.path.expanduser().resolve()


@dataclass
class _Parts:
    folder: RunFolder
    datamodule: TaskDataModule
    model: TaskModel
    trainer: pl.Trainer
    record: EpochRecord
    summary: dict
    wandb_logger: object | None
    launches_ranks: bool = False  # Lightning starts the other DDP ranks from this process


def _set_up(cfg: DictConfig, folder: RunFolder, earlier: list[dict]) -> _Parts:
    """Write the run's config (global rank 0 only: one run = one record), build its parts, start the
    loggers."""
    writer = is_rank_zero()
    if writer:
        folder.create()
        if (hydra_record := hydra_files(cfg)) is not None:
            folder.write_hydra(*hydra_record)
    _prepare(cfg, folder)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if writer:
        folder.write_config(resolved)
    datamodule, model = build_datamodule(cfg), build_model(cfg)
    if cfg.get("init_from"):
        load_initial_weights(model, cfg.init_from, cfg.get("trust_checkpoint", False))
    loggers = instantiate_group(cfg.get("logger"), "logger")
    record = EpochRecord(folder)
    trainer = build_trainer(cfg, model, loggers, record)
    launches_ranks = spawns_ranks(trainer)  # asked before fit: Lightning's launcher then sets LOCAL_RANK here
    if launches_ranks and is_multirun():
        point_ddp_children_at_job(str(folder.path), cfg.ckpt_path)
    datamodule.use_global_batch(trainer.world_size)
    summary = start_summary(cfg, model, datamodule, folder, trainer, earlier)
    wandb_logger = find_wandb_logger(loggers)
    if wandb_logger is not None and writer:
        folder.write_wandb_id(wandb_policy.start(wandb_logger).id)
    for logger in loggers:
        logger.log_hyperparams({**resolved, N_PARAMS: summary[N_PARAMS]})
    return _Parts(folder, datamodule, model, trainer, record, summary, wandb_logger, launches_ranks)


def _fit_test_record(cfg: DictConfig, parts: _Parts, started: float) -> dict:
    trainer, model, datamodule, summary = parts.trainer, parts.model, parts.datamodule, parts.summary
    weights_only = not cfg.get("trust_checkpoint", False)
    error: BaseException | None = None
    test_metrics = None
    try:
        if cfg.train:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=weights_only)
            model.save_fit_artifacts(
                parts.folder
            )  # validation results of the best epoch, where the task has any
        if cfg.test:
            test_metrics = _test(cfg, trainer, model, datamodule, summary, parts.folder)
        summary["status"] = Status.COMPLETED
    except BaseException as exc:  # noqa: BLE001 - recorded in summary.json, then raised again
        error = stop_behind(exc) or exc  # W&B's service killed by the same stop may fail a call first
        error = (
            disk_full_error(error, folder=parts.folder.path) or error
        )  # said as such, not in a library's words
        summary.update(
            status=Status.INTERRUPTED if is_interruption(error) else Status.FAILED, error=_describe(error)
        )
    finally:
        if is_rank_zero():
            with hold_stops():
                error = _finish_record_despite_full_disk(summary, cfg, parts, test_metrics, started, error)
                print_result(summary)
        if is_multirun():
            end_process_group(launched_ranks=parts.launches_ranks)
    if error is not None:
        raise error
    return summary


def _finish_record_despite_full_disk(
    summary: dict,
    cfg: DictConfig,
    parts: _Parts,
    test_metrics: dict | None,
    started: float,
    error: BaseException | None,
) -> BaseException | None:
    """Write the run's record; when the disk is too full even for summary.json, the run's error says so (one
    line) instead of a traceback from the writer. Returns the error the run ends with."""
    try:
        finish_record(
            summary,
            cfg,
            parts.trainer,
            parts.model,
            parts.record,
            test_metrics,
            started,
            parts.wandb_logger,
            error,
        )
    except Exception as exc:
        full = disk_full_error(exc, parts.folder.file(layout.SUMMARY))
        if full is None:
            raise
        return _record_lost(error, full, parts.folder)
    return error


def _record_lost(error: BaseException | None, full: DiskFullError, folder: RunFolder) -> BaseException | None:
    """The error a run ends with when the full disk kept its summary.json from being written: one line that
    says
    how the run ended and that the folder does not record it (an interruption keeps its exit code, said
    here)."""
    unrecorded = f"its {layout.SUMMARY} was not written, so {folder.path} does not record this attempt"
    if error is None:
        return DiskFullError(f"{full} The run completed, but {unrecorded}.")
    if is_interruption(error):
        print(f"error: {full} The run was interrupted, and {unrecorded}.", file=sys.stderr)
        return error
    if isinstance(error, DiskFullError):
        return DiskFullError(
            f"{error} Its {layout.SUMMARY} was not written either, so {folder.path} does not "
            "record this attempt."
        )
    return DiskFullError(f"{full} The run failed ({_describe(error)}), and {unrecorded}.")


def _prepare(cfg: DictConfig, folder: RunFolder) -> None:
    """Seed, size the CPU threads, pick the precision, name the W&B run."""
    pl.seed_everything(cfg.seed, workers=True)
    if threads := cpu_threads(cfg.get("threads")):
        torch.set_num_threads(threads)
    with open_dict(cfg):
        cfg.trainer.precision = resolve_precision(
            cfg.trainer.get("precision", "auto"), cfg.trainer.accelerator
        )
        if cfg.get("logger") and cfg.logger.get("wandb"):
            wandb_cfg = cfg.logger.wandb
            wandb_cfg.group, wandb_cfg.job_type = group_and_job_type(
                wandb_cfg.group,
                wandb_cfg.job_type,
                cfg.experiment_name,
                cfg.sweep_name if is_multirun() else None,
            )
            wandb_cfg.id = wandb_cfg.id or wandb_id_to_resume(folder, cfg.ckpt_path, cfg.train)


def _describe(exc: BaseException) -> str:
    if is_interruption(exc):
        return describe_interruption(exc)
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _test(
    cfg: DictConfig,
    trainer: pl.Trainer,
    model: TaskModel,
    datamodule: TaskDataModule,
    summary: dict,
    folder: RunFolder,
) -> dict | None:
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
    results = trainer.test(
        model,
        datamodule=datamodule,
        ckpt_path=ckpt,
        weights_only=not cfg.get("trust_checkpoint", False),
        verbose=False,
    )
    model.save_test_artifacts(folder)
    return dict(results[0]) if results else {}
