"""The results tables: one row per run, one row per variant over seeds per measure (Δ with its 95 % interval,
Welch's p and its Holm adjustment, and whether the variant's runs were budget-limited), cost and
time-to-accuracy per device (never averaged across devices), and the reference beside this study with effects
compared.

Bold marks only a difference whose Holm-adjusted p-value is below ``format.SIGNIFICANCE``; never a mean or a
std."""

from __future__ import annotations

import math

import numpy as np

from visionlab.record.metric_keys import EPOCH, TIME_TO
from visionlab.report.analysis import convergence
from visionlab.report.analysis.reference import Reference
from visionlab.report.analysis.run_health import UNHEALTHY, health, health_cell
from visionlab.report.analysis.stats import (
    TEST,
    Measure,
    TaskStats,
    VariantStats,
    counted,
    difference_ci,
    run_values,
)
from visionlab.report.collect import Run
from visionlab.report.render.document import Table
from visionlab.report.render.escape import md
from visionlab.report.render.format import (
    MISSING,
    NA,
    fmt,
    fmt_ci,
    fmt_delta,
    fmt_epoch,
    fmt_mean_std,
    fmt_p,
    fmt_range,
    fmt_rate,
    fmt_seconds,
    mark_significant,
    significant,
)

Conv = dict[str, list[tuple[Run, convergence.RunConvergence]]]


def split_name(spec, split: str) -> str:
    return TEST if split == TEST else spec.validation_name


def state_cell(run: Run) -> str:
    """``completed``, or the status with the health problem: ``completed; **stuck** at epoch 5``."""
    if health(run).get("status") in UNHEALTHY:
        return f"{md(run.status)}; {health_cell(run)}"
    return md(run.status)


def _over_cases(scores: dict, key: str, kind: str, report) -> str:
    """``0.7704 ± 0.0124 (min 0.7561)``: a run's mean over cases with the spread it recorded (the task's
    ``spread_keys``)."""
    std_key, min_key = report.spread_keys(key)
    if scores.get(key) is None:
        return MISSING
    text = fmt(scores[key], kind)
    if std_key and scores.get(std_key) is not None:
        text += f" ± {fmt(scores[std_key], kind)}"
    if min_key and scores.get(min_key) is not None:
        text += f" (min {fmt(scores[min_key], kind)})"
    return text


def uniform_split(task: TaskStats) -> str | None:
    splits = {v.split for v in task.variants}
    return next(iter(splits)) if len(splits) == 1 else None


def trial_table(task: TaskStats, conv: Conv) -> Table:
    """Variant × seed: state, test cases (tasks that score cases), each measure (with its spread over cases
    where recorded),
    best epoch of how many, the final epoch's validation score and how training ended."""
    spec = task.spec
    split_of = {v.variant: v.split for v in task.variants}
    one_split = uniform_split(task)
    stats_of = {m.key: {v.variant: v for v in m.variants} for m in task.measures}
    from visionlab.tasks.registry import report_of

    report = report_of(spec.task)
    cases = report.cases_key is not None and report.cases_key in spec.metrics.report_test
    primary = task.measures[0]
    final_key = report.validation_keys.get(primary.key, spec.metrics.validation_headline)
    labels = [
        f"{md(m.label)} over cases: mean ± std (min)" if any(report.spread_keys(m.key)) else md(m.label)
        for m in task.measures
    ]
    header = [
        "variant",
        "seed",
        "state",
        *([] if one_split else ["split"]),
        *(["test cases"] if cases else []),
        *labels,
        "best epoch / epochs",
        f"final {md(primary.label)} (validation)",
        "training",
    ]
    by_run = {id(r): c for results in conv.values() for r, c in results}
    rows = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        split = split_of[variant]
        for run in runs:
            scores = run_values(run, split) if run.completed else {}
            cells = [
                _over_cases(scores, stats_of[m.key][variant].key, m.kind, report)
                if split == TEST
                else fmt(scores.get(stats_of[m.key][variant].key), m.kind)
                for m in task.measures
            ]
            final = (run.summary.get("final") or {}).get(
                final_key if split == TEST else spec.metrics.validation_headline
            )
            state = by_run.get(id(run))
            rows.append(
                [
                    md(variant),
                    md(run.seed),
                    state_cell(run),
                    *([] if one_split else [split_name(spec, split)]),
                    *([fmt(scores.get(report.cases_key), "count")] if cases else []),
                    *cells,
                    (
                        f"{fmt_epoch((run.summary.get('best') or {}).get(EPOCH))} / "
                        f"{md(run.summary.get('epochs', MISSING))}"
                    ),
                    fmt(final, primary.kind),
                    state.state if state else ("evaluation" if run.evaluation_only else MISSING),
                ]
            )
    return Table(header, rows, f"runs:{spec.task}")


