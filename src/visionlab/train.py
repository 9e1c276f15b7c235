"""Entry points: ``python train.py [overrides]`` / ``visionlab-train`` and ``visionlab-eval``.

One function, ``run(cfg)``, does the work for training, resuming and evaluation so the three cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import otherwise

import hydra
from omegaconf import DictConfig

from visionlab import resolvers  # noqa: F401  (registers ${vl.*})
from visionlab.configs import config_dir

log = logging.getLogger("visionlab")
CONFIG_PATH = str(config_dir())


def _task(cfg: DictConfig) -> float | None:
    """Hydra task: a user error ends a single run with one line on stderr and exit code 2; in a multirun it is
    raised so the sweep records this job as failed and goes on with the others. SIGTERM/Ctrl-C end the process
    (143/130) once the run is recorded as interrupted. A sweep job first claims its folder (``run_record.claim``)."""
    # The training stack is imported here, not at module level, so `--help` and `--cfg job` answer at once.
    from visionlab.console import quiet_library_noise
    from visionlab.hydra_runtime import is_multirun
    from visionlab.run_record.claim import claim
    from visionlab.run_record.folder import RunFolder
    from visionlab.run_record.resume import completed_run_to_skip

    quiet_library_noise()
    folder = RunFolder(cfg.paths.output_dir)
    if not is_multirun():
        return _run_reporting_errors(cfg, multirun=False)
    with claim(folder) as waited:  # a job another process just ran is complete now: skip it even with force
        if (previous := completed_run_to_skip(folder, cfg.get("force", False) and not waited)) is not None:
            log.info("Skipping %s: its run record is complete (force=true reruns it).", cfg.paths.output_dir)
            return previous.get("objective")
        return _run_reporting_errors(cfg, multirun=True)


def _run_reporting_errors(cfg: DictConfig, multirun: bool) -> float | None:
    from visionlab.errors import UserError
    from visionlab.interruption import exit_code, is_interruption
    from visionlab.runner import run

    try:
        summary = run(cfg)
    except UserError as exc:
        if multirun:
            raise
        # printed, not logged: the log file may belong to a run folder this run must leave as it was
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except BaseException as exc:
        if is_interruption(exc):
            sys.exit(exit_code(exc))
        raise
    return summary.get("objective")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    return _task(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def eval_main(cfg: DictConfig) -> float | None:
    return _task(cfg)

