"""Sections of ``summary.json`` computed from the per-epoch rows, and the headline a sweep index shows per job."""

from __future__ import annotations

from visionlab.run_record.metric_keys import EPOCH, TASKS, is_metric


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


def headline(summary: dict | None) -> dict:
    """The task's headline metrics (validation at the best epoch, test) of a summary, for the sweep index."""
    if not summary:
        return {}
    spec = TASKS.get(summary.get("task", ""))
    keys = (spec.validation_headline, spec.headline) if spec else tuple(
        key for t in TASKS.values() for key in (t.validation_headline, t.headline))
    flat = {**(summary.get("best") or {}), **(summary.get("test") or {})}
    return {k: flat[k] for k in keys if k in flat}
