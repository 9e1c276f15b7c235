"""Find run folders under the given paths and load their records, noting (never raising on) what is missing.

A run folder is any directory with a summary.json, or a Hydra job folder whose run died before it could write
one. A sweep folder may also hold a sweep index (overrides, status, run folder and error of every job), which
lets the report name jobs that never produced a run folder. All file access goes through ``run_record`` (its
one bounded reader, ``files.read_bounded``).

A run folder is data a user may not have made: a run whose record holds a file the reader refuses (a link out
of the folder, a FIFO or device, a file over the bounds, JSON/YAML nested too deep, a summary or metrics of
the wrong shape) is skipped, and the page says so in one line: ``run <name> skipped: <file>: <why>``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from visionlab.cluster.sweep_index import SweepJob, find_indexes, read_index
from visionlab.record.folder import RunFolder, find_run_folders
from visionlab.record.layout import CONFIG, METRICS, SUMMARY, Status
from visionlab.report.analysis.variants import split_names
from visionlab.report.limits import MAX_CONFIG_NODES, RefusedFile
from visionlab.report.render.portable import make_portable


@dataclass
class Run:
    folder: RunFolder
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    split_name: str | None = (
        None  # set by ``collect`` when the experiment's runs differ in a setting (``variants``)
    )

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def variant(self) -> str:
        if self.split_name:
            return self.split_name
        return str(
            self.summary.get("experiment") or self.config.get("experiment_name") or self.path.parent.name
        )

    @property
    def seed(self):
        return self.summary.get("seed", self.config.get("seed"))

    @property
    def task(self) -> str:
        """From summary.json; for a run that died before writing one, guessed from its model class."""
        if self.summary.get("task"):
            return self.summary["task"]
        from visionlab.tasks.registry import task_of_module

        model = self.config.get("model")
        target = str(model.get("_target_", "") if isinstance(model, dict) else "")
        return task_of_module(target) or Status.UNKNOWN

    @property
    def status(self) -> str:
        return self.summary.get("status") or "no summary"

    @property
    def completed(self) -> bool:
        return self.status == Status.COMPLETED

    @property
    def evaluation_only(self) -> bool:
        """A ``train=false`` run: it tested a checkpoint and trained nothing, so it has no epochs to
        record."""
        return bool(self.summary.get("evaluated_checkpoint")) and not self.summary.get("epochs")

    def read(self, name: str, reader):
        """``reader()`` of the run folder, or None when the file is absent; an unreadable file, or one over
        the report's bounds (``limits``), is a problem (its message names the file, never quotes it)."""
        try:
            return reader()
        except FileNotFoundError:
            return None
        except RefusedFile as exc:
            self.problems.append(f"{name} not read: {exc.why}")
            return None
        except (OSError, ValueError) as exc:
            self.problems.append(f"{name} unreadable: {_reason(exc, name)}")
            return None


@dataclass
class Collection:
    runs: list[Run]
    jobs_without_run: list[SweepJob]
    problems: list[str]
    skipped: list[str] = field(default_factory=list)  # "run <name> skipped: <file>: <why>", also in problems


def _reason(exc: Exception, name: str) -> str:
    """An exception's message without the file name repeated (messages name the file, never quote it)."""
    text = str(exc)
    return text[len(name) + 2 :] if text.startswith(f"{name}: ") else text


# what the report reads from summary.json, by the type it must have (None is always allowed); anything else in
# the file is not looked at
_SUMMARY_TYPES = {
    str: (
        "experiment",
        "task",
        "status",
        "error",
        "monitor",
        "data",
        "device",
        "precision",
        "test_split",
        "evaluated_checkpoint",
        "run_name",
        "resumed_from",
    ),
    dict: (
        "best",
        "final",
        "test",
        "git",
        "health",
        "versions",
        "time_to",
        "batch_size",
        "data_facts",
    ),
    list: ("overrides", "interruptions"),
    (int, float): (
        "epochs",
        "steps",
        "wall_time_s",
        "wall_time_this_attempt_s",
        "train_images_per_s",
        "started_at",
        "n_params",
        "world_size",
        "objective",
    ),
    (int, str): ("seed",),
}
_NUMBER_SECTIONS = ("best", "final", "test", "time_to")


