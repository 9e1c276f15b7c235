"""Which runs trained badly enough to be left out of every average: ``summary.json``'s ``health`` section
(written by the trainer: ``{"status": "ok"|"diverged"|"stuck", "epoch": n, "reason": "..."}``), or, for
records without one, a run that failed on a non-finite loss. Such a run stays in the per-run table, named with
its epoch.

The rule that a run ending far above the chance loss has diverged (``run_record.health.far_above_chance``) is
applied here too, from the run's own metrics.csv, so that records written before the rule existed are judged
by it."""

from __future__ import annotations

from visionlab.record.health import DIVERGED, OK, STUCK, UNHEALTHY, far_above_chance  # noqa: F401
from visionlab.record.metric_keys import EPOCH
from visionlab.report.collect import Run

HEALTH = "health"
_NON_FINITE = "NonFiniteLossError"


def health(run: Run) -> dict:
    """The run's health section; a record without one is ok unless it stopped on a NaN/inf loss."""
    section = run.summary.get(HEALTH)
    if isinstance(section, dict) and section.get("status") in UNHEALTHY:
        return dict(section)
    facts = run.summary.get("data_facts")
    num_classes = facts.get("num_classes") if isinstance(facts, dict) else None
    if (far := far_above_chance(run.metrics, str(run.summary.get("task") or ""), num_classes)) is not None:
        return {**(section if isinstance(section, dict) else {}), **far}
    if isinstance(section, dict) and section.get("status"):
        return dict(section)
    error = str(run.summary.get("error") or "")
    if _NON_FINITE in error:
        epoch = max((row[EPOCH] for row in run.metrics if row.get(EPOCH) is not None), default=None)
        return {"status": DIVERGED, "epoch": epoch, "reason": error}
    return {"status": OK}


def is_excluded(run: Run) -> bool:
    return health(run).get("status") in UNHEALTHY


def health_cell(run: Run) -> str:
    """``ok``, or e.g. ``**stuck** at epoch 5`` (epochs counted from 1, as everywhere on the page)."""
    state = health(run)
    if state.get("status") not in UNHEALTHY:
        return state.get("status") or OK
    epoch = state.get("epoch")
    return f"**{state['status']}** at epoch {'?' if epoch is None else int(epoch) + 1}"
