"""Learning-rate schedules that need the run's length: linear warm-up, then cosine decay, stepped every batch.

Short runs (the cnn_fast preset) and fragile ones (a U-Net from scratch) both want a gentle start and a decay to a
small rate by the last step; torch's OneCycleLR also changes momentum, which Rprop/SGD presets do not expect.
A factory marks itself as per-step by taking ``total_steps``: the model passes Lightning's estimate of the run's
optimizer steps.
"""

from __future__ import annotations

import inspect
import math
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from visionlab.errors import ConfigError


def takes_total_steps(factory) -> bool:
    """Whether a (partial) scheduler factory is a per-step schedule over the whole run."""
    target = factory.func if isinstance(factory, partial) else factory
    try:
        return "total_steps" in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05,
                  final_fraction: float = 0.01) -> LambdaLR:
    """LR × (step / warm-up) for the first ``warmup_fraction`` of the steps, then a cosine from 1 down to
    ``final_fraction`` at the last step."""
    if not 0.0 <= warmup_fraction < 1.0:
        raise ConfigError(f"model.scheduler.warmup_fraction={warmup_fraction} must be in [0, 1).")
    if not 0.0 <= final_fraction <= 1.0:
        raise ConfigError(f"model.scheduler.final_fraction={final_fraction} must be in [0, 1].")
    total = max(1, int(total_steps))
    warmup = int(round(warmup_fraction * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
