"""Entry points: ``python train.py [overrides]`` / ``visionlab-train`` and ``visionlab-eval``.

One function, ``run(cfg)``, does the work for training, resuming and evaluation so the three cannot drift
apart."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import otherwise

import hydra
from omegaconf import DictConfig

from visionlab.cli import resolvers  # noqa: F401  (registers ${vl.*})
from visionlab.cli.errors import one_line_errors
from visionlab.config.location import config_dir
from visionlab.inference.run_config import names_runs_after_their_model

log = logging.getLogger("visionlab")
CONFIG_PATH = str(config_dir())


def _task(cfg: DictConfig) -> float | None:
    """Hydra task: a user error ends a single run with one line on stderr and exit code 2; in a multirun it is
    raised so the sweep records this job as failed and goes on with the others. A stop signal (SIGTERM,
    SLURM's USR1/USR2) or Ctrl-C ends the process (128 + signal, 130) once the run and the sweep index say
    "interrupted".

    Whether this process runs the job, skips it (a complete sweep job) or continues an unfinished run in its
    folder is decided once, by ``run.plan.admit`` (global rank 0 claims a sweep job; the other ranks
    follow)."""
    from visionlab.config.hydra_job import is_multirun

    if not is_multirun():
        _refuse_bad_values_at_once(cfg)
    # The training stack is imported here, not at module level, so `--help` and `--cfg job` answer at once.
    from visionlab.run.console import quiet_library_noise
    from visionlab.run.plan import admit

    quiet_library_noise()
    with admit(cfg) as admission:  # claim, skip or continue: decided in run.plan
        if admission.skip is not None:
            log.info("Skipping %s: its run record is complete (force=true reruns it).", cfg.paths.output_dir)
            return admission.skip.get("objective")
        if admission.continue_from is not None:
            _continue_unfinished(cfg, admission.continue_from)
        return _run_reporting_errors(cfg, admission.multirun, checked=not admission.multirun)


def _refuse_bad_values_at_once(cfg: DictConfig) -> None:
    """The config's checks (``run.plan.check_composed``), before the training stack is imported (Lightning
    alone takes ~5 s to import on 2 cores): a typo is answered in about a second, with one line and exit code
    2, and the empty folder Hydra made for the run is removed. ``run`` is told the config is checked, so it is
    checked once."""
    from visionlab.config.errors import UserError
    from visionlab.record.folder import RunFolder
    from visionlab.run.plan import check_composed

    try:
        check_composed(cfg)  # ckpt_path=<run>: the run's config defines the model and its inputs
    except UserError as exc:
        RunFolder(cfg.paths.output_dir).discard_if_empty()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _continue_unfinished(cfg: DictConfig, last: str) -> None:
    """Run from the unfinished run's ``last.ckpt`` (``run.plan.admit`` found it): the one value set on the
    composed config after composition, before the run's checks of the checkpoint and its plan, so config.yaml
    and summary.json say which checkpoint the run continued."""
    from omegaconf import open_dict

    from visionlab.record.folder import RunFolder

    folder = RunFolder(cfg.paths.output_dir)
    _refuse_unwritable_folder(folder, last)  # before the first log line opens train.log there
    log.info("Continuing the unfinished run in %s from %s (resume=false starts over).", folder.path, last)
    with open_dict(cfg):
        cfg.ckpt_path = last


def _refuse_unwritable_folder(folder, last: str) -> None:
    """A folder this job would continue in but cannot write: one line and exit code 2 (a sweep records the job
    as failed and goes on)."""
    from visionlab.config.errors import UserError
    from visionlab.config.hydra_job import is_multirun
    from visionlab.record.writable import refuse_unwritable_folder_to_continue

    try:
        refuse_unwritable_folder_to_continue(folder, last, found=True)
    except UserError as exc:
        if is_multirun():
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _run_reporting_errors(cfg: DictConfig, multirun: bool, checked: bool = False) -> float | None:
    """``run`` with its user errors as one line and exit code 2 (raised in a multirun); ``checked``: the
    config was checked already (``_refuse_bad_values_at_once``), so ``run`` does not check it again."""
    from visionlab.config.errors import UserError
    from visionlab.run.execute import run
    from visionlab.run.signals import Stopped, describe, exit_code, exit_promptly, is_interruption

    try:
        summary = run(cfg, config_checked=checked)
    except UserError as exc:
        if multirun:
            raise
        # printed, not logged: the log file may belong to a run folder this run must leave as it was
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except BaseException as exc:
        if is_interruption(exc):
            if multirun:  # Hydra's job-end callback does not run for an exiting process: say it here
                from visionlab.cluster.sweep_callback import record_interrupted_job

                record_interrupted_job(describe(exc))
            if isinstance(exc, Stopped) and exc.reraise is not None:
                raise exc.reraise from None  # the launcher's own verdict (submitit: not requeued)
            exit_promptly(exit_code(exc))
        raise
    return summary.get("objective")


def answers_help_quickly(main: Callable[..., Any]) -> Callable[..., Any]:
    """``main`` (a ``@hydra.main`` function) with ``--help`` answered in well under a second. Hydra's help
    lists the config groups by asking its config loader for the options of each group and sub-group (about
    120 questions here), and each question builds a new repository of every config file (deep copies of them
    all): two thirds of the help's time. While help is answered, the questions with the same arguments share
    one repository. Another Hydra without that method answers as before."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        if "--help" not in sys.argv and "-h" not in sys.argv:
            return main(*args, **kwargs)
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        original = getattr(ConfigLoaderImpl, "_parse_overrides_and_create_caching_repo", None)
        if original is None:
            return main(*args, **kwargs)
        made: dict = {}

        def shared(self, config_name, overrides):
            key = (id(self), config_name, tuple(overrides))
            if key not in made:
                made[key] = original(self, config_name, overrides)
            return made[key]

        ConfigLoaderImpl._parse_overrides_and_create_caching_repo = shared
        try:
            return main(*args, **kwargs)
        finally:
            ConfigLoaderImpl._parse_overrides_and_create_caching_repo = original

    return wrapper


@answers_help_quickly
@names_runs_after_their_model
@one_line_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    return _task(cfg)


@answers_help_quickly
@names_runs_after_their_model
@one_line_errors
@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def eval_main(cfg: DictConfig) -> float | None:
    return _task(cfg)
