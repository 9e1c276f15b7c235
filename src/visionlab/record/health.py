"""``summary.json``'s ``health`` section: did training work, independent of whether the run finished.

The rule (README, "Run health"), applied when a run ends:

- ``diverged``: training stopped because the loss became NaN/inf (``NonFiniteLossError``), or a recorded
  training/validation loss is infinite; ``epoch`` is the epoch it happened in.
- ``stuck``: the epoch the run is judged by (the best epoch of ``monitor``, whose checkpoint is tested)
  predicts a constant: for a task with collapse keys (segmentation: ``val/f1`` and ``val/f1_bg``) one of them
  is at most ``COLLAPSE_SCORE``, i.e. the model marks (almost) every validation pixel as one class — the
  all-foreground plateau scores a high ``val/f1`` but ``val/f1_bg`` ≈ 0. ``epoch`` is that best epoch.
- ``diverged`` too when the last epoch's training loss is more than ``FAR_ABOVE_CHANCE`` times the chance loss
  of the task (classification: ln K, the cross-entropy of a uniform guess over K classes). No healthy run ends
  there: a loss far above chance means confidently wrong predictions (Rprop at batch 4 on GTSRB ends near 75
  against ln 43 = 3.76 while its accuracy sits at 21 %). ``epoch`` is that last epoch.
- ``ok`` otherwise (also when no epoch was recorded, e.g. an evaluation-only run).

K-class segmentation (``multiclass_segmentation``) has one collapse score per class, ``val/dice_c<k>``: a
class whose validation Dice stays at most ``COLLAPSE_SCORE`` in every recorded epoch is listed in
``stuck_classes`` (the collapse nnU-Net and smp users report: a rare class the model never learns to predict).
The run is ``stuck`` only when at most one class is left that is not (the model predicts one class
everywhere); otherwise it is ``ok`` and the list says which classes never learned.

``collapsed_epochs`` counts the epochs whose validation scores met the stuck condition (a plateau that
training left again: the run is ok, but the count shows how long it sat there). The report never averages a
diverged or stuck run into its tables; it lists it as excluded, with the epoch."""

from __future__ import annotations

import math
import re

from visionlab.config.errors import NonFiniteLossError
from visionlab.record.metric_keys import EPOCH, MULTICLASS_TASK, TASKS, TRAIN_LOSS, VAL_LOSS

OK, DIVERGED, STUCK = "ok", "diverged", "stuck"
UNHEALTHY = (DIVERGED, STUCK)
COLLAPSE_SCORE = 0.05  # a class scored at most this on validation is (almost) never predicted correctly
# a final training loss above this multiple of the chance loss is a failed run: worse than a uniform guess by
# half of it (Rprop at batch 64 on GTSRB ends at 7.9 = 2.1 × ln 43 with 12.7 % accuracy; it was "ok" at 3×)
FAR_ABOVE_CHANCE = 1.5


def chance_loss(task: str, num_classes: int | None) -> float | None:
    """The loss of a uniform guess: ln K for a K-class classifier; None where the task has no such
    reference."""
    if task == "classification" and isinstance(num_classes, int) and num_classes >= 2:
        return math.log(num_classes)
    return None


def far_above_chance(rows: list[dict], task: str, num_classes: int | None) -> dict | None:
    """The ``diverged`` section when the last epoch's training loss exceeds FAR_ABOVE_CHANCE × the chance
    loss."""
    chance = chance_loss(task, num_classes)
    last = next(
        (r for r in reversed(rows) if r.get(TRAIN_LOSS) is not None and r.get(EPOCH) is not None), None
    )
    if chance is None or last is None or not last[TRAIN_LOSS] > FAR_ABOVE_CHANCE * chance:
        return None
    loss, epoch = float(last[TRAIN_LOSS]), int(last[EPOCH])
    return {
        "status": DIVERGED,
        "epoch": epoch,
        "reason": f"{TRAIN_LOSS} = {loss:.3g} at the last epoch ({epoch + 1}) is {loss / chance:.0f}× the "
        "chance "
        f"loss ln {num_classes} = {chance:.2f}: confidently wrong predictions",
    }


