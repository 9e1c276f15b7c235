"""A run that continues in its own folder checks first that it can write there.

Resuming training from ``<run>/checkpoints/last.ckpt`` continues in ``<run>``
(``resume.run_folder_to_resume``), and so does a job that finds its own unfinished run. A folder on a
read-only mount, or one the user may not write to, used to fail half-way with an ``OSError`` traceback from
``.hydra/config.yaml``. Checked before anything is written, it is one line that names the folder, and the
folder stays as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from visionlab.config.errors import ConfigError
from visionlab.record import layout
from visionlab.record.folder import RunFolder

# files a continued run rewrites in place (the others are replaced by a rename, which needs the folder only)
_REWRITTEN = (
    layout.CONFIG,
    layout.WANDB_RUN_ID,
    "train.log",
    f"{layout.HYDRA}/{layout.HYDRA_CONFIG}",
    f"{layout.HYDRA}/{layout.HYDRA_RUNTIME}",
    f"{layout.HYDRA}/{layout.HYDRA_OVERRIDES}",
)


def _unwritable(folder: RunFolder) -> tuple[Path, str] | None:
    """(what, why) for the first folder or file of the run a continued run cannot write, else None. A folder
    is tried by creating (and removing) an empty hidden file in it: that asks the file system itself, which
    knows read-only mounts, permissions, ACLs and quotas alike."""
    for directory in (folder.path, folder.hydra, folder.checkpoints):
        if not directory.is_dir():
            continue
        try:
            handle, name = tempfile.mkstemp(prefix=".visionlab-write-check-", dir=directory)
        except OSError as exc:
            return directory, exc.strerror or type(exc).__name__
        os.close(handle)
        os.unlink(name)
    for name in _REWRITTEN:
        path = folder.file(name)
        if path.is_file() and not os.access(path, os.W_OK):
            return path, "Permission denied"
    return None


def refuse_unwritable_folder_to_continue(folder: RunFolder, ckpt_path: str, found: bool = False) -> None:
    """A ConfigError when training would continue in ``folder`` (an existing run folder) and cannot write
    there. ``found``: the job found the unfinished run's checkpoint in its own folder (no ``ckpt_path`` was
    given)."""
    if not folder.is_run_folder() or (problem := _unwritable(folder)) is None:
        return
    where, why = problem
    how = (
        f"this job continues the unfinished run in {folder.path} (from {ckpt_path}), but that folder cannot "
        "be written"
        if found
        else f"ckpt_path={ckpt_path}: training continues in its run folder {folder.path}, which cannot be "
        "written"
    )
    raise ConfigError(
        f"{how} ({why}: {where}); nothing was changed. Make the folder writable, or copy it somewhere "
        f"writable and resume from the copy's {layout.CHECKPOINTS}/{layout.LAST_CHECKPOINT} (train=false "
        "evaluates the checkpoint into a new folder)."
    )
