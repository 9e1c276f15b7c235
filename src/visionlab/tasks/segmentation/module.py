"""Segmentation (U-Net or smp): losses, per-image scores (``seg_scores``), and the test-time tables for
reports.

Two paths, chosen by the data: ``num_classes: 2`` without ``ignore_index`` is the seed's binary path (one
logit per pixel, sigmoid, BCE/Dice, foreground F1), unchanged; K ≥ 3 classes (or any ``ignore_index``) is the
K-class path: K logits per pixel, softmax, cross-entropy + soft Dice over classes, optional class weights,
``ignore_index`` left out of loss and scores, per-class IoU/Dice over the split (torchmetrics' confusion
matrix) and per image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from visionlab.cluster.ranks import gather_objects
from visionlab.config.checks import choose, expect, is_integer, is_number
from visionlab.config.errors import ConfigError, DataError
from visionlab.networks.registry import SEGMENTATION, NetworkIO, build_network, size_multiple
from visionlab.record import metric_keys as keys
from visionlab.record.folder import RunFolder
from visionlab.record.layout import WORST_CASES
from visionlab.tasks.base_module import VisionModule
from visionlab.tasks.protocol import TaskDataModule
from visionlab.tasks.segmentation.scores import (
    EMPTY_MASK_CONVENTION,
    MULTICLASS_CONVENTION,
    class_scores,
    confusion_per_image,
    per_image_multiclass_scores,
    per_image_scores,
)

LOSSES = ("bce", "dice", "bce_dice")
MULTICLASS_LOSSES = ("ce", "dice", "ce_dice")
# test-time augmentation: the test predictions as the mean probability over these flips of the input (dims of
# N×C×H×W), each flipped back; validation and training never use it
TTA = {"none": ((),), "flips": ((), (3,), (2,), (2, 3))}
TTA_DESCRIPTION = {
    "none": "none",
    "flips": "flips: identity, horizontal, vertical and both; probabilities averaged",
}
CASE_INDEX = "case_index"


def multiclass_soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None, smooth: float = 1.0
) -> torch.Tensor:
    """1 − soft Dice per class over the batch (softmax probabilities against one-hot masks), averaged over the
    classes present in the batch's masks; ignored pixels count for no class."""
    k = logits.shape[1]
    probs = torch.softmax(logits, 1)
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    onehot = (
        F.one_hot(torch.where(valid, target, 0).long().clamp(0, k - 1), k).permute(0, 3, 1, 2).to(probs.dtype)
    )
    weight = valid[:, None].to(probs.dtype)
    onehot, probs = onehot * weight, probs * weight
    inter, truth, predicted = ((probs * onehot).sum((0, 2, 3)), onehot.sum((0, 2, 3)), probs.sum((0, 2, 3)))
    dice = (2 * inter + smooth) / (truth + predicted + smooth)
    present = truth > 0
    return (1.0 - dice[present]).mean() if bool(present.any()) else logits.sum() * 0.0


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    probs = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    dice = (2 * (probs * target).sum(1) + smooth) / (probs.sum(1) + target.sum(1) + smooth)
    return 1.0 - dice.mean()


