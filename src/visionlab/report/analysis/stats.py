"""Seed aggregation: which split a variant is scored on, mean ± std over seeds, and Welch's t-test vs the
baseline, Holm-corrected over every comparison of a task.

With a handful of seeds per variant, "ELU beats ReLU" is only worth saying when the difference is large
against the seed-to-seed spread; the two-sided Welch t-test (unequal variances) puts a number on that. A task
compares several variants (and, for some tasks, several measures) with one baseline, so each p-value is
adjusted with Holm's step-down method over all of them before a difference is called significant.

A task may aggregate further measures beside its headline (its ``TaskReport.measures``, e.g. a second class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from visionlab.data.facts import validation_split_name
from visionlab.record.folder import TEST as TEST_SPLIT
from visionlab.record.folder import VALIDATION
from visionlab.record.layout import CONFUSION, VAL_CONFUSION
from visionlab.record.metric_keys import TASKS as METRIC_TABLES
from visionlab.record.metric_keys import Metric, TaskMetrics
from visionlab.report.analysis.pairing import Pairing, pair
from visionlab.report.analysis.run_health import is_excluded
from visionlab.report.collect import Run

TEST = "test"


Column = Metric  # a report column is a metric of the task's table: key, label, kind, better


@dataclass(frozen=True)
class TaskSpec:
    """What a task's tables show, from its metric table: the test columns, the validation fallback, the
    headline."""

    metrics: TaskMetrics
    validation_name: str  # how the tables name the validation split

    @property
    def task(self) -> str:
        return self.metrics.task

    @property
    def headline(self) -> str:
        """Label of the column aggregated over seeds (the same quantity on test and on validation)."""
        return self.metrics.metric(self.metrics.headline).label

    @property
    def curve_keys(self) -> tuple[str, ...]:
        return self.metrics.curves

    def columns(self, split: str) -> tuple[Column, ...]:
        keys = self.metrics.report_test if split == TEST else (self.metrics.validation_headline,)
        return tuple(self.metrics.metric(key) for key in keys)

    def headline_column(self, split: str) -> Column:
        key = self.metrics.headline if split == TEST else self.metrics.validation_headline
        return self.metrics.metric(key)


def validation_name(task: str, runs: list[Run] = ()) -> str:
    """How the tables name the validation split: from the runs' data facts (the split policy their data
    source recorded), else what the task says of records without them, else plain "validation"."""
    from visionlab.tasks.registry import report_of

    report = report_of(task)
    named = {
        validation_split_name(r.summary.get("data_facts"), report.groups_in_older_records(r)) for r in runs
    } - {None}
    if len(named) == 1:
        return named.pop()
    if named:
        return "validation"  # the runs' data were split in different ways: each run record says how
    return report.validation_name_without_facts()


def task_spec(task: str, runs: list[Run] = ()) -> TaskSpec:
    """The registered task's table spec, its validation split named from ``runs``."""
    from visionlab.tasks.registry import tasks

    tasks()  # the built-in tasks' metric tables are registered
    return TaskSpec(METRIC_TABLES[task], validation_name(task, runs))


class _Specs:
    """``TASKS[name]``: the spec of every registered task (validation named without runs)."""

    def __contains__(self, task) -> bool:
        from visionlab.tasks.registry import tasks

        return task in tasks()

    def __getitem__(self, task: str) -> TaskSpec:
        if task not in self:
            raise KeyError(task)
        return task_spec(task)


TASKS = _Specs()


def run_values(run: Run, split: str) -> dict:
    """The run's scores on ``split``: its test metrics, or the metrics of its best validation epoch."""
    return dict(run.summary.get(TEST if split == TEST else "best") or {})


def choose_split(spec: TaskSpec, runs: list[Run]) -> str:
    """Test if every completed run of the variant has a test score, else validation for all of them."""
    done = [r for r in runs if r.completed]
    key = spec.headline_column(TEST).key
    return TEST if done and all(run_values(r, TEST).get(key) is not None for r in done) else "validation"


@dataclass
class VariantStats:
    variant: str
    split: str
    values: list[float]  # the measure of each counted run, in seed order
    seeds: list
    n_runs: int  # all runs of the variant, failed and excluded (diverged, stuck) ones included
    finals: list[float] = field(default_factory=list)  # the same quantity on validation at the last epoch
    delta: float | None = None
    ci: tuple[float, float] | None = None  # 95 % interval of delta (Welch)
    p_value: float | None = None  # Welch, uncorrected
    p_holm: float | None = None  # Holm-adjusted over every comparison of the task
    is_baseline: bool = False
    also: dict[str, list[float]] = field(
        default_factory=dict
    )  # further test keys of the same runs (test split)
    key: str = ""  # the run-record key aggregated
    compared_with: str | None = None  # the variant delta is taken against (``pairing``)
    budget_note: str | None = None  # e.g. "50 epochs vs 5 epochs" when the two budgets differ
    reference: bool = False  # the baseline's model on another evaluation set: that set's reference, no delta

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else None

    @property
    def min(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def max(self) -> float | None:
        return max(self.values) if self.values else None


@dataclass
class Measure:
    """One quantity aggregated over seeds for every variant (a task has one or more, e.g. one per class)."""

    key: str  # the test key (the validation key is chosen per variant when it has no test split)
    label: str
    kind: str
    variants: list[VariantStats] = field(default_factory=list)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count): with m tests sorted ascending,
    p_(i) becomes max over j ≤ i of min(1, (m − j + 1) · p_(j))."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running, m = 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def welch_p_value(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test; None when either side has fewer than 2 values or both have zero variance."""
    if len(a) < 2 or len(b) < 2:
        return None
    p = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def difference_ci(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Welch's interval for mean(a) − mean(b); None unless both sides have ≥ 2 values (a single value has no
    spread of its own, and taking it as exact would understate the uncertainty), or when both have none."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return None
    var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(var_a + var_b)
    if se == 0:
        return None
    dof = se**4 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, dof)) * se
    delta = float(a.mean() - b.mean())
    return delta - half, delta + half


