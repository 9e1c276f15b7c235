"""Segmentation detail: both classes' F1/IoU (named by what they are) beside the trivial all-foreground and
all-background predictions on the same cases, a per-case table of both classes with how often each variant is
above the baseline (no test: the cases are correlated), and the fixed / best / worst case of each variant as
input, ground truth, prediction and errors.

The trivial rows come from each case's all-foreground F1 f (``test_cases.csv``): with foreground fraction m =
f / (2 − f), all-foreground scores foreground IoU m and background F1 = IoU = 0, and all-background scores
foreground F1 = IoU = 0 and background F1 2b / (1 + b), IoU b, with b = 1 − m (an empty class scores 1, the
run record's convention)."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import numpy as np

from visionlab.record import metric_keys as keys
from visionlab.record.layout import QUALITATIVE, QUALITATIVE_CASES, TEST_CASES, WORST_CASES
from visionlab.report.analysis.classes import ClassNames
from visionlab.report.analysis.stats import TEST, Measure, TaskStats, counted, run_values, variant_stats
from visionlab.report.render import figures
from visionlab.report.render.document import Figure, Paragraph, Table
from visionlab.report.render.escape import md
from visionlab.report.render.format import MISSING, fmt, fmt_delta
from visionlab.report.render.slugs import slug
from visionlab.tasks.registry import TaskReport

SEGMENTATION_DEFAULT = ("background", "foreground")

CLASS_KEYS = (keys.TEST_F1, keys.TEST_IOU, keys.TEST_F1_BG, keys.TEST_IOU_BG)


def _trivial(f: np.ndarray) -> dict[str, tuple[float, ...]]:
    """Mean fg F1, fg IoU, bg F1, bg IoU of the all-foreground and all-background predictions per case."""
    f = np.clip(np.asarray(f, float), 0, 1)
    m = f / (2 - f)
    b = 1 - m
    fg_empty, bg_empty = m == 0, b == 0
    all_fg = (f, m, np.where(bg_empty, 1.0, 0.0), np.where(bg_empty, 1.0, 0.0))
    all_bg = (np.where(fg_empty, 1.0, 0.0), np.where(fg_empty, 1.0, 0.0), 2 * b / (1 + b), b)
    return {
        "all-foreground (trivial)": tuple(float(x.mean()) for x in all_fg),
        "all-background (trivial)": tuple(float(x.mean()) for x in all_bg),
    }


def _case_rows(run) -> list[dict]:
    return run.read(TEST_CASES, run.folder.read_test_cases) or []


def _per_case(runs) -> dict[int, dict[str, float]]:
    """case → column → mean over the counted runs that scored it."""
    collected: dict[int, dict[str, list[float]]] = {}
    for run in runs:
        if not counted(run):
            continue
        for row in _case_rows(run):
            if row.get(keys.CASE) is None:
                continue
            per = collected.setdefault(int(row[keys.CASE]), {})
            for column in (
                keys.CASE_F1,
                keys.CASE_IOU,
                keys.CASE_F1_BG,
                keys.CASE_IOU_BG,
                keys.CASE_F1_TRIVIAL,
            ):
                if isinstance(row.get(column), float):
                    per.setdefault(column, []).append(row[column])
    return {case: {c: float(np.mean(v)) for c, v in per.items()} for case, per in sorted(collected.items())}


def class_labels(names: ClassNames) -> tuple[str, ...]:
    background, foreground = names.names[:2] if len(names.names) >= 2 else SEGMENTATION_DEFAULT
    background, foreground = md(background), md(foreground)
    return (
        f"F1 {foreground} (label 1)",
        f"IoU {foreground} (label 1)",
        f"F1 {background} (label 0)",
        f"IoU {background} (label 0)",
    )


def _class_table(task: TaskStats, cases: dict[str, dict], names: ClassNames) -> tuple[Table, dict]:
    rows, numbers = [], {}
    for v in task.variants:
        runs = [r for r in task.runs_by_variant[v.variant] if counted(r)]
        means = [
            np.mean([run_values(r, v.split)[k] for r in runs if run_values(r, v.split).get(k) is not None])
            if any(run_values(r, v.split).get(k) is not None for r in runs)
            else None
            for k in CLASS_KEYS
        ]
        means = [None if m is None else float(m) for m in means]
        numbers[v.variant] = dict(zip(CLASS_KEYS, means))
        rows.append([md(v.variant), *[fmt(m, "score") for m in means]])
    trivial_f = [
        c[keys.CASE_F1_TRIVIAL] for per in cases.values() for c in per.values() if keys.CASE_F1_TRIVIAL in c
    ]
    baseline_cases = cases.get(task.baseline) or next(iter(cases.values()), {})
    f = [c[keys.CASE_F1_TRIVIAL] for c in baseline_cases.values() if keys.CASE_F1_TRIVIAL in c]
    background, foreground = names.names[:2] if len(names.names) >= 2 else SEGMENTATION_DEFAULT
    trivial_names = {
        "all-foreground (trivial)": f"everything {foreground} (trivial)",
        "all-background (trivial)": f"everything {background} (trivial)",
    }
    if f:
        for name, means in _trivial(np.array(f)).items():
            numbers[name] = dict(zip(CLASS_KEYS, means))
            rows.append([md(trivial_names[name]), *[fmt(m, "score") for m in means]])
    elif not trivial_f:
        logged = [
            run_values(r, "test").get(keys.TEST_F1_TRIVIAL)
            for runs in task.runs_by_variant.values()
            for r in runs
            if counted(r)
        ]
        logged = [x for x in logged if x is not None]
        if logged:
            numbers["all-foreground (trivial)"] = {keys.TEST_F1: float(np.mean(logged))}
            rows.append(
                [
                    md(trivial_names["all-foreground (trivial)"]),
                    fmt(float(np.mean(logged)), "score"),
                    MISSING,
                    MISSING,
                    MISSING,
                ]
            )
    return Table(["prediction", *class_labels(names)], rows, f"classes:{task.spec.task}"), numbers


CASE_COLUMNS = ((keys.CASE_F1_BG, 0), (keys.CASE_F1, 1))  # per-case F1 column and the label it scores


def _case_tables(
    task: TaskStats, cases: dict[str, dict], names: ClassNames
) -> tuple[list[Table], Table | None, dict]:
    """Per case: each variant's F1 of both classes (means over its seeds), and per variant and class how often
    it is above the baseline, without a test (the cases are not independent samples)."""
    variants = [v for v in sorted(cases) if cases[v]]
    shared = sorted(set.intersection(*(set(cases[v]) for v in variants))) if variants else []
    columns = [
        (col, label)
        for col, label in CASE_COLUMNS
        if all(col in cases[v][c] for v in variants for c in shared)
    ]
    header = [
        "case",
        *[f"{md(v)} {md(names.name(label) or label)}" for v in variants for _, label in columns],
        f"F1 of predicting everything {md(names.name(1) or 'foreground')}",
    ]
    base = cases.get(task.baseline, {})
    rows = [
        [
            str(c),
            *[fmt(cases[v][c].get(col), "score") for v in variants for col, _ in columns],
            fmt((base.get(c) or cases[variants[0]][c]).get(keys.CASE_F1_TRIVIAL), "score"),
        ]
        for c in shared
    ]
    per_case = [Table(header, rows, f"cases:{task.spec.task}")]
    if (
        len(variants) * len(columns) > _CASE_COLUMNS_MAX
    ):  # many variants: one row per variant and class instead
        per_case = _cases_as_rows(task, cases, variants, shared, columns, names, base)
    numbers = {
        "cases": shared,
        "f1": {v: [cases[v][c].get(keys.CASE_F1) for c in shared] for v in variants},
        "f1_bg": {v: [cases[v][c].get(keys.CASE_F1_BG) for c in shared] for v in variants},
        "versus": [],
    }
    if task.baseline not in variants or len(variants) < 2:
        return per_case, None, numbers
    versus = []
    for v in variants:
        if v == task.baseline:
            continue
        for col, label in columns:
            diff = np.array([cases[v][c][col] - cases[task.baseline][c][col] for c in shared])
            higher, lower = int((diff > 0).sum()), int((diff < 0).sum())
            numbers["versus"].append(
                {
                    "variant": v,
                    "class": label,
                    "mean_delta": float(diff.mean()),
                    "higher": higher,
                    "lower": lower,
                    "cases": len(shared),
                }
            )
            versus.append(
                [
                    md(v),
                    md(names.label(label)),
                    fmt_delta(float(diff.mean()), "score"),
                    f"{higher} of {len(shared)}",
                    f"{lower} of {len(shared)}",
                ]
            )
    table = Table(
        ["variant", "class", f"mean Δ F1 vs {md(task.baseline)} over cases", "cases higher", "cases lower"],
        versus,
        f"cases-versus:{task.spec.task}",
    )
    return per_case, table, numbers


_CASE_COLUMNS_MAX = 6  # variants × classes as columns up to this many, else variants × classes as rows
_CASES_PER_TABLE = 8


def _cases_as_rows(
    task: TaskStats,
    cases: dict,
    variants: list[str],
    shared: list,
    columns: list,
    names: ClassNames,
    base: dict,
) -> list[Table]:
    """The per-case table turned around for many variants: a row per variant and class, the cases as columns,
    at most eight per table, and the trivial prediction as the last row, so the page stays narrow."""
    tables = []
    for start in range(0, len(shared), _CASES_PER_TABLE):
        part = shared[start : start + _CASES_PER_TABLE]
        rows = [
            [md(v), md(names.name(label) or label), *[fmt(cases[v][c].get(col), "score") for c in part]]
            for v in variants
            for col, label in columns
        ]
        rows.append(
            [
                "predicting everything " + md(names.name(1) or "foreground"),
                md(names.name(1) or "1"),
                *[
                    fmt((base.get(c) or cases[variants[0]][c]).get(keys.CASE_F1_TRIVIAL), "score")
                    for c in part
                ],
            ]
        )
        suffix = "" if start == 0 else f":{start // _CASES_PER_TABLE + 1}"
        tables.append(
            Table(["variant", "class", *[f"case {c}" for c in part]], rows, f"cases:{task.spec.task}{suffix}")
        )
    return tables


def segmentation_detail(task: TaskStats, names: ClassNames, adjacent: bool) -> tuple[list, dict]:
    cases = {variant: _per_case(runs) for variant, runs in task.runs_by_variant.items()}
    classes, class_numbers = _class_table(task, cases, names)
    background, foreground = names.names[:2] if len(names.names) >= 2 else SEGMENTATION_DEFAULT
    blocks = [
        Paragraph(
            f"Class names: from {names.source}. Both classes (means over seeds of each run's mean "
            "per-image score on test), and the trivial predictions on the same cases (derived per case "
            f"from the everything-{md(foreground)} F1; — where the run records do not hold the score). "
            f"A class the trivial prediction already scores high on is the easy one."
        ),
        classes,
    ]
    numbers = {"classes": class_numbers, "class_names": list(names.names), "class_names_from": names.source}
    if any(cases.values()):
        table, versus, numbers["per_case"] = _case_tables(task, cases, names)
        blocks += [
            Paragraph(
                "Per test case: F1 of each class averaged over each variant's seeds (the test cases "
                "are the same for every run)."
            ),
            *table,
        ]
        if versus is not None:
            why = "adjacent slices of one volume" if adjacent else "cases of one test split"
            blocks += [
                Paragraph(
                    f"Per case, variant − baseline: how often a variant is above or below the baseline. "
                    f"No test is run over cases: they are {why}, correlated rather than independent "
                    "samples, and the seeds are averaged before the comparison. The only tests on this "
                    "page are over seeds (Results, Holm-corrected)."
                ),
                versus,
            ]
    else:
        blocks.append(Paragraph(f"No run recorded per-case scores ({TEST_CASES})."))
    shown = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        run = next((r for r in runs if counted(r) and r.folder.has(QUALITATIVE)), None)
        q = run.read(QUALITATIVE, run.folder.read_qualitative) if run else None
        if q is not None and "fixed_image" in q:
            shown.append((variant, q))
    if shown:
        numbers["cases_shown"] = {
            v: {
                n: {"index": int(q[f"{n}_index"]), "f1": float(q[f"{n}_f1"])}
                for n in QUALITATIVE_CASES
                if f"{n}_f1" in q
            }
            for v, q in shown
        }
        for variant, q in shown:
            blocks.append(
                Figure(
                    f"{task.spec.task}_cases_{slug(variant, task.runs_by_variant)}.png",
                    partial(figures.cases, variant, q, (background, foreground)),
                    f"{md(variant)}: {_kept_words(q)} (by {md(foreground)} F1) of its first counted seed: "
                    f"input, ground truth, prediction (white: {md(foreground)}, label 1; black: "
                    f"{md(background)}, label 0) and the errors: red = predicted {md(foreground)} where the "
                    f"truth is {md(background)}, blue = predicted {md(background)} where the truth is "
                    f"{md(foreground)}.",
                )
            )
    else:
        blocks.append(Paragraph(f"No run saved {QUALITATIVE} (test predictions)."))
    return blocks, numbers


def _kept_words(q: dict) -> str:
    """Which cases a record kept: the worst one only in records from before the three worst were kept."""
    worst = sum(f"{name}_image" in q for name in WORST_CASES)
    return "fixed, best and worst test case" if worst <= 1 else f"fixed, best and {worst} worst test cases"


def _foreground_fraction(runs) -> float | None:
    """Mean foreground share of the test pixels, from the trivial all-foreground F1 f (fraction m = f / (2 −
    f))."""
    f = [run_values(r, TEST).get(keys.TEST_F1_TRIVIAL) for r in runs if counted(r)]
    f = [float(x) for x in f if isinstance(x, (int, float))]
    return float(np.mean([x / (2 - x) for x in f])) if f else None


class SegmentationReport(TaskReport):
    """Binary segmentation on the page: both classes aggregated over seeds (the class the trivial majority
    prediction scores worst on, the minority class, first, since the majority class is easy), named by what
    they are (``membrane F1``), and the per-class, per-case and qualitative detail."""

    validation_keys: ClassVar[dict[str, str]] = {keys.TEST_F1_BG: keys.VAL_F1_BG}
    cases_key = keys.TEST_CASES

    def spread_keys(self, key):
        case = next((c for c, k in keys.CASE_SCORES.items() if k == key), None)
        return keys.CASE_SPREAD.get(case, (None, None)) if case else (None, None)

    def detail(self, task, names):
        from visionlab.report.render.caveats import adjacent_cases

        return segmentation_detail(task, names, adjacent_cases(task))

    def default_names(self):
        return ClassNames(
            SEGMENTATION_DEFAULT,
            "generic names: label 0 background, label 1 foreground (no "
            "`data.class_names` in the runs' config)",
        )

    def measures(self, spec, task, runs, headline):
        if not (
            all(v.split == TEST for v in headline.variants)
            and all(run_values(r, TEST).get(keys.TEST_F1_BG) is not None for r in runs if counted(r))
        ):
            return None
        other = spec.metrics.metric(keys.TEST_F1_BG)
        background = Measure(
            other.key,
            other.label,
            other.kind,
            [
                variant_stats(spec, v, g, lambda split: keys.TEST_F1_BG, self.validation_keys)
                for v, g in sorted(task.runs_by_variant.items())
            ],
        )
        task.foreground_fraction = _foreground_fraction(runs)
        minority_first = task.foreground_fraction is not None and task.foreground_fraction > 0.5
        return [background, headline] if minority_first else [headline, background]

    def name_measures(self, task, names):
        for measure in task.measures:
            label = 0 if measure.key == keys.TEST_F1_BG else 1
            measure.label = f"{names.name(label) or ('background', 'foreground')[label]} F1"

    def measure_note(self, task, measure):
        label = 0 if measure.key == keys.TEST_F1_BG else 1
        share = task.foreground_fraction
        if share is None:
            return f"**{md(measure.label)}** (label {label})"
        fraction = share if label else 1 - share
        role = "minority" if fraction < 0.5 else "majority"
        note = (
            f"**{md(measure.label)}** (label {label}, the {role} class: {100 * fraction:.0f} % of the test "
            "pixels"
        )
        trivial = [
            run_values(r, TEST).get(keys.TEST_F1_TRIVIAL)
            for runs in task.runs_by_variant.values()
            for r in runs
            if counted(r)
        ]
        trivial = [float(x) for x in trivial if isinstance(x, (int, float))]
        if label == 1 and trivial:
            trivial_mean = sum(trivial) / len(trivial)
            note += f"; predicting everything as {md(measure.label[:-3])} already scores {trivial_mean:.4f}"
        return note + ")"

    def curve_panel_label(self, task, key):
        if key == keys.VAL_F1_BG:
            other = next((m.label for m in task.measures if m.key == keys.TEST_F1_BG), None)
            if other:
                return other
        return task.spec.metrics.metric(key).label


REPORT = SegmentationReport()
