"""The task registry: one entry per task, so that a new task plugs in by registering itself, without an edit
to the runner, the run record or the report.

A task states here what the rest of visionlab must know about it:

- ``metrics``: its metric table (``record.metric_keys.TaskMetrics``: the keys it logs, the headline, the
  curves); registering puts it into ``metric_keys.TASKS``, the table the runner, the run record and the
  report read;
- ``modules``: the ``_target_`` of its LightningModule(s), compared as strings (never imported), by which a
  run's config is recognised as this task's when its summary.json does not say (a run that died early) and
  by which the config checks accept the model;
- ``record_files``: the per-case / per-class files its runs write beside summary.json (the report copies
  them with ``--copy-records``);
- ``report``: its report sections (a ``TaskReport``: the detail section, how measures are named and
  described), or None for the report core's plain tables;
- ``media``: the callback that logs its W&B media (images, tables), as "module:Class", imported only when a
  run logs to W&B (the task's ``media_callback`` builds it through ``media_callback``), and ``media_keys``,
  the W&B keys it logs under.

The built-in tasks (classification, binary and K-class segmentation) register in ``tasks/builtin.py``,
imported with the package (``tasks/__init__.py``); a plug-in calls ``register_task`` (e.g. at import of its
module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from visionlab.record import metric_keys

if TYPE_CHECKING:
    from visionlab.record.metric_keys import TaskMetrics


class TaskReport:
    """A task's part of the report page. The defaults are the plain core: no detail section, measures named
    by their metric table. A task overrides what it adds (``tasks/<task>/report.py``)."""

    # the test key counting the cases a run scored (tasks whose runs score cases, e.g. images), else None
    cases_key: ClassVar[str | None] = None
    # test key → its validation key (the "final epoch" column), beside the headline's pair
    validation_keys: ClassVar[dict[str, str]] = {}

    def spread_keys(self, key: str) -> tuple[str | None, str | None]:
        """(std, min) test keys a run records beside the mean over cases ``key``, else (None, None)."""
        return None, None

    def detail(self, task, names) -> tuple[list, dict]:
        """Blocks of the task's "Detail" section and their numbers for report.json."""
        return [], {}

    def name_measures(self, task, names) -> None:
        """Rename ``task.measures`` (e.g. by the class they score); default: their metric table's labels."""

    def measure_note(self, task, measure) -> str:
        """How the summary names a measure aggregated over seeds."""
        return f"**{_md(measure.label)}**"

    def effect_kind(self, task) -> str:
        """How differences between variants are formatted (a ``Metric.kind``)."""
        return "score"

    def measures(self, spec, task, runs, headline) -> list | None:
        """The measures aggregated over seeds, in page order (the headline measure among them), or None for
        the headline alone. May set ``task.foreground_fraction``."""
        return None

    def default_names(self):
        """The task's generic class names (a ``report.analysis.classes.ClassNames``) when the data names
        none."""
        return None  # noqa: RET501  (a subclass returns names)

    def groups_in_older_records(self, run) -> str:
        """What the groups of a "group" split are in a record whose ``data_facts`` do not say (written before
        ``groups`` was recorded)."""
        return "group"

    def validation_name_without_facts(self) -> str:
        """How to name the validation split of records written before ``data_facts`` recorded its policy."""
        return "validation"

    def curve_metric_label(self, task) -> str:
        """The score plotted train vs validation in the curves."""
        headline = task.spec.metrics.headline
        return next((m.label for m in task.measures if m.key == headline), task.spec.headline)

    def curve_panel_label(self, task, key: str) -> str:
        """The title of a further validation curve's panel (the curves' keys after the fourth)."""
        return task.spec.metrics.metric(key).label


def _md(text: str) -> str:
    from visionlab.report.render.escape import md

    return md(text)


@dataclass(frozen=True)
class Task:
    name: str
    metrics: TaskMetrics
    modules: tuple[str, ...] = ()  # LightningModule _target_s (strings, never imported)
    record_files: tuple[str, ...] = ()  # per-case / per-class files of a run folder
    report: TaskReport | str | None = None  # or "module:attribute", imported when the report needs it
    media: str | None = None  # "module:Class" of its W&B media callback
    media_keys: tuple[str, ...] = ()  # the W&B keys that callback logs under
    input_defaults: tuple[int, int] = (3, 28)  # (channels, side) a model config without them is built for
    data_modules: tuple[str, ...] = ()  # _target_ prefixes of the datamodules whose data it solves
    model_hint: str = ""  # what to pass when that data meets another task's model ("model=cnn, monitor=…")
    extra: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` (or replace a task of the same name) and its metric table to the table every stage
    reads."""
    if task.metrics.task != task.name:
        raise ValueError(f"task {task.name!r}: its metric table is named {task.metrics.task!r}")
    _TASKS[task.name] = task
    metric_keys.TASKS[task.name] = task.metrics
    return task


def unregister_task(name: str) -> None:
    """Remove a plug-in task (tests register throw-away tasks)."""
    _TASKS.pop(name, None)
    metric_keys.TASKS.pop(name, None)


def tasks() -> dict[str, Task]:
    """Every registered task by name."""
    return dict(_TASKS)


def get_task(name: str) -> Task | None:
    return _TASKS.get(name)


def task_of_module(target: str) -> str | None:
    """The task a model ``_target_`` solves (the first registered task that names it), or None."""
    return next((t.name for t in _TASKS.values() if target in t.modules), None)


def check_model_solves_the_data(data_target: object, model_target: object, data_name: object = None) -> None:
    """Data of one task with another task's model (``data=seg_folder`` with the default classifier) would fail
    deep inside torch after the data was loaded: a ConfigError naming the model that solves it. Data or a
    model no task claims is left to its own checks."""
    from visionlab.config.errors import ConfigError

    data_tasks = [t for t in _TASKS.values() if any(str(data_target).startswith(p) for p in t.data_modules)]
    model_tasks = [t.name for t in _TASKS.values() if str(model_target) in t.modules]
    if not data_tasks or not model_tasks or any(t.name in model_tasks for t in data_tasks):
        return
    data, name = data_tasks[0], data_name if isinstance(data_name, str) else data_target
    raise ConfigError(
        f"data={name} is {data.name} data, but the model is a {model_tasks[0]} model "
        f"(model._target_={model_target}): pass {data.model_hint}."
    )


def _resolve(reference: str):
    import importlib

    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def media_callback(name: str, **options):
    """The task's W&B media callback built with ``options``, or None when it logs no media."""
    task = get_task(name)
    return _resolve(task.media)(**options) if task is not None and task.media else None


def report_of(name: str) -> TaskReport:
    """The task's report sections, or the core's plain ones."""
    task = get_task(name)
    if task is None or task.report is None:
        return TaskReport()
    return _resolve(task.report) if isinstance(task.report, str) else task.report


def record_files() -> tuple[str, ...]:
    """Every registered task's per-case / per-class record files."""
    return tuple(dict.fromkeys(f for t in _TASKS.values() for f in t.record_files))
