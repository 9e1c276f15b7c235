"""Assemble the report document from collected runs: warnings, tables, curves, qualitative, cards, provenance.

Every section degrades to a sentence saying what is missing, so a report over broken runs still gets written.
"""

from __future__ import annotations

import datetime
import json
import shlex
from pathlib import Path

from visionlab.report import figures
from visionlab.report.arch_card import ArchCard, card_from_config
from visionlab.report.collect import Collection, Run
from visionlab.report.health import excluded_lines, health, is_excluded, status_cell
from visionlab.report.render import Bullets, Document, Figure, Heading, Paragraph, Table
from visionlab.report.stats import (
    TASKS,
    TEST,
    Column,
    TaskStats,
    aggregate,
    run_values,
    summed_confusion,
    weakest_classes,
)
from visionlab.run_record.layout import CONFUSION, METRICS, QUALITATIVE, SUMMARY, TEST_CASES
from visionlab.run_record.metric_keys import CLASSIFICATION

NA = "n/a"
MISSING = "—"
CARD_NOTE = (
    "MACs count weight multiply-accumulates (conv: output elements × k·k·cin/groups; linear: in × out) for "
    "one image. The receptive field (pixels, one side) follows r ← r + (k−1)·d·j, j ← j·s through conv and "
    "pooling layers in execution order; activations, normalisation and flatten pass it through, a linear "
    "layer sees the whole input. From the first upsampling layer on (a U-Net's decoder, where skip "
    "connections merge features of different receptive fields) it is shown as —."
)


# ---------------------------------------------------------------- formatting

def fmt(value, kind: str) -> str:
    """Accuracy as % with 2 decimals, F1 with 4 decimals, counts as integers."""
    if value is None:
        return MISSING
    if kind == "percent":
        return f"{100 * value:.2f} %"
    if kind == "count":
        return f"{int(value)}"
    return f"{value:.4f}"


def fmt_delta(value, kind: str) -> str:
    if value is None:
        return NA
    return f"{100 * value:+.2f} pp" if kind == "percent" else f"{value:+.4f}"


def fmt_mean_std(mean, std, kind: str) -> str:
    if mean is None:
        return MISSING
    if kind == "percent":
        return f"{100 * mean:.2f} ± {NA if std is None else f'{100 * std:.2f}'} %"
    return f"{mean:.4f} ± {NA if std is None else f'{std:.4f}'}"


def fmt_p(p) -> str:
    if p is None:
        return NA
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _best(values: list, better: str | None) -> set[int]:
    """Indices of the best values in a column (ties all marked); nothing when the column has no direction."""
    present = [v for v in values if v is not None]
    if better is None or not present:
        return set()
    target = max(present) if better == "max" else min(present)
    return {i for i, v in enumerate(values) if v == target}


def _bold_column(rows: list[list[str]], column: int, values: list, better: str | None) -> None:
    for i in _best(values, better):
        rows[i][column] = f"**{rows[i][column]}**"


def _split_name(spec, split: str) -> str:
    return TEST if split == TEST else spec.validation_name


# ---------------------------------------------------------------- sections

def _warnings(collection: Collection, tasks: dict[str, list[Run]]) -> list:
    items = list(collection.problems)
    known = {t: runs for t, runs in tasks.items() if t in TASKS}
    if len(known) > 1:
        counts = ", ".join(f"{task} ({len(runs)} runs)" for task, runs in sorted(known.items()))
        items.append(f"The runs mix tasks: {counts}; each task is reported in its own section.")
    for task, runs in tasks.items():
        if task not in TASKS:
            items += [f"`{r.path}`: task `{task}` has no report tables." for r in runs if r.completed]
    items += excluded_lines(collection.runs)
    for run in collection.runs:
        if not run.completed:
            error = run.summary.get("error")
            items.append(f"**{run.status}**: {run.variant} seed {run.seed} (`{run.path}`)"
                         + (f": {error}" if error else ""))
        items += [f"{run.variant} seed {run.seed}: {problem} (`{run.path}`)" for problem in run.problems
                  if run.completed or problem not in (f"{SUMMARY} missing", f"{METRICS} missing")]
    for job in collection.jobs_without_run:
        error = f": {job.error}" if job.error else ""
        items.append(f"sweep job **{job.status}** without a run folder: `{' '.join(job.overrides)}`{error}")
    return [Heading(2, "Warnings"), Bullets(items)] if items else []


