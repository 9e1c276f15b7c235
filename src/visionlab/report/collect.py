"""Find run folders under the given paths and load their records, noting (never raising on) what is missing.

A run folder is any directory with a summary.json, or a Hydra job folder (.hydra/) whose run died before it
could write one. A sweep folder may also hold sweep_index.json, the launcher's jobs (a list, or a mapping
from job number, each with overrides, status, run_dir and error), which lets the report name jobs that never
produced a run folder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

SWEEP_INDEX = "sweep_index.json"


@dataclass
class Run:
    path: Path
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def variant(self) -> str:
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
        return next((task for task in ("classification", "segmentation") if task[:7] in target), "unknown")

    @property
    def status(self) -> str:
        return self.summary.get("status") or "no summary"

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def read_table(self, name: str) -> list[dict] | None:
        """A CSV artefact of the run (e.g. per_class_accuracy.csv) as rows of floats, or None if absent/corrupt."""
        try:
            with (self.path / name).open(newline="") as fh:
                return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]
        except FileNotFoundError:
            return None
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            self.problems.append(f"{name} unreadable: {exc}")
            return None

    def read_array(self, name: str):
        """confusion_matrix.csv or qualitative.npz, or None if absent/corrupt (the problem is recorded)."""
        path = self.path / name
        if not path.exists():
            return None
        try:
            if path.suffix == ".npz":
                with np.load(path) as data:
                    return dict(data)
            return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        except (OSError, ValueError) as exc:
            self.problems.append(f"{name} unreadable: {exc}")
            return None


@dataclass
class SweepJob:
    overrides: list[str]
    status: str
    run_dir: str | None
    error: str | None
    index: Path


@dataclass
class Collection:
    runs: list[Run]
    jobs_without_run: list[SweepJob]
    problems: list[str]


def _number(value):
    try:
        return float(value) if value not in ("", None) else None
    except ValueError:
        return value


def _load_json(path: Path, problems: list[str]):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(f"{path.name} missing")
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} unreadable: {exc}")
    return None


def load_run(path: Path) -> Run:
    run = Run(path)
    summary = _load_json(path / "summary.json", run.problems)
    run.summary = summary if isinstance(summary, dict) else {}
    for config_path in (path / "config.yaml", path / ".hydra" / "config.yaml"):
        try:
            run.config = yaml.safe_load(config_path.read_text()) or {}
            break
        except (OSError, yaml.YAMLError):
            continue
    else:
        run.problems.append("config.yaml missing or unreadable")
    run.overrides = list(run.summary.get("overrides") or _hydra_overrides(path))
    metrics = run.read_table("metrics.csv")
    if metrics is None:
        run.problems.append("metrics.csv missing")
    run.metrics = metrics or []
    if run.summary and run.completed and not run.metrics:
        run.problems.append("completed, but no epoch metrics were recorded")
    return run


def _hydra_overrides(path: Path) -> list[str]:
    try:
        return list(yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text()) or [])
    except (OSError, yaml.YAMLError):
        return []


def find_run_dirs(root: Path) -> list[Path]:
    if (root / "summary.json").is_file() or (root / ".hydra").is_dir():
        return [root]
    found = {p.parent for p in root.rglob("summary.json")} | {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    return sorted(found)


def _load_sweep_jobs(index: Path, problems: list[str]) -> list[SweepJob]:
    data = _load_json(index, problems)
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if isinstance(jobs, dict):  # keyed by Hydra job number
        jobs = [jobs[key] for key in sorted(jobs, key=lambda k: (len(str(k)), str(k)))]
    if not isinstance(jobs, list):
        problems.append(f"{index}: not a list of jobs")
        return []
    return [SweepJob(list(job.get("overrides") or []), str(job.get("status", "unknown")), job.get("run_dir"),
                     job.get("error"), index) for job in jobs if isinstance(job, dict)]


def collect(paths: list[str | Path]) -> Collection:
    """All runs under ``paths`` (each a run folder, a sweep folder or any folder above them)."""
    problems: list[str] = []
    run_dirs: dict[Path, None] = {}
    jobs: list[SweepJob] = []
    for raw in paths:
        root = Path(raw).resolve()
        if not root.is_dir():
            problems.append(f"{raw}: not a folder")
            continue
        for run_dir in find_run_dirs(root):
            run_dirs[run_dir] = None
        for index in sorted(root.rglob(SWEEP_INDEX)):
            jobs += _load_sweep_jobs(index, problems)
    runs = [load_run(path) for path in run_dirs]
    runs.sort(key=lambda r: (r.variant, str(r.seed), str(r.path)))
    found = set(run_dirs)
    orphans = [job for job in jobs if not job.run_dir or _job_dir(job) not in found]
    if not runs and not orphans:
        problems.append("no run folders (summary.json or .hydra/) found under " + ", ".join(map(str, paths)))
    return Collection(runs, orphans, problems)


def _job_dir(job: SweepJob) -> Path:
    path = Path(job.run_dir)
    return (path if path.is_absolute() else job.index.parent / path).resolve()
