"""Per-image scores of a binary segmentation, for both classes and for the trivial all-foreground prediction.

From the pixel counts of one image (tp, fp, fn, tn for the foreground class, label 1): foreground F1 = 2tp /
(2tp + fp + fn), IoU = tp / (tp + fp + fn); the background (label 0: membranes on ISBI) is the same with the
classes swapped: F1 = 2tn / (2tn + fp + fn), IoU = tn / (tn + fp + fn). When a class is absent from both mask
and prediction the image is segmented perfectly for that class and both scores are 1.0. The trivial prediction
marks every pixel foreground: its foreground F1 is 2P / (2P + B) with P foreground and B background pixels of
the mask; its background F1 is 0 unless the mask has no background (then 1.0, as above). Counted directly per
image, so any batch size works (a batch of one included)."""

from __future__ import annotations

import torch

from visionlab.record import metric_keys as keys

EMPTY_MASK_CONVENTION = "F1 = IoU = 1.0 for a class absent from both mask and prediction"


def _f1_iou(hits: torch.Tensor, errors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    empty = (hits + errors) == 0
    one = torch.ones_like(hits)
    f1 = torch.where(empty, one, 2 * hits / (2 * hits + errors).clamp(min=1))
    iou = torch.where(empty, one, hits / (hits + errors).clamp(min=1))
    return f1.float(), iou.float()


def per_image_scores(preds: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Binary masks (N, H, W) → per-image scores, each (N,) float, keyed by the per-case columns of the run
    record (``metric_keys.CASE_SCORES``): foreground F1/IoU, background F1/IoU, trivial foreground F1."""
    if preds.shape != target.shape or preds.ndim < 2:
        raise ValueError(
            f"predictions {tuple(preds.shape)} and masks {tuple(target.shape)} must both be (N, H, W)"
        )
    pred, true = preds.reshape(len(preds), -1).bool(), target.reshape(len(target), -1).bool()
    tp = (pred & true).sum(1).double()
    fp = (pred & ~true).sum(1).double()
    fn = (~pred & true).sum(1).double()
    tn = (~pred & ~true).sum(1).double()
    f1, iou = _f1_iou(tp, fp + fn)
    f1_bg, iou_bg = _f1_iou(tn, fp + fn)
    trivial, _ = _f1_iou(tp + fn, tn + fp)  # all foreground: every true pixel a hit, every other an error
    return {
        keys.CASE_F1: f1,
        keys.CASE_IOU: iou,
        keys.CASE_F1_BG: f1_bg,
        keys.CASE_IOU_BG: iou_bg,
        keys.CASE_F1_TRIVIAL: trivial,
    }


# ------------------------------------------------------------------ K classes (index masks, softmax)
MULTICLASS_CONVENTION = (
    "a class absent from both mask and prediction has no score (NaN in test_cases.csv); mIoU "
    "is the mean over the classes present; ignored pixels are not counted"
)


def confusion_per_image(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> torch.Tensor:
    """(N, H, W) predicted and true class indices → (N, K, K) pixel counts, rows = true class; pixels whose
    truth is ``ignore_index`` are not counted."""
    if preds.shape != target.shape or preds.ndim < 2:
        raise ValueError(
            f"predictions {tuple(preds.shape)} and masks {tuple(target.shape)} must both be (N, H, W)"
        )
    n, k = len(preds), num_classes
    true, pred = target.reshape(n, -1).long(), preds.reshape(n, -1).long()
    valid = true != ignore_index if ignore_index is not None else torch.ones_like(true, dtype=torch.bool)
    valid &= (true >= 0) & (true < k)
    cell = torch.arange(n, device=true.device)[:, None] * k * k + true * k + pred
    return torch.bincount(cell[valid], minlength=n * k * k).reshape(n, k, k)


def class_scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """From (…, K, K) counts (rows = truth): per class ``iou`` and ``dice`` (…, K), NaN for a class absent
    from truth and prediction; ``recall`` (…, K), NaN for a class absent from the truth; ``miou``,
    ``dice_mean`` (mean over the present classes), ``pixel_acc`` and ``class_acc`` (mean recall over the
    classes in the truth)."""
    confusion = confusion.double()
    tp = torch.diagonal(confusion, dim1=-2, dim2=-1)
    truth, predicted = confusion.sum(-1), confusion.sum(-2)
    union = truth + predicted - tp
    nan = torch.full_like(tp, float("nan"))
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    dice = torch.where(union > 0, 2 * tp / (truth + predicted).clamp(min=1), nan)
    recall = torch.where(truth > 0, tp / truth.clamp(min=1), nan)
    total = confusion.sum((-2, -1))
    return {
        "iou": iou,
        "dice": dice,
        "recall": recall,
        "miou": iou.nanmean(-1),
        "dice_mean": dice.nanmean(-1),
        "pixel_acc": torch.where(total > 0, tp.sum(-1) / total.clamp(min=1), float("nan")),
        "class_acc": recall.nanmean(-1),
    }


def per_image_multiclass_scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """(N, K, K) per-image counts → the per-case columns of test_cases.csv: ``miou``, ``pixel_acc`` and per
    class ``iou_c<k>``, ``dice_c<k>`` (each (N,) double)."""
    scores = class_scores(confusion)
    columns = {keys.CASE_MIOU: scores["miou"], keys.CASE_PIXEL_ACC: scores["pixel_acc"]}
    for quantity in ("iou", "dice"):
        for label in range(confusion.shape[-1]):
            columns[keys.class_key("", quantity, label)] = scores[quantity][:, label]
    return columns
