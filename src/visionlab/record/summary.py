"""Sections of ``summary.json`` computed from the per-epoch rows, and the headline a sweep index shows per
job."""

from __future__ import annotations

from visionlab.record.metric_keys import EPOCH, TASKS, TIME, is_metric


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


def time_to_milestones(
    rows: list[dict], task: str, attempts: list[tuple[float | None, float | None]]
) -> dict[str, float | None]:
    """Wall seconds of training (load included) until the task's validation headline first reached each
    milestone, e.g. {"val/acc>=0.97": 41.2}; null for a milestone never reached. ``attempts``: (start time,
    wall seconds) of each attempt, the current one last. A run continued after an interruption counts every
    attempt's time: an epoch of attempt k is at the walls of attempts 1..k-1 plus its time since attempt k's
    start. When an earlier attempt's start is not recorded (records before started_at), only the current
    attempt's epochs count, from its own start."""
    spec = TASKS.get(task)
    if spec is None or not spec.milestones:
        return {}
    key = spec.validation_headline
    if all(start is not None and wall is not None for start, wall in attempts):
        offsets, total = [], 0.0
        for start, wall in attempts:
            offsets.append((start, total))
            total += wall
    else:  # legacy: the current attempt alone
        offsets = [(attempts[-1][0], 0.0)]

    def elapsed(row: dict) -> float | None:
        moment = row.get(TIME)
        if moment is None:
            return None
        mine = [(start, offset) for start, offset in offsets if start <= moment]
        return None if not mine else mine[-1][1] + moment - mine[-1][0]

    reached = {}
    for threshold in spec.milestones:
        first = next(
            (
                t
                for r in rows
                if r.get(key) is not None and r[key] >= threshold and (t := elapsed(r)) is not None
            ),
            None,
        )
        reached[f"{key}>={threshold:g}"] = round(first, 1) if first is not None else None
    return reached


def headline(summary: dict | None) -> dict:
    """The task's headline metrics (validation at the best epoch, test) of a summary, for the sweep index."""
    if not summary:
        return {}
    spec = TASKS.get(summary.get("task", ""))
    keys = (
        (spec.validation_headline, spec.headline)
        if spec
        else tuple(key for t in TASKS.values() for key in (t.validation_headline, t.headline))
    )
    flat = {**(summary.get("best") or {}), **(summary.get("test") or {})}
    return {k: flat[k] for k in keys if k in flat}
