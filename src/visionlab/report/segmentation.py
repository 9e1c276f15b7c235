"""Segmentation detail: both classes' F1/IoU beside the trivial all-foreground and all-background predictions on
the same cases, a per-case table with a paired test between variants on the shared cases, and the fixed / best /
worst case of each variant with its errors overlaid.

The trivial rows come from each case's all-foreground F1 f (``test_cases.csv``): with foreground fraction
m = f / (2 − f), all-foreground scores foreground IoU m and background F1 = IoU = 0, and all-background scores
foreground F1 = IoU = 0 and background F1 2b / (1 + b), IoU b, with b = 1 − m (an empty class scores 1, the run
record's convention)."""

from __future__ import annotations

import numpy as np

from visionlab.report import figures
from visionlab.report.escape import md
from visionlab.report.format import MISSING, fmt, fmt_ci, fmt_delta, fmt_p, mark_significant
from visionlab.report.render import Figure, Paragraph, Table
from visionlab.report.stats import TaskStats, counted, paired_test, run_values
from visionlab.run_record import metric_keys as keys
from visionlab.run_record.layout import QUALITATIVE, TEST_CASES

CLASS_KEYS = (keys.TEST_F1, keys.TEST_IOU, keys.TEST_F1_BG, keys.TEST_IOU_BG)
CLASS_LABELS = ("F1 foreground", "IoU foreground", "F1 background", "IoU background")


def _trivial(f: np.ndarray) -> dict[str, tuple[float, ...]]:
    """Mean fg F1, fg IoU, bg F1, bg IoU of the all-foreground and all-background predictions per case."""
    f = np.clip(np.asarray(f, float), 0, 1)
    m = f / (2 - f)
    b = 1 - m
    fg_empty, bg_empty = m == 0, b == 0
    all_fg = (f, m, np.where(bg_empty, 1.0, 0.0), np.where(bg_empty, 1.0, 0.0))
    all_bg = (np.where(fg_empty, 1.0, 0.0), np.where(fg_empty, 1.0, 0.0), 2 * b / (1 + b), b)
    return {"all-foreground (trivial)": tuple(float(x.mean()) for x in all_fg),
            "all-background (trivial)": tuple(float(x.mean()) for x in all_bg)}


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
            for column in (keys.CASE_F1, keys.CASE_IOU, keys.CASE_F1_BG, keys.CASE_IOU_BG, keys.CASE_F1_TRIVIAL):
                if isinstance(row.get(column), float):
                    per.setdefault(column, []).append(row[column])
    return {case: {c: float(np.mean(v)) for c, v in per.items()} for case, per in sorted(collected.items())}


def _class_table(task: TaskStats, cases: dict[str, dict]) -> tuple[Table, dict]:
    rows, numbers = [], {}
    for v in task.variants:
        runs = [r for r in task.runs_by_variant[v.variant] if counted(r)]
        means = [np.mean([run_values(r, v.split)[k] for r in runs if run_values(r, v.split).get(k) is not None])
                 if any(run_values(r, v.split).get(k) is not None for r in runs) else None for k in CLASS_KEYS]
        means = [None if m is None else float(m) for m in means]
        numbers[v.variant] = dict(zip(CLASS_KEYS, means))
        rows.append([md(v.variant), *[fmt(m, "score") for m in means]])
    trivial_f = [c[keys.CASE_F1_TRIVIAL] for per in cases.values() for c in per.values() if keys.CASE_F1_TRIVIAL in c]
    baseline_cases = cases.get(task.baseline) or next(iter(cases.values()), {})
    f = [c[keys.CASE_F1_TRIVIAL] for c in baseline_cases.values() if keys.CASE_F1_TRIVIAL in c]
    if f:
        for name, means in _trivial(np.array(f)).items():
            numbers[name] = dict(zip(CLASS_KEYS, means))
            rows.append([name, *[fmt(m, "score") for m in means]])
    elif not trivial_f:
        logged = [run_values(r, "test").get(keys.TEST_F1_TRIVIAL) for runs in task.runs_by_variant.values()
                  for r in runs if counted(r)]
        logged = [x for x in logged if x is not None]
        if logged:
            numbers["all-foreground (trivial)"] = {keys.TEST_F1: float(np.mean(logged))}
            rows.append(["all-foreground (trivial)", fmt(float(np.mean(logged)), "score"), MISSING, MISSING,
                         MISSING])
    return Table(["prediction", *CLASS_LABELS], rows), numbers


