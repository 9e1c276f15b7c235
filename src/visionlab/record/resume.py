"""When a run continues an earlier one, and what it keeps: all resume rules in one place.

- Resuming training from ``<run>/checkpoints/<name>.ckpt`` (or ``<run>`` itself) of an unfinished visionlab
  run continues in that folder (``run_folder_to_resume``) under the same W&B run (``wandb_id_to_resume``);
  ``metrics.csv`` keeps only the epochs before the one training restarts at (``epochs_to_keep``). A completed
  run's record is never rewritten: training on from its ``last.ckpt`` gets a new folder.
- Evaluating a checkpoint (train=false) always gets a fresh folder and a fresh W&B run.
- A re-run sweep skips a job whose run record is complete, unless ``force=true`` (``completed_run_to_skip``).
- A job that restarts in a folder holding an unfinished run with ``checkpoints/last.ckpt`` continues from it
  (``checkpoint_to_continue``): a sweep job run again, or a SLURM job restarted after a requeue or preemption.
  ``resume=false`` starts over instead; ``force=true`` reruns a complete job from scratch.
- A run that fails while it is set up records that in its folder, but never over an earlier run's record that
  it was resuming or that is complete (``may_record_setup_failure``).
"""

from __future__ import annotations

from pathlib import Path

from visionlab.record import layout
from visionlab.record.folder import RunFolder
from visionlab.record.metric_keys import EPOCH


def run_folder_of_checkpoint(ckpt_path: str | None) -> Path | None:
    """The visionlab run folder (one with ``.hydra/``) a checkpoint lies in (``<run>/checkpoints/<file>``), or
    the run folder itself when ``ckpt_path`` names one."""
    if not ckpt_path:
        return None
    path = Path(ckpt_path).expanduser().resolve()
    run = path if path.is_dir() else path.parent.parent if path.parent.name == layout.CHECKPOINTS else None
    if run is not None and RunFolder(run).hydra.is_dir():
        return run
    return None


def run_folder_to_resume(ckpt_path: str | None, train: bool = True) -> Path | None:
    """The run folder training from a checkpoint continues in: the checkpoint's own run folder, unless that
    run is complete. A completed record is never rewritten: training on from its ``last.ckpt`` gets a new
    folder."""
    if not train:
        return None
    run = run_folder_of_checkpoint(ckpt_path)
    if run is None or RunFolder(run).completed_summary() is not None:
        return None
    return run


def wandb_id_to_resume(folder: RunFolder, ckpt_path: str | None, train: bool) -> str | None:
    """When training resumes from a checkpoint: the W&B run id recorded in the run's folder (the checkpoint's
    own folder, see ``run_folder_to_resume``), so the same W&B run continues."""
    return folder.read_wandb_id() if train and ckpt_path else None


def epochs_to_keep(rows: list[dict], restart_epoch: int) -> list[dict]:
    """After a checkpoint was restored at ``restart_epoch``: the recorded epochs before it (later ones
    redo)."""
    return [r for r in rows if (r.get(EPOCH) or 0) < restart_epoch]


def completed_run_to_skip(folder: RunFolder, force: bool) -> dict | None:
    """In a re-run sweep: the complete run's summary (skip the job), or None (run it)."""
    return None if force else folder.completed_summary()


def may_record_setup_failure(folder: RunFolder, ckpt_path: str | None, train: bool) -> bool:
    """Whether a set-up failure may write summary.json into ``folder``: not into the folder of the checkpoint
    it resumes (that run's record stays as it was), not over a complete record; a fresh folder always."""
    resumed = run_folder_to_resume(ckpt_path, train)
    if resumed is not None and resumed == folder.path.expanduser().resolve():
        return False
    try:
        return folder.read_summary().get("status") != layout.Status.COMPLETED
    except (OSError, ValueError):
        return True


def checkpoint_to_continue(folder: RunFolder, resume: bool, train: bool, ckpt_path: str | None) -> str | None:
    """The folder's own ``last.ckpt`` when this run should continue the unfinished run recorded there:
    training, no checkpoint given, ``resume`` on, and the record there not complete (a complete sweep job is
    skipped, or rerun from scratch with ``force=true``)."""
    if not resume or not train or ckpt_path:
        return None
    last = folder.checkpoints / layout.LAST_CHECKPOINT
    if not last.is_file() or folder.completed_summary() is not None:
        return None
    return str(last)
