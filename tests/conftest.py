"""Test set-up: offline W&B, no albumentations update check, and the shared fixtures. Helpers live in
helpers.py."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
# Under pytest-xdist every core already runs a worker: one torch thread per test process (and the runs it
# starts). Several multi-threaded processes on few cores make torch's spinning thread pools wait on each other
# (a 20 s sweep test took 105 s).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _no_log_handler_outlives_its_test():
    """A test that runs the CLI in-process lets Hydra's job logging attach handlers to the streams pytest
    captured for that test; a later test's log line into such a (closed) stream prints a "Logging error"
    traceback into that test's output. Every logger's handlers are restored after each test."""
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]
    before = {id(logger): list(logger.handlers) for logger in loggers}
    yield
    for logger in [logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]:
        kept = before.get(id(logger), [])
        for handler in [h for h in logger.handlers if h not in kept]:
            logger.removeHandler(handler)


@pytest.fixture
def tiny_gtsrb_dir(tmp_path: Path) -> Path:
    """A prepared GTSRB-format .npz (x_train/y_train/track_train + test) made from the synthetic generator."""
    import numpy as np

    from visionlab.data.classification.synthetic import make_synthetic_signs

    arrays = make_synthetic_signs(seed=3, tracks_per_class=3, frames_per_track=3, test_tracks_per_class=1)
    folder = tmp_path / "gtsrb_npz"
    folder.mkdir()
    np.savez(folder / "part1.npz", **arrays)
    return folder


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node SLURM (``slurm_cluster``): reused when one answers, else started and, at the end of
    the session, stopped by pid. Skips with the reason when it cannot run here."""
    import slurm_cluster

    if (reason := slurm_cluster.why_unavailable()) is not None:
        pytest.skip(reason)
    pids = [] if slurm_cluster.answers() else slurm_cluster.start(tmp_path_factory.mktemp("slurm-pids"))
    slurm_cluster.cancel_leftovers()
    yield
    slurm_cluster.cancel_leftovers()
    slurm_cluster.stop(pids)


def pytest_configure(config):
    """Keep the order below under ``--dist loadfile``: pytest-xdist would otherwise send the files with the
    most tests first, and the SLURM file (5 tests) would start last."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """The SLURM scenarios first: they take ~2 minutes of mostly waiting on the scheduler, so under
    pytest-xdist they overlap the rest of the suite instead of running alone at its end. Then the files with
    the most tests, as xdist's own order does (the short ones fill in at the end)."""
    sizes = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.get_closest_marker("slurm") is None, -sizes[item.path], str(item.path)))
