"""What a reviewer must know before reading a number, shown first on the page: the split and how it was made,
whether the epoch was picked on the split it is reported on, training length (against the reference's), runs that
are still improving, diverged or stuck runs, mixed or dirty commits, and everything excluded."""

from __future__ import annotations

from visionlab.report.collect import Collection, Run
from visionlab.report.escape import code, md
from visionlab.report.format import SIGNIFICANCE, fmt_epoch
from visionlab.report.provenance import commit_of
from visionlab.report.reference import Reference
from visionlab.report.run_health import UNHEALTHY, health
from visionlab.report.stats import TEST, TaskStats, counted
from visionlab.run_record.layout import METRICS, SUMMARY
from visionlab.run_record.metric_keys import EPOCH


def _split(task: TaskStats) -> list[str]:
    items = []
    for split in sorted({v.split for v in task.variants}):
        variants = [v.variant for v in task.variants if v.split == split]
        data = sorted({str(r.summary.get("data")) for v in variants for r in task.runs_by_variant[v]
                       if r.summary.get("data")})
        made = f" Data: {'; '.join(md(d) for d in data)}." if data else ""
        if split == TEST:
            items.append(f"{task.spec.task}: scores of {', '.join(map(md, variants))} are on the **test** split, "
                         f"at the checkpoint picked on validation.{made}")
        else:
            items.append(f"{task.spec.task}: {', '.join(map(md, variants))} have **no test split**: scores are on "
                         f"the {task.spec.validation_name} split at the best epoch, **picked on that same split** "
                         f"(optimistic); the final epoch's value is shown beside it.{made}")
    return items


def _length(task: TaskStats, reference: Reference | None) -> list[str]:
    items = []
    for variant, runs in sorted(task.runs_by_variant.items()):
        done = [r for r in runs if counted(r)]
        epochs = sorted({int(r.summary["epochs"]) for r in done if isinstance(r.summary.get("epochs"), int)})
        caps = sorted({((r.config.get("trainer") or {}).get("max_epochs")) for r in done} - {None})
        rising = [r for r in done if (r.summary.get("best") or {}).get(EPOCH) is not None
                  and r.summary.get("epochs") and r.summary["best"][EPOCH] + 1 >= r.summary["epochs"]]
        if epochs:
            span = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
            cap = f" (cap {', '.join(map(str, caps))})" if caps else ""
            items.append(f"{md(variant)}: trained {span} epochs{cap}"
                         + (f"; **still improving**: the best epoch is the last one in {len(rising)} of {len(done)} "
                            "runs, so these are not converged numbers" if rising else "") + ".")
    if reference is not None and reference.task == task.spec.task:
        items.append(f"Reference training length: {reference.epochs} epochs." if reference.epochs else
                     f"The reference ({md(reference.name)}) does not state its training length, so how long this "
                     "study trained against it is unknown.")
    return items


def _health(runs: list[Run], names: dict) -> list[str]:
    items = []
    for run in runs:
        state = health(run)
        if state.get("status") in UNHEALTHY:
            epoch = state.get("epoch")
            items.append(f"**{state['status']}** at epoch {fmt_epoch(epoch) if epoch is not None else '?'}: "
                         f"{md(run.variant)} seed {md(run.seed)} ({md(state.get('reason') or 'no reason recorded')}; "
                         f"{code(names[run.path])}); excluded from every average.")
    return items


def _commits(runs: list[Run]) -> list[str]:
    commits = sorted({commit_of(r).split(" ")[0] for r in runs if r.summary})
    dirty = [r for r in runs if (r.summary.get("git") or {}).get("dirty")]
    items = []
    if len(commits) > 1:
        items.append(f"The runs come from {len(commits)} commits: {', '.join(map(code, commits))}.")
    if dirty:
        items.append(f"{len(dirty)} of {len(runs)} runs ran on a **dirty** working tree (uncommitted changes): "
                     "their code is not exactly any commit.")
    return items


def _devices(runs: list[Run]) -> list[str]:
    """Where the counted runs ran: one line, or the variants per device when they differ (wall time and images/s
    compare only within one device; the scores do not depend on it beyond numerical noise)."""
    by_device: dict[str, set] = {}
    for run in runs:
        if counted(run) and run.summary.get("device"):
            key = f"{run.summary['device']}, {run.summary.get('precision') or '?'}"
            by_device.setdefault(key, set()).add(str(run.variant))
    if not by_device:
        return []
    if len(by_device) == 1:
        return [f"All runs ran on {md(next(iter(by_device)))}."]
    return ["The runs ran on **different devices**: " + "; ".join(
        f"{md(device)}: {', '.join(map(md, sorted(variants)))}" for device, variants in sorted(by_device.items()))
        + ". Compare wall time and images/s only within one device."]


def _excluded(collection: Collection, names: dict) -> list[str]:
    items = []
    for run in collection.runs:
        if not run.completed:
            error = run.summary.get("error")
            items.append(f"excluded, **{md(run.status)}**: {md(run.variant)} seed {md(run.seed)} "
                         f"({code(names[run.path])})" + (f": {md(error)}" if error else ""))
        items += [f"{md(run.variant)} seed {md(run.seed)}: {md(p)} ({code(names[run.path])})" for p in run.problems
                  if run.completed or p not in (f"{SUMMARY} missing", f"{METRICS} missing")]
    for job in collection.jobs_without_run:
        error = f": {md(job.error)}" if job.error else ""
        items.append(f"sweep job **{md(job.status)}** without a run folder: {code(' '.join(job.overrides))}{error}")
    return items


def caveats(collection: Collection, stats: dict[str, TaskStats], reference: Reference | None, names: dict,
            extra: list[str]) -> list[str]:
    items = []
    for task in stats.values():
        items += _split(task) + _length(task, reference)
        small = [v for v in task.variants if 0 < v.n < 3]
        if small:
            items.append(f"{task.spec.task}: {', '.join(f'{md(v.variant)} n = {v.n}' for v in small)}: with so few "
                         f"seeds a Welch p-value is rough; differences are called significant only at p < "
                         f"{SIGNIFICANCE}.")
    if reference is not None:
        items.append(f"Reference: {md(reference.name)} ({md(reference.source)}), data {md(reference.data or '?')}, "
                     f"split {md(reference.split or '?')}. {md(reference.note)}".strip())
    return (items + _health(collection.runs, names) + _devices(collection.runs) + _commits(collection.runs)
            + _excluded(collection, names) + extra)
