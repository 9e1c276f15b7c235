"""The results tables: one row per run (best epoch and final value side by side), one row per variant over seeds
(with Δ, its 95 % interval, Welch's p and the cost), and this study beside a reference, trial by trial.

Bold marks only a difference whose p-value is below ``format.SIGNIFICANCE``; never a mean, a std or a best value.
"""

from __future__ import annotations

import numpy as np

from visionlab.report.escape import md
from visionlab.report.format import (
    MISSING,
    NA,
    fmt,
    fmt_ci,
    fmt_delta,
    fmt_epoch,
    fmt_mean_std,
    fmt_p,
    fmt_rate,
    fmt_seconds,
    mark_significant,
)
from visionlab.report.reference import Reference
from visionlab.report.render import Table
from visionlab.report.run_health import health_cell
from visionlab.report.stats import TEST, TaskStats, counted, difference_ci, run_values
from visionlab.run_record.metric_keys import EPOCH


def split_name(spec, split: str) -> str:
    return TEST if split == TEST else spec.validation_name


def selection(spec, split: str) -> str:
    """Where the reported epoch was chosen, and whether that is the split it is reported on."""
    if split == TEST:
        return "validation (best epoch), reported on test"
    return "validation, **the same split it is reported on** (optimistic)"


def trial_table(task: TaskStats) -> Table:
    spec = task.spec
    splits = {v.variant: v.split for v in task.variants}
    columns = list(dict.fromkeys(c for split in set(splits.values()) for c in spec.columns(split)))
    val = spec.headline_column("validation")
    header = ["variant", "seed", "status", "health", "split", *[c.label for c in columns], "best epoch",
              f"final {val.label} (validation)", "epochs", "epoch picked on"]
    rows = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        own = set(spec.columns(splits[variant]))
        for run in runs:
            scores = run_values(run, splits[variant]) if run.completed else {}
            cells = [fmt(scores.get(c.key), c.kind) if c in own else MISSING for c in columns]
            best_epoch = (run.summary.get("best") or {}).get(EPOCH)
            final = (run.summary.get("final") or {}).get(val.key)
            rows.append([md(variant), md(run.seed), md(run.status), health_cell(run),
                         split_name(spec, splits[variant]), *cells, fmt_epoch(best_epoch), fmt(final, val.kind),
                         md(run.summary.get("epochs", MISSING)), selection(spec, splits[variant])])
    return Table(header, rows)


def _mean(values) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return float(np.mean(values)) if values else None


def variant_cost(runs) -> dict:
    """Mean wall time and training images/s of the counted runs, and their devices and precisions."""
    done = [r for r in runs if counted(r)]
    return {"wall_time_s": _mean(r.summary.get("wall_time_s") for r in done),
            "train_images_per_s": _mean(r.summary.get("train_images_per_s") for r in done),
            "device": sorted({str(r.summary.get("device")) for r in done if r.summary.get("device")}),
            "precision": sorted({str(r.summary.get("precision")) for r in done if r.summary.get("precision")})}


def aggregate_table(task: TaskStats) -> Table:
    spec = task.spec
    also = [spec.metrics.metric(k) for k in spec.metrics.also_over_seeds]
    header = ["variant", "split", "n", f"{spec.headline} mean ± std", "min – max",
              f"final {spec.headline} (validation)", f"Δ vs {md(task.baseline)}", "95 % CI of Δ", "p (Welch)",
              *(f"{m.label} mean ± std" for m in also), "wall time", "train images/s", "device", "precision"]
    rows = []
    for v in task.variants:
        kind = spec.headline_column(v.split).kind
        span = f"{fmt(v.min, kind)} – {fmt(v.max, kind)}" if v.values else MISSING
        n = f"{v.n}" if v.n == v.n_runs else f"{v.n} of {v.n_runs}"
        cost = variant_cost(task.runs_by_variant[v.variant])
        delta = "baseline" if v.is_baseline else mark_significant(fmt_delta(v.delta, kind), v.p_value)
        rows.append([md(v.variant), split_name(spec, v.split), n, fmt_mean_std(v.mean, v.std, kind), span,
                     fmt(_mean(v.finals), spec.headline_column("validation").kind), delta,
                     NA if v.is_baseline else fmt_ci(v.ci, kind), NA if v.is_baseline else fmt_p(v.p_value),
                     *(fmt_mean_std(*v.also_mean_std(m.key), m.kind) for m in also),
                     fmt_seconds(cost["wall_time_s"]), fmt_rate(cost["train_images_per_s"]),
                     md(", ".join(cost["device"]) or MISSING), md(", ".join(cost["precision"]) or MISSING)])
    return Table(header, rows)


def _trial_values(task: TaskStats, variant: str, key: str) -> list[float]:
    stats = next(v for v in task.variants if v.variant == variant)
    runs = sorted((r for r in task.runs_by_variant[variant] if counted(r)), key=lambda r: str(r.seed))
    return [float(run_values(r, stats.split)[key]) for r in runs if run_values(r, stats.split).get(key) is not None]


def reference_comparison(task: TaskStats, reference: Reference) -> tuple[Table, list[dict]]:
    """Variant × trial, this study's row under the reference's for each key the reference has; Δ (this study −
    reference) with its 95 % interval on the compared metric. Returns the table and its numbers."""
    spec = task.spec
    variants = [v.variant for v in task.variants if v.variant in reference.variants]
    keys = [k for k in reference.keys() if k in spec.metrics.keys]
    width = max([len(reference.trials(v, k)) for v in variants for k in keys]
                + [len(_trial_values(task, v, k)) for v in variants for k in keys] + [1])
    header = ["variant", "quantity", "source", *[f"trial {i + 1}" for i in range(width)], "mean",
              "Δ this study − reference", "95 % CI of Δ"]
    rows, numbers = [], []
    for variant in variants:
        split = next(v.split for v in task.variants if v.variant == variant)
        for key in keys:
            metric = spec.metrics.metric(key if split == TEST or key != reference.metric
                                         else spec.metrics.validation_headline)
            ours_key = key if split == TEST else spec.metrics.validation_headline
            ours = _trial_values(task, variant, ours_key) if split == TEST or key == reference.metric else []
            theirs = reference.trials(variant, key)
            main = key == reference.metric
            delta = float(np.mean(ours) - np.mean(theirs)) if main and ours and theirs else None
            ci = difference_ci(ours, theirs) if main else None
            label = f"{metric.label} ({key})"
            for source, values in ((f"reference: {md(reference.name)}", theirs),
                                   (f"this study ({split_name(spec, split)})", ours)):
                cells = [fmt(values[i], metric.kind) if i < len(values) else "" for i in range(width)]
                last = source.startswith("this study")
                rows.append([md(variant), label, source, *cells, fmt(_mean(values), metric.kind),
                             fmt_delta(delta, metric.kind) if last and main else "",
                             fmt_ci(ci, metric.kind) if last and main else ""])
            numbers.append({"variant": variant, "key": key, "ours_key": ours_key, "ours": ours, "reference": theirs,
                            "delta": delta, "ci": list(ci) if ci else None})
    return Table(header, rows), numbers
