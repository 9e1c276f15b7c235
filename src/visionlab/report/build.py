"""Assemble the report document from collected runs: summary and contents, caveats first, then per task the
tables (per run, over seeds, against a reference), curves and detail, then cards and provenance.

Every section degrades to a sentence saying what is missing, so a report over broken runs still gets written.
report.json holds the numbers as data and every table, list and caption of the page (``page``).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from visionlab.record.metric_keys import STEP
from visionlab.report.analysis import convergence
from visionlab.report.analysis.classes import ClassNames, class_names
from visionlab.report.analysis.reference import Reference
from visionlab.report.analysis.run_health import health
from visionlab.report.analysis.stats import TASKS, TEST, TaskStats, aggregate, counted, task_spec
from visionlab.report.collect import Collection, Run
from visionlab.report.render import figures
from visionlab.report.render.cards import cards
from visionlab.report.render.caveats import adjacent_cases, case_counts, caveats
from visionlab.report.render.document import (
    Bullets,
    Contents,
    Document,
    Figure,
    Heading,
    Paragraph,
    page_data,
)
from visionlab.report.render.escape import md
from visionlab.report.render.format import (
    SIGNIFICANCE,
    fmt,
    fmt_ci,
    fmt_delta,
    fmt_mean_std,
    fmt_p,
    significant,
)
from visionlab.report.render.provenance import provenance
from visionlab.report.render.tables import (
    aggregate_table,
    concurrency,
    cost_table,
    measure_numbers,
    reference_tables,
    split_name,
    time_to_table,
    trial_table,
    uniform_split,
)
from visionlab.tasks.registry import report_of


def run_names(runs: list[Run]) -> dict[Path, str]:
    """Each run folder relative to the folder above all of them: the same names for a copy of the records."""
    if not runs:
        return {}
    root = Path(os.path.commonpath([str(r.path.parent) for r in runs]))
    return {r.path: str(r.path.relative_to(root)) for r in runs}


def _monitor(task: TaskStats) -> str:
    return next(
        (
            r.summary.get("monitor")
            for runs in task.runs_by_variant.values()
            for r in runs
            if r.summary.get("monitor")
        ),
        "the monitored metric",
    )


def _split_words(task: TaskStats, split: str) -> str:
    return (
        "test, at the epoch picked on validation"
        if split == TEST
        else f"{task.spec.validation_name}, at the best epoch **picked on that same split** (optimistic)"
    )


def _measure_note(task: TaskStats, measure) -> str:
    return report_of(task.spec.task).measure_note(task, measure)


def _panels(task: TaskStats, smoothing: dict[str, float]) -> list[tuple[list[str], str, bool]]:
    keys = list(task.spec.curve_keys)
    metric = report_of(task.spec.task).curve_metric_label(task)
    train = "training loss (log), as optimised"
    if smoothing:
        train += "\nwith label smoothing: " + ", ".join(sorted(smoothing))
    panels = [
        ([keys[0]], train, True),
        ([keys[1]], "validation loss (log), plain", True),
        (keys[2:4], f"{metric}: train solid, validation dashed", False),
    ]
    panels += [
        ([k], f"{report_of(task.spec.task).curve_panel_label(task, k)} (validation)", False) for k in keys[4:]
    ]
    return panels


def _curves(task: TaskStats) -> list:
    smoothing = {
        v: float(r.config["model"]["label_smoothing"])
        for v, runs in task.runs_by_variant.items()
        for r in runs[:1]
        if isinstance(r.config.get("model"), dict)
        and isinstance(r.config["model"].get("label_smoothing"), (int, float))
        and r.config["model"]["label_smoothing"] > 0
    }
    draw, lr_words, axis = figures.curves(task, _panels(task, smoothing))
    if draw is None:
        return [Paragraph("No run recorded per-epoch metrics.")]
    by_step = axis == STEP
    caption = (
        (
            "Against optimizer steps (the variants' epochs hold different numbers of steps)"
            if by_step
            else "Per epoch"
        )
        + ", counted runs only: each seed a thin line; the thick line is the mean over seeds, drawn only up "
        f"to the last {'point' if by_step else 'epoch'} every seed reached (after an early stop a mean "
        "would be over the surviving seeds only). Losses on a log scale."
    )
    if smoothing:
        caption += (
            " The training loss is the loss as optimised: with label smoothing ("
            + ", ".join(f"{md(v)} {s:g}" for v, s in sorted(smoothing.items()))
            + ") it cannot approach 0, so it is not comparable with the validation loss (plain "
            "cross-entropy) "
            "or with other variants' training loss."
        )
    if lr_words:
        caption += " Learning rate: " + "; ".join(md(w) for w in lr_words) + "."
    return [Figure(f"{task.spec.task}_curves.png", draw, caption)]


def _results(
    task: TaskStats,
    heading: str,
    reference: Reference | None,
    names: ClassNames,
    conv: dict,
    together: dict[int, int],
) -> tuple[list, dict]:
    spec = task.spec
    one_split = uniform_split(task)
    where = (
        f" Every score is on {_split_words(task, one_split)}."
        if one_split
        else " The split column names where each variant is scored."
    )
    blocks = [
        Heading(2, heading),
        Heading(3, "Runs"),
        Paragraph(
            "One row per run (variant × seed): its scores, best epoch (counted from 1), the final epoch's "
            f"validation score and how its training ended (see the caveats).{where} Monitor: "
            f"`{md(_monitor(task))}`."
        ),
        trial_table(task, conv),
        Heading(3, "Over seeds"),
        Paragraph(
            f"Baseline: **{md(task.baseline)}**. n = counted runs (diverged or stuck runs left out). Δ is "
            f"the difference of means to {_compared_words(task)} with its 95 % interval (Welch); "
            f"{_p_words(task)} Training: how the variant's runs ended; **budget-limited** runs were still "
            "rising at their epoch cap, so their Δ is not a converged one."
        ),
    ]
    numbers: dict = {"baseline": task.baseline, "comparisons": task.comparisons, "measures": []}
    for measure in task.measures:
        split = uniform_split(task)
        on = f" on {_split_words(task, split)}" if split else ""
        blocks += [
            Paragraph(f"{_measure_note(task, measure)}{on}:"),
            aggregate_table(task, measure, conv),
        ]
        numbers["measures"].append(
            {"key": measure.key, "label": measure.label, "variants": measure_numbers(measure, task, conv)}
        )
    numbers["variants"] = numbers["measures"][0]["variants"]
    blocks += [
        Heading(3, "Cost"),
        Paragraph(
            "Per variant and device (never averaged across devices): wall time of the whole run and training "
            "images/s, mean with the range over runs, and how many runs of these records ran on that device "
            "at the same moment (from epoch timestamps and wall times: concurrent jobs share the device, so "
            "their times are not those of a run alone)."
        ),
        cost_table(task, together),
    ]
    table, numbers["time_to"] = time_to_table(task)
    if table is not None:
        blocks += [
            Paragraph(
                "Time to accuracy: wall seconds from the run's start (data loading included) until its "
                "validation score first reached each threshold (summary.json `time_to`), per variant and "
                "device: mean (range) over the runs that reached it, and how many did."
            ),
            table,
        ]
    if (
        reference is not None
        and reference.task == spec.task
        and not set(reference.variants) & set(task.runs_by_variant)
    ):
        blocks += [
            Heading(3, "Against the reference"),
            Paragraph(
                "No variant of this study is named in the reference "
                f"({', '.join(map(md, reference.variants))})."
            ),
        ]
    elif reference is not None and reference.task == spec.task:
        tables, numbers["reference"] = reference_tables(task, reference, conv)
        ours = split_name(spec, one_split) if one_split else "the split named per row"
        blocks += [
            Heading(3, "Against the reference"),
            Paragraph(
                f"The reference's trials ({md(reference.name)}: {md(reference.source)}; its split: "
                f"{md(reference.split.words())}; its data: {md(reference.data.words())}) beside this study's "
                f"({ours}), each row labelled with the quantity it holds. "
                + (
                    "They measured the same split of the same data, so absolute differences follow below."
                    if numbers["reference"].get("comparable")
                    else "They are not measurements of the same thing, so no difference between them is "
                    "computed."
                )
            ),
            tables[0],
        ]
        if len(tables) > 1:
            blocks += [
                Paragraph(
                    "Effects: each variant's difference to its own study's baseline, the reference's (from "
                    "its trials; an interval only where it has ≥ 2 trials on both sides) beside this study's "
                    "(Welch interval, Holm p). Effects can be compared across studies where absolute scores "
                    "cannot; agreement is judged only for a significant effect of ours."
                ),
                tables[1],
            ]
        if len(tables) > 2:
            blocks += [
                Paragraph("Absolute differences (same split, same data): this study − reference."),
                tables[2],
            ]
    blocks += [Heading(3, "Curves"), *_curves(task), Heading(3, "Detail")]
    detail, numbers["detail"] = report_of(spec.task).detail(task, names)
    return blocks + detail, numbers


def _test_cases_words(task: TaskStats) -> str:
    counts = case_counts(task)
    if not counts:
        return ""
    return (
        f" ({'/'.join(map(str, counts))} test cases"
        + (": adjacent slices of one volume, see the caveats" if adjacent_cases(task) else "")
        + ")"
    )


def _summary(collection: Collection, stats: dict[str, TaskStats], numbers: dict, n_caveats: int) -> list:
    done = sum(r.completed for r in collection.runs)
    items = [
        (
            f"{len(collection.runs)} runs ({done} completed) of {len({r.variant for r in collection.runs})} "
            f"variants; {n_caveats} caveats below, read them first."
        )
    ]
    for name, task in stats.items():
        for i, measure in enumerate(task.measures):
            per_variant = {v["variant"]: v for v in numbers[name]["measures"][i]["variants"]}
            split = uniform_split(task)
            where = f" on {_split_words(task, split)}" if split else ""
            cases = _test_cases_words(task)
            n = task.comparisons
            tests = (
                f"significance after Holm's correction over {n} comparison{'s' * (n != 1)}"
                if n
                else "no significance test (each comparison has one seed on a side, or no spread)"
            )
            items.append(
                f"{name}: {_measure_note(task, measure)}{where}{cases}, mean ± std over "
                f"seeds; Δ vs {md(task.baseline)} with its 95 % interval, {tests}:"
            )
            for v in measure.variants:
                on = "" if split else (" on test" if v.split == TEST else f" on {task.spec.validation_name}")
                claim = "" if v.is_baseline or v.delta is None else _claim(v, measure.kind, task.baseline)
                limited = per_variant[v.variant]["budget_limited"]
                runs = len(per_variant[v.variant]["training"])
                budget = (
                    f"; **budget-limited** ({limited} of {runs} runs still rising at the cap)"
                    if limited
                    else ""
                )
                value = (
                    fmt(v.mean, measure.kind) if v.std is None else fmt_mean_std(v.mean, v.std, measure.kind)
                )
                items.append(f"{md(v.variant)}: {value} {md(measure.label)}{on} (n = {v.n}){claim}{budget}.")
        for row in (numbers[name].get("reference") or {}).get("effects", []):
            kind = report_of(task.spec.task).effect_kind(task)
            if row["reference_delta"] is not None and row["delta"] is not None:
                items.append(
                    f"{name}: {md(row['variant'])}'s effect vs its baseline on {md(row['label'])}, the "
                    f"reference's {fmt_delta(row['reference_delta'], kind)} beside ours "
                    f"{fmt_delta(row['delta'], kind)} {fmt_ci(row['ci'], kind)}: {row['verdict']}"
                    + (" (ours budget-limited)" if row["budget_limited"] else "")
                    + "."
                )
    return [Heading(2, "Summary"), Bullets(items), Paragraph("Contents:"), Contents()]


def _claim(v, kind: str, baseline: str | None = None) -> str:
    """A variant's Δ in the summary: with its interval and Holm p where the Welch test runs (≥ 2 seeds on both
    sides, some spread), else plainly untested (never "not significant" for a test that was not run). It names
    what it is taken against where that is not the baseline, and a difference in training budget."""
    against = [] if v.compared_with in (None, baseline) else [f"vs {md(v.compared_with)}"]
    against += [f"at {md(v.budget_note)}"] if v.budget_note else []
    delta = f"Δ{' (' + '; '.join(against) + ')' if against else ''} {fmt_delta(v.delta, kind)}"
    if v.p_holm is None:
        return f"; {delta}, untested (one seed on a side, or no spread: no interval, no p)"
    verdict = "**significant**" if significant(v.p_holm) else "not significant"
    return f"; {delta} {fmt_ci(v.ci, kind)}, {verdict} (Holm p = {fmt_p(v.p_holm)})"


def _p_words(task) -> str:
    """How the section's p-values were made, or why it has none (a test needs two counted seeds a side)."""
    if not task.comparisons:
        return (
            "p: none in this section, since no variant has two counted seeds on both sides of a comparison "
            "(a t-test needs them); a difference here is a single measurement, not a tested one."
        )
    return (
        "p: the two-sided Welch t-test over seeds, then that p Holm-adjusted over all "
        f"{task.comparisons} comparison{'s' if task.comparisons > 1 else ''} of this section; a Δ is bold "
        f"only where the Holm-adjusted p < {SIGNIFICANCE}."
    )


