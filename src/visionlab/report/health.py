"""Which runs the report leaves out of its averages because training did not work (``run_record.health``): a
diverged or stuck run is shown in the per-run table with its health, listed by name with its epoch, and never
averaged into the over-seeds table."""

from __future__ import annotations

from visionlab.report.collect import Run
from visionlab.run_record.health import OK, UNHEALTHY


def health(run: Run) -> dict:
    """The run's health section; records from before it existed count as ok."""
    return dict(run.summary.get("health") or {"status": OK})


def is_excluded(run: Run) -> bool:
    return health(run).get("status") in UNHEALTHY


def status_cell(run: Run) -> str:
    """The per-run table's status: ``completed``, or e.g. ``completed, stuck at epoch 4``."""
    state = health(run)
    if state.get("status") not in UNHEALTHY:
        return run.status
    return f"{run.status}, **{state['status']}** at epoch {state.get('epoch')}"


def excluded_lines(runs: list[Run]) -> list[str]:
    """One line per excluded run: variant, seed, health, epoch, reason, folder."""
    lines = []
    for run in runs:
        state = health(run)
        if state.get("status") in UNHEALTHY:
            lines.append(f"excluded from the averages: {run.variant} seed {run.seed} **{state['status']}** at epoch "
                         f"{state.get('epoch')}: {state.get('reason')} (`{run.path}`)")
    return lines
