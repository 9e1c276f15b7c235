"""Whether a run's numbers are converged ones, judged from its validation curve and its schedule.

Per counted run, on the monitored validation metric (early stopping's):

- **early-stopped**: it ended before its epoch cap (the patience rule saw no improvement);
- **schedule finished**: it ran to the cap under a decaying learning rate (the last epoch's rate at most
  ``ANNEALED`` of the peak): the schedule ends there by design, so a rise at its end is the annealing, not a
  budget limit;
- otherwise, over the last ``W = min(10, max(3, epochs // 4))`` epochs: the gain of the running best (best in
  the window − best before it) against the curve's own noise there (standard deviation of the residuals of a
  straight-line fit over the window). **still rising at the cap** (budget-limited) when the gain exceeds the
  noise and ``MIN_GAIN``; **flat at the cap** otherwise. On a flat noisy curve the best of the last W epochs
  rarely beats the best of all earlier ones, so a gain larger than the noise is a rise.
- **fell from its best**: not rising, and the last epoch is worse than the best by more than ``FELL_BY`` and
  twice the window's noise (Rprop at batch 64 on a 43-class sign set: 24.8 % at its best, 12.7 % at the cap).
  Its score is the best epoch's (the tested checkpoint), but training was going the wrong way: neither
  converged nor limited by the budget.
- **too short to judge**: fewer than W + 2 epochs at the cap under a constant rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visionlab.record.metric_keys import EPOCH, TASKS, lr_column
from visionlab.report.analysis.stats import counted
from visionlab.report.collect import Run

ANNEALED = 0.25  # last-epoch learning rate ≤ this × its peak: a decaying schedule that has (nearly) run out
MIN_GAIN = 0.001  # a rise below 0.1 pp (or 0.001 F1) is never called one
FELL_BY = 0.02  # a last epoch worse than the best by more than 2 pp (0.02 F1) and the noise has fallen

EARLY, FINISHED, RISING, FLAT, FELL, SHORT, UNKNOWN = (
    "early-stopped",
    "schedule finished",
    "still rising at the cap",
    "flat at the cap",
    "fell from its best",
    "too short to judge",
    "no curve",
)


@dataclass
class RunConvergence:
    state: str
    epochs: int = 0
    cap: int | None = None
    window: int = 0
    gain: float | None = None
    noise: float | None = None
    lr_ratio: float | None = None  # last-epoch learning rate / its peak
    drop: float | None = None  # best − last epoch (in the better direction)

    @property
    def budget_limited(self) -> bool:
        return self.state == RISING


def _curve(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [
        row for row in run.metrics if isinstance(row.get(key), (int, float)) and row.get(EPOCH) is not None
    ]
    rows.sort(key=lambda row: row[EPOCH])
    lr = [row.get(lr_column(0)) for row in rows]
    return (
        np.array([float(row[key]) for row in rows]),
        np.array([float(x) for x in lr if isinstance(x, (int, float))]),
    )


def cap_of(run: Run) -> int | None:
    cap = (
        (run.config.get("trainer") or {}).get("max_epochs")
        if isinstance(run.config.get("trainer"), dict)
        else None
    )
    return int(cap) if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None


def run_convergence(run: Run, key: str) -> RunConvergence:
    curve, lr = _curve(run, key)
    n, cap = len(curve), cap_of(run)
    if n == 0:
        return RunConvergence(UNKNOWN, cap=cap)
    epochs = int(run.summary["epochs"]) if isinstance(run.summary.get("epochs"), int) else n
    if cap is not None and epochs < cap:
        return RunConvergence(EARLY, epochs, cap)
    ratio = float(lr[-1] / lr.max()) if len(lr) and lr.max() > 0 else None
    if ratio is not None and ratio <= ANNEALED:
        return RunConvergence(FINISHED, epochs, cap, lr_ratio=ratio)
    window = min(10, max(3, n // 4))
    if n < window + 2:
        return RunConvergence(SHORT, epochs, cap, window, lr_ratio=ratio)
    tail, head = curve[-window:], curve[:-window]
    x = np.arange(window, dtype=float)
    slope, intercept = np.polyfit(x, tail, 1)
    sign = -1.0 if _better(key) == "min" else 1.0  # judge a loss-like curve as its negative
    tail, head, whole = sign * tail, sign * head, sign * curve
    noise = float(np.std(tail - sign * (slope * x + intercept), ddof=2))
    gain = float(tail.max() - head.max())
    drop = float(whole.max() - whole[-1])
    if gain > max(noise, MIN_GAIN):
        state = RISING
    elif drop > max(FELL_BY, 2 * noise):
        state = FELL
    else:
        state = FLAT
    return RunConvergence(state, epochs, cap, window, gain, noise, ratio, drop=drop)


def _better(key: str) -> str:
    """``max`` or ``min``: from the metric tables (any task), ``max`` for a key none of them lists."""
    for table in TASKS.values():
        if key in table.keys:
            return table.metric(key).better
    return "min" if key.endswith("loss") else "max"


def monitored_key(runs: list[Run], default: str) -> str:
    return next((str(r.summary["monitor"]) for r in runs if r.summary.get("monitor")), default)


def variant_convergence(runs: list[Run], default_key: str) -> list[tuple[Run, RunConvergence]]:
    key = monitored_key(runs, default_key)
    return [(r, run_convergence(r, key)) for r in runs if counted(r) and not r.evaluation_only]


def _amounts(values: list[float], kind: str) -> str:
    if kind == "percent":
        return ", ".join(f"{100 * v:+.2f}" for v in values) + " pp"
    return ", ".join(f"{v:+.4f}" for v in values)


def _noise(values: list[float], kind: str) -> str:
    if kind == "percent":
        return ", ".join(f"{100 * v:.2f}" for v in values) + " pp"
    return ", ".join(f"{v:.4f}" for v in values)


def cell(results: list[RunConvergence]) -> str:
    """Short, for a table next to a Δ: ``**budget-limited** (2 of 3)``, ``early-stopped (3 of 3)``, ..."""
    if not results:
        return "—"
    n = len(results)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    rising = counts.pop(RISING, 0)
    parts = [f"**budget-limited** ({rising} of {n})"] if rising else []
    parts += [f"{state} ({count} of {n})" for state, count in counts.items()]
    return "; ".join(parts)


def sentence(variant: str, results: list[RunConvergence], kind: str) -> str:
    """One caveat line: what each run's curve says, with the numbers it was judged on."""
    if not results:
        return f"{variant}: no counted run with a validation curve."
    epochs = sorted({r.epochs for r in results})
    caps = sorted({r.cap for r in results if r.cap})
    span = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
    parts = [f"{variant}: trained {span} epochs" + (f" (cap {', '.join(map(str, caps))})" if caps else "")]
    rising = [r for r in results if r.state == RISING]
    if rising:
        window = rising[0].window
        parts.append(
            f"**budget-limited**: {len(rising)} of {len(results)} runs still rising at the cap "
            f"({_amounts([r.gain for r in rising], kind)} gain of the best in their last {window} epochs, "
            f"against epoch-to-epoch noise {_noise([r.noise for r in rising], kind)}); their scores are "
            "not converged ones"
        )
    flat = [r for r in results if r.state == FLAT]
    if flat:
        parts.append(
            f"{len(flat)} flat at the cap (gain {_amounts([r.gain for r in flat], kind)} within noise "
            f"{_noise([r.noise for r in flat], kind)})"
        )
    finished = [r for r in results if r.state == FINISHED]
    if finished:
        ratios = sorted(r.lr_ratio for r in finished if r.lr_ratio is not None)
        low = f"{100 * ratios[0]:.0f} %" if ratios else "?"
        high = f"{100 * ratios[-1]:.0f} %" if ratios else "?"
        parts.append(
            f"{len(finished)} ran their decaying schedule to its end (last epoch's learning rate "
            f"{low if low == high else f'{low}–{high}'} of its peak): the schedule ends there by design, "
            "so a rise at its end is not a budget limit"
        )
    fell = [r for r in results if r.state == FELL]
    if fell:
        parts.append(
            f"{len(fell)} fell from its best ({_amounts([-r.drop for r in fell], kind)} from the best "
            "epoch to the last): training went the wrong way, the score is its best epoch's"
        )
    early = [r for r in results if r.state == EARLY]
    if early:
        parts.append(f"{len(early)} stopped early (no improvement within the patience)")
    short = [r for r in results if r.state in (SHORT, UNKNOWN)]
    if short:
        parts.append(f"{len(short)} too short (or without a curve) to judge")
    return "; ".join(parts) + "."
