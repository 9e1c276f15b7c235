"""The ``${vl.*}`` resolvers the shipped configs use; importing this module registers them (idempotent).

They live with the entry points because they are the glue between the configs and the stages that own the
answers (the run-folder policy in ``cluster/run_folders.py``, an image folder's classes in
``data/classification/folders.py``): ``config/`` knows no stage. Every entry point that composes a config
(``cli/train.py``, the benchmark, the tests' helpers) imports it first.
"""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from visionlab.cluster.run_folders import job_dir, run_dir


def class_folders(data_dir) -> list[str]:
    """``${vl.class_folders:<dir>}``: an image folder's class names (its sub-folders, sorted), listed when the
    config is resolved so the model can follow ``data.num_classes``; a missing folder is a DataError."""
    from visionlab.data.classification.folders import class_folders as listing

    return listing(data_dir)


def num_class_folders(data_dir) -> int:
    """``${vl.num_class_folders:<dir>}``: how many classes an image folder holds."""
    return len(class_folders(data_dir))


RESOLVERS = {
    "vl.run_dir": run_dir,
    "vl.cwd": os.getcwd,  # usable before Hydra sets its runtime (e.g. in hydra.sweep.dir)
    "vl.job_dir": job_dir,
    "vl.class_folders": class_folders,
    "vl.num_class_folders": num_class_folders,
}


def register() -> None:
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


register()
