"""Hand-made run records for the report tests (no training): written through ``RunFolder`` like the
trainer's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visionlab.record import layout
from visionlab.record import metric_keys as keys
from visionlab.record.files import write_csv
from visionlab.record.folder import VALIDATION, RunFolder


def write_report(out: Path, *args: str, figures: bool = False) -> tuple[str, dict, str]:
    """The report of ``args`` written to ``out``: (REPORT.md, report.json, report.html). No figures unless
    asked: drawing is ~97 % of a small report's time, and only the tests that look at figures need them."""
    from visionlab.cli.report import main

    assert main([*args, "--out", str(out), *([] if figures else ["--no-figures"])]) == 0
    return (
        (out / "REPORT.md").read_text(),
        json.loads((out / "report.json").read_text()),
        (out / "report.html").read_text(),
    )


CNN_MODEL = {"_target_": "visionlab.tasks.classification.module.ClassificationModule", "num_classes": 43}


def classification_run(
    root: Path,
    variant: str,
    seed: int,
    curve: list[float],
    *,
    commit: str = "a" * 40,
    dirty: bool = False,
    health: dict | None = None,
    lr: float = 1e-3,
    device: str = "CPU (2 threads)",
    lrs: list[float] | None = None,
    cap: int | None = None,
    start: float | None = None,
    wall: float | None = None,
    images_per_s: float = 1000.0,
    config: dict | None = None,
    extra_summary: dict | None = None,
) -> RunFolder:
    """A validation-only classification run: ``curve`` is val/acc per epoch; best = its maximum. ``lrs``: the
    learning rate per epoch (default lr / (epoch + 1)); ``cap``: trainer.max_epochs (default: the curve's
    length); ``start``: the run's start time, which adds a ``time`` column (epochs spread evenly over the wall
    time)."""
    folder = RunFolder(root / f"{variant}_s{seed}").create()
    wall_time = wall if wall is not None else 100.0 + seed
    rows = [
        {
            keys.EPOCH: e,
            keys.TRAIN_LOSS: 2.0 / (e + 1),
            keys.VAL_LOSS: 2.2 / (e + 1),
            keys.TRAIN_ACC: acc,
            keys.VAL_ACC: acc,
            keys.lr_column(0): lrs[e] if lrs else lr / (e + 1),
            **({keys.TIME: start + wall_time * (e + 1) / len(curve)} if start is not None else {}),
        }
        for e, acc in enumerate(curve)
    ]
    folder.write_metrics(rows)
    best = max(range(len(curve)), key=lambda e: curve[e])
    summary = {
        "experiment": variant,
        "task": keys.CLASSIFICATION.task,
        "seed": seed,
        "status": "completed",
        "monitor": keys.VAL_ACC,
        "epochs": len(curve),
        "test": None,
        "test_split": "unavailable",
        "data": "GTSRB (track-held-out split)",
        "best": {keys.EPOCH: best, keys.VAL_ACC: curve[best]},
        "final": {keys.VAL_ACC: curve[-1]},
        "wall_time_s": wall_time,
        "train_images_per_s": images_per_s,
        "device": device,
        "precision": "bf16-mixed",
        "git": {"commit": commit, "dirty": dirty},
        "overrides": [f"experiment={variant}", f"seed={seed}"],
    }
    if health:
        summary["health"] = health
    folder.write_summary({**summary, **(extra_summary or {})})
    folder.write_config(
        {
            "experiment_name": variant,
            "seed": seed,
            "trainer": {"max_epochs": cap or len(curve)},
            "model": {**CNN_MODEL, "optimizer": {"lr": lr}},
            **(config or {}),
        }
    )
    matrix = np.diag(np.full(43, 9)) + 1  # every class right 9 times in 51, class 7 worse
    matrix[7, 7] = 1
    folder.write_confusion(matrix, VALIDATION)
    images = np.random.default_rng(seed).integers(0, 255, (5, 28, 28, 3), dtype=np.uint8)
    folder.write_misclassified(images, [7, 7, 3, 1, 2], [1, 2, 3, 4, 5], VALIDATION)
    return folder


def segmentation_run(
    root: Path,
    variant: str,
    seed: int,
    f1: list[float],
    f1_bg: list[float],
    trivial: list[float],
    *,
    data: str = "synthetic blobs: 8 train / 4 val / 4 test",
    config: dict | None = None,
    worst: int = 1,
) -> RunFolder:
    """A segmentation run with per-case scores of both classes, the trivial score and the fixed, best and
    ``worst`` worst cases (1: a record from before the three worst were kept)."""
    folder = RunFolder(root / f"{variant}_s{seed}").create()
    f1, f1_bg = np.array(f1), np.array(f1_bg)
    folder.write_metrics(
        [
            {
                keys.EPOCH: e,
                keys.TRAIN_LOSS: 0.5 / (e + 1),
                keys.VAL_LOSS: 0.6 / (e + 1),
                keys.TRAIN_F1: 0.8,
                keys.VAL_F1: 0.8 + 0.01 * e,
            }
            for e in range(3)
        ]
    )
    test = {
        keys.TEST_CASES: len(f1),
        keys.TEST_F1: float(f1.mean()),
        keys.TEST_F1_STD: float(f1.std()),
        keys.TEST_F1_MIN: float(f1.min()),
        keys.TEST_IOU: float((f1 / (2 - f1)).mean()),
        keys.TEST_F1_BG: float(f1_bg.mean()),
        keys.TEST_IOU_BG: float((f1_bg / (2 - f1_bg)).mean()),
        keys.TEST_F1_TRIVIAL: float(np.mean(trivial)),
    }
    folder.write_summary(
        {
            "experiment": variant,
            "task": keys.SEGMENTATION.task,
            "seed": seed,
            "status": "completed",
            "monitor": keys.VAL_F1,
            "epochs": 3,
            "test": test,
            "best": {keys.EPOCH: 2, keys.VAL_F1: 0.82},
            "final": {keys.VAL_F1: 0.82},
            "data": data,
        }
    )
    if config is not None:
        folder.write_config(config)
    write_csv(
        folder.file(layout.TEST_CASES),
        [
            {
                keys.CASE: i,
                keys.CASE_F1: f,
                keys.CASE_IOU: f / (2 - f),
                keys.CASE_F1_BG: b,
                keys.CASE_IOU_BG: b / (2 - b),
                keys.CASE_F1_TRIVIAL: t,
            }
            for i, (f, b, t) in enumerate(zip(f1, f1_bg, trivial))
        ],
    )
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    pred = np.roll(mask, 2, axis=1)
    case = {"image": np.full((16, 16), 120, np.uint8), "mask": mask, "pred": pred}
    ranked = np.argsort(f1, kind="stable")[:worst]
    folder.write_qualitative(
        {
            "fixed": {"index": 0, "f1": float(f1[0]), **case},
            "best": {"index": int(f1.argmax()), "f1": float(f1.max()), **case},
            **{
                name: {"index": int(i), "f1": float(f1[i]), **case}
                for name, i in zip(layout.WORST_CASES, ranked)
            },
        }
    )
    return folder
