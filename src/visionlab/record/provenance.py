"""What a run record says about where a result came from: code version, packages, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = (
    "visionlab",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "hydra-core",
    "wandb",
    "torchmetrics",
    "albumentations",
    "numpy",
)


def _declared_state() -> dict:
    """A copied tree (an exported tree on a cluster node, a GPU machine) may declare what it was made from:
    ``VISIONLAB_GIT_COMMIT`` and, optionally, ``VISIONLAB_GIT_DIRTY=true|false`` (unknown when unset)."""
    commit = os.environ["VISIONLAB_GIT_COMMIT"]
    dirty = os.environ.get("VISIONLAB_GIT_DIRTY", "").strip().lower()
    return {"commit": commit, "dirty": {"true": True, "1": True, "false": False, "0": False}.get(dirty)}


def git_state(path: Path | None = None) -> dict:
    """Commit and dirty flag of the git checkout holding ``path`` (the package by default). A commit declared
    in the environment (``_declared_state``) wins: a copied tree may have no ``.git``, or sit inside a stale
    one that would name the wrong commit."""
    if os.environ.get("VISIONLAB_GIT_COMMIT"):
        return _declared_state()
    cwd = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu} ({torch.get_num_threads()} threads)"
