"""Images for W&B: augmented training inputs once, and test-time confusion matrix and mistakes."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import make_grid

from visionlab.record import metric_keys as keys


def to_display(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC or float NCHW → float NCHW in [0, 1] for a grid."""
    if images.dtype == torch.uint8:
        return images.permute(0, 3, 1, 2).float() / 255.0
    return images.float().clamp(0, 1)


def wandb_loggers(trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def _misclassified(wrong: list) -> list:
    import wandb

    # items are (image, true, pred), or (case index, image, true, pred) while an epoch's mistakes are
    # collected
    return [
        wandb.Image(to_display(img[None])[0], caption=f"true {t} → pred {p}")
        for img, t, p in (item[-3:] for item in wrong)
    ]


class ClassificationMedia(pl.Callback):
    """Logs a grid of augmented training inputs at the first step, validation mistakes every
    ``every_n_epochs`` epochs (and at the last), and at test time the confusion matrix and a grid of
    misclassified examples (captions: true → predicted)."""

    def __init__(self, n_inputs: int = 64, every_n_epochs: int = 5):
        self.n_inputs = n_inputs
        self.logged_inputs = False
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.logged_epochs: list[int] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        wrong = getattr(pl_module, "val_misclassified", None)
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if (
            trainer.sanity_checking
            or not trainer.is_global_zero
            or not wrong
            or (epoch % self.every_n_epochs and not last)
        ):
            return
        for logger in wandb_loggers(trainer):
            logger.experiment.log(
                {keys.MEDIA_VAL_MISCLASSIFIED: _misclassified(wrong), keys.WANDB_STEP: trainer.global_step}
            )
        self.logged_epochs.append(epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.logged_inputs or not trainer.is_global_zero:
            return
        self.logged_inputs = True
        grid = make_grid(to_display(batch[0][: self.n_inputs].cpu()), nrow=8, padding=1)
        for logger in wandb_loggers(trainer):
            logger.log_image(
                keys.MEDIA_AUGMENTED_INPUTS,
                [grid],
                step=trainer.global_step,
                caption=[f"{min(self.n_inputs, len(batch[0]))} augmented training inputs"],
            )

    def on_test_end(self, trainer, pl_module):
        results = getattr(pl_module, "test_results", None)
        if not results or not trainer.is_global_zero:
            return
        import wandb

        from visionlab.tasks.plots import confusion_figure, plt

        figure = confusion_figure(results["confusion"].numpy())
        images = {keys.MEDIA_CONFUSION: wandb.Image(figure)}
        plt.close(figure)
        if results["misclassified"]:
            images[keys.MEDIA_MISCLASSIFIED] = _misclassified(results["misclassified"])
        for logger in wandb_loggers(trainer):
            logger.experiment.log(images)


SEGMENTATION_CLASSES = {0: "background", 1: "foreground"}


def segmentation_class_labels(trainer, pl_module) -> dict[int, str]:
    """W&B's ``class_labels`` for mask layers: the data's class names (``data.class_names``, index = label)
    and the ignored value, so a K-class mask reads "Road", "Car", … in the W&B viewer; the binary default
    otherwise."""
    facts = getattr(getattr(trainer, "datamodule", None), "facts", None)
    names = tuple(getattr(facts, "class_names", ()) or ())
    if len(names) < 2:
        return dict(SEGMENTATION_CLASSES)
    labels = {i: str(name) for i, name in enumerate(names)}
    ignore = getattr(pl_module, "ignore_index", None)
    if ignore is not None:
        labels[int(ignore)] = "ignored"
    return labels


def _mask_overlay(image, mask, pred, caption: str, class_labels: dict[int, str] | None = None):
    """A wandb.Image of the input with ground truth and prediction as toggleable mask layers."""
    import numpy as np
    import wandb

    labels = class_labels or SEGMENTATION_CLASSES
    return wandb.Image(
        np.asarray(image),
        masks={
            "ground_truth": {"mask_data": np.asarray(mask, np.uint8), "class_labels": labels},
            "prediction": {"mask_data": np.asarray(pred, np.uint8), "class_labels": labels},
        },
        caption=caption,
    )


class SegmentationMedia(pl.Callback):
    """Every ``every_n_epochs`` epochs (and at the last one): input / ground truth / prediction overlays for a
    fixed set of validation cases (``val/predictions``), so masks can be watched improving. At test time the
    fixed case 0, the best and the worst case (``test/fixed_case``, ``test/best_case``, ``test/worst_case``)
    and a table of per-case F1/IoU (``test/cases_table``)."""

    def __init__(self, every_n_epochs: int = 5):
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.logged_epochs: list[int] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        batch = getattr(pl_module, "media_batch", None)
        if trainer.sanity_checking or not trainer.is_global_zero or not batch:
            return
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if epoch % self.every_n_epochs and not last:
            return
        images = to_display(batch["images"]).mul(255).byte().permute(0, 2, 3, 1).numpy()
        labels, score = segmentation_class_labels(trainer, pl_module), batch.get("score", "F1")
        overlays = [
            _mask_overlay(
                img[..., 0] if img.shape[-1] == 1 else img,
                mask,
                pred,
                f"val case {i}, epoch {epoch}: {score} {float(f1):.4f}",
                labels,
            )
            for i, (img, mask, pred, f1) in enumerate(
                zip(images, batch["masks"].numpy(), batch["preds"].numpy(), batch["f1"])
            )
        ]
        for logger in wandb_loggers(trainer):
            logger.experiment.log(
                {keys.MEDIA_VAL_PREDICTIONS: overlays, keys.WANDB_STEP: trainer.global_step}
            )
        self.logged_epochs.append(epoch)

    def on_test_end(self, trainer, pl_module):
        results = getattr(pl_module, "test_results", None)
        if not results or not trainer.is_global_zero:
            return
        import wandb

        media = {}
        labels = segmentation_class_labels(trainer, pl_module)
        for name, case in results["cases"].items():
            source = f" {case['source']}" if case.get("source") else ""
            scores_text = (
                f"mIoU {case['iou']:.4f}, mean Dice {case['f1']:.4f}"
                if "rank" in case
                else f"F1 {case['f1']:.4f}, IoU {case['iou']:.4f}"
            )
            media[keys.media_test_case(name)] = _mask_overlay(
                case["image"],
                case["mask"],
                case["pred"],
                f"test case {case['index']}{source} ({name}): {scores_text}",
                labels,
            )
        scores = results["scores"]  # the columns of test_cases.csv
        columns = [c for c in scores if c != keys.CASE_SOURCE]
        named = [keys.CASE_SOURCE] if keys.CASE_SOURCE in scores else []
        table = wandb.Table(
            columns=[keys.CASE, *named, *columns],
            data=[
                [i, *(str(scores[c][i]) for c in named), *(float(scores[c][i]) for c in columns)]
                for i in range(len(scores[columns[0]]))
            ],
        )
        media[keys.MEDIA_TEST_CASES_TABLE] = table
        for logger in wandb_loggers(trainer):
            logger.experiment.log(media)
