"""What a reviewer must know before reading a number, shown first on the page: the split and how it was made
(and, for a small or contiguous test split, that its cases are correlated), whether the epoch was picked on
the split it is reported on, whether each variant converged or was budget-limited (``convergence``), how the
reference was measured (stated vs inferred), diverged or stuck runs, mixed or dirty commits, hand corrections
to the records, and everything excluded."""

from __future__ import annotations

from visionlab.record.layout import METRICS, SUMMARY
from visionlab.report.analysis import convergence
from visionlab.report.analysis.reference import Reference
from visionlab.report.analysis.run_health import UNHEALTHY, health
from visionlab.report.analysis.stats import TEST, TaskStats, counted, run_values
from visionlab.report.collect import Collection, Run
from visionlab.report.render.escape import code, md
from visionlab.report.render.format import SIGNIFICANCE, fmt_epoch
from visionlab.report.render.provenance import commit_of, corrections


def _split(task: TaskStats) -> list[str]:
    items = []
    for split in sorted({v.split for v in task.variants}):
        variants = [v.variant for v in task.variants if v.split == split]
        data = sorted(
            {
                str(r.summary.get("data"))
                for v in variants
                for r in task.runs_by_variant[v]
                if r.summary.get("data")
            }
        )
        made = f" Data: {'; '.join(md(d) for d in data)}." if data else ""
        if split == TEST:
            items.append(
                f"{task.spec.task}: scores of {', '.join(map(md, variants))} are on the **test** split, "
                f"at the checkpoint picked on validation.{made}"
            )
        else:
            items.append(
                f"{task.spec.task}: {', '.join(map(md, variants))} have **no test split**: scores are on "
                f"the {task.spec.validation_name} split at the best epoch, **picked on that same split** "
                f"(optimistic); the final epoch's value is shown beside it.{made}"
            )
    return items


def _length(task: TaskStats, reference: Reference | None, conv: dict) -> list[str]:
    from visionlab.tasks.registry import report_of

    kind = report_of(task.spec.task).effect_kind(task)
    items = []
    for variant in sorted(task.runs_by_variant):
        if conv.get(variant):
            items.append(convergence.sentence(md(variant), [c for _, c in conv[variant]], kind))
        elif any(r.evaluation_only for r in task.runs_by_variant[variant]):
            n = sum(r.evaluation_only for r in task.runs_by_variant[variant])
            items.append(
                f"{md(variant)}: {n} evaluation{'s' if n > 1 else ''} of a trained checkpoint "
                "(`train=false`): no training of its own; how the checkpoint's run converged is in that "
                "run's record (`evaluated_checkpoint` in summary.json)."
            )
    return items


def adjacent_cases(task: TaskStats) -> bool:
    """Whether the runs' data description says the test split is a contiguous block of one stack (volume)."""
    data = " ".join(str(r.summary.get("data") or "") for runs in task.runs_by_variant.values() for r in runs)
    return "contiguous" in data.lower()


def case_counts(task: TaskStats) -> list[int]:
    """The numbers of test cases the counted runs scored (the task's ``cases_key``), sorted; [] for a task
    whose runs score no cases."""
    from visionlab.tasks.registry import report_of

    key = report_of(task.spec.task).cases_key
    if key is None:
        return []
    return sorted(
        {
            int(run_values(r, TEST)[key])
            for runs in task.runs_by_variant.values()
            for r in runs
            if counted(r) and isinstance(run_values(r, TEST).get(key), (int, float))
        }
    )


def _test_cases(task: TaskStats) -> list[str]:
    """How many cases the test split has, and that its cases are correlated when they are adjacent slices."""
    if not any(v.split == TEST for v in task.variants):
        return []
    counts = case_counts(task)
    if not counts:
        return []
    n = "/".join(map(str, counts))
    where = (
        "**adjacent slices of one volume** (a contiguous block of the stack), so their scores are correlated "
        "and the split says little about other parts of the volume or other volumes"
        if adjacent_cases(task)
        else "cases of one test split"
    )
    return [
        (
            f"{task.spec.task}: the test split is **{n} cases**: {where}. Intervals and p-values are over "
            "seeds: they cover training randomness only, not which cases were tested; per-case differences "
            "are shown without a test. Margins of a few thousandths over a target are within this "
            "uncertainty."
        )
    ]


def _health(runs: list[Run], names: dict) -> list[str]:
    items = []
    for run in runs:
        state = health(run)
        if state.get("status") in UNHEALTHY:
            epoch = state.get("epoch")
            items.append(
                f"**{state['status']}** at epoch {fmt_epoch(epoch) if epoch is not None else '?'}: "
                f"{md(run.variant)} seed {md(run.seed)} ({md(state.get('reason') or 'no reason recorded')}; "
                f"{code(names[run.path])}); excluded from every average."
            )
    return items