def _trial_table(task: TaskStats) -> Table:
    spec = task.spec
    splits = {v.variant: v.split for v in task.variants}
    columns: list[Column] = list(dict.fromkeys(c for split in set(splits.values()) for c in spec.columns(split)))
    header = ["variant", "seed", "status", "split"] + [c.label for c in columns] + ["epochs"]
    rows, values = [], {c: [] for c in columns}
    for variant, runs in sorted(task.runs_by_variant.items()):
        for run in runs:
            scores = run_values(run, splits[variant]) if run.completed else {}
            own = set(spec.columns(splits[variant]))
            cells = []
            for c in columns:
                value = scores.get(c.key) if c in own else None
                values[c].append(None if is_excluded(run) else value)  # excluded runs are never best
                cells.append(fmt(value, c.kind))
            rows.append([variant, str(run.seed), status_cell(run), _split_name(spec, splits[variant]), *cells,
                         str(run.summary.get("epochs", MISSING))])
    for i, c in enumerate(columns):
        _bold_column(rows, 4 + i, values[c], c.better)
    return Table(header, rows)


def _aggregate_table(task: TaskStats) -> Table:
    spec = task.spec
    also = [spec.metrics.metric(k) for k in spec.metrics.also_over_seeds]
    header = ["variant", "split", "n", f"{spec.headline} mean ± std", "min – max",
              f"Δ vs {task.baseline}", "p (Welch)", *(f"{m.label} mean ± std" for m in also)]
    rows = []
    for v in task.variants:
        kind = spec.headline_column(v.split).kind
        span = f"{fmt(v.min, kind)} – {fmt(v.max, kind)}" if v.values else MISSING
        n = f"{v.n}" if v.n == v.n_runs else f"{v.n} of {v.n_runs}"
        delta = "baseline" if v.is_baseline else fmt_delta(v.delta, kind)
        rows.append([v.variant, _split_name(spec, v.split), n, fmt_mean_std(v.mean, v.std, kind), span, delta,
                     NA if v.is_baseline else fmt_p(v.p_value),
                     *(fmt_mean_std(*v.also_mean_std(m.key), m.kind) for m in also)])
    _bold_column(rows, 3, [v.mean for v in task.variants], "max")
    _bold_column(rows, 5, [v.delta for v in task.variants], "max")
    return Table(header, rows)


def _results(task: TaskStats, heading: str) -> list:
    spec = task.spec
    blocks = [Heading(2, heading), Heading(3, "Runs"), Paragraph(
        "One row per run (variant × seed). Scores are on the named split: the test split where every "
        f"completed run of the variant has one, else the best epoch on the {spec.validation_name} split "
        f"(monitor `{_monitor(task)}`). Best value per column in bold."), _trial_table(task),
        Heading(3, "Over seeds"), Paragraph(
        f"Baseline: **{task.baseline}**. n = completed runs with a score, diverged or stuck runs left out (listed "
        "under Warnings). Δ is the difference of means to the "
        "baseline, p the two-sided Welch t-test over seeds (n/a with fewer than 2 runs on either side or "
        "when the splits differ). A small p says the difference is unlikely to be seed noise alone."),
        _aggregate_table(task)]
    curves = figures.curves(task)
    blocks.append(Heading(3, "Curves"))
    blocks.append(Figure(f"{spec.task}_curves.png", curves, "Per-epoch loss and metric, mean over seeds with "
                         "min–max band.") if curves else Paragraph("No run recorded per-epoch metrics."))
    blocks.append(Heading(3, "Qualitative"))
    blocks += _classification_qualitative(task) if spec.task == CLASSIFICATION.task else _segmentation_qualitative(task)
    return blocks


def _monitor(task: TaskStats) -> str:
    return next((r.summary.get("monitor") for runs in task.runs_by_variant.values() for r in runs
                 if r.summary.get("monitor")), "val metric")


def _classification_qualitative(task: TaskStats) -> list:
    blocks = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        matrix = summed_confusion(runs)
        if matrix is None:
            blocks.append(Paragraph(f"{variant}: no test confusion matrix recorded."))
            continue
        n = sum(1 for r in runs if r.completed and r.folder.has(CONFUSION))
        title = f"{variant}: test confusion matrix, summed over {n} seed{'s' * (n != 1)}"
        blocks.append(Figure(f"confusion_{_slug(variant)}.png", figures.confusion(matrix, title), title))
        rows = [[str(c), str(support), fmt(acc, "percent")] for c, support, acc in weakest_classes(matrix)]
        blocks += [Paragraph(f"{variant}: classes with the lowest test accuracy (summed over seeds)."),
                   Table(["class", "test images", "accuracy"], rows)]
    return blocks


