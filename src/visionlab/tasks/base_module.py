"""What every visionlab LightningModule shares: optimizer/scheduler from config, input handling, NaN guard."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch

from visionlab.config.errors import ConfigError, NonFiniteLossError
from visionlab.record.metric_keys import VAL_LOSS
from visionlab.tasks.schedules import is_per_step


class VisionModule(pl.LightningModule):
    """Inputs arrive as uint8 N×H×W×C (cheap to load and transfer) and are normalised on the device here."""

    def __init__(
        self,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        scheduler_monitor: str = VAL_LOSS,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        channels_last: bool = True,
        name: str | None = None,
    ):
        """``name``: the model config's short name (``model.name``, part of the default experiment name)."""
        super().__init__()
        self.config_name = name
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self.channels_last = channels_last
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC (or float NCHW in [0,1]) → normalised float NCHW, channels_last in memory."""
        if images.dtype == torch.uint8:
            images = images.permute(0, 3, 1, 2).float().div_(255.0)  # NHWC storage == channels_last NCHW
        elif not self.channels_last:
            images = images.contiguous()
        images = (images - self.mean) / self.std
        if not self.channels_last:
            return images
        # Explicit NHWC strides: for one-channel images `.contiguous(memory_format=channels_last)` is a no-op
        # that keeps NCHW strides, and oneDNN then runs the whole network in NCHW (2.5× slower U-Net steps in
        # bf16).
        return images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)

    def check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"Training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}. "
                "The last good checkpoint is kept in the run's checkpoints/ folder. Try a lower "
                "model.optimizer.lr, trainer.gradient_clip_val=1.0, or trainer.precision=32.",
                epoch=self.current_epoch,
            )

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise ConfigError(
                "model.optimizer is not set; e.g. model/optimizer=adam or model.optimizer._target_=..."
            )
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        interval = "epoch"
        if is_per_step(self.scheduler_factory):
            total = self.trainer.estimated_stepping_batches  # inf without a budget: the schedule says so
            per_epoch = self._optimizer_steps_per_epoch(total)
            scheduler = self.scheduler_factory(
                optimizer=optimizer, total_steps=total, steps_per_epoch=per_epoch
            )
            interval = "step"
        else:
            scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.scheduler_monitor, "interval": interval},
        }

    def _optimizer_steps_per_epoch(self, total: float) -> int:
        """Optimizer steps in one epoch, from the training loader (known once ``estimated_stepping_batches``
        has loaded it), so epoch-based settings (warm-up epochs) mean the same whether the budget is
        ``trainer.max_epochs`` or ``trainer.max_steps``."""
        if self.trainer.train_dataloader is None:  # a budget in steps alone: Lightning did not load it
            self.trainer.fit_loop.setup_data()
        batches = self.trainer.num_training_batches
        if isinstance(batches, int) and batches > 0:
            return max(1, math.ceil(batches / max(1, self.trainer.accumulate_grad_batches)))
        epochs = self.trainer.max_epochs
        return max(1, int(total) // epochs) if math.isfinite(total) and epochs and epochs > 0 else 1

    def log_validation_epoch(
        self, loss_key: str, loss, score_key: str, score, best_key: str, best, extra: dict | None = None
    ) -> None:
        """Validation loss and score, plus the best score so far (``best`` is a MaxMetric, not updated and not
        logged during the sanity check, so it only ever sees real epochs); ``extra``: further metrics by
        key."""
        if not self.trainer.sanity_checking:
            best(score)
        self.log(loss_key, loss, prog_bar=True, sync_dist=True)
        self.log(score_key, score, prog_bar=True, sync_dist=True)
        for key, value in (extra or {}).items():
            self.log(key, value, sync_dist=True)
        if not self.trainer.sanity_checking:
            self.log(best_key, best.compute(), sync_dist=True)
