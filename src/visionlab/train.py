"""Entry points: ``python train.py [overrides]`` / ``visionlab-train`` and ``visionlab-eval``.

One function, ``run(cfg)``, does the work for training, resuming and evaluation so the three cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home at import otherwise

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from visionlab import resolvers  # noqa: F401  (registers ${vl.*})

log = logging.getLogger("visionlab")
CONFIG_PATH = "conf"


def config_dir() -> Path:
    """The folder holding train.yaml and the config groups."""
    return Path(__file__).resolve().parent / CONFIG_PATH


def _task(cfg: DictConfig) -> float | None:
    """Hydra task: a user error ends a single run with a clear message and exit code 2; in a multirun it is
    raised so the sweep records this job as failed and goes on with the others."""
    # The training stack is imported here, not at module level, so `--help` and `--cfg job` answer at once.
    from visionlab.errors import UserError
    from visionlab.runner import run
    from visionlab.sweeps import should_skip

    multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if multirun and (previous := should_skip(cfg, Path(cfg.paths.output_dir))) is not None:
        log.info("Skipping %s: its run record is complete (force=true reruns it).", cfg.paths.output_dir)
        return previous.get("objective")
    try:
        summary = run(cfg)
    except UserError as exc:
        if multirun:
            raise
        log.error("%s", exc)
        sys.exit(2)
    return summary.get("objective")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    return _task(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def eval_main(cfg: DictConfig) -> float | None:
    return _task(cfg)