def check_summary(summary: dict) -> None:
    """A ``RefusedFile`` naming the first key of summary.json whose value has a type the report cannot use (a
    task's own section, ``summary[<task>]``, is a mapping)."""
    from visionlab.tasks.registry import tasks

    for kind, keys in {**_SUMMARY_TYPES, dict: (*_SUMMARY_TYPES[dict], *tasks())}.items():
        for key in keys:
            value = summary.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
                raise RefusedFile(SUMMARY, f"{key!r} has the wrong type ({type(value).__name__})")
    if not all(isinstance(item, str) for item in summary.get("overrides") or []):
        raise RefusedFile(SUMMARY, "'overrides' is not a list of strings")
    for section in _NUMBER_SECTIONS:
        for key, value in (summary.get(section) or {}).items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise RefusedFile(SUMMARY, f"{section}.{str(key)[:60]!r} is not a number")


def _summary(folder: RunFolder, run: Run) -> None:
    try:
        run.summary = folder.read_summary()
    except FileNotFoundError:
        run.problems.append(f"{SUMMARY} missing")
        return
    except RefusedFile:
        raise
    except (OSError, ValueError) as exc:
        run.problems.append(f"{SUMMARY} unreadable: {_reason(exc, SUMMARY)}")
        return
    check_summary(run.summary)


def _config(folder: RunFolder, run: Run) -> None:
    try:
        run.config = folder.read_config(MAX_CONFIG_NODES)
    except FileNotFoundError:
        run.problems.append(f"{CONFIG} missing or unreadable")
        return
    if not isinstance(run.config, dict):
        run.problems.append(f"{CONFIG} not used: not a mapping")
        run.config = {}


def load_run(folder: RunFolder) -> Run:
    """The run's record; a ``RefusedFile`` when a file of it is refused (the run is then skipped)."""
    run = Run(folder)
    folder.check_files()
    _summary(folder, run)
    _config(folder, run)
    run.overrides = list(run.summary.get("overrides") or folder.read_overrides())
    metrics = None
    try:
        metrics = folder.read_metrics()
    except FileNotFoundError:
        if not run.evaluation_only:
            run.problems.append(f"{METRICS} missing")
    except RefusedFile:
        raise
    except (OSError, ValueError) as exc:
        run.problems.append(f"{METRICS} unreadable: {_reason(exc, METRICS)}")
    run.metrics = metrics or []
    if run.summary and run.completed and not run.metrics and not run.evaluation_only:
        run.problems.append("completed, but no epoch metrics were recorded")
    make_portable(run)
    return run


def collect(paths: list[str | Path]) -> Collection:
    """All runs under ``paths`` (each a run folder, a sweep folder or any folder above them)."""
    problems: list[str] = []
    folders: dict[Path, RunFolder] = {}
    jobs: list[SweepJob] = []
    for raw in paths:
        root = Path(raw).resolve()
        if not root.is_dir():
            problems.append(f"{raw}: not a folder")
            continue
        folders.update((folder.path, folder) for folder in find_run_folders(root))
        for index in find_indexes(root):
            try:
                jobs += read_index(index, problems)
            except RefusedFile as exc:
                problems.append(f"sweep index {index} not read: {exc.why}")
            except (OSError, ValueError) as exc:
                problems.append(f"sweep index {index} unreadable: {_reason(exc, index.name)}")
    runs, skipped = [], []
    names = _names(list(folders))
    for path, folder in folders.items():
        try:
            runs.append(load_run(folder))
        except RefusedFile as exc:
            skipped.append(f"run {names[path]} skipped: {exc.file}: {exc.why}")
    problems += skipped
    names = split_names(runs)
    for run in runs:
        run.split_name = names.get(id(run))
    runs.sort(key=lambda r: (r.variant, str(r.seed), str(r.path)))
    orphans = [job for job in jobs if job.run_path not in folders]
    if not runs and not orphans and not skipped:
        problems.append(
            f"no run folders ({SUMMARY} or Hydra's job folder) found under " + ", ".join(map(str, paths))
        )
    return Collection(runs, orphans, problems, skipped)


def _names(paths: list[Path]) -> dict[Path, str]:
    """Each run folder relative to the folder above all of them (as ``build.run_names`` names reported
    runs)."""
    if not paths:
        return {}
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return {p: str(p.relative_to(root)) for p in paths}
