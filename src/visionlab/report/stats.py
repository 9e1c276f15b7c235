"""Seed aggregation: which split a variant is scored on, mean ± std over seeds, and Welch's t-test vs the baseline.

With a handful of seeds per variant, "ELU beats ReLU" is only worth saying when the difference is large
against the seed-to-seed spread; the two-sided Welch t-test (unequal variances) puts a number on that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from visionlab.report.collect import Run
from visionlab.report.run_health import is_excluded
from visionlab.run_record.folder import TEST as TEST_SPLIT
from visionlab.run_record.folder import VALIDATION
from visionlab.run_record.layout import CONFUSION, VAL_CONFUSION
from visionlab.run_record.metric_keys import CLASSIFICATION, EPOCH, Metric, TaskMetrics
from visionlab.run_record.metric_keys import TASKS as METRIC_TABLES

TEST = "test"


Column = Metric  # a report column is a metric of the task's table: key, label, kind, better


@dataclass(frozen=True)
class TaskSpec:
    """What a task's tables show, from its metric table: the test columns, the validation fallback, the headline."""

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


VALIDATION_NAMES = {CLASSIFICATION.task: "validation (track-held-out)"}
TASKS = {name: TaskSpec(table, VALIDATION_NAMES.get(name, "validation")) for name, table in METRIC_TABLES.items()}


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
    values: list[float]  # headline metric of each completed run, in seed order
    seeds: list
    n_runs: int  # all runs of the variant, failed and excluded (diverged, stuck) ones included
    finals: list[float] = field(default_factory=list)  # the same quantity on validation at the last epoch
    delta: float | None = None
    ci: tuple[float, float] | None = None  # 95 % interval of delta (Welch)
    p_value: float | None = None
    is_baseline: bool = False
    also: dict[str, list[float]] = field(default_factory=dict)  # further test keys of the same runs (test split)

    def also_mean_std(self, key: str) -> tuple[float | None, float | None]:
        values = self.also.get(key) or []
        return (float(np.mean(values)) if values else None,
                float(np.std(values, ddof=1)) if len(values) >= 2 else None)

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


def welch_p_value(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test; None when either side has fewer than 2 values or both have zero variance."""
    if len(a) < 2 or len(b) < 2:
        return None
    p = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def difference_ci(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Interval for mean(a) − mean(b): Welch's when both sides have ≥ 2 values; when one side has a single value
    it is taken as exact and the other side's one-sample t interval is used; None when neither has 2 values."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0 or (len(a) < 2 and len(b) < 2):
        return None
    var = {side: (x.var(ddof=1) / len(x) if len(x) >= 2 else 0.0) for side, x in (("a", a), ("b", b))}
    se = math.sqrt(var["a"] + var["b"])
    if se == 0:
        return None
    if len(a) >= 2 and len(b) >= 2:
        dof = se ** 4 / (var["a"] ** 2 / (len(a) - 1) + var["b"] ** 2 / (len(b) - 1))
    else:
        dof = max(len(a), len(b)) - 1
    half = float(scipy_stats.t.ppf(0.5 + level / 2, dof)) * se
    delta = float(a.mean() - b.mean())
    return delta - half, delta + half


def paired_test(a: list[float], b: list[float]) -> tuple[float, tuple[float, float] | None, float | None]:
    """Mean of a − b over shared cases, its 95 % t interval and the two-sided paired t-test p (None when < 2)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    mean = float(diff.mean()) if len(diff) else float("nan")
    if len(diff) < 2 or diff.std(ddof=1) == 0:
        return mean, None, None
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    half = float(scipy_stats.t.ppf(0.975, len(diff) - 1)) * se
    return mean, (mean - half, mean + half), float(scipy_stats.ttest_rel(a, b).pvalue)


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
    variants: list[VariantStats] = field(default_factory=list)
    baseline: str | None = None


def aggregate(spec: TaskSpec, runs: list[Run], baseline: str | None = None) -> TaskStats:
    by_variant: dict[str, list[Run]] = {}
    for run in runs:
        by_variant.setdefault(run.variant, []).append(run)
    result = TaskStats(spec, by_variant, baseline=choose_baseline(sorted(by_variant), baseline))
    for variant, group in sorted(by_variant.items()):
        split = choose_split(spec, group)
        key = spec.headline_column(split).key
        scored = [r for r in group if counted(r) and run_values(r, split).get(key) is not None]
        final_key = spec.metrics.validation_headline
        finals = [float(r.summary["final"][final_key]) for r in scored if (r.summary.get("final") or {}).get(
            final_key) is not None]
        scores = [run_values(r, split) for r in scored]
        also = {k: [float(v[k]) for v in scores if v.get(k) is not None]
                for k in spec.metrics.also_over_seeds} if split == TEST else {}
        result.variants.append(VariantStats(variant, split, [float(v[key]) for v in scores],
                                            [r.seed for r in scored], len(group), finals, also=also))
    base = next((v for v in result.variants if v.variant == result.baseline), None)
    for v in result.variants:
        v.is_baseline = v is base
        if base is not None and not v.is_baseline and v.split == base.split and v.values and base.values:
            v.delta = v.mean - base.mean
            v.ci = difference_ci(v.values, base.values)
            v.p_value = welch_p_value(v.values, base.values)
    return result


def curve_band(runs: list[Run], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Per epoch: mean, min and max of ``key`` over the runs that reached that epoch (early stopping varies)."""
    per_epoch: dict[int, list[float]] = {}
    for run in runs:
        for row in run.metrics:
            if row.get(key) is not None and row.get(EPOCH) is not None:
                per_epoch.setdefault(int(row[EPOCH]), []).append(float(row[key]))
    if not per_epoch:
        return None
    epochs = np.array(sorted(per_epoch))
    values = [per_epoch[e] for e in epochs]
    return (epochs, np.array([np.mean(v) for v in values]), np.array([min(v) for v in values]),
            np.array([max(v) for v in values]))


def counted(run: Run) -> bool:
    """Whether a run enters averages: completed and neither diverged nor stuck."""
    return run.completed and not is_excluded(run)


def summed_confusion(runs: list[Run]) -> tuple[np.ndarray, str, int] | None:
    """Confusion matrices of the variant's counted runs summed over seeds (rows = true class), on test when
    every such run has one, else on validation at the best epoch: (matrix, split, runs summed)."""
    for split, name in ((TEST_SPLIT, CONFUSION), (VALIDATION, VAL_CONFUSION)):
        matrices = [r.read(name, lambda r=r: r.folder.read_confusion(split)) for r in runs if counted(r)]
        matrices = [m for m in matrices if m is not None]
        if matrices and len({m.shape for m in matrices}) == 1:
            return np.sum(matrices, axis=0), split, len(matrices)
    return None


def weakest_classes(confusion: np.ndarray, count: int = 5) -> list[tuple[int, int, float]]:
    """(class, support, accuracy) of the ``count`` classes with the lowest accuracy among those with support."""
    support = confusion.sum(axis=1)
    rows = [(c, int(support[c]), confusion[c, c] / support[c]) for c in range(len(support)) if support[c] > 0]
    return sorted(rows, key=lambda row: (row[2], row[0]))[:count]