def _mean(values) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return float(np.mean(values)) if values else None


_SHORT_NAME = 24  # a longer baseline name (named above the table) is "baseline" in the Δ column's header


def aggregate_table(task: TaskStats, measure: Measure, conv: Conv) -> Table:
    """One row per variant: n, mean ± std, range, the final epoch's value, Δ [95 % CI], p, Holm's p,
    training."""
    spec = task.spec
    one_split = uniform_split(task)
    header = [
        "variant",
        *([] if one_split else ["split"]),
        "n",
        "mean ± std",
        "min – max",
        "final (validation)",
        f"Δ vs {md(task.baseline) if len(task.baseline) <= _SHORT_NAME else 'baseline'} [95 % CI]",
        "p: Welch / Holm",
        "training",
    ]
    rows = []
    for v in measure.variants:
        kind = measure.kind
        span = f"{fmt(v.min, kind)} – {fmt(v.max, kind)}" if v.values else MISSING
        n = f"{v.n}" if v.n == v.n_runs else f"{v.n} of {v.n_runs}"
        delta = (
            "baseline"
            if v.is_baseline
            else "reference on its data"
            if v.reference
            else (
                f"{mark_significant(fmt_delta(v.delta, kind), v.p_holm)} "
                f"{fmt_ci(v.ci, kind)}{_against(task, v)}"
                if v.delta is not None
                else NA
            )
        )
        rows.append(
            [
                md(v.variant),
                *([] if one_split else [split_name(spec, v.split)]),
                n,
                fmt_mean_std(v.mean, v.std, kind),
                span,
                fmt(_mean(v.finals), kind),
                delta,
                NA if v.is_baseline else f"{fmt_p(v.p_value)} / {fmt_p(v.p_holm)}",
                _training_cell(task, v.variant, conv),
            ]
        )
    return Table(header, rows, f"over-seeds:{spec.task}:{measure.label}")


def _against(task: TaskStats, v) -> str:
    """What a Δ is taken against where that is not simply the baseline under the same budget."""
    parts = [] if v.compared_with in (None, task.baseline) else [f"vs {md(v.compared_with)}"]
    parts += [f"at {md(v.budget_note)}"] if v.budget_note else []
    return f" ({'; '.join(parts)})" if parts else ""


def _training_cell(task: TaskStats, variant: str, conv: Conv) -> str:
    """How the variant's runs ended; a variant of checkpoint evaluations (train=false) says so."""
    results = [c for _, c in conv.get(variant, [])]
    evaluations = sum(r.evaluation_only for r in task.runs_by_variant.get(variant, []))
    if not results and evaluations:
        return f"evaluation of a checkpoint ({evaluations} of {len(task.runs_by_variant[variant])})"
    return convergence.cell(results)


def measure_numbers(measure: Measure, task: TaskStats, conv: Conv) -> list[dict]:
    spec = task.spec
    return [
        {
            "variant": v.variant,
            "split": v.split,
            "metric": v.key,
            "n": v.n,
            "n_runs": v.n_runs,
            "seeds": v.seeds,
            "values": v.values,
            "mean": v.mean,
            "std": v.std,
            "min": v.min,
            "max": v.max,
            "finals": v.finals,
            "delta": v.delta,
            "compared_with": v.compared_with,
            "budget_note": v.budget_note,
            "ci": list(v.ci) if v.ci else None,
            "p_value": v.p_value,
            "p_holm": v.p_holm,
            "significant": significant(v.p_holm),
            "also": v.also,
            "training": [vars(c) for _, c in conv.get(v.variant, [])],
            "budget_limited": sum(c.budget_limited for _, c in conv.get(v.variant, [])),
            "cost": variant_cost(task.runs_by_variant[v.variant]),
        }
        for v in measure.variants
        if spec is not None
    ]


# ------------------------------------------------------------------ cost, per device
def _device(run: Run) -> str:
    return str(run.summary.get("device") or "unknown device")


