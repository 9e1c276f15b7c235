"""Sections of ``summary.json`` computed from the per-epoch rows, and the headline a sweep index shows per job."""

from __future__ import annotations

from visionlab.run_record.metric_keys import EPOCH, TASKS, TIME, is_metric


def final_metrics(rows: list[dict]) -> dict:
    """The last epoch's metrics."""
    return {k: v for k, v in rows[-1].items() if is_metric(k)} if rows else {}


def best_metrics(rows: list[dict], monitor: str, mode: str) -> dict:
    """The metrics of the epoch where ``monitor`` was best, with that epoch."""
    scored = [r for r in rows if r.get(monitor) is not None]
    if not scored:
        return {}
    best = (max if mode == "max" else min)(scored, key=lambda r: r[monitor])
    return {EPOCH: int(best[EPOCH]), **{k: v for k, v in best.items() if is_metric(k)}}


def time_to_milestones(rows: list[dict], task: str, started: float) -> dict[str, float | None]:
    """Wall seconds from ``started`` (the run's start, load included) until the task's validation headline first
    reached each milestone, e.g. {"val/acc>=0.97": 41.2}; null for a milestone never reached. A resumed run
    counts from its own start, so its times only cover the resumed part (its summary says it was resumed)."""
    spec = TASKS.get(task)
    if spec is None or not spec.milestones:
        return {}
    key = spec.validation_headline
    reached = {}
    for threshold in spec.milestones:
        first = next((r for r in rows if r.get(key) is not None and r[key] >= threshold
                      and (r.get(TIME) or 0) >= started), None)
        reached[f"{key}>={threshold:g}"] = round(first[TIME] - started, 1) if first else None
    return reached


def headline(summary: dict | None) -> dict:
    """The task's headline metrics (validation at the best epoch, test) of a summary, for the sweep index."""
    if not summary:
        return {}
    spec = TASKS.get(summary.get("task", ""))
    keys = (spec.validation_headline, spec.headline) if spec else tuple(
        key for t in TASKS.values() for key in (t.validation_headline, t.headline))
    flat = {**(summary.get("best") or {}), **(summary.get("test") or {})}
    return {k: flat[k] for k in keys if k in flat}
