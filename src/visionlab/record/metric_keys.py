"""Metric keys per task: one name per quantity, the same in the Lightning logger, ``metrics.csv``,
``summary.json``, the W&B history and summary, and the report.

To add a quantity (e.g. per-class segmentation F1/IoU, or time-to-accuracy for classification), add its key
constant below and a ``Metric`` row to its task's table: the model logs the constant, the run record and W&B
store it under that name, and the report can show it by listing the key in ``report_test``.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------ every task
TRAIN_LOSS, VAL_LOSS, TEST_LOSS = "train/loss", "val/loss", "test/loss"

# ------------------------------------------------------------------ classification
TRAIN_ACC, VAL_ACC, VAL_ACC_BEST, TEST_ACC = "train/acc", "val/acc", "val/acc_best", "test/acc"

# ------------------------------------------------------------------ segmentation: per-image scores, mean over
# images
TRAIN_F1, VAL_F1, VAL_IOU, VAL_F1_BEST = "train/f1", "val/f1", "val/iou", "val/f1_best"
TEST_F1, TEST_F1_STD, TEST_F1_MIN, TEST_IOU = "test/f1", "test/f1_std", "test/f1_min", "test/iou"
TEST_CASES = "test/cases"
# the background class (label 0: membranes on ISBI) and the trivial all-foreground prediction on the same
# cases
VAL_F1_BG = "val/f1_bg"
# the mean of both classes' F1 (per image, then over images): a checkpoint choice not dominated by the easy
# class
VAL_F1_MACRO = "val/f1_macro"
TEST_F1_BG, TEST_F1_BG_STD, TEST_F1_BG_MIN, TEST_IOU_BG = (
    "test/f1_bg",
    "test/f1_bg_std",
    "test/f1_bg_min",
    "test/iou_bg",
)
TEST_F1_TRIVIAL = "test/f1_trivial"
# test_cases.csv: one row per test case ("case" = position in the test split), one column per per-image score;
# CASE_SCORES maps each column to the test key logging its mean over the cases
CASE, CASE_F1, CASE_IOU, CASE_F1_BG, CASE_IOU_BG, CASE_F1_TRIVIAL = (
    "case",
    "f1",
    "iou",
    "f1_bg",
    "iou_bg",
    "f1_trivial",
)
CASE_SCORES = {
    CASE_F1: TEST_F1,
    CASE_IOU: TEST_IOU,
    CASE_F1_BG: TEST_F1_BG,
    CASE_IOU_BG: TEST_IOU_BG,
    CASE_F1_TRIVIAL: TEST_F1_TRIVIAL,
}
CASE_SPREAD = {CASE_F1: (TEST_F1_STD, TEST_F1_MIN), CASE_F1_BG: (TEST_F1_BG_STD, TEST_F1_BG_MIN)}  # std, min

# ------------------------------------------------------------------ bookkeeping columns and W&B summary names
EPOCH, STEP, TIME = "epoch", "step", "time"
N_PARAMS = "n_params"
TIME_TO = "time_to"  # summary.json: {"<key>>=<threshold>": wall seconds from the run's start, or null}
BEST_PREFIX = "best/"  # W&B summary: best/<key> holds <key> at the best epoch (summary.json: "best")
WANDB_STEP = "trainer/global_step"  # Lightning's step axis in W&B


def lr_column(group: int) -> str:
    """metrics.csv column of the learning rate of optimizer parameter group ``group``."""
    return "lr" if group == 0 else f"lr_{group}"


def best_key(key: str) -> str:
    return f"{BEST_PREFIX}{key}"


def is_metric(key: str) -> bool:
    """Metric keys are ``<stage>/<quantity>``; bookkeeping columns (epoch, step, lr, time) are not."""
    return "/" in key


# ------------------------------------------------------------------ W&B media (images and tables, not
# scalars)
MEDIA_AUGMENTED_INPUTS = "train/augmented_inputs"
MEDIA_CONFUSION = "test/confusion_matrix"
MEDIA_MISCLASSIFIED = "test/misclassified"
MEDIA_VAL_MISCLASSIFIED = "val/misclassified"
MEDIA_VAL_PREDICTIONS = "val/predictions"
MEDIA_TEST_CASES_TABLE = "test/cases_table"


def media_test_case(name: str) -> str:
    """W&B image of a named test case (``layout.QUALITATIVE_CASES``: fixed, best, worst, worst_2, worst_3)."""
    return f"test/{name}_case"


# ------------------------------------------------------------------ the per-task tables
@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # the report's column header
    kind: str = "score"  # how the report formats it: percent, score (4 decimals), count, loss
    better: str | None = None  # max, min or None (the report marks the best value when set)


@dataclass(frozen=True)
class TaskMetrics:
    task: str
    per_epoch: tuple[Metric, ...]  # logged every epoch: metrics.csv and the W&B history
    test: tuple[Metric, ...]  # logged once by the test stage: summary.json "test" and the W&B summary
    headline: str  # test key aggregated over seeds in the report
    validation_headline: str  # the same quantity on validation, used when a variant has no test split
    report_test: tuple[str, ...]  # test keys shown per run in the report
    curves: tuple[str, ...]  # per-epoch keys the report plots
    milestones: tuple[
        float, ...
    ] = ()  # summary.json "time_to": wall seconds until validation_headline first ≥
    also_over_seeds: tuple[str, ...] = ()  # test keys the report aggregates over seeds beside the headline
    collapse: tuple[
        str, ...
    ] = ()  # validation scores of which one near 0 means a constant prediction (health.py)

    def metric(self, key: str) -> Metric:
        return next(m for m in (*self.per_epoch, *self.test) if m.key == key)

    @property
    def keys(self) -> set[str]:
        return {m.key for m in (*self.per_epoch, *self.test)}


_LOSS = {"label": "loss", "kind": "loss", "better": "min"}

CLASSIFICATION = TaskMetrics(
    task="classification",
    per_epoch=(
        Metric(TRAIN_LOSS, **_LOSS),
        Metric(TRAIN_ACC, "accuracy", "percent", "max"),
        Metric(VAL_LOSS, **_LOSS),
        Metric(VAL_ACC, "accuracy", "percent", "max"),
        Metric(VAL_ACC_BEST, "best accuracy", "percent", "max"),
    ),
    test=(Metric(TEST_LOSS, **_LOSS), Metric(TEST_ACC, "accuracy", "percent", "max")),
    headline=TEST_ACC,
    validation_headline=VAL_ACC,
    report_test=(TEST_ACC,),
    curves=(TRAIN_LOSS, VAL_LOSS, TRAIN_ACC, VAL_ACC),
    milestones=(0.90, 0.95, 0.97, 0.99),
)

SEGMENTATION = TaskMetrics(
    task="segmentation",
    per_epoch=(
        Metric(TRAIN_LOSS, **_LOSS),
        Metric(TRAIN_F1, "mean F1", better="max"),
        Metric(VAL_LOSS, **_LOSS),
        Metric(VAL_F1, "mean F1", better="max"),
        Metric(VAL_IOU, "mean IoU", better="max"),
        Metric(VAL_F1_BEST, "best mean F1", better="max"),
        Metric(VAL_F1_BG, "mean F1 background", better="max"),
        Metric(VAL_F1_MACRO, "mean F1 of both classes", better="max"),
    ),
    test=(
        Metric(TEST_LOSS, **_LOSS),
        Metric(TEST_CASES, "test cases", "count"),
        Metric(TEST_F1, "mean F1", better="max"),
        Metric(TEST_F1_STD, "std F1", better="min"),
        Metric(TEST_F1_MIN, "min F1", better="max"),
        Metric(TEST_IOU, "mean IoU", better="max"),
        Metric(TEST_F1_BG, "mean F1 background", better="max"),
        Metric(TEST_F1_BG_STD, "std F1 background", better="min"),
        Metric(TEST_F1_BG_MIN, "min F1 background", better="max"),
        Metric(TEST_IOU_BG, "mean IoU background", better="max"),
        Metric(TEST_F1_TRIVIAL, "F1 all-foreground"),
    ),
    headline=TEST_F1,
    validation_headline=VAL_F1,
    report_test=(TEST_CASES, TEST_F1, TEST_F1_STD, TEST_F1_MIN, TEST_F1_BG, TEST_F1_BG_MIN, TEST_F1_TRIVIAL),
    curves=(TRAIN_LOSS, VAL_LOSS, TRAIN_F1, VAL_F1, VAL_F1_BG),
    also_over_seeds=(TEST_F1_BG, TEST_F1_TRIVIAL),
    collapse=(VAL_F1, VAL_F1_BG),
)

# ------------------------------------------------------------------ segmentation with K classes (softmax,
# index masks) per-image scores in test_cases.csv and, over the whole split (one confusion matrix of every
# counted pixel, the benchmark's way: CamVid/SegNet), per-class IoU/Dice; mIoU = mean over the classes present
# in truth or prediction
TRAIN_MIOU, VAL_MIOU, VAL_MIOU_BEST, VAL_PIXEL_ACC, VAL_DICE = (
    "train/miou",
    "val/miou",
    "val/miou_best",
    "val/pixel_acc",
    "val/dice",
)
TEST_MIOU, TEST_PIXEL_ACC, TEST_CLASS_ACC, TEST_DICE = (
    "test/miou",
    "test/pixel_acc",
    "test/class_acc",
    "test/dice",
)
TEST_MIOU_IMAGE, TEST_MIOU_IMAGE_STD, TEST_MIOU_IMAGE_MIN = (
    "test/miou_image",
    "test/miou_image_std",
    "test/miou_image_min",
)
CASE_SOURCE, CASE_MIOU, CASE_PIXEL_ACC = (
    "source",
    "miou",
    "pixel_acc",
)  # test_cases.csv columns (besides per class)
MULTICLASS_TASK = "multiclass_segmentation"


def class_key(stage: str, quantity: str, label: int) -> str:
    """Per-class scores: ``val/dice_c3``, ``test/iou_c3`` (metrics.csv, summary.json, W&B); ``iou_c3`` in
    test_cases.csv (stage "")."""
    return f"{stage}/{quantity}_c{label}" if stage else f"{quantity}_c{label}"


MULTICLASS_SEGMENTATION = TaskMetrics(
    task=MULTICLASS_TASK,
    per_epoch=(
        Metric(TRAIN_LOSS, **_LOSS),
        Metric(TRAIN_MIOU, "mIoU", better="max"),
        Metric(VAL_LOSS, **_LOSS),
        Metric(VAL_MIOU, "mIoU", better="max"),
        Metric(VAL_MIOU_BEST, "best mIoU", better="max"),
        Metric(VAL_PIXEL_ACC, "pixel accuracy", "percent", "max"),
        Metric(VAL_DICE, "mean Dice over classes", better="max"),
    ),
    test=(
        Metric(TEST_LOSS, **_LOSS),
        Metric(TEST_CASES, "test cases", "count"),
        Metric(TEST_MIOU, "mIoU", better="max"),
        Metric(TEST_PIXEL_ACC, "pixel accuracy", "percent", "max"),
        Metric(TEST_CLASS_ACC, "mean class accuracy", "percent", "max"),
        Metric(TEST_DICE, "mean Dice over classes", better="max"),
        Metric(TEST_MIOU_IMAGE, "mean per-image mIoU", better="max"),
        Metric(TEST_MIOU_IMAGE_STD, "std per-image mIoU", better="min"),
        Metric(TEST_MIOU_IMAGE_MIN, "min per-image mIoU", better="max"),
    ),
    headline=TEST_MIOU,
    validation_headline=VAL_MIOU,
    report_test=(TEST_CASES, TEST_MIOU, TEST_PIXEL_ACC, TEST_CLASS_ACC, TEST_DICE, TEST_MIOU_IMAGE_MIN),
    curves=(TRAIN_LOSS, VAL_LOSS, TRAIN_MIOU, VAL_MIOU, VAL_PIXEL_ACC),
    also_over_seeds=(TEST_PIXEL_ACC, TEST_CLASS_ACC),
)

TASKS: dict[str, TaskMetrics] = {t.task: t for t in (CLASSIFICATION, SEGMENTATION, MULTICLASS_SEGMENTATION)}