def choose_baseline(variants: list[str], requested: str | None = None) -> str | None:
    """--baseline if given and present, else the variant named *baseline, else the first alphabetically."""
    if not variants:
        return None
    if requested in variants:
        return requested
    return next((v for v in sorted(variants) if v.endswith("baseline")), min(variants))


@dataclass
class TaskStats:
    spec: TaskSpec
    runs_by_variant: dict[str, list[Run]]
    variants: list[VariantStats] = field(default_factory=list)  # the first measure's
    baseline: str | None = None
    measures: list[Measure] = field(default_factory=list)
    foreground_fraction: float | None = None  # a task's share of the positive class on test, if it knows
    pairing: Pairing | None = None  # which variant each one is compared with (like with like)

    @property
    def comparisons(self) -> int:
        """How many variant-vs-baseline tests the Holm correction runs over."""
        return sum(v.p_value is not None for m in self.measures for v in m.variants)


def variant_stats(
    spec: TaskSpec, variant: str, group: list[Run], key_of, validation_keys: dict | None = None
) -> VariantStats:
    """One variant's values of the key ``key_of(split)`` on its split; ``validation_keys`` maps a test key to
    its validation key (the "final epoch" column; the headline's comes from the metric table)."""
    split = choose_split(spec, group)
    key = key_of(split)
    scored = [r for r in group if counted(r) and run_values(r, split).get(key) is not None]
    final_key = (validation_keys or {}).get(key, spec.metrics.validation_headline)
    finals = [
        float(r.summary["final"][final_key])
        for r in scored
        if (r.summary.get("final") or {}).get(final_key) is not None
    ]
    scores = [run_values(r, split) for r in scored]
    also = (
        {k: [float(v[k]) for v in scores if v.get(k) is not None] for k in spec.metrics.also_over_seeds}
        if split == TEST
        else {}
    )
    return VariantStats(
        variant,
        split,
        [float(v[key]) for v in scores],
        [r.seed for r in scored],
        len(group),
        finals,
        also=also,
        key=key,
    )


def _compare(variants: list[VariantStats], baseline: str | None, pairing: Pairing) -> None:
    by_name = {v.variant: v for v in variants}
    for v in variants:
        v.is_baseline = v.variant == baseline
        v.reference = v.variant in pairing.references
        v.compared_with = pairing.compared_with.get(v.variant)
        v.budget_note = pairing.budget_note.get(v.variant)
        base = by_name.get(v.compared_with) if v.compared_with else None
        if base is not None and v.split == base.split and v.values and base.values:
            v.delta = v.mean - base.mean
            v.ci = difference_ci(v.values, base.values)
            v.p_value = welch_p_value(v.values, base.values)


def aggregate(spec: TaskSpec, runs: list[Run], baseline: str | None = None) -> TaskStats:
    by_variant: dict[str, list[Run]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    result = TaskStats(spec, by_variant, baseline=choose_baseline(sorted(by_variant), baseline))
    headline = Measure(spec.headline_column(TEST).key, spec.headline, spec.headline_column(TEST).kind)
    headline.variants = [
        variant_stats(spec, v, g, lambda split: spec.headline_column(split).key)
        for v, g in sorted(by_variant.items())
    ]
    from visionlab.tasks.registry import report_of

    result.measures = report_of(spec.task).measures(spec, result, runs, headline) or [headline]
    result.pairing = pair(by_variant, result.baseline)
    for measure in result.measures:
        _compare(measure.variants, result.baseline, result.pairing)
    tested = [v for m in result.measures for v in m.variants]
    for v, p in zip(tested, holm([v.p_value for v in tested])):
        v.p_holm = p
    result.variants = result.measures[0].variants
    return result


def counted(run: Run) -> bool:
    """Whether a run enters averages: completed and neither diverged nor stuck."""
    return run.completed and not is_excluded(run)


def summed_confusion(runs: list[Run]) -> tuple[np.ndarray, str, int] | None:
    """Confusion matrices of the variant's counted runs summed over seeds (rows = true class), on test when
    every such run has one, else on validation at the best epoch: (matrix, split, runs summed)."""
    for split, name in ((TEST_SPLIT, CONFUSION), (VALIDATION, VAL_CONFUSION)):
        matrices = [
            r.read(name, lambda r=r, split=split: r.folder.read_confusion(split)) for r in runs if counted(r)
        ]
        matrices = [m for m in matrices if m is not None]
        if matrices and len({m.shape for m in matrices}) == 1:
            return np.sum(matrices, axis=0), split, len(matrices)
    return None


def weakest_classes(confusion: np.ndarray, count: int = 5) -> list[tuple[int, int, float]]:
    """(class, support, accuracy) of the ``count`` classes with the lowest accuracy among those with
    support."""
    support = confusion.sum(axis=1)
    rows = [(c, int(support[c]), confusion[c, c] / support[c]) for c in range(len(support)) if support[c] > 0]
    return sorted(rows, key=lambda row: (row[2], row[0]))[:count]
