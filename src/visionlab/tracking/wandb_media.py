"""Images for W&B: augmented training inputs once, and test-time confusion matrix and mistakes."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from torchvision.utils import make_grid


def to_display(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC or float NCHW → float NCHW in [0, 1] for a grid."""
    if images.dtype == torch.uint8:
        return images.permute(0, 3, 1, 2).float() / 255.0
    return images.float().clamp(0, 1)


def wandb_loggers(trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


class ClassificationMedia(pl.Callback):
    """Logs a grid of augmented training inputs at the first step, and at test time the confusion matrix
    and a grid of misclassified examples (captions: true → predicted)."""

    def __init__(self, n_inputs: int = 64):
        self.n_inputs = n_inputs
        self.logged_inputs = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.logged_inputs or not trainer.is_global_zero:
            return
        self.logged_inputs = True
        grid = make_grid(to_display(batch[0][: self.n_inputs].cpu()), nrow=8, padding=1)
        for logger in wandb_loggers(trainer):
            logger.log_image("train/augmented_inputs", [grid], step=trainer.global_step,
                             caption=[f"{min(self.n_inputs, len(batch[0]))} augmented training inputs"])

    def on_test_end(self, trainer, pl_module):
        results = getattr(pl_module, "test_results", None)
        if not results or not trainer.is_global_zero:
            return
        import wandb

        from visionlab.viz import confusion_figure, plt

        figure = confusion_figure(results["confusion"].numpy())
        images = {"test/confusion_matrix": wandb.Image(figure)}
        plt.close(figure)
        wrong = results["misclassified"]
        if wrong:
            images["test/misclassified"] = [
                wandb.Image(to_display(img[None])[0], caption=f"true {t} → pred {p}") for img, t, p in wrong
            ]
        for logger in wandb_loggers(trainer):
            logger.experiment.log(images)