def run_interval(run: Run) -> tuple[float, float] | None:
    """(start, end) in seconds since the epoch: the last epoch's timestamp and the wall time before it (of the
    last attempt, for a run continued after an interruption: its wall_time_s counts every attempt)."""
    times = [float(r["time"]) for r in run.metrics if isinstance(r.get("time"), (int, float))]
    wall = run.summary.get("wall_time_this_attempt_s", run.summary.get("wall_time_s"))
    if not times or not isinstance(wall, (int, float)):
        return None
    return max(times) - float(wall), max(times)


def concurrency(runs: list[Run]) -> dict[int, int]:
    """Per run (by id): the most runs of these records on the same device that ran at one moment of it (itself
    included), from the epoch timestamps and wall times; runs without them are left out."""
    spans = {id(r): (_device(r), run_interval(r)) for r in runs}
    spans = {k: (d, s) for k, (d, s) in spans.items() if s is not None}
    out = {}
    for key, (device, (start, end)) in spans.items():
        moments = [start] + [s for d, (s, e) in spans.values() if d == device and start <= s <= end]
        out[key] = max(sum(1 for d, (s, e) in spans.values() if d == device and s <= t < e) for t in moments)
    return out


def variant_cost(runs: list[Run]) -> dict:
    """Per device: wall time and training images/s of the counted runs, each listed, never averaged across
    devices."""
    out = {}
    for run in runs:
        if counted(run):
            entry = out.setdefault(
                _device(run), {"runs": 0, "wall_time_s": [], "train_images_per_s": [], "precision": []}
            )
            entry["runs"] += 1
            for key in ("wall_time_s", "train_images_per_s"):
                if isinstance(run.summary.get(key), (int, float)):
                    entry[key].append(float(run.summary[key]))
            if run.summary.get("precision") and str(run.summary["precision"]) not in entry["precision"]:
                entry["precision"].append(str(run.summary["precision"]))
    return out


def cost_table(task: TaskStats, together: dict[int, int]) -> Table:
    header = [
        "variant",
        "device",
        "runs",
        "wall time, mean (min–max)",
        "train images/s, mean (min–max)",
        "runs at once (these records)",
        "precision",
    ]
    rows = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        for device, entry in sorted(variant_cost(runs).items()):
            at_once = sorted(
                {together[id(r)] for r in runs if counted(r) and _device(r) == device and id(r) in together}
            )
            rows.append(
                [
                    md(variant),
                    md(device),
                    str(entry["runs"]),
                    fmt_range(entry["wall_time_s"], fmt_seconds),
                    fmt_range(entry["train_images_per_s"], fmt_rate),
                    (f"{at_once[0]}" if len(at_once) == 1 else f"{at_once[0]}–{at_once[-1]}")
                    if at_once
                    else MISSING,
                    md(", ".join(entry["precision"]) or MISSING),
                ]
            )
    return Table(header, rows, f"cost:{task.spec.task}")


def _threshold(key: str) -> tuple[str, float] | None:
    metric, _, value = key.partition(">=")
    try:
        return metric, float(value)
    except ValueError:
        return None


def time_to_table(task: TaskStats) -> tuple[Table | None, list[dict]]:
    """Wall seconds from each run's start until its validation score first reached each threshold
    (summary.json ``time_to``), per variant and device: mean (min–max) over the runs that reached it, and how
    many did."""
    keys = sorted(
        {
            k
            for runs in task.runs_by_variant.values()
            for r in runs
            if counted(r)
            for k in (r.summary.get(TIME_TO) or {})
            if _threshold(k)
        },
        key=lambda k: _threshold(k)[1],
    )
    if not keys:
        return None, []
    kind = (
        task.spec.metrics.metric(_threshold(keys[0])[0]).kind
        if _threshold(keys[0])[0] in task.spec.metrics.keys
        else "score"
    )
    labels = [f"{md(_threshold(k)[0])} ≥ {fmt(_threshold(k)[1], kind)}" for k in keys]
    rows, numbers = [], []
    for variant, runs in sorted(task.runs_by_variant.items()):
        by_device: dict[str, list[Run]] = {}
        for run in runs:
            if counted(run) and isinstance(run.summary.get(TIME_TO), dict):
                by_device.setdefault(_device(run), []).append(run)
        for device, group in sorted(by_device.items()):
            cells, entry = [], {"variant": variant, "device": device, "runs": len(group), "seconds": {}}
            for key in keys:
                reached = [
                    float(r.summary[TIME_TO][key])
                    for r in group
                    if isinstance(r.summary[TIME_TO].get(key), (int, float))
                ]
                entry["seconds"][key] = reached
                cells.append(
                    f"{fmt_range(reached, fmt_seconds)} ({len(reached)} of {len(group)})"
                    if reached
                    else f"never (0 of {len(group)})"
                )
            rows.append([md(variant), md(device), *cells])
            numbers.append(entry)
    return Table(["variant", "device", *labels], rows, f"time-to:{task.spec.task}"), numbers