def _collapsed(row: dict, collapse_keys: tuple[str, ...]) -> str | None:
    """The first collapse key at or below COLLAPSE_SCORE in an epoch row, else None."""
    return next((k for k in collapse_keys if row.get(k) is not None and row[k] <= COLLAPSE_SCORE), None)


def assess(
    rows: list[dict],
    task: str,
    monitor: str,
    mode: str,
    error: BaseException | None = None,
    num_classes: int | None = None,
) -> dict:
    """The health section for a run's epoch rows and the error that ended it (if any)."""
    spec = TASKS.get(task)
    collapse_keys = spec.collapse if spec else ()
    collapsed = [int(r[EPOCH]) for r in rows if _collapsed(r, collapse_keys)]
    section = {"status": OK, "epoch": None, "reason": None, "collapsed_epochs": len(collapsed)}
    if isinstance(
        error, NonFiniteLossError
    ):  # its epoch never reached metrics.csv: the one after the last row
        epoch = error.epoch if error.epoch is not None else len(rows) and int(rows[-1][EPOCH]) + 1
        return {**section, "status": DIVERGED, "epoch": int(epoch), "reason": str(error)}
    for row in rows:
        bad = [k for k in (TRAIN_LOSS, VAL_LOSS) if row.get(k) is not None and not math.isfinite(row[k])]
        if bad:
            return {
                **section,
                "status": DIVERGED,
                "epoch": int(row[EPOCH]),
                "reason": f"{bad[0]} = {row[bad[0]]} at epoch {int(row[EPOCH])}",
            }
    if (far := far_above_chance(rows, task, num_classes)) is not None:
        return {**section, **far}
    if task == MULTICLASS_TASK:
        return _stuck_classes(rows, section)
    scored = [r for r in rows if r.get(monitor) is not None]
    if not scored or not collapse_keys:
        return section
    best = (max if mode == "max" else min)(scored, key=lambda r: r[monitor])
    key = _collapsed(best, collapse_keys)
    if key is None:
        return section
    return {
        **section,
        "status": STUCK,
        "epoch": int(best[EPOCH]),
        "reason": f"best epoch {int(best[EPOCH])} ({monitor} = {best[monitor]:.4f}) predicts one class: "
        f"{key} = {best[key]:.4f} <= {COLLAPSE_SCORE}",
    }


_CLASS_DICE = re.compile(r"^val/dice_c(\d+)$")


def _stuck_classes(rows: list[dict], section: dict) -> dict:
    """Classes whose validation Dice stayed ≤ COLLAPSE_SCORE in every epoch that scored them; the run is stuck
    when at most one class learned anything."""
    seen: dict[int, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            match = _CLASS_DICE.match(str(key))
            if (
                match
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                seen.setdefault(int(match.group(1)), []).append(float(value))
    stuck = sorted(label for label, values in seen.items() if max(values) <= COLLAPSE_SCORE)
    section = {**section, "stuck_classes": stuck}
    section["collapsed_epochs"] = sum(
        1
        for row in rows
        if sum(
            1
            for key, value in row.items()
            if _CLASS_DICE.match(str(key)) and isinstance(value, (int, float)) and value > COLLAPSE_SCORE
        )
        <= 1
        and any(_CLASS_DICE.match(str(key)) for key in row)
    )
    if seen and len(seen) - len(stuck) <= 1:
        epoch = int(rows[-1][EPOCH]) if rows and rows[-1].get(EPOCH) is not None else None
        return {
            **section,
            "status": STUCK,
            "epoch": epoch,
            "reason": f"at most one class ever scored validation Dice > {COLLAPSE_SCORE}: classes {stuck} "
            "stayed "
            f"<= {COLLAPSE_SCORE} in every epoch (the model predicts one class)",
        }
    return section