def _segmentation_qualitative(task: TaskStats) -> list:
    chosen: dict[str, tuple[Run, dict]] = {}
    for variant, runs in sorted(task.runs_by_variant.items()):
        for run in runs:
            qualitative = run.read(QUALITATIVE, run.folder.read_qualitative) if run.completed else None
            if qualitative is not None and "fixed_image" in qualitative:
                chosen[variant] = (run, qualitative)
                break
    if not chosen:
        return [Paragraph(f"No run saved {QUALITATIVE} (test predictions).")]
    _, first = next(iter(chosen.values()))
    same_case = {v: q for v, (_, q) in chosen.items() if int(q["fixed_index"]) == int(first["fixed_index"])}
    blocks = [Figure(f"{task.spec.task}_fixed_case.png",
                     figures.fixed_case(first["fixed_image"], first["fixed_mask"],
                                        {v: q["fixed_pred"] for v, q in same_case.items()}, int(first["fixed_index"])),
                     "The same test image for every variant (first seed of each): input, true mask, predictions.")]
    if len(same_case) < len(chosen):
        blocks.append(Paragraph("Variants whose fixed test case differs are left out of the side-by-side: "
                                + ", ".join(sorted(set(chosen) - set(same_case)))))
    worst = [(v, q, float(q["worst_f1"]) if "worst_f1" in q else _case_f1(run, int(q["worst_index"])))
             for v, (run, q) in chosen.items()]
    blocks.append(Figure(f"{task.spec.task}_worst_cases.png", figures.worst_cases(worst),
                         "Each variant's worst test case (lowest F1, first seed)."))
    return blocks


def _case_f1(run: Run, index: int) -> float | None:
    rows = run.read(TEST_CASES, run.folder.read_test_cases) or []
    return next((row.get("f1") for row in rows if row.get("case") == index), None)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def _model_key(cfg: dict) -> str:
    """The network's identity: the model config without what only affects training."""
    model = {k: v for k, v in (cfg.get("model") or {}).items() if k not in ("optimizer", "scheduler",
                                                                            "scheduler_monitor")}
    return json.dumps(model, sort_keys=True, default=str)


def _cards(runs_by_variant: dict[str, list[Run]], warnings: list[str]) -> list:
    blocks = [Heading(2, "Architecture cards"), Paragraph(CARD_NOTE)]
    built: dict[str, tuple[str, ArchCard]] = {}
    for variant, runs in sorted(runs_by_variant.items()):
        run = next((r for r in runs if r.config.get("model")), None)
        if run is None:
            blocks.append(Paragraph(f"{variant}: no resolved model config, no card."))
            continue
        key = _model_key(run.config)
        if key in built:
            blocks.append(Paragraph(f"**{variant}**: same network as {built[key][0]}."))
            continue
        try:
            card = card_from_config(run.config)
        except Exception as exc:  # noqa: BLE001 - a broken or foreign config must not stop the report
            warnings.append(f"{variant}: architecture card failed: {type(exc).__name__}: {exc}")
            blocks.append(Paragraph(f"{variant}: the model could not be built from its config, no card."))
            continue
        built[key] = (variant, card)
        blocks += [Heading(3, variant), Paragraph(
            f"`{card.title}` on a {'×'.join(map(str, card.input_shape))} input: {card.total_params:,} parameters "
            f"({card.trainable_params:,} trainable), {card.total_macs:,} MACs."),
            Table(list(card.HEADER), card.to_rows())]
    return blocks


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(node, default=str)}