class SegmentationModule(VisionModule):
    """Wraps the network ``net`` names (default: the course U-Net; one output channel of logits); logs
    train/val loss and mean per-image F1, val IoU and best F1, and at test time the per-case F1/IoU (mean,
    std, min over cases) with the fixed case, the best and the three worst kept for W&B and the report."""

    task = keys.SEGMENTATION.task

    def __init__(
        self,
        net: dict | None = None,
        in_channels: int = 1,
        loss: str = "bce",
        threshold: float = 0.5,
        media_cases: int = 4,
        media_every_n_epochs: int = 5,
        tta: str = "none",
        num_classes: int = 2,
        ignore_index: int | None = None,
        class_weights=None,
        **base,
    ):
        super().__init__(**base)
        expect(
            "model.num_classes",
            num_classes,
            lambda v: is_integer(v) and 2 <= v <= 255,
            "an integer in 2..255 (it follows data.num_classes)",
            "model.num_classes=${data.num_classes}",
        )
        self.multiclass = num_classes > 2 or ignore_index is not None
        self.task = keys.MULTICLASS_TASK if self.multiclass else keys.SEGMENTATION.task
        if self.multiclass and loss not in MULTICLASS_LOSSES:
            raise ConfigError(
                f"model.loss={loss!r} is a binary loss; with data.num_classes={num_classes}"
                + (f" and data.ignore_index={ignore_index}" if ignore_index is not None else "")
                + f" use one of {MULTICLASS_LOSSES}, e.g. model.loss=ce_dice."
            )
        if not self.multiclass:
            choose("model.loss", loss, LOSSES)
        expect(
            "model.class_weights",
            class_weights,
            lambda v: (
                v == "auto"
                or (
                    isinstance(v, Sequence)
                    and not isinstance(v, str)
                    and len(v) == num_classes
                    and all(is_number(w) and w >= 0 for w in v)
                    and any(w > 0 for w in v)
                )
            ),
            f"null, auto (inverse pixel frequency in the training masks) or a list of {num_classes} weights "
            "≥ 0",
            "model.class_weights=auto",
            nullable=True,
        )
        if class_weights is not None and not self.multiclass:
            raise ConfigError(
                "model.class_weights applies to the K-class path (data.num_classes ≥ 3); binary "
                "masks use one sigmoid output. Set model.class_weights=null."
            )
        choose("model.tta", tta, tuple(TTA))
        expect(
            "model.threshold",
            threshold,
            lambda v: is_number(v) and 0 < v < 1,
            "a probability in (0, 1)",
            "model.threshold=0.5",
        )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.net = build_network(
            net, NetworkIO(SEGMENTATION, in_channels, num_classes if self.multiclass else 1)
        )
        listed = isinstance(class_weights, Sequence) and not isinstance(class_weights, str)
        weights = [float(w) for w in class_weights] if listed else [1.0] * num_classes
        self.register_buffer("class_weight", torch.tensor(weights), persistent=False)
        self.class_weights_used: list[float] | None = weights if listed else None
        if self.multiclass:  # the split-level counts (summed over ranks by torchmetrics)
            self.train_confusion, self.val_confusion, self.test_confusion = (
                MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index, validate_args=False)
                for _ in range(3)
            )
        self.size_multiple, self.size_rule = size_multiple(net)
        self.loss_name, self.tta = loss, tta
        self.logit_threshold = math.log(threshold / (1.0 - threshold))
        self.media_cases, self.media_every_n_epochs = media_cases, media_every_n_epochs
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_f1, self.val_f1, self.val_iou, self.val_f1_bg = (
            MeanMetric(),
            MeanMetric(),
            MeanMetric(),
            MeanMetric(),
        )
        self.val_f1_best = MaxMetric()
        self.media_batch: dict | None = None
        self._test_scores: list[dict[str, torch.Tensor]] = []
        self._test_cases: dict[str, dict] = {}
        self._test_worst: list[dict] = []
        self.test_results: dict | None = None

    # ------------------------------------------------------------------ set-up checks
    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if isinstance(datamodule, TaskDataModule):
            self.check_data_fits(datamodule)
            if (
                self.multiclass
                and self.hparams.class_weights == "auto"
                and hasattr(datamodule, "class_pixel_counts")
            ):
                self.set_class_weights(datamodule.class_pixel_counts())

    def set_class_weights(self, counts) -> None:
        """``class_weights: auto``: inverse pixel frequency in the training masks, scaled so the median class
        weighs 1 (SegNet's median-frequency balancing); a class with no training pixel weighs 1."""
        counts = torch.as_tensor(counts, dtype=torch.float64)
        freq = counts / counts.sum().clamp(min=1)
        seen = freq > 0
        weights = torch.ones_like(freq)
        if bool(seen.any()):
            weights[seen] = freq[seen].quantile(0.5) / freq[seen]  # the middle value, or the mean of the two
        self.class_weight = weights.float().to(self.class_weight.device)
        self.class_weights_used = [round(float(w), 6) for w in weights]

    def check_data_fits(self, datamodule: TaskDataModule) -> None:
        """Image sides divisible by 2^(depth-1) and matching channels, else a DataError saying what to set."""
        shape, channels = datamodule.image_shape, datamodule.channels
        multiple = self.size_multiple
        if shape is not None and (shape[0] % multiple or shape[1] % multiple):
            raise DataError(
                f"{datamodule.description}: images are {shape[0]}×{shape[1]}, but {self.size_rule}. Set "
                f"data.image_size to a multiple of {multiple} (e.g. 256) or change model.net."
            )
        if channels is not None and channels != self.hparams.in_channels:
            raise DataError(
                f"{datamodule.description}: images have {channels} channels but "
                f"model.in_channels={self.hparams.in_channels}; set model.in_channels={channels}."
            )

    # ------------------------------------------------------------------ forward and loss
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×C (or float N×C×H×W in [0,1]) → logits N×1×H×W."""
        return self.net(self.prepare_images(images))

    def tta_logits(self, images: torch.Tensor, flips) -> torch.Tensor:
        """The logit of the mean probability over the flipped inputs (each prediction flipped back); K
        classes: the log of the mean softmax probabilities (their argmax is the averaged prediction)."""

        def flipped(tensor: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
            return tensor.flip(dims) if dims else tensor

        x = self.prepare_images(images)
        if self.multiclass:
            probs = [flipped(torch.softmax(self.net(flipped(x, dims)).float(), 1), dims) for dims in flips]
            return torch.stack(probs).mean(0).clamp(min=1e-12).log()
        probs = [flipped(torch.sigmoid(self.net(flipped(x, dims)).float()), dims) for dims in flips]
        return torch.logit(torch.stack(probs).mean(0), eps=1e-6)

    def compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "dice":
            return soft_dice_loss(logits, target)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return bce + soft_dice_loss(logits, target) if self.loss_name == "bce_dice" else bce

    def compute_multiclass_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (class-weighted when set) and/or soft Dice over classes; ignored pixels count
        nowhere."""
        ignore = self.ignore_index
        loss = logits.sum() * 0.0
        if self.loss_name in ("ce", "ce_dice"):
            valid = target != ignore if ignore is not None else None
            if valid is None or bool(valid.any()):
                loss = F.cross_entropy(
                    logits,
                    target.long(),
                    weight=self.class_weight.to(logits.dtype),
                    ignore_index=ignore if ignore is not None else -100,
                )
        if self.loss_name in ("dice", "ce_dice"):
            loss = loss + multiclass_soft_dice_loss(logits, target, ignore)
        return loss

    def _step_multiclass(self, batch, tta: str = "none"):
        images, masks = batch[0], batch[1]
        masks = masks.reshape(len(masks), *masks.shape[-2:])
        logits = self(images).float() if tta == "none" else self.tta_logits(images, TTA[tta])
        if logits.shape[-2:] != masks.shape[-2:] or logits.shape[1] != self.num_classes:
            raise ConfigError(
                f"model.net={self.hparams.net}: the network returns {tuple(logits.shape[1:])} for "
                f"{tuple(masks.shape[-2:])} masks; a {self.num_classes}-class segmenter needs "
                f"{self.num_classes} logits per pixel at the input's size."
            )
        loss = self.compute_multiclass_loss(logits, masks)
        return loss, logits.argmax(1).to(torch.uint8), masks

    def _step(self, batch, tta: str = "none"):
        images, masks = batch[0], batch[1]
        masks = masks.reshape(len(masks), *masks.shape[-2:])  # N×H×W or N×1×H×W → N×H×W
        logits = self(images).float() if tta == "none" else self.tta_logits(images, TTA[tta])
        if logits.shape[-2:] != masks.shape[-2:] or logits.shape[1] != 1:
            raise ConfigError(
                f"model.net={self.hparams.net}: the network returns {tuple(logits.shape[1:])} for "
                f"{tuple(masks.shape[-2:])} masks; a segmenter needs one logit per pixel at the input's "
                "size (pick another architecture or arguments)."
            )
        loss = self.compute_loss(logits, masks[:, None].float())
        preds = (logits[:, 0] > self.logit_threshold).to(torch.uint8)
        return loss, preds, masks, per_image_scores(preds, masks)

    # ------------------------------------------------------------------ train / val
    def training_step(self, batch, batch_idx):
        if self.multiclass:
            loss, preds, masks = self._step_multiclass(batch)
            self.check_finite(loss)
            self.train_loss(loss.detach(), weight=len(masks))
            self.train_confusion.update(preds, masks)
            self.log(keys.TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
            return loss
        loss, _, masks, scores = self._step(batch)
        self.check_finite(loss)
        self.train_loss(loss.detach(), weight=len(masks))
        self.train_f1(scores[keys.CASE_F1])
        self.log(keys.TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(keys.TRAIN_F1, self.train_f1, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_train_epoch_start(self) -> None:
        if self.multiclass:
            self.train_confusion.reset()

    def on_validation_epoch_start(self) -> None:
        for metric in (self.val_loss, self.val_f1, self.val_iou, self.val_f1_bg):
            metric.reset()
        if self.multiclass:
            self.val_confusion.reset()

    def validation_step(self, batch, batch_idx):
        if self.multiclass:
            loss, preds, masks = self._step_multiclass(batch)
            self.val_loss(loss, weight=len(masks))
            self.val_confusion.update(preds, masks)
            if batch_idx == 0:
                k = self.media_cases
                image_miou = class_scores(
                    confusion_per_image(preds[:k], masks[:k], self.num_classes, self.ignore_index)
                )["miou"]
                self.media_batch = {
                    "images": batch[0][:k].cpu(),
                    "masks": masks[:k].cpu(),
                    "preds": preds[:k].cpu(),
                    "f1": image_miou.cpu(),
                    "score": "mIoU",
                    "epoch": self.current_epoch,
                }
            return
        loss, preds, masks, scores = self._step(batch)
        f1 = scores[keys.CASE_F1]
        self.val_loss(loss, weight=len(masks))
        self.val_f1(f1)
        self.val_iou(scores[keys.CASE_IOU])
        self.val_f1_bg(scores[keys.CASE_F1_BG])
        if batch_idx == 0:  # a fixed set of validation cases (the loader is not shuffled) for W&B
            k = self.media_cases
            self.media_batch = {
                "images": batch[0][:k].cpu(),
                "masks": masks[:k].cpu(),
                "preds": preds[:k].cpu(),
                "f1": f1[:k].cpu(),
                "epoch": self.current_epoch,
            }

    def on_validation_epoch_end(self) -> None:
        if self.multiclass:
            scores = class_scores(self.val_confusion.compute())
            if (
                not self.trainer.sanity_checking
            ):  # validation ends the training epoch: its pixels are all counted
                train_miou = class_scores(self.train_confusion.compute())["miou"]
                self.log(keys.TRAIN_MIOU, torch.nan_to_num(train_miou.float()), sync_dist=False)
            extra = {
                keys.VAL_PIXEL_ACC: scores["pixel_acc"].float(),
                keys.VAL_DICE: scores["dice_mean"].float(),
            }
            for label, dice in enumerate(
                scores["dice"].tolist()
            ):  # a class absent from truth and prediction: none
                if not math.isnan(dice):
                    extra[keys.class_key("val", "dice", label)] = torch.tensor(dice, dtype=torch.float32)
            self.log_validation_epoch(
                keys.VAL_LOSS,
                self.val_loss.compute(),
                keys.VAL_MIOU,
                torch.nan_to_num(scores["miou"].float()),
                keys.VAL_MIOU_BEST,
                self.val_f1_best,
                extra=extra,
            )
            return
        f1, f1_bg = self.val_f1.compute(), self.val_f1_bg.compute()
        self.log_validation_epoch(
            keys.VAL_LOSS,
            self.val_loss.compute(),
            keys.VAL_F1,
            f1,
            keys.VAL_F1_BEST,
            self.val_f1_best,
            extra={
                keys.VAL_IOU: self.val_iou.compute(),
                keys.VAL_F1_BG: f1_bg,
                keys.VAL_F1_MACRO: (f1 + f1_bg) / 2,
            },
        )

    # ------------------------------------------------------------------ test
    def on_test_epoch_start(self) -> None:
        self.test_loss.reset()
        self._test_scores = []
        self._test_cases = {}
        self._test_worst = []
        self.test_results = None
        if self.multiclass:
            self.test_confusion.reset()

    def _case_sources(self, index: torch.Tensor) -> list[str]:
        """Where each test case came from (file name or npz index), "" when the data does not say."""
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        source = getattr(datamodule, "case_source", None)
        return [source("test", int(i)) if callable(source) else "" for i in index]

    def test_step(self, batch, batch_idx):
        if self.multiclass:
            loss, preds, masks = self._step_multiclass(batch, self.tta)
            self.test_confusion.update(preds, masks)
            scores = per_image_multiclass_scores(
                confusion_per_image(preds, masks, self.num_classes, self.ignore_index)
            )
            miou = scores[keys.CASE_MIOU]
            image_dice = torch.stack(
                [scores[keys.class_key("", "dice", c)] for c in range(self.num_classes)], 1
            ).nanmean(1)
            f1, iou, rank = image_dice, miou, torch.nan_to_num(miou, nan=2.0)  # no counted pixel: never worst
        else:
            loss, preds, masks, scores = self._step(batch, self.tta)
            f1, iou = scores[keys.CASE_F1], scores[keys.CASE_IOU]
            rank = f1
        self.test_loss(loss, weight=len(masks))
        if len(batch) > 2:  # the case indices (under DDP each rank scores its own share of the cases)
            index = batch[2].cpu()
        else:  # a plain (images, masks) loader, not shuffled: case = position
            start = sum(len(s[CASE_INDEX]) for s in self._test_scores)
            index = torch.arange(start, start + len(masks))
        sources = self._case_sources(index)
        self._test_scores.append(
            {
                CASE_INDEX: index,
                **{name: value.cpu() for name, value in scores.items()},
                keys.CASE_SOURCE: sources,
            }
        )

        def case(i: int) -> dict:
            image = batch[0][i].cpu()
            image = (
                image.numpy() if image.dtype == torch.uint8 else (image.permute(1, 2, 0) * 255).byte().numpy()
            )
            kept = {
                "index": int(index[i]),
                "f1": float(f1[i]),
                "iou": float(iou[i]),
                "image": image[..., 0] if image.shape[-1] == 1 else image,
                "mask": masks[i].to(torch.uint8).cpu().numpy(),
                "pred": preds[i].cpu().numpy(),
            }
            if sources[i]:
                kept["source"] = sources[i]
            if self.multiclass:
                kept["rank"] = float(rank[i])
            return kept

        if (first := (index == 0).nonzero().flatten()).numel():
            self._test_cases["fixed"] = case(int(first[0]))
        goodness = torch.where(rank > 1.0, -1.0, rank)  # an image without counted pixels is never the best
        best = int(goodness.argmax())
        if "best" not in self._test_cases or float(goodness[best]) > _goodness(self._test_cases["best"]):
            self._test_cases["best"] = case(best)
        worst = self._test_worst  # the worst cases so far, worst first
        for i in sorted(range(len(rank)), key=lambda i: (float(rank[i]), int(index[i])))[: len(WORST_CASES)]:
            if len(worst) == len(WORST_CASES) and (float(rank[i]), int(index[i])) >= _rank(worst[-1]):
                break
            worst.append(case(i))
            worst.sort(key=_rank)
            del worst[len(WORST_CASES) :]

    def on_test_epoch_end(self) -> None:
        """Per-case scores and the kept cases from every rank, each case once and in case order, so a DDP test
        gives the same table and statistics as a single process."""
        parts = gather_objects((self._test_scores, self._test_cases, self._test_worst))
        scores = [s for part, _, _ in parts for s in part]
        if not scores:
            return
        index = torch.cat([s[CASE_INDEX] for s in scores])
        order = torch.argsort(index, stable=True)
        if len(torch.unique(index)) != len(index):
            raise RuntimeError(
                "a test case was scored twice: the test loader must not repeat cases under DDP"
            )
        sources = [name for s in scores for name in s[keys.CASE_SOURCE]]
        sources = [sources[i] for i in order.tolist()]
        if self.multiclass:
            self._multiclass_test_end(scores, order, sources, parts)
            return
        cases = {name: torch.cat([s[name] for s in scores])[order].double() for name in keys.CASE_SCORES}
        stats = {keys.TEST_LOSS: self.test_loss.compute(), keys.TEST_CASES: float(len(cases[keys.CASE_F1]))}
        stats.update({key: cases[name].mean() for name, key in keys.CASE_SCORES.items()})
        for name, (std_key, min_key) in keys.CASE_SPREAD.items():
            stats.update({std_key: cases[name].std(unbiased=False), min_key: cases[name].min()})
        for name, value in stats.items():  # identical on every rank after the gather
            self.log(name, torch.as_tensor(value, dtype=torch.float32))
        self.test_results = {
            "scores": {name: value.numpy() for name, value in cases.items()},
            "cases": _merge_kept_cases([kept for _, kept, _ in parts], [worst for _, _, worst in parts]),
        }
        if any(sources):
            self.test_results["scores"][keys.CASE_SOURCE] = sources

    def _multiclass_test_end(
        self, scores: list[dict], order: torch.Tensor, sources: list[str], parts
    ) -> None:
        """Split-level scores from the summed confusion matrix (the benchmark's per-class IoU), per-image ones
        from the case table; a class absent from the test truth and predictions gets no per-class key."""
        columns = [name for name in scores[0] if name not in (CASE_INDEX, keys.CASE_SOURCE)]
        cases = {name: torch.cat([s[name] for s in scores])[order].double() for name in columns}
        confusion = self.test_confusion.compute().cpu()
        split = class_scores(confusion)
        image_miou = cases[keys.CASE_MIOU]
        counted = image_miou[~image_miou.isnan()]
        stats = {
            keys.TEST_LOSS: self.test_loss.compute(),
            keys.TEST_CASES: float(len(image_miou)),
            keys.TEST_MIOU: split["miou"],
            keys.TEST_PIXEL_ACC: split["pixel_acc"],
            keys.TEST_CLASS_ACC: split["class_acc"],
            keys.TEST_DICE: split["dice_mean"],
            keys.TEST_MIOU_IMAGE: counted.mean() if len(counted) else float("nan"),
            keys.TEST_MIOU_IMAGE_STD: counted.std(unbiased=False) if len(counted) else float("nan"),
            keys.TEST_MIOU_IMAGE_MIN: counted.min() if len(counted) else float("nan"),
        }
        for quantity in ("iou", "dice"):
            for label, value in enumerate(split[quantity].tolist()):
                if not math.isnan(value):
                    stats[keys.class_key("test", quantity, label)] = value
        for name, value in stats.items():
            self.log(name, torch.as_tensor(value, dtype=torch.float32))
        table = {name: value.numpy() for name, value in cases.items()}
        if any(sources):
            table[keys.CASE_SOURCE] = sources
        self.test_results = {
            "scores": table,
            "confusion": confusion.numpy(),
            "cases": _merge_kept_cases([kept for _, kept, _ in parts], [worst for _, _, worst in parts]),
        }

    # ------------------------------------------------------------------ run-record hooks
    # (interfaces.TaskModel)
    def media_callback(self):
        """The media callback registered with the task (``tasks/builtin.py``), every media_every_n_epochs."""
        from visionlab.tasks.registry import media_callback

        return media_callback(self.task, every_n_epochs=self.media_every_n_epochs)

    def summary_section(self) -> dict:
        """Which cases were worst and best, and the conventions behind the test metrics (logged under their
        keys)."""
        if self.multiclass:
            section = {
                "num_classes": self.num_classes,
                "ignore_index": self.ignore_index,
                "class_weights": self.class_weights_used,
                "loss": self.loss_name,
                "score_convention": MULTICLASS_CONVENTION,
                "test_time_augmentation": TTA_DESCRIPTION[self.tta],
            }
            if self.test_results:
                miou = np.nan_to_num(self.test_results["scores"][keys.CASE_MIOU], nan=2.0)
                section.update(
                    worst_case=int(miou.argmin()), best_case=int(np.where(miou > 1, -1, miou).argmax())
                )
            return section
        if not self.test_results:
            return {}
        f1 = self.test_results["scores"][keys.CASE_F1]
        return {
            "worst_case": int(f1.argmin()),
            "best_case": int(f1.argmax()),
            "threshold": float(self.hparams.threshold),
            "empty_mask_convention": EMPTY_MASK_CONVENTION,
            "test_time_augmentation": TTA_DESCRIPTION[self.tta],
        }

    def save_fit_artifacts(self, folder: RunFolder) -> None:
        """Nothing beyond metrics.csv: validation cases are shown in W&B during training."""

    def save_test_artifacts(self, folder: RunFolder) -> None:
        """Per-case scores of both classes and of the trivial prediction (the std over them, ddof=0, is the
        logged std) and the fixed case 0, the best and the three worst cases (image H×W uint8, mask and
        prediction H×W uint8)."""
        if not self.test_results or not self.trainer.is_global_zero:
            return
        folder.write_test_cases(self.test_results["scores"])
        folder.write_qualitative(self.test_results["cases"])
        if (
            "confusion" in self.test_results
        ):  # K classes: the test pixels' class-confusion matrix, rows = truth
            folder.write_confusion(self.test_results["confusion"])


def _rank(case: dict) -> tuple[float, int]:
    """Worst first; among equal scores the lowest case index, as a single process that sees the cases in
    order. K classes rank by the image's mIoU (``rank``), the binary path by its foreground F1."""
    return case.get("rank", case["f1"]), case["index"]


def _goodness(case: dict) -> float:
    """The score the best case is picked by: F1, or the image's mIoU (−1 for an image with no counted
    pixel)."""
    score = _rank(case)[0]
    return -1.0 if score > 1.0 else score


def _merge_kept_cases(per_rank: list[dict[str, dict]], worst_per_rank: list[list[dict]]) -> dict[str, dict]:
    """The fixed case (index 0), the best and the ``WORST_CASES`` worst over every rank (named worst, worst_2,
    …), the same cases a single process keeps."""
    merged: dict[str, dict] = {}
    candidates = {name: [kept[name] for kept in per_rank if name in kept] for name in ("fixed", "best")}
    if candidates["fixed"]:
        merged["fixed"] = candidates["fixed"][0]
    if candidates["best"]:
        merged["best"] = min(candidates["best"], key=lambda case: (-_goodness(case), case["index"]))
    worst = sorted((case for ranked in worst_per_rank for case in ranked), key=_rank)
    merged.update(zip(WORST_CASES, worst))
    return merged
