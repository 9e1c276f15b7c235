"""Assemble the report document from collected runs: summary and contents, caveats first, then per task the
tables (per run, over seeds, against a reference), curves and detail, then cards and provenance.

Every section degrades to a sentence saying what is missing, so a report over broken runs still gets written.
report.json holds the numbers as data and every table, list and caption of the page (``page``).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from visionlab.report import figures
from visionlab.report.caveats import caveats
from visionlab.report.cards import cards
from visionlab.report.classification import classification_detail
from visionlab.report.collect import Collection, Run
from visionlab.report.escape import md
from visionlab.report.format import SIGNIFICANCE, fmt, fmt_ci, fmt_delta, fmt_mean_std, significant
from visionlab.report.provenance import provenance
from visionlab.report.reference import Reference
from visionlab.report.render import Bullets, Contents, Document, Figure, Heading, Paragraph, page_data
from visionlab.report.run_health import health
from visionlab.report.segmentation import segmentation_detail
from visionlab.report.stats import TASKS, TaskStats, aggregate
from visionlab.report.tables import aggregate_table, reference_comparison, trial_table, variant_cost
from visionlab.run_record.metric_keys import CLASSIFICATION


def run_names(runs: list[Run]) -> dict[Path, str]:
    """Each run folder relative to the folder above all of them: the same names for a copy of the records."""
    if not runs:
        return {}
    root = Path(os.path.commonpath([str(r.path.parent) for r in runs]))
    return {r.path: str(r.path.relative_to(root)) for r in runs}


def _monitor(task: TaskStats) -> str:
    return next((r.summary.get("monitor") for runs in task.runs_by_variant.values() for r in runs
                 if r.summary.get("monitor")), "the monitored metric")


def _results(task: TaskStats, heading: str, reference: Reference | None) -> tuple[list, dict]:
    spec = task.spec
    blocks = [Heading(2, heading), Heading(3, "Runs"), Paragraph(
        "One row per run (variant × seed). The reported score is on the named split: the test split where every "
        f"completed run of the variant has one, else the {spec.validation_name} split at the best epoch "
        f"(monitor `{md(_monitor(task))}`). Epochs are counted from 1. The final epoch's validation score "
        "stands beside the best, and the last column says where the epoch was picked."), trial_table(task),
        Heading(3, "Over seeds"), Paragraph(
        f"Baseline: **{md(task.baseline)}**. n = completed runs with a score (diverged or stuck runs left out). "
        "Δ is the difference of means to the baseline with its 95 % interval (Welch), p the two-sided Welch "
        f"t-test over seeds; a Δ is bold only where p < {SIGNIFICANCE}. Cost: mean wall time and training "
        "images/s per run."), aggregate_table(task)]
    numbers = {"baseline": task.baseline, "variants": [
        {"variant": v.variant, "split": v.split, "metric": spec.headline_column(v.split).key, "n": v.n,
         "n_runs": v.n_runs, "seeds": v.seeds, "values": v.values, "mean": v.mean, "std": v.std, "min": v.min,
         "max": v.max, "finals": v.finals, "delta": v.delta, "ci": list(v.ci) if v.ci else None,
         "p_value": v.p_value, "significant": significant(v.p_value), "also": v.also,
         "cost": variant_cost(task.runs_by_variant[v.variant])} for v in task.variants]}
    if reference is not None and reference.task == spec.task and not set(reference.variants) & set(
            task.runs_by_variant):
        blocks += [Heading(3, "Against the reference"), Paragraph(
            f"No variant of this study is named in the reference ({', '.join(map(md, reference.variants))}).")]
    elif reference is not None and reference.task == spec.task:
        table, numbers["reference"] = reference_comparison(task, reference)
        blocks += [Heading(3, "Against the reference"), Paragraph(
            f"The reference's per-trial numbers ({md(reference.name)}; {md(reference.source)}) with this study's "
            "beside them, trial by trial (this study's trials in seed order). Δ = this study − reference with "
            "a 95 % interval (Welch; a side with one trial is taken as exact)."), table]
    curves = figures.curves(task)
    blocks.append(Heading(3, "Curves"))
    blocks.append(Figure(f"{spec.task}_curves.png", curves, "Loss (log scale), metric and learning rate per "
                         "epoch: mean over seeds with min–max band.") if curves
                  else Paragraph("No run recorded per-epoch metrics."))
    blocks.append(Heading(3, "Detail"))
    detail, numbers["detail"] = (classification_detail(task) if spec.task == CLASSIFICATION.task
                                 else segmentation_detail(task))
    return blocks + detail, numbers


def _summary(collection: Collection, stats: dict[str, TaskStats], reference_numbers: dict, n_caveats: int) -> list:
    done = sum(r.completed for r in collection.runs)
    items = [f"{len(collection.runs)} runs ({done} completed) of {len({r.variant for r in collection.runs})} "
             f"variants; {n_caveats} caveats below, read them first."]
    for name, task in stats.items():
        for v in task.variants:
            kind = task.spec.headline_column(v.split).kind
            claim = "" if v.is_baseline or v.delta is None else (
                f"; Δ {fmt_delta(v.delta, kind)} {fmt_ci(v.ci, kind)} vs {md(task.baseline)}, "
                + ("**significant** (Welch p < 0.05)" if significant(v.p_value) else "not significant at p < 0.05"))
            items.append(f"{name}: {md(v.variant)}: {fmt_mean_std(v.mean, v.std, kind)} {task.spec.headline} on "
                         f"{'test' if v.split == 'test' else 'validation'} (n = {v.n}){claim}.")
        for row in reference_numbers.get(name, []):
            if row["delta"] is not None:
                kind = task.spec.metrics.metric(row["ours_key"]).kind
                items.append(f"{name}: {md(row['variant'])} against the reference: Δ {fmt_delta(row['delta'], kind)} "
                             f"{fmt_ci(row['ci'], kind)} ({fmt(sum(row['ours']) / len(row['ours']), kind)} vs "
                             f"{fmt(sum(row['reference']) / len(row['reference']), kind)}).")
    return [Heading(2, "Summary"), Bullets(items), Paragraph("Contents:"), Contents()]


def build(collection: Collection, baseline: str | None = None, title: str = "Experiment report",
          reference: Reference | None = None, records_note: str | None = None) -> tuple[Document, dict]:
    """The report document and its numbers as plain data (written to report.json)."""
    doc = Document(md(title))
    names = run_names(collection.runs)
    tasks: dict[str, list[Run]] = {}
    for run in collection.runs:
        tasks.setdefault(run.task, []).append(run)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    doc.add(Paragraph(f"Generated {stamp} from the local run records" + (f"; {records_note}" if records_note else "")
                      + "."))
    reportable = {t: runs for t, runs in sorted(tasks.items()) if t in TASKS}
    stats = {name: aggregate(TASKS[name], runs, baseline) for name, runs in reportable.items()}
    numbers: dict = {"title": title, "generated": stamp, "reference": reference.as_dict() if reference else None,
                     "runs": [_run_record(r, names) for r in collection.runs], "tasks": {}}
    body = []
    for name, task in stats.items():
        heading = f"Results: {name}" if len(reportable) > 1 else f"Results ({name})"
        blocks, numbers["tasks"][name] = _results(task, heading, reference)
        body += blocks
    extra = list(collection.problems)
    if len(reportable) > 1:
        extra.append("The runs mix tasks: " + ", ".join(f"{t} ({len(r)} runs)" for t, r in reportable.items())
                     + "; each task is reported in its own section.")
    extra += [f"`{names[r.path]}`: task `{md(t)}` has no report tables." for t, runs in tasks.items()
              if t not in TASKS for r in runs if r.completed]
    runs_by_variant: dict[str, list[Run]] = {}
    for run in collection.runs:
        runs_by_variant.setdefault(run.variant, []).append(run)
    if runs_by_variant:
        card_blocks, numbers["cards"] = cards(runs_by_variant, extra)
        by_task: dict[str, dict[str, list[Run]]] = {}
        for run in collection.runs:
            by_task.setdefault(run.task, {}).setdefault(run.variant, []).append(run)
        body += card_blocks + provenance(collection.runs, by_task, names)
    items = caveats(collection, stats, reference, names, extra)
    ref_numbers = {name: n.get("reference", []) for name, n in numbers["tasks"].items()}
    doc.add(*_summary(collection, stats, ref_numbers, len(items)))
    doc.add(Heading(2, "Caveats"), Bullets(items) if items else Paragraph("None found."), *body)
    numbers["caveats"] = numbers["warnings"] = items
    numbers["page"] = page_data(doc)
    return doc, numbers


def _run_record(run: Run, names: dict) -> dict:
    return {"name": names[run.path], "variant": run.variant, "seed": run.seed, "task": run.task,
            "status": run.status, "health": health(run), "problems": run.problems}


def write_numbers(numbers: dict, out_dir: Path) -> Path:
    path = out_dir / "report.json"
    path.write_text(json.dumps(numbers, indent=2, default=str))
    return path