# ------------------------------------------------------------------ the reference
def _trial_values(task: TaskStats, variant: str, key: str, split: str) -> list[float]:
    runs = sorted((r for r in task.runs_by_variant[variant] if counted(r)), key=lambda r: str(r.seed))
    return [
        float(run_values(r, split)[key])
        for r in runs
        if isinstance(run_values(r, split).get(key), (int, float))
    ]


def _our_measure(task: TaskStats, key: str | None) -> Measure | None:
    return next((m for m in task.measures if m.key == key), None)


def _our_key(variant: VariantStats, measure: Measure, spec) -> str:
    return measure.key if variant.split == TEST else spec.metrics.validation_headline


def reference_tables(task: TaskStats, reference: Reference, conv: Conv) -> tuple[list, dict]:
    """The reference's trials beside this study's (no difference computed between them unless the reference
    measured the same split of the same data), then each variant's effect (Δ to its own baseline), the
    reference's beside this study's. Returns blocks-ready tables and their numbers."""
    spec = task.spec
    shared = [v for v in task.variants if v.variant in reference.variants]
    ours_key = (
        reference.quantities[reference.metric].ours
        if reference.metric in reference.quantities
        else reference.metric
    )
    measure = _our_measure(task, ours_key)
    keys = [
        k
        for k in reference.keys()  # noqa: SIM118 - Reference.keys(), not a dict
        if any(reference.trials(v.variant, k) for v in shared)
    ]
    width = max(
        [len(reference.trials(v.variant, k)) for v in shared for k in keys]
        + [len(v.values) for v in (measure.variants if measure else [])]
        + [1]
    )
    header = ["variant", "source", "quantity", *[f"trial {i + 1}" for i in range(width)], "mean"]
    rows, side = [], []
    by_variant = {v.variant: v for v in measure.variants} if measure else {}
    for v in shared:
        for key in keys:
            theirs = reference.trials(v.variant, key)
            if theirs:
                rows.append(
                    [
                        md(v.variant),
                        "seed study",
                        md(reference.label(key)),
                        *[
                            fmt(theirs[i], measure.kind if measure else "score") if i < len(theirs) else ""
                            for i in range(width)
                        ],
                        fmt(_mean(theirs), measure.kind if measure else "score"),
                    ]
                )
            ours_for = reference.quantities[key].ours if key in reference.quantities else None
            mine = by_variant.get(v.variant)
            if ours_for and measure is not None and mine is not None:
                our_key = _our_key(mine, _our_measure(task, ours_for) or measure, spec)
                values = _trial_values(task, v.variant, our_key, mine.split)
                where = "test" if mine.split == TEST else f"{spec.validation_name}, best epoch picked on it"
                shown = md(measure.label) if ours_for == measure.key else md(ours_for)
                label = f"{shown} ({md(our_key)}; {where})"
                rows.append(
                    [
                        md(v.variant),
                        "this study",
                        label,
                        *[fmt(values[i], measure.kind) if i < len(values) else "" for i in range(width)],
                        fmt(_mean(values), measure.kind),
                    ]
                )
                side.append(
                    {
                        "variant": v.variant,
                        "key": key,
                        "ours_key": our_key,
                        "ours": values,
                        "reference": theirs,
                    }
                )
            elif theirs:
                side.append(
                    {"variant": v.variant, "key": key, "ours_key": None, "ours": [], "reference": theirs}
                )
    numbers = {"side_by_side": side, "effects": [], "absolute": []}
    tables = [Table(header, rows, f"reference-trials:{spec.task}")]
    if measure is None:
        return tables, numbers
    data = sorted(
        {
            str(r.summary.get("data"))
            for runs in task.runs_by_variant.values()
            for r in runs
            if counted(r) and r.summary.get("data")
        }
    )
    comparable = all(reference.same_measurement(v.split, data) for v in shared)
    numbers["comparable"] = comparable
    base = reference.baseline
    if base and task.baseline and base in reference.variants:
        theirs_base = reference.trials(base)
        effect_rows = []
        for v in measure.variants:
            if v.is_baseline or v.variant not in reference.variants or v.variant == base:
                continue
            theirs = reference.trials(v.variant)
            their_delta = _mean(theirs) - _mean(theirs_base) if theirs and theirs_base else None
            their_ci = (
                difference_ci(theirs, theirs_base) if len(theirs) >= 2 and len(theirs_base) >= 2 else None
            )
            limited = sum(c.budget_limited for _, c in conv.get(v.variant, []))
            verdict = _verdict(their_delta, v)
            ours_cell = (
                f"{mark_significant(fmt_delta(v.delta, measure.kind), v.p_holm)} {fmt_ci(v.ci, measure.kind)}"
                if v.delta is not None
                else NA
            )
            if limited:
                ours_cell += f"; **budget-limited** ({limited} of {len(conv.get(v.variant, []))})"
            effect_rows.append(
                [
                    md(v.variant),
                    f"{len(theirs)} vs {len(theirs_base)}",
                    fmt_delta(their_delta, measure.kind)
                    + (f" {fmt_ci(their_ci, measure.kind)}" if their_ci else ""),
                    f"{v.n} vs {next((b.n for b in measure.variants if b.is_baseline), 0)}",
                    ours_cell,
                    fmt_p(v.p_holm),
                    verdict,
                ]
            )
            numbers["effects"].append(
                {
                    "variant": v.variant,
                    "label": measure.label,
                    "reference_delta": their_delta,
                    "reference_ci": list(their_ci) if their_ci else None,
                    "reference_trials": [len(theirs), len(theirs_base)],
                    "delta": v.delta,
                    "ci": list(v.ci) if v.ci else None,
                    "p_holm": v.p_holm,
                    "budget_limited": limited,
                    "verdict": verdict,
                }
            )
        tables.append(
            Table(
                [
                    "variant",
                    "seed trials (variant vs baseline)",
                    f"seed's effect vs {md(base)}",
                    "our runs",
                    f"our effect vs {md(task.baseline)} [95 % CI]",
                    "p (Holm)",
                    "agreement",
                ],
                effect_rows,
                f"reference-effects:{spec.task}",
            )
        )
    if comparable:
        abs_rows = []
        for v in shared:
            theirs = reference.trials(v.variant)
            mine = by_variant.get(v.variant)
            values = _trial_values(task, v.variant, _our_key(mine, measure, spec), mine.split) if mine else []
            delta = float(np.mean(values) - np.mean(theirs)) if values and theirs else None
            ci = difference_ci(values, theirs) if len(values) >= 2 and len(theirs) >= 2 else None
            abs_rows.append([md(v.variant), fmt_delta(delta, measure.kind), fmt_ci(ci, measure.kind)])
            numbers["absolute"].append({"variant": v.variant, "delta": delta, "ci": list(ci) if ci else None})
        tables.append(
            Table(
                ["variant", "Δ this study − reference", "95 % CI (Welch; both sides ≥ 2 trials)"],
                abs_rows,
                f"reference-absolute:{spec.task}",
            )
        )
    return tables, numbers


def _verdict(theirs: float | None, ours: VariantStats) -> str:
    if theirs is None or ours.delta is None:
        return NA
    if not significant(ours.p_holm):
        return "ours not resolved (p Holm ≥ 0.05)"
    same = (theirs > 0) == (ours.delta > 0)
    if not same:
        return "**opposite direction**"
    ratio = abs(ours.delta) / abs(theirs) if theirs else math.inf
    if ratio >= SIZE_APART or ratio <= 1 / SIZE_APART:  # one sign, but not one effect
        return f"same direction, {ratio:.1f}× the reference's size" if ratio < math.inf else "same direction"
    return "same direction and size" if ours.ci and ours.ci[0] <= theirs <= ours.ci[1] else "same direction"


SIZE_APART = 2.0  # effects whose sizes differ by this factor or more are not called alike
