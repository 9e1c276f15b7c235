"""One run, on one screen: check → plan → build → make the folder → fit/test → record. Training, resuming and
evaluating all go through ``run``.

Where the rest lives: the config's checks and the run's decisions (``run.plan``, ``config.rules``), what a
checkpoint may be (``run.checkpoints``), building the parts (``run.assembly``), SIGTERM/Ctrl-C
(``run.signals``), resume rules (``record.resume``), the run record's files and keys (``record``),
summary.json (``run.record``), what gets printed (``run.console``); the loggers are config
(``conf/logger``), W&B's naming and ids included (``tracking.wandb``).
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from visionlab.cluster.claim import hold_or_refuse
from visionlab.cluster.ranks import end_process_group, is_rank_zero
from visionlab.config.errors import DiskFullError, UserError
from visionlab.config.hydra_job import (
    close_log_files_in,
    cpu_threads,
    hydra_files,
    point_ddp_children_at_job,
)
from visionlab.inference.run_config import load_initial_weights
from visionlab.record import layout
from visionlab.record.disk_full import disk_full_error
from visionlab.record.folder import RunFolder
from visionlab.record.layout import Status
from visionlab.record.metric_keys import N_PARAMS
from visionlab.record.writable import refuse_unwritable_folder_to_continue
from visionlab.run.assembly import (
    build_datamodule,
    build_model,
    build_trainer,
    instantiate_group,
    read_data,
    spawns_ranks,
)
from visionlab.run.checkpoints import check_checkpoint
from visionlab.run.console import print_result
from visionlab.run.plan import RunPlan, check_composed, make_plan, records_setup_failure
from visionlab.run.record import earlier_attempts, finish_record, setup_failure_summary, start_summary
from visionlab.run.signals import describe as describe_interruption
from visionlab.run.signals import hold_stops, is_interruption, stop_behind, stop_signals
from visionlab.tasks.protocol import TaskDataModule, TaskModel
from visionlab.tracking.epoch_record import EpochRecord
from visionlab.tracking.plugins import trackers

log = logging.getLogger("visionlab")


def run(cfg: DictConfig, config_checked: bool = False) -> dict:
    """Train (or resume, or only evaluate) as configured; returns the summary written to summary.json.

    One pass: check the config (unless the CLI did, ``config_checked``), decide the run's plan (``run.plan``),
    build the model and the datamodule and check the checkpoint against the model, all before anything is
    written; then make the run folder, fit/test, record. A run that fails after its folder was made (while its
    data is read, or while it trains) leaves summary.json with its status and error, never over a record that
    is not its own (``may_record_setup_failure``). SIGTERM and Ctrl-C end it as "interrupted"."""
    started = time.time()
    folder = RunFolder(cfg.paths.output_dir)
    recordable = records_setup_failure(cfg)
    earlier = earlier_attempts(cfg, folder)  # before this attempt writes anything into the folder
    with stop_signals(), ExitStack() as held:
        checked = False
        try:
            if not config_checked:
                check_composed(cfg)  # a run folder given as ckpt_path is its checkpoint from here on
            plan = make_plan(cfg, recordable, earlier, started)
            if plan.continues_in_place:  # one process at a time continues a run folder
                held.enter_context(hold_or_refuse(folder))
            model, datamodule = _build_parts(cfg)
            checked = True
            parts = _set_up(cfg, plan, model, datamodule)
        except BaseException as caught:
            exc = stop_behind(caught) or caught  # W&B's service, stopped too, may fail its start first
            failure = disk_full_error(exc, folder=folder.path) or exc  # a full disk said as such
            if not checked and isinstance(failure, UserError):  # refused before anything is written: no
                close_log_files_in(folder.path)  # record, no folder (Hydra's train.log is not written yet)
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


def _build_parts(cfg: DictConfig) -> tuple[TaskModel, TaskDataModule]:
    """The model and the datamodule, built once (each checks its own values when built; the datamodule's
    data is read later, once the run folder can record a failure), seeded as the run; the checkpoints the run
    starts from are checked against the model."""
    pl.seed_everything(cfg.seed, workers=True)
    if threads := cpu_threads(cfg.get("threads")):
        torch.set_num_threads(threads)
    model = build_model(cfg)
    datamodule = build_datamodule(cfg)
    trusted = cfg.get("trust_checkpoint", False)
    if cfg.ckpt_path:
        check_checkpoint(cfg.ckpt_path, model, cfg.experiment_name, cfg.train, trusted)
        if cfg.train:
            refuse_unwritable_folder_to_continue(RunFolder(cfg.paths.output_dir), cfg.ckpt_path)
    if cfg.get("init_from"):
        check_checkpoint(cfg.init_from, model, cfg.experiment_name, False, trusted, "init_from")
    return model, datamodule


@dataclass
class _Parts:
    plan: RunPlan
    datamodule: TaskDataModule
    model: TaskModel
    trainer: pl.Trainer
    record: EpochRecord
    summary: dict
    trackers: list  # the loggers' run trackers (tracking.plugins)
    launches_ranks: bool = False  # Lightning starts the other DDP ranks from this process

    @property
    def folder(self) -> RunFolder:
        return self.plan.folder


def _set_up(cfg: DictConfig, plan: RunPlan, model: TaskModel, datamodule: TaskDataModule) -> _Parts:
    """Write the run's config (global rank 0 only: one run = one record), read the data, start the loggers."""
    folder, writer = plan.folder, plan.writes_record
    if writer:
        folder.create()
        if (hydra_record := hydra_files(cfg)) is not None:
            folder.write_hydra(*hydra_record)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if writer:
        folder.write_config(resolved)
    datamodule = read_data(cfg, datamodule)
    if cfg.get("init_from"):
        load_initial_weights(model, cfg.init_from, cfg.get("trust_checkpoint", False))
    loggers = instantiate_group(cfg.get("logger"), "logger")
    record = EpochRecord(folder)
    trainer = build_trainer(cfg, model, loggers, record, plan.precision)
    launches_ranks = spawns_ranks(trainer)  # asked before fit: Lightning's launcher then sets LOCAL_RANK here
    if launches_ranks and plan.multirun:
        point_ddp_children_at_job(str(folder.path), plan.ckpt_path)
    datamodule.use_global_batch(trainer.world_size)
    summary = start_summary(
        cfg, model, datamodule, folder, trainer, list(plan.earlier_attempts), plan.precision
    )
    started = trackers(loggers)
    for tracker in started:  # W&B: starts its run and records its id in the folder
        tracker.start(folder, writer)
    for logger in loggers:
        logger.log_hyperparams({**resolved, N_PARAMS: summary[N_PARAMS]})
    return _Parts(plan, datamodule, model, trainer, record, summary, started, launches_ranks)


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
        if parts.plan.writes_record:
            with hold_stops():
                error = _finish_record_despite_full_disk(summary, cfg, parts, test_metrics, started, error)
                print_result(summary)
        if parts.plan.multirun:
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
            parts.trackers,
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
    says how the run ended and that the folder does not record it (an interruption keeps its exit code, said
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