def _config_differences(runs_by_variant: dict[str, list[Run]]) -> Table | Paragraph:
    """Keys whose value is constant within each variant but differs between variants (seeds, paths drop out)."""
    flat = {v: [_flatten(r.config) for r in runs if r.config] for v, runs in runs_by_variant.items()}
    flat = {v: configs for v, configs in flat.items() if configs}
    if len(flat) < 2:
        return Paragraph("Fewer than two variants with a resolved config: nothing to compare.")
    keys = sorted(set().union(*(c.keys() for configs in flat.values() for c in configs)))
    variants = sorted(flat)
    rows = []
    for key in keys:
        per_variant = {v: {c.get(key, MISSING) for c in flat[v]} for v in variants}
        if all(len(values) == 1 for values in per_variant.values()) and len(
                {next(iter(values)) for values in per_variant.values()}) > 1:
            rows.append([f"`{key}`"] + [_short(next(iter(per_variant[v]))) for v in variants])
    if not rows:
        return Paragraph("The variants' resolved configs do not differ (beyond seeds and run folders).")
    return Table(["config key", *variants], rows)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _provenance(runs: list[Run], by_task: dict[str, dict[str, list[Run]]]) -> list:
    rows = []
    for run in runs:
        git = run.summary.get("git") or {}
        commit = (git.get("commit") or MISSING)[:10] + (" (dirty)" if git.get("dirty") else "")
        wall = run.summary.get("wall_time_s")
        command = "python train.py " + " ".join(shlex.quote(o) for o in run.overrides)
        rows.append([run.variant, str(run.seed), run.status, f"`{command.strip()}`", commit,
                     str(run.summary.get("device", MISSING)), str(run.summary.get("precision", MISSING)),
                     f"{wall:.1f} s" if isinstance(wall, (int, float)) else MISSING])
    versions = {json.dumps(r.summary.get("versions"), sort_keys=True) for r in runs if r.summary.get("versions")}
    blocks = [Heading(2, "Provenance"), Paragraph("Each run's exact command (its Hydra overrides), code version, "
                                                  "hardware, precision and wall time."),
              Table(["variant", "seed", "status", "command", "git commit", "device", "precision", "wall time"], rows)]
    for task, runs_by_variant in sorted(by_task.items()):
        suffix = f" ({task})" if len(by_task) > 1 else ""
        blocks += [Heading(3, f"Config differences between variants{suffix}"), _config_differences(runs_by_variant)]
    if len(versions) == 1:
        listed = ", ".join(f"{k} {v}" for k, v in json.loads(versions.pop()).items())
        blocks.append(Paragraph(f"Package versions (all runs): {listed}."))
    elif versions:
        blocks.append(Paragraph(f"Package versions differ between runs; see each run's {SUMMARY}."))
    return blocks


# ---------------------------------------------------------------- entry point

def build(collection: Collection, baseline: str | None = None, title: str = "Experiment report") \
        -> tuple[Document, dict]:
    """The report document and its numbers as plain data (written to report.json)."""
    doc = Document(title)
    tasks: dict[str, list[Run]] = {}
    for run in collection.runs:
        tasks.setdefault(run.task, []).append(run)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    completed = sum(r.completed for r in collection.runs)
    doc.add(Paragraph(f"Generated {stamp} from the local run records: {len(collection.runs)} run folders "
                      f"({completed} completed), {len({r.variant for r in collection.runs})} variants."))
    warnings_at = len(doc.blocks)
    numbers: dict = {"title": title, "runs": [_run_record(r) for r in collection.runs], "tasks": {}}
    card_warnings: list[str] = []
    reportable = {t: runs for t, runs in sorted(tasks.items()) if t in TASKS}
    for task_name, runs in reportable.items():
        stats = aggregate(TASKS[task_name], runs, baseline)
        heading = f"Results: {task_name}" if len(reportable) > 1 else f"Results ({task_name})"
        doc.add(*_results(stats, heading))
        numbers["tasks"][task_name] = _task_numbers(stats)
    runs_by_variant: dict[str, list[Run]] = {}
    for run in collection.runs:
        runs_by_variant.setdefault(run.variant, []).append(run)
    if runs_by_variant:
        doc.add(*_cards(runs_by_variant, card_warnings))
        by_task: dict[str, dict[str, list[Run]]] = {}
        for run in collection.runs:
            by_task.setdefault(run.task, {}).setdefault(run.variant, []).append(run)
        doc.add(*_provenance(collection.runs, by_task))
    warnings = _warnings(collection, tasks)
    if card_warnings:
        warnings = warnings or [Heading(2, "Warnings"), Bullets([])]
        warnings[1].items.extend(card_warnings)
    doc.blocks[warnings_at:warnings_at] = warnings
    numbers["warnings"] = warnings[1].items if warnings else []
    return doc, numbers


def _run_record(run: Run) -> dict:
    return {"path": str(run.path), "variant": run.variant, "seed": run.seed, "task": run.task,
            "status": run.status, "health": health(run), "problems": run.problems}


def _task_numbers(stats: TaskStats) -> dict:
    return {"baseline": stats.baseline, "variants": [
        {"variant": v.variant, "split": v.split, "metric": stats.spec.headline_column(v.split).key, "n": v.n,
         "n_runs": v.n_runs, "seeds": v.seeds, "values": v.values, "mean": v.mean, "std": v.std, "min": v.min,
         "max": v.max, "delta": v.delta, "p_value": v.p_value, "also": v.also} for v in stats.variants]}


def write_numbers(numbers: dict, out_dir: Path) -> Path:
    path = out_dir / "report.json"
    path.write_text(json.dumps(numbers, indent=2, default=str))
    return path