def _commits(runs: list[Run]) -> list[str]:
    commits = sorted({commit_of(r).split(" ")[0] for r in runs if r.summary})
    dirty = [r for r in runs if (r.summary.get("git") or {}).get("dirty")]
    items = []
    if len(commits) > 1:
        items.append(f"The runs come from {len(commits)} commits: {', '.join(map(code, commits))}.")
    if dirty:
        items.append(
            f"{len(dirty)} of {len(runs)} runs ran on a **dirty** working tree (uncommitted changes): "
            "their code is not exactly any commit."
        )
    return items


def _devices(runs: list[Run]) -> list[str]:
    """Where the counted runs ran: one line, or the variants per device when they differ (wall time and
    images/s compare only within one device; the scores do not depend on it beyond numerical noise)."""
    by_device: dict[str, set] = {}
    for run in runs:
        if counted(run) and run.summary.get("device"):
            key = f"{run.summary['device']}, {run.summary.get('precision') or '?'}"
            by_device.setdefault(key, set()).add(str(run.variant))
    if not by_device:
        return []
    if len(by_device) == 1:
        return [f"All runs ran on {md(next(iter(by_device)))}."]
    return [
        "The runs ran on **different devices**: "
        + "; ".join(
            f"{md(device)}: {', '.join(map(md, sorted(variants)))}"
            for device, variants in sorted(by_device.items())
        )
        + ". Compare wall time and images/s only within one device: the cost tables give them per device, "
        "never "
        "averaged across devices."
    ]


def _excluded(collection: Collection, names: dict) -> list[str]:
    items = []
    for run in collection.runs:
        if not run.completed:
            error = run.summary.get("error")
            items.append(
                f"excluded, **{md(run.status)}**: {md(run.variant)} seed {md(run.seed)} "
                f"({code(names[run.path])})" + (f": {md(error)}" if error else "")
            )
        items += [
            f"{md(run.variant)} seed {md(run.seed)}: {md(p)} ({code(names[run.path])})"
            for p in run.problems
            if run.completed or p not in (f"{SUMMARY} missing", f"{METRICS} missing")
        ]
    for job in collection.jobs_without_run:
        error = f": {md(job.error)}" if job.error else ""
        items.append(
            f"sweep job **{md(job.status)}** without a run folder: {code(' '.join(job.overrides))}{error}"
        )
    return items


def _reference(reference: Reference, stats: dict[str, TaskStats]) -> list[str]:
    task = stats.get(reference.task)
    splits = sorted({v.split for v in task.variants}) if task else []
    data = sorted(
        {
            str(r.summary.get("data"))
            for runs in (task.runs_by_variant.values() if task else [])
            for r in runs
            if counted(r) and r.summary.get("data")
        }
    )
    same = bool(task) and all(reference.same_measurement(s, data) for s in splits)
    verdict = (
        "It measured the same split of the same data, so absolute differences are shown"
        if same
        else "It is **not** a measurement of this study's data and split, so no absolute difference or "
        "interval "
        "is computed against it: the page shows its numbers beside this study's and compares effects "
        "(each variant's difference to its own baseline)"
    )
    return [
        f"Reference: {md(reference.name)}, from {md(reference.source)}. Data: {md(reference.data.words())}. "
        f"Split: {md(reference.split.words())}. Training length: {md(reference.epochs.words())}, so how long "
        f"this study trained against it is unknown. {verdict}. " + md(reference.note)
    ]


def _multiple(stats: dict[str, TaskStats]) -> list[str]:
    items = []
    for task in stats.values():
        m = task.comparisons
        if m > 1:
            items.append(
                f"{task.spec.task}: {m} comparisons with the baseline"
                + (f" ({len(task.measures)} measures × the variants)" if len(task.measures) > 1 else "")
                + f": p-values are Holm-adjusted over all {m} (step-down; controls the chance of any false "
                f"positive at {SIGNIFICANCE}), and a difference is called significant only when its adjusted "
                "p is below it."
            )
    return items


def _corrections(runs: list[Run]) -> list[str]:
    found = corrections(runs)
    return [
        f"{len(rs)} of {len(runs)} run records were **corrected by hand** after the run (`{md(field)}`): "
        f"“{md(note)}”. The page shows the corrected value and marks it in Provenance."
        for (field, note), rs in sorted(found.items())
    ]


def caveats(
    collection: Collection,
    stats: dict[str, TaskStats],
    reference: Reference | None,
    names: dict,
    extra: list[str],
    conv: dict | None = None,
) -> list[str]:
    items = []
    for task in stats.values():
        items += (
            _split(task) + _test_cases(task) + _length(task, reference, (conv or {}).get(task.spec.task, {}))
        )
        small = [v for v in task.variants if 0 < v.n < 3]
        if small:
            items.append(
                f"{task.spec.task}: {', '.join(f'{md(v.variant)} n = {v.n}' for v in small)}: with so few "
                f"seeds a Welch p-value is rough; differences are called significant only at p < "
                f"{SIGNIFICANCE}."
            )
    items += _multiple(stats)
    if reference is not None:
        items += _reference(reference, stats)
    return (
        items
        + _health(collection.runs, names)
        + _devices(collection.runs)
        + _commits(collection.runs)
        + _corrections(collection.runs)
        + _excluded(collection, names)
        + extra
    )