def _compared_words(task: TaskStats) -> str:
    """What each Δ is taken against: the baseline, or (when variants are evaluated on several data sets or
    with test-time options) the baseline's model on the same data, named in the cell (``pairing``)."""
    if task.pairing is None or task.pairing.uniform:
        return "the baseline"
    return (
        "the baseline's model evaluated on the same data with the same test-time options (like with like; "
        "the "
        'cell names that variant where it is not the baseline, and "reference on its data" marks the '
        "baseline's "
        "model on another data set)"
    )


def build(
    collection: Collection,
    baseline: str | None = None,
    title: str = "Experiment report",
    reference: Reference | None = None,
    records_note: str | None = None,
) -> tuple[Document, dict]:
    """The report document and its numbers as plain data (written to report.json)."""
    doc = Document(md(title))
    names = run_names(collection.runs)
    tasks: dict[str, list[Run]] = {}
    for run in collection.runs:
        tasks.setdefault(run.task, []).append(run)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc.add(
        Paragraph(
            f"Generated {stamp} from the local run records"
            + (f"; {records_note}" if records_note else "")
            + "."
        )
    )
    reportable = {t: runs for t, runs in sorted(tasks.items()) if t in TASKS}
    stats = {name: aggregate(task_spec(name, runs), runs, baseline) for name, runs in reportable.items()}
    class_of = {name: class_names(runs) for name, runs in reportable.items()}
    conv = {
        name: {
            v: convergence.variant_convergence(runs, task.spec.metrics.validation_headline)
            for v, runs in task.runs_by_variant.items()
        }
        for name, task in stats.items()
    }
    together = concurrency([r for r in collection.runs if counted(r)])
    numbers: dict = {
        "title": title,
        "generated": stamp,
        "reference": reference.as_dict() if reference else None,
        "runs": [_run_record(r, names) for r in collection.runs],
        "tasks": {},
    }
    body = []
    for name, task in stats.items():
        report_of(name).name_measures(task, class_of[name])
        heading = f"Results: {name}" if len(reportable) > 1 else f"Results ({name})"
        blocks, numbers["tasks"][name] = _results(
            task, heading, reference, class_of[name], conv[name], together
        )
        body += blocks
    extra = [md(problem) for problem in collection.problems]  # paths and file names from the records: text
    if len(reportable) > 1:
        extra.append(
            "The runs mix tasks: "
            + ", ".join(f"{t} ({len(r)} runs)" for t, r in reportable.items())
            + "; each task is reported in its own section."
        )
    extra += [
        f"`{names[r.path]}`: task `{md(t)}` has no report tables."
        for t, runs in tasks.items()
        if t not in TASKS
        for r in runs
        if r.completed
    ]
    runs_by_variant: dict[str, list[Run]] = {}
    for run in collection.runs:
        runs_by_variant.setdefault(run.variant, []).append(run)
    if runs_by_variant:
        first = next((t.baseline for t in stats.values() if t.baseline), None)
        card_blocks, numbers["cards"] = cards(runs_by_variant, extra, first)
        by_task: dict[str, dict[str, list[Run]]] = {}
        for run in collection.runs:
            by_task.setdefault(run.task, {}).setdefault(run.variant, []).append(run)
        body += card_blocks + provenance(collection.runs, by_task, names, together)
    items = caveats(collection, stats, reference, names, extra, conv)
    doc.add(*_summary(collection, stats, numbers["tasks"], len(items)))
    doc.add(Heading(2, "Caveats"), Bullets(items) if items else Paragraph("None found."), *body)
    numbers["caveats"] = numbers["warnings"] = items
    numbers["page"] = page_data(doc)
    return doc, numbers


def _run_record(run: Run, names: dict) -> dict:
    return {
        "name": names[run.path],
        "variant": run.variant,
        "seed": run.seed,
        "task": run.task,
        "status": run.status,
        "health": health(run),
        "problems": run.problems,
    }