def _case_table(task: TaskStats, cases: dict[str, dict]) -> tuple[Table, Table | None, dict]:
    variants = [v for v in sorted(cases) if cases[v]]
    shared = sorted(set.intersection(*(set(cases[v]) for v in variants))) if variants else []
    header = ["case", *[f"{md(v)} F1" for v in variants], "all-foreground F1"]
    base = cases.get(task.baseline, {})
    rows = [[str(c), *[fmt(cases[v][c].get(keys.CASE_F1), "score") for v in variants],
             fmt((base.get(c) or cases[variants[0]][c]).get(keys.CASE_F1_TRIVIAL), "score")] for c in shared]
    numbers = {"cases": shared, "f1": {v: [cases[v][c].get(keys.CASE_F1) for c in shared] for v in variants},
               "paired": []}
    if task.baseline not in variants or len(variants) < 2:
        return Table(header, rows), None, numbers
    paired_rows = []
    for v in variants:
        if v == task.baseline:
            continue
        a = [cases[v][c][keys.CASE_F1] for c in shared]
        b = [cases[task.baseline][c][keys.CASE_F1] for c in shared]
        mean, ci, p = paired_test(a, b)
        numbers["paired"].append({"variant": v, "n_cases": len(shared), "delta": mean, "ci": list(ci) if ci else None,
                                  "p_value": p})
        paired_rows.append([md(v), str(len(shared)), mark_significant(fmt_delta(mean, "score"), p),
                            fmt_ci(ci, "score"), fmt_p(p)])
    paired = Table(["variant", "shared cases", f"mean Δ F1 vs {md(task.baseline)}", "95 % CI", "p (paired t)"],
                   paired_rows)
    return Table(header, rows), paired, numbers


def segmentation_detail(task: TaskStats) -> tuple[list, dict]:
    cases = {variant: _per_case(runs) for variant, runs in task.runs_by_variant.items()}
    classes, class_numbers = _class_table(task, cases)
    blocks = [Paragraph("Both classes (means over seeds of each run's mean per-image score on test), and the "
                        "trivial predictions on the same cases (derived per case from the all-foreground F1; "
                        "— where the run records do not hold the score)."), classes]
    numbers = {"classes": class_numbers}
    if any(cases.values()):
        table, paired, numbers["per_case"] = _case_table(task, cases)
        blocks += [Paragraph("Per test case: F1 averaged over each variant's seeds (the test cases are the same "
                             "for every run)."), table]
        if paired is not None:
            blocks += [Paragraph("Paired t-test over the shared test cases (per-case F1, variant − baseline); "
                                 "bold only where p < 0.05."), paired]
    else:
        blocks.append(Paragraph(f"No run recorded per-case scores ({TEST_CASES})."))
    shown = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        run = next((r for r in runs if counted(r) and r.folder.has(QUALITATIVE)), None)
        q = run.read(QUALITATIVE, run.folder.read_qualitative) if run else None
        if q is not None and "fixed_image" in q:
            shown.append((variant, q))
    if shown:
        numbers["cases_shown"] = {v: {n: {"index": int(q[f"{n}_index"]), "f1": float(q[f"{n}_f1"])}
                                      for n in ("fixed", "best", "worst") if f"{n}_f1" in q} for v, q in shown}
        blocks.append(Figure(f"{task.spec.task}_cases.png", figures.cases(shown),
                             "Fixed, best and worst test case of each variant (first seed), with its F1: false "
                             "positives red, false negatives blue."))
    else:
        blocks.append(Paragraph(f"No run saved {QUALITATIVE} (test predictions)."))
    return blocks, numbers
