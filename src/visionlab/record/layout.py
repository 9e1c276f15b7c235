"""Names of everything a run leaves behind (README: "What every run leaves behind"), a run's status values,
and which folder a path names as a run."""

from __future__ import annotations

from pathlib import Path

# files of a run folder
CONFIG = "config.yaml"  # the resolved config
METRICS = "metrics.csv"  # one row per epoch
SUMMARY = "summary.json"  # status, best/final/test metrics, provenance
TEST_CASES = "test_cases.csv"  # segmentation: one row per test case
QUALITATIVE = "qualitative.npz"  # segmentation: the cases below, each image, mask, prediction, index and F1
# its cases: case 0, the best, and the three worst (a wrong mask among a data set's worst cases is then in
# sight); records from before the second and third worst hold the first three only
QUALITATIVE_CASES = ("fixed", "best", "worst", "worst_2", "worst_3")
WORST_CASES = tuple(name for name in QUALITATIVE_CASES if name.startswith("worst"))
CONFUSION = "confusion_matrix.csv"  # classification: rows = true class
PER_CLASS_ACCURACY = "per_class_accuracy.csv"  # classification
MISCLASSIFIED = "misclassified.npz"  # classification: images the model got wrong (images, true, pred)
# the same three on the validation split at the best epoch, written when a run has no test split
VAL_CONFUSION = "val_confusion_matrix.csv"
VAL_PER_CLASS_ACCURACY = "val_per_class_accuracy.csv"
VAL_MISCLASSIFIED = "val_misclassified.npz"
WANDB_RUN_ID = "wandb_run_id.txt"  # lets a resumed run continue the same W&B run
CHECKPOINTS = "checkpoints"  # folder: best.ckpt and last.ckpt
LAST_CHECKPOINT = "last.ckpt"  # inside checkpoints/: the end of the last finished epoch
HYDRA = ".hydra"  # folder: Hydra's copy of the config and the overrides
HYDRA_CONFIG = "config.yaml"  # inside .hydra/
HYDRA_OVERRIDES = "overrides.yaml"  # inside .hydra/
HYDRA_RUNTIME = "hydra.yaml"  # inside .hydra/: Hydra's own settings for the run

# the small part of a run record a study commits (no checkpoints, no W&B files): enough to rebuild its report
AUDIT_FILES = (
    CONFIG,
    METRICS,
    SUMMARY,
    TEST_CASES,
    CONFUSION,
    PER_CLASS_ACCURACY,
    VAL_CONFUSION,
    VAL_PER_CLASS_ACCURACY,
    MISCLASSIFIED,
    VAL_MISCLASSIFIED,
    QUALITATIVE,
)

# files of a sweep folder
SWEEP_INDEX = "sweep_index.json"


def job_lock(job_folder: str) -> str:
    """The lock file beside a sweep job's folder, held while a process runs that job."""
    return f".{job_folder}.lock"


def run_folder_with_config(path: Path) -> Path | None:
    """The run folder ``path`` names (the folder itself, or ``<run>/checkpoints/<file>``) when it holds
    ``config.yaml``, the config that defines the checkpoint's model; else None."""
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == CHECKPOINTS else None
    return folder if folder is not None and (folder / CONFIG).is_file() else None


class Status:
    """Values of ``summary.json``'s ``status`` (and of the sweep index's job status)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"
