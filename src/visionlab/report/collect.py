"""Find run folders under the given paths and load their records, noting (never raising on) what is missing.

A run folder is any directory with a summary.json, or a Hydra job folder whose run died before it could write
one. A sweep folder may also hold a sweep index (overrides, status, run folder and error of every job), which
lets the report name jobs that never produced a run folder. All file access goes through ``run_record``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visionlab.report.portable import make_portable
from visionlab.report.limits import MAX_CONFIG_NODES, check_file, check_text, config_within_bounds
from visionlab.report.variants import split_names
from visionlab.run_record.folder import RunFolder, find_run_folders
from visionlab.run_record.layout import CONFIG, HYDRA_CONFIG, METRICS, SUMMARY, Status
from visionlab.run_record.metric_keys import TASKS
from visionlab.run_record.sweep_index import SweepJob, find_indexes, read_index


@dataclass
class Run:
    folder: RunFolder
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    split_name: str | None = None  # set by ``collect`` when the experiment's runs differ in a setting (``variants``)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def variant(self) -> str:
        if self.split_name:
            return self.split_name
        return str(self.summary.get("experiment") or self.config.get("experiment_name") or self.path.parent.name)

    @property
    def seed(self):
        return self.summary.get("seed", self.config.get("seed"))

    @property
    def task(self) -> str:
        """From summary.json; for a run that died before writing one, guessed from its model class."""
        if self.summary.get("task"):
            return self.summary["task"]
        target = str((self.config.get("model") or {}).get("_target_", "")).lower()
        return next((task for task in TASKS if task[:7] in target), Status.UNKNOWN)

    @property
    def status(self) -> str:
        return self.summary.get("status") or "no summary"

    @property
    def completed(self) -> bool:
        return self.status == Status.COMPLETED

    @property
    def evaluation_only(self) -> bool:
        """A ``train=false`` run: it tested a checkpoint and trained nothing, so it has no epochs to record."""
        return bool(self.summary.get("evaluated_checkpoint")) and not self.summary.get("epochs")

    def read(self, name: str, reader):
        """``reader()`` of the run folder, or None when the file is absent; an unreadable file, or one over the
        report's bounds (``limits``), is a problem."""
        try:
            check_file(self.folder.file(name))
            return reader()
        except FileNotFoundError:
            return None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self.problems.append(f"{name} unreadable: {exc}")
            return None


@dataclass
class Collection:
    runs: list[Run]
    jobs_without_run: list[SweepJob]
    problems: list[str]


def load_run(folder: RunFolder) -> Run:
    run = Run(folder)
    try:
        check_text(folder.file(SUMMARY))
        run.summary = folder.read_summary()
    except FileNotFoundError:
        run.problems.append(f"{SUMMARY} missing")
    except (OSError, ValueError) as exc:
        run.problems.append(f"{SUMMARY} unreadable: {exc}")
    try:
        check_text(folder.file(CONFIG))
        check_text(folder.hydra / HYDRA_CONFIG)
        run.config = folder.read_config()
    except FileNotFoundError:
        run.problems.append(f"{CONFIG} missing or unreadable")
    except ValueError as exc:
        run.problems.append(f"{CONFIG} unreadable: {exc}")
    if not isinstance(run.config, dict) or not config_within_bounds(run.config):
        run.problems.append(f"{CONFIG} not used: more than {MAX_CONFIG_NODES:,} entries (or not a mapping)")
        run.config = {}
    run.overrides = list(run.summary.get("overrides") or folder.read_overrides())
    metrics = run.read(METRICS, folder.read_metrics)
    if metrics is None and not run.evaluation_only:
        run.problems.append(f"{METRICS} missing")
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
                jobs += read_index(index)
            except (OSError, ValueError) as exc:
                problems.append(f"{index}: unreadable sweep index: {exc}")
    runs = [load_run(folder) for folder in folders.values()]
    names = split_names(runs)
    for run in runs:
        run.split_name = names.get(id(run))
    runs.sort(key=lambda r: (r.variant, str(r.seed), str(r.path)))
    orphans = [job for job in jobs if job.run_path not in folders]
    if not runs and not orphans:
        problems.append(f"no run folders ({SUMMARY} or Hydra's job folder) found under "
                        + ", ".join(map(str, paths)))
    return Collection(runs, orphans, problems)
