"""Binary segmentation (U-Net): losses, per-image scores for both classes (``seg_scores``), and the test-time
tables for reports."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric

from visionlab.checks import choose, expect, is_number
from visionlab.distributed import gather_objects
from visionlab.errors import ConfigError, DataError
from visionlab.interfaces import TaskDataModule
from visionlab.models.base import VisionModule
from visionlab.models.networks import SEGMENTATION, NetworkIO, build_network, size_multiple
from visionlab.models.seg_scores import EMPTY_MASK_CONVENTION, per_image_scores
from visionlab.run_record import metric_keys as keys
from visionlab.run_record.folder import RunFolder
from visionlab.run_record.layout import WORST_CASES

LOSSES = ("bce", "dice", "bce_dice")
# test-time augmentation: the test predictions as the mean probability over these flips of the input (dims of
# N×C×H×W), each flipped back; validation and training never use it
TTA = {"none": ((),), "flips": ((), (3,), (2,), (2, 3))}
TTA_DESCRIPTION = {"none": "none", "flips": "flips: identity, horizontal, vertical and both; probabilities averaged"}
CASE_INDEX = "case_index"


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    probs = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    dice = (2 * (probs * target).sum(1) + smooth) / (probs.sum(1) + target.sum(1) + smooth)
    return 1.0 - dice.mean()


class SegmentationModule(VisionModule):
    """Wraps the network ``net`` names (default: the course U-Net; one output channel of logits); logs train/val loss and mean per-image F1, val IoU and best F1, and at test time the
    per-case F1/IoU (mean, std, min over cases) with the fixed case, the best and the three worst kept for W&B and
    the report."""

    task = keys.SEGMENTATION.task

    def __init__(self, net: dict | None = None, in_channels: int = 1, loss: str = "bce", threshold: float = 0.5,
                 media_cases: int = 4, media_every_n_epochs: int = 5, tta: str = "none", **base):
        super().__init__(**base)
        choose("model.loss", loss, LOSSES)
        choose("model.tta", tta, tuple(TTA))
        expect("model.threshold", threshold, lambda v: is_number(v) and 0 < v < 1, "a probability in (0, 1)",
               "model.threshold=0.5")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.net = build_network(net, NetworkIO(SEGMENTATION, in_channels, 1))
        self.size_multiple, self.size_rule = size_multiple(net)
        self.loss_name, self.tta = loss, tta
        self.logit_threshold = math.log(threshold / (1.0 - threshold))
        self.media_cases, self.media_every_n_epochs = media_cases, media_every_n_epochs
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.train_f1, self.val_f1, self.val_iou, self.val_f1_bg = MeanMetric(), MeanMetric(), MeanMetric(), MeanMetric()
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
            raise DataError(f"{datamodule.description}: images have {channels} channels but "
                            f"model.in_channels={self.hparams.in_channels}; set model.in_channels={channels}.")

    # ------------------------------------------------------------------ forward and loss
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×C (or float N×C×H×W in [0,1]) → logits N×1×H×W."""
        return self.net(self.prepare_images(images))

    def tta_logits(self, images: torch.Tensor, flips) -> torch.Tensor:
        """The logit of the mean probability over the flipped inputs (each prediction flipped back)."""
        def flipped(tensor: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
            return tensor.flip(dims) if dims else tensor

        x = self.prepare_images(images)
        probs = [flipped(torch.sigmoid(self.net(flipped(x, dims)).float()), dims) for dims in flips]
        return torch.logit(torch.stack(probs).mean(0), eps=1e-6)

    def compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "dice":
            return soft_dice_loss(logits, target)
        bce = F.binary_cross_entropy_with_logits(logits, target)
        return bce + soft_dice_loss(logits, target) if self.loss_name == "bce_dice" else bce

    def _step(self, batch, tta: str = "none"):
        images, masks = batch[0], batch[1]
        masks = masks.reshape(len(masks), *masks.shape[-2:])  # N×H×W or N×1×H×W → N×H×W
        logits = self(images).float() if tta == "none" else self.tta_logits(images, TTA[tta])
        if logits.shape[-2:] != masks.shape[-2:] or logits.shape[1] != 1:
            raise ConfigError(f"model.net={self.hparams.net}: the network returns {tuple(logits.shape[1:])} for "
                              f"{tuple(masks.shape[-2:])} masks; a segmenter needs one logit per pixel at the input's "
                              "size (pick another architecture or arguments).")
        loss = self.compute_loss(logits, masks[:, None].float())
        preds = (logits[:, 0] > self.logit_threshold).to(torch.uint8)
        return loss, preds, masks, per_image_scores(preds, masks)

    # ------------------------------------------------------------------ train / val
    def training_step(self, batch, batch_idx):
        loss, _, masks, scores = self._step(batch)
        self.check_finite(loss)
        self.train_loss(loss.detach(), weight=len(masks))
        self.train_f1(scores[keys.CASE_F1])
        self.log(keys.TRAIN_LOSS, self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(keys.TRAIN_F1, self.train_f1, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        for metric in (self.val_loss, self.val_f1, self.val_iou, self.val_f1_bg):
            metric.reset()

    def validation_step(self, batch, batch_idx):
        loss, preds, masks, scores = self._step(batch)
        f1 = scores[keys.CASE_F1]
        self.val_loss(loss, weight=len(masks))
        self.val_f1(f1)
        self.val_iou(scores[keys.CASE_IOU])
        self.val_f1_bg(scores[keys.CASE_F1_BG])
        if batch_idx == 0:  # a fixed set of validation cases (the loader is not shuffled) for W&B
            k = self.media_cases
            self.media_batch = {"images": batch[0][:k].cpu(), "masks": masks[:k].cpu(), "preds": preds[:k].cpu(),
                                "f1": f1[:k].cpu(), "epoch": self.current_epoch}

    def on_validation_epoch_end(self) -> None:
        f1, f1_bg = self.val_f1.compute(), self.val_f1_bg.compute()
        self.log_validation_epoch(keys.VAL_LOSS, self.val_loss.compute(), keys.VAL_F1, f1,
                                  keys.VAL_F1_BEST, self.val_f1_best,
                                  extra={keys.VAL_IOU: self.val_iou.compute(), keys.VAL_F1_BG: f1_bg,
                                         keys.VAL_F1_MACRO: (f1 + f1_bg) / 2})

    # ------------------------------------------------------------------ test
    def on_test_epoch_start(self) -> None:
        self.test_loss.reset()
        self._test_scores = []
        self._test_cases = {}
        self._test_worst = []
        self.test_results = None

    def test_step(self, batch, batch_idx):
        loss, preds, masks, scores = self._step(batch, self.tta)
        f1, iou = scores[keys.CASE_F1], scores[keys.CASE_IOU]
        self.test_loss(loss, weight=len(masks))
        if len(batch) > 2:  # the case indices (under DDP each rank scores its own share of the cases)
            index = batch[2].cpu()
        else:  # a plain (images, masks) loader, not shuffled: case = position
            start = sum(len(s[CASE_INDEX]) for s in self._test_scores)
            index = torch.arange(start, start + len(masks))
        self._test_scores.append({CASE_INDEX: index, **{name: value.cpu() for name, value in scores.items()}})

        def case(i: int) -> dict:
            image = batch[0][i].cpu()
            image = image.numpy() if image.dtype == torch.uint8 else (image.permute(1, 2, 0) * 255).byte().numpy()
            return {"index": int(index[i]), "f1": float(f1[i]), "iou": float(iou[i]),
                    "image": image[..., 0] if image.shape[-1] == 1 else image,
                    "mask": masks[i].to(torch.uint8).cpu().numpy(), "pred": preds[i].cpu().numpy()}

        if (first := (index == 0).nonzero().flatten()).numel():
            self._test_cases["fixed"] = case(int(first[0]))
        best = int(f1.argmax())
        if "best" not in self._test_cases or f1[best] > self._test_cases["best"]["f1"]:
            self._test_cases["best"] = case(best)
        worst = self._test_worst  # the worst cases so far, worst first
        for i in sorted(range(len(f1)), key=lambda i: (float(f1[i]), int(index[i])))[:len(WORST_CASES)]:
            if len(worst) == len(WORST_CASES) and (float(f1[i]), int(index[i])) >= _rank(worst[-1]):
                break
            worst.append(case(i))
            worst.sort(key=_rank)
            del worst[len(WORST_CASES):]

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
            raise RuntimeError("a test case was scored twice: the test loader must not repeat cases under DDP")
        cases = {name: torch.cat([s[name] for s in scores])[order].double() for name in keys.CASE_SCORES}
        stats = {keys.TEST_LOSS: self.test_loss.compute(), keys.TEST_CASES: float(len(cases[keys.CASE_F1]))}
        stats.update({key: cases[name].mean() for name, key in keys.CASE_SCORES.items()})
        for name, (std_key, min_key) in keys.CASE_SPREAD.items():
            stats.update({std_key: cases[name].std(unbiased=False), min_key: cases[name].min()})
        for name, value in stats.items():  # identical on every rank after the gather
            self.log(name, torch.as_tensor(value, dtype=torch.float32))
        self.test_results = {"scores": {name: value.numpy() for name, value in cases.items()},
                             "cases": _merge_kept_cases([kept for _, kept, _ in parts],
                                                        [worst for _, _, worst in parts])}

    # ------------------------------------------------------------------ run-record hooks (interfaces.TaskModel)
    def media_callback(self):
        from visionlab.tracking.wandb_media import SegmentationMedia

        return SegmentationMedia(every_n_epochs=self.media_every_n_epochs)

    def summary_section(self) -> dict:
        """Which cases were worst and best, and the conventions behind the test metrics (logged under their keys)."""
        if not self.test_results:
            return {}
        f1 = self.test_results["scores"][keys.CASE_F1]
        return {"worst_case": int(f1.argmin()), "best_case": int(f1.argmax()),
                "threshold": float(self.hparams.threshold), "empty_mask_convention": EMPTY_MASK_CONVENTION,
                "test_time_augmentation": TTA_DESCRIPTION[self.tta]}

    def save_fit_artifacts(self, folder: RunFolder) -> None:
        """Nothing beyond metrics.csv: validation cases are shown in W&B during training."""

    def save_test_artifacts(self, folder: RunFolder) -> None:
        """Per-case scores of both classes and of the trivial prediction (the std over them, ddof=0, is the logged
        std) and the fixed case 0, the best and the three worst cases (image H×W uint8, mask and prediction H×W
        uint8)."""
        if not self.test_results or not self.trainer.is_global_zero:
            return
        folder.write_test_cases(self.test_results["scores"])
        folder.write_qualitative(self.test_results["cases"])


def _rank(case: dict) -> tuple[float, int]:
    """Worst first; among equal scores the lowest case index, as a single process that sees the cases in order."""
    return case["f1"], case["index"]


def _merge_kept_cases(per_rank: list[dict[str, dict]], worst_per_rank: list[list[dict]]) -> dict[str, dict]:
    """The fixed case (index 0), the best and the ``WORST_CASES`` worst over every rank (named worst, worst_2, …),
    the same cases a single process keeps."""
    merged: dict[str, dict] = {}
    candidates = {name: [kept[name] for kept in per_rank if name in kept] for name in ("fixed", "best")}
    if candidates["fixed"]:
        merged["fixed"] = candidates["fixed"][0]
    if candidates["best"]:
        merged["best"] = min(candidates["best"], key=lambda case: (-case["f1"], case["index"]))
    worst = sorted((case for ranked in worst_per_rank for case in ranked), key=_rank)
    merged.update(zip(WORST_CASES, worst))
    return merged
