"""OmegaConf resolvers used by the configs; importing this module registers them (idempotent)."""

from __future__ import annotations

import hashlib
import os
import re

from omegaconf import OmegaConf

# the run-folder policy lives in cluster.run_folders; Hydra reaches it through ${vl.run_dir:...}
from visionlab.cluster.run_folders import folder_name, run_dir, slurm_run_name  # noqa: F401

_PLAIN = re.compile(r"[A-Za-z0-9=,._+\-@:]")


def job_dir(override_dirname: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides, one folder per job and stable across re-runs (so a re-run
    finds its jobs): experiment and seed first for readability. A name that is too long or holds any other
    character (a path separator, a space) keeps a readable prefix and ends with ``__`` and a hash of the full
    overrides; a plain name never holds ``__``, so two jobs never map to one folder. The shortened name keeps
    experiment and seed, then the short plain overrides (the ones a sweep varies, e.g.
    ``model.optimizer.lr=0.01``) before long or path-like ones."""
    if not override_dirname:
        return "default"
    first = ("experiment=", "seed=")
    items = override_dirname.split(",")

    def rank(item: str) -> int:
        return next((i for i, p in enumerate(first) if item.startswith(p)), len(first))

    items.sort(key=rank)
    name = ",".join(items)
    if len(name) <= limit and "__" not in name and all(_PLAIN.fullmatch(c) for c in name):
        return name

    # shortened: the short plain overrides first (what a sweep varies, lr=0.01, is rarely a path or a long
    # text), so the name still shows them; the hash of all the overrides tells the jobs apart
    def plain(item: str) -> bool:
        return all(_PLAIN.fullmatch(c) for c in item)

    ordered = sorted(items, key=lambda item: (rank(item), not plain(item), len(item)))
    shown = ",".join(_without_parent_folders(item) for item in ordered)
    readable = "".join(c if _PLAIN.fullmatch(c) else "_" for c in shown)[: limit - 12]
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:10]
    return f"{readable}__{digest}"


def _without_parent_folders(item: str) -> str:
    """``data.data_dir=/home/ana/data/camvid`` → ``data.data_dir=camvid``: the folder name shows what the job
    used, not where it lay on one machine (a study's committed folders would otherwise carry the author's home
    path); the hash of the full overrides still tells two ``camvid`` folders apart."""
    key, sep, value = item.partition("=")
    if not sep or "/" not in value:
        return item
    return f"{key}={value.rstrip('/').rsplit('/', 1)[-1] or value}"


def class_folders(data_dir) -> list[str]:
    """``${vl.class_folders:<dir>}``: an image folder's class names (its sub-folders, sorted), listed when the
    config is resolved so the model can follow ``data.num_classes``; a missing folder is a DataError."""
    from visionlab.data.classification.folders import class_folders as listing

    return listing(data_dir)


def num_class_folders(data_dir) -> int:
    """``${vl.num_class_folders:<dir>}``: how many classes an image folder holds."""
    return len(class_folders(data_dir))


def register() -> None:
    if not OmegaConf.has_resolver("vl.run_dir"):
        OmegaConf.register_new_resolver("vl.run_dir", run_dir)
    if not OmegaConf.has_resolver("vl.cwd"):  # usable before Hydra sets its runtime (e.g. in hydra.sweep.dir)
        OmegaConf.register_new_resolver("vl.cwd", os.getcwd)
    if not OmegaConf.has_resolver("vl.job_dir"):
        OmegaConf.register_new_resolver("vl.job_dir", job_dir)
    if not OmegaConf.has_resolver("vl.class_folders"):
        OmegaConf.register_new_resolver("vl.class_folders", class_folders)
    if not OmegaConf.has_resolver("vl.num_class_folders"):
        OmegaConf.register_new_resolver("vl.num_class_folders", num_class_folders)


register()
