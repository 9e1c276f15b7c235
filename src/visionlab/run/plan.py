"""The decisions of one run, taken once, before anything is built or written: a frozen ``RunPlan``.

A run reads its composed config in two steps. ``check_composed`` takes a run folder named as ``ckpt_path`` (or
``init_from``) as the source of the model and its inputs and checks every value (``config.rules``); the CLI
calls it before the training stack is imported, so a typo is answered in about a second, and ``run`` calls
it only where the CLI did not. ``make_plan`` then decides what the config cannot say by itself: the run
folder, whether this process writes the record (global rank 0, ``cluster.ranks``), whether it continues a run
folder in place (and so holds its lock), what a set-up failure may record, how earlier attempts ended, and the
precision ``auto`` stands for on this machine. Nothing edits the composed config after that: config.yaml is
the composed config, and the decisions are recorded in summary.json from the plan.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from visionlab.record.folder import RunFolder


def check_composed(cfg: DictConfig) -> None:
    """Adopt the run that ``ckpt_path``/``init_from`` names (its config defines the model and its inputs),
    then check the config's values: a ConfigError (one line) for the first bad one. The one place a composed
    config is checked."""
    from hydra.core.hydra_config import HydraConfig

    from visionlab.config.hydra_job import task_overrides
    from visionlab.config.rules import check_config
    from visionlab.inference.run_config import adopt_run
    from visionlab.tasks.registry import check_model_solves_the_data

    adopt_run(cfg, task_overrides() if HydraConfig.initialized() else None)  # None: overrides unknown
    check_config(cfg)
    check_model_solves_the_data(
        *(_select(cfg, key) for key in ("data._target_", "model._target_", "data.name"))
    )


@dataclass(frozen=True)
class RunPlan:
    """What one attempt of a run does, decided once; the parts are built from the config and this plan."""

    folder: RunFolder
    ckpt_path: str | None  # resumed (train) or evaluated (not train) checkpoint
    train: bool
    multirun: bool
    writes_record: bool  # global rank 0: one run, one record (the other ranks follow it)
    continues_in_place: bool  # a single run resuming in its own folder: it holds the folder's lock
    records_setup_failure: bool  # a failure before training may write summary.json into the folder
    precision: str  # what trainer.precision (``auto``) stands for on this machine
    earlier_attempts: tuple[dict, ...] = field(default=())
    started: float = field(default_factory=time.time)


def _select(cfg: DictConfig, key: str, default=None):
    return OmegaConf.select(
        cfg, key, default=default, throw_on_missing=False, throw_on_resolution_failure=False
    )


def records_setup_failure(cfg: DictConfig) -> bool:
    """Asked before the config is checked (a refusal of the checks writes nothing either way)."""
    from visionlab.record.resume import may_record_setup_failure

    ckpt = _select(cfg, "ckpt_path")
    return may_record_setup_failure(
        RunFolder(cfg.paths.output_dir),
        ckpt if isinstance(ckpt, str) else None,
        _select(cfg, "train") is not False,
    )


def make_plan(cfg: DictConfig, records_failure: bool, earlier: list[dict], started: float) -> RunPlan:
    """The plan of a checked config (``check_composed``); ``records_failure`` and ``earlier`` are asked of
    the folder before this attempt wrote anything into it (``records_setup_failure``,
    ``run.record.earlier_attempts``)."""
    from visionlab.cluster.ranks import check_slurm_tasks, is_rank_zero
    from visionlab.config.hydra_job import is_multirun
    from visionlab.record.resume import run_folder_to_resume
    from visionlab.record.writable import refuse_unwritable_folder_to_continue
    from visionlab.run.precision import resolve_precision

    folder = RunFolder(cfg.paths.output_dir)
    ckpt = cfg.get("ckpt_path")
    train = cfg.get("train") is not False
    multirun = is_multirun()
    check_slurm_tasks()
    if train and ckpt:  # before the lock, which would leave its file beside a refused folder
        refuse_unwritable_folder_to_continue(folder, ckpt)
    rank_zero = is_rank_zero()
    resumed = run_folder_to_resume(ckpt, True) if isinstance(ckpt, str) else None
    in_place = (
        not multirun  # a sweep job holds its folder's lock already (``cluster.claim``)
        and rank_zero
        and train
        and resumed is not None
        and resumed == folder.path.expanduser().resolve()
    )
    return RunPlan(
        folder=folder,
        ckpt_path=ckpt,
        train=train,
        multirun=multirun,
        writes_record=rank_zero,
        continues_in_place=in_place,
        records_setup_failure=records_failure,
        precision=resolve_precision(cfg.trainer.get("precision", "auto"), cfg.trainer.accelerator),
        earlier_attempts=tuple(earlier),
        started=started,
    )


@dataclass(frozen=True)
class Admission:
    """Whether this process runs the job in its folder: ``skip`` holds the complete record of a sweep job
    that is not run again (its objective is the job's result), ``continue_from`` the ``last.ckpt`` of an
    unfinished run in the folder that this run continues (a sweep run again, a SLURM job requeued or
    preempted)."""

    multirun: bool
    skip: dict | None = None
    continue_from: str | None = None


@contextmanager
def admit(cfg: DictConfig) -> Iterator[Admission]:
    """Decide, once, whether and how this process runs the job; held while it runs. In a multirun, global
    rank 0 claims the job's folder (``cluster.claim``: the same sweep started twice runs each job once) and
    skips a job whose record is complete (even with ``force`` when another process just ran it); the other
    ranks (``cluster.ranks``) take the same decision from the same folder without the claim. A single run
    is never skipped. Either continues an unfinished run it finds in its folder (``resume=false`` starts
    over)."""
    from visionlab.cluster.claim import claim
    from visionlab.cluster.ranks import is_rank_zero
    from visionlab.config.hydra_job import is_multirun
    from visionlab.record.resume import checkpoint_to_continue, completed_run_to_skip

    folder = RunFolder(cfg.paths.output_dir)
    multirun = is_multirun()

    def decided(force: bool) -> Admission:
        if multirun and (previous := completed_run_to_skip(folder, force)) is not None:
            return Admission(multirun, skip=previous)
        last = checkpoint_to_continue(
            folder, bool(cfg.get("resume", True)), bool(cfg.get("train", True)), cfg.get("ckpt_path")
        )
        return Admission(multirun, continue_from=last)

    force = bool(cfg.get("force", False))
    if not multirun or not is_rank_zero():  # rank 0 of a sweep job holds the claim
        yield decided(force)
        return
    with claim(folder) as waited:  # a job another process just ran is complete now: skip it even with force
        yield decided(force and not waited)
