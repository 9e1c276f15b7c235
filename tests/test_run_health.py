"""The health rule of summary.json (run_record.health): diverged, stuck, ok, and the collapsed-epoch count."""

import math

from visionlab.config.errors import NonFiniteLossError
from visionlab.record.health import assess


def _rows(*scores):
    return [
        {"epoch": e, "train/loss": 0.5, "val/loss": 0.5, "val/f1": f1, "val/f1_bg": bg}
        for e, (f1, bg) in enumerate(scores)
    ]


def test_a_plateau_left_again_is_ok_but_counted():
    health = assess(_rows((0.88, 0.0), (0.88, 0.01), (0.94, 0.75)), "segmentation", "val/f1", "max")
    assert health == {"status": "ok", "epoch": None, "reason": None, "collapsed_epochs": 2}


def test_a_best_epoch_on_one_class_is_stuck():
    health = assess(_rows((0.5, 0.3), (0.88, 0.0), (0.87, 0.02)), "segmentation", "val/f1", "max")
    assert health["status"] == "stuck" and health["epoch"] == 1 and health["collapsed_epochs"] == 2
    assert health["reason"] == "best epoch 1 (val/f1 = 0.8800) predicts one class: val/f1_bg = 0.0000 <= 0.05"
    all_background = assess(_rows((0.0, 0.6), (0.01, 0.62)), "segmentation", "val/f1", "max")
    assert all_background["status"] == "stuck" and "val/f1 = 0.0100 <= 0.05" in all_background["reason"]


def test_non_finite_loss_is_diverged_at_its_epoch():
    error = NonFiniteLossError("Training loss became nan at epoch 3", epoch=3)
    health = assess(_rows((0.9, 0.7)), "segmentation", "val/f1", "max", error)
    assert health["status"] == "diverged" and health["epoch"] == 3 and "became nan" in health["reason"]
    without_epoch = assess(
        _rows((0.9, 0.7), (0.9, 0.7)), "classification", "val/acc", "max", NonFiniteLossError("nan")
    )
    assert without_epoch["epoch"] == 2  # the epoch after the last recorded one
    rows = _rows((0.9, 0.7), (0.9, 0.7))
    rows[1]["train/loss"] = math.inf
    recorded = assess(rows, "segmentation", "val/f1", "max", KeyboardInterrupt())
    assert (
        recorded["status"] == "diverged"
        and recorded["epoch"] == 1
        and "train/loss = inf" in recorded["reason"]
    )


def test_classification_has_no_stuck_rule_and_no_rows_is_ok():
    rows = [{"epoch": 0, "train/loss": 3.7, "val/acc": 0.02}]
    assert assess(rows, "classification", "val/acc", "max")["status"] == "ok"
    assert assess([], "segmentation", "val/f1", "max")["status"] == "ok"
