"""``RunFolder``: the readers and writers of one run folder, so no other module spells a run-record file name.

Readers raise ``FileNotFoundError`` when a file is absent and ``ValueError``/``OSError`` when it is
unreadable; the report turns those into warnings. Files a user hands us are read as data only (no pickles),
and only through ``files.read_bounded``: regular files inside this folder, bounded in size and depth
(``files.RefusedFile``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from visionlab.config.errors import ConfigError
from visionlab.record import layout
from visionlab.record.files import (
    MAX_NODES,
    RefusedFile,
    check_record_file,
    parse_yaml,
    read_bounded,
    read_csv,
    read_json,
    read_npz,
    read_text,
    write_csv,
    write_json,
)
from visionlab.record.former_names import current_names
from visionlab.record.metric_keys import CASE, CASE_SCORES, CASE_SOURCE

TEST, VALIDATION = "test", "validation"  # the splits a classification run records its confusion matrix on
_SPLIT_FILES = {
    TEST: (layout.CONFUSION, layout.PER_CLASS_ACCURACY, layout.MISCLASSIFIED),
    VALIDATION: (layout.VAL_CONFUSION, layout.VAL_PER_CLASS_ACCURACY, layout.VAL_MISCLASSIFIED),
}
QUALITATIVE_FIELDS = ("image", "mask", "pred")


def unwritable_folder_error(folder: Path, exc: OSError) -> ConfigError:
    """The one-line error for a run folder that cannot be created (read-only file system, no permission)."""
    where = Path(exc.filename) if exc.filename else folder
    reason = exc.strerror or type(exc).__name__
    return ConfigError(
        f"paths.log_dir: cannot create the run folder {folder} ({reason}: {where}). Set "
        "paths.log_dir=<a folder you can write to> (or the VISIONLAB_LOG_DIR environment variable)."
    )


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def file(self, name: str) -> Path:
        return self.path / name

    # ------------------------------------------------------------------ what the folder is
    @property
    def checkpoints(self) -> Path:
        return self.path / layout.CHECKPOINTS

    @property
    def hydra(self) -> Path:
        return self.path / layout.HYDRA

    def is_run_folder(self) -> bool:
        """A folder with a summary.json, or a Hydra job folder whose run died before writing one."""
        return self.file(layout.SUMMARY).is_file() or self.hydra.is_dir()

    def has(self, name: str) -> bool:
        return self.file(name).exists()

    # ------------------------------------------------------------------ writers
    def create(self) -> RunFolder:
        """Make the folder (and its parents); one that cannot be made is a ConfigError naming it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unwritable_folder_error(self.path, exc) from None
        return self

    def discard_if_empty(self) -> None:
        """Remove the folder if nothing is in it (Hydra makes a run's folder before the run's checks: a
        refused run leaves none behind); a folder holding anything stays as it is."""
        try:
            self.path.rmdir()
        except OSError:
            pass

    def write_config(self, resolved: dict) -> None:
        self.file(layout.CONFIG).write_text(yaml.safe_dump(resolved, sort_keys=False))

    def write_hydra(self, config_yaml: str, hydra_yaml: str, overrides: list[str]) -> None:
        """Hydra's record of the run (written by us once the run's checks passed, not by Hydra before
        them)."""
        self.hydra.mkdir(parents=True, exist_ok=True)
        self.hydra.joinpath(layout.HYDRA_CONFIG).write_text(config_yaml)
        self.hydra.joinpath(layout.HYDRA_RUNTIME).write_text(hydra_yaml)
        self.hydra.joinpath(layout.HYDRA_OVERRIDES).write_text(yaml.safe_dump(list(overrides)))

    def write_summary(self, summary: dict) -> None:
        write_json(self.file(layout.SUMMARY), summary)

    def write_metrics(self, rows: list[dict]) -> None:
        write_csv(self.file(layout.METRICS), rows)

    def write_test_cases(self, scores: dict) -> None:
        """``scores``: per-case arrays keyed by the columns of ``metric_keys.CASE_SCORES`` (all of them), or
        by the K-class columns (``miou``, ``pixel_acc``, ``iou_c<k>``, ``dice_c<k>``); an optional ``source``
        (the file or npz index each case came from) becomes the column after ``case``."""
        columns = (
            list(CASE_SCORES)
            if all(name in scores for name in CASE_SCORES)
            else [name for name in scores if name != CASE_SOURCE]
        )
        n = len(scores[columns[0]])
        named = [CASE_SOURCE] if CASE_SOURCE in scores else []
        rows = [
            {
                CASE: i,
                **{name: str(scores[name][i]) for name in named},
                **{name: float(scores[name][i]) for name in columns},
            }
            for i in range(n)
        ]
        write_csv(self.file(layout.TEST_CASES), rows, [CASE, *named, *columns])

    def write_qualitative(self, cases: dict[str, dict]) -> None:
        """Named cases (fixed, best, worst), each ``index``, ``f1``, ``image`` (H×W uint8), ``mask``,
        ``pred``."""
        arrays = {}
        for name, case in cases.items():
            arrays[f"{name}_index"] = np.int64(case["index"])
            arrays[f"{name}_f1"] = np.float64(case["f1"])
            if case.get("source"):  # where the case came from (file name or npz index)
                arrays[f"{name}_source"] = np.array(str(case["source"]))
            if "rank" in case:  # K classes: the image's mIoU the case was ranked by (NaN: no counted pixel)
                arrays[f"{name}_miou"] = np.float64(case["iou"])
            for field in QUALITATIVE_FIELDS:
                arrays[f"{name}_{field}"] = case[field]
        tmp = self.file(f".{layout.QUALITATIVE}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(self.file(layout.QUALITATIVE))

    def write_confusion(self, matrix: np.ndarray, split: str = TEST) -> None:
        np.savetxt(self.file(_SPLIT_FILES[split][0]), matrix, fmt="%d", delimiter=",")

    def write_per_class_accuracy(self, rows: list[dict], split: str = TEST) -> None:
        write_csv(self.file(_SPLIT_FILES[split][1]), rows)

    def write_misclassified(
        self, images: np.ndarray, true: np.ndarray, pred: np.ndarray, split: str = TEST
    ) -> None:
        """A few wrongly classified images (N×H×W×C uint8) with their true and predicted class, for the
        report."""
        tmp = self.file(f".{_SPLIT_FILES[split][2]}.tmp.npz")
        np.savez_compressed(
            tmp,
            images=np.asarray(images, np.uint8),
            true=np.asarray(true, np.int64),
            pred=np.asarray(pred, np.int64),
        )
        tmp.replace(self.file(_SPLIT_FILES[split][2]))

    def write_wandb_id(self, run_id: str) -> None:
        self.file(layout.WANDB_RUN_ID).write_text(run_id)

    # ------------------------------------------------------------------ readers
    def read_summary(self) -> dict:
        summary = read_json(self.file(layout.SUMMARY), self.path)
        if not isinstance(summary, dict):
            raise ValueError(f"{layout.SUMMARY} does not hold a JSON object")
        return summary

    def completed_summary(self) -> dict | None:
        """The summary if the run finished completely, else None (a re-run sweep skips only such runs)."""
        try:
            summary = self.read_summary()
        except (OSError, ValueError):
            return None
        return summary if summary.get("status") == layout.Status.COMPLETED else None

    def read_config(self, max_nodes: int = MAX_NODES) -> dict:
        """The resolved config, or Hydra's copy for a run that died before writing it. A copy that is refused
        (``RefusedFile``: a link out of the folder, too large, more than ``max_nodes`` entries, too deep)
        raises; an unparsable one is skipped."""
        for path in (self.file(layout.CONFIG), self.hydra / layout.HYDRA_CONFIG):
            try:
                name = str(path.relative_to(self.path))
                return current_names(parse_yaml(read_text(path, self.path), name, max_nodes) or {})
            except RefusedFile:
                raise
            except (OSError, ValueError):
                continue
        raise FileNotFoundError(f"{layout.CONFIG} missing or unreadable")

    def read_overrides(self) -> list[str]:
        """Hydra's overrides of the run (a list of strings); a refused file raises ``RefusedFile``, an absent
        or unparsable one is no overrides."""
        path = self.hydra / layout.HYDRA_OVERRIDES
        try:
            overrides = parse_yaml(read_text(path, self.path), f"{layout.HYDRA}/{layout.HYDRA_OVERRIDES}")
        except RefusedFile:
            raise
        except (OSError, ValueError):
            return []
        if overrides is None:
            return []
        if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
            raise RefusedFile(f"{layout.HYDRA}/{layout.HYDRA_OVERRIDES}", "not a list of overrides (strings)")
        return overrides

    def read_metrics(self) -> list[dict]:
        return read_csv(self.file(layout.METRICS), self.path)

    def read_test_cases(self) -> list[dict]:
        return read_csv(self.file(layout.TEST_CASES), self.path)

    def read_qualitative(self) -> dict[str, np.ndarray]:
        return read_npz(self.file(layout.QUALITATIVE), self.path)

    def read_confusion(self, split: str = TEST) -> np.ndarray:
        """A square matrix of non-negative counts (numpy's own parse errors quote the file: not repeated)."""
        name = _SPLIT_FILES[split][0]
        text = read_text(self.file(name), self.path)
        try:
            matrix = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
        except (ValueError, OverflowError):
            raise ValueError(f"{name}: not a table of whole numbers separated by commas") from None
        if matrix.shape[0] != matrix.shape[1] or (matrix < 0).any():
            raise ValueError(f"{name}: not a square matrix of counts ({matrix.shape[0]}×{matrix.shape[1]})")
        return matrix

    def read_misclassified(self, split: str = TEST) -> dict[str, np.ndarray]:
        return read_npz(self.file(_SPLIT_FILES[split][2]), self.path)

    def check_files(self) -> None:
        """Raise ``RefusedFile`` for the first file of the record a reader would refuse (a link out of the
        folder, a FIFO or device, a file over the size bound); nothing is read."""
        for name in (
            *layout.AUDIT_FILES,
            layout.WANDB_RUN_ID,
            f"{layout.HYDRA}/{layout.HYDRA_CONFIG}",
            f"{layout.HYDRA}/{layout.HYDRA_OVERRIDES}",
        ):
            check_record_file(self.file(name), self.path)

    def copy_audit_files(self, target: Path) -> list[str]:
        """Copy the small, reviewable part of the record (``layout.AUDIT_FILES``) to ``target``; names copied.
        Only regular files inside the folder are copied (their bytes, never a link or what it points to)."""
        target.mkdir(parents=True, exist_ok=True)
        copied = []
        for name in layout.AUDIT_FILES:
            try:
                data = read_bounded(self.file(name), self.path)
            except (OSError, ValueError):
                continue
            (target / name).write_bytes(data)
            copied.append(name)
        return copied

    def read_wandb_id(self) -> str | None:
        try:
            return read_text(self.file(layout.WANDB_RUN_ID), self.path, limit=4096).strip() or None
        except (OSError, ValueError):
            return None


def find_run_folders(root: Path) -> list[RunFolder]:
    """``root`` itself if it is a run folder, else every run folder below it."""
    if RunFolder(root).is_run_folder():
        return [RunFolder(root)]
    found = {p.parent for p in root.rglob(layout.SUMMARY)} | {
        p.parent for p in root.rglob(layout.HYDRA) if p.is_dir()
    }
    return [RunFolder(p) for p in sorted(found)]
