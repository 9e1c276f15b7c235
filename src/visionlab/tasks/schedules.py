"""Learning-rate schedules that step every optimizer step (not every epoch), built from torch's schedulers.

A schedule here is a function ``(optimizer, total_steps, steps_per_epoch, **config) → LRScheduler`` marked
``per_step``; ``VisionModule.configure_optimizers`` passes it the run's step counts (from the trainer) and
steps it with ``interval: step``. Any other scheduler config (a torch class) steps once per epoch.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR, LinearLR, SequentialLR

from visionlab.config.errors import ConfigError


def per_step(schedule):
    schedule.per_step = True
    return schedule


def is_per_step(factory) -> bool:
    """Whether a scheduler factory (a Hydra partial) is one of the per-step schedules of this module."""
    return bool(getattr(getattr(factory, "func", factory), "per_step", False))


@per_step
def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    steps_per_epoch: int,
    warmup_epochs: float,
    final_lr_fraction: float,
    warmup_start_fraction: float,
) -> SequentialLR:
    """Linear warm-up from ``warmup_start_fraction`` × lr to lr over ``warmup_epochs``, then a half cosine
    down to ``final_lr_fraction`` × lr at the last step of the budget (``trainer.max_epochs`` or
    ``trainer.max_steps``; early stopping may end the run before)."""
    if not 0.0 <= final_lr_fraction <= 1.0 or not 0.0 < warmup_start_fraction <= 1.0 or warmup_epochs < 0:
        raise ConfigError(
            "model.scheduler: warmup_epochs must be >= 0, final_lr_fraction in [0, 1] and "
            f"warmup_start_fraction in (0, 1]; got {warmup_epochs}, {final_lr_fraction}, "
            f"{warmup_start_fraction}"
        )
    if not math.isfinite(total_steps) or total_steps < 1:
        raise ConfigError(
            f"model.scheduler=warmup_cosine needs a finite number of training steps (got {total_steps}):"
            " set trainer.max_epochs or trainer.max_steps."
        )
    warmup = min(round(warmup_epochs * steps_per_epoch), int(total_steps) - 1)
    decay = max(1, int(total_steps) - warmup)

    def cosine(step: int) -> float:
        progress = min(1.0, step / decay)
        return final_lr_fraction + (1.0 - final_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))

    cosine_part = LambdaLR(optimizer, cosine)
    if warmup == 0:
        return SequentialLR(optimizer, [cosine_part], milestones=[])
    ramp = LinearLR(optimizer, start_factor=warmup_start_fraction, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [ramp, cosine_part], milestones=[warmup])
