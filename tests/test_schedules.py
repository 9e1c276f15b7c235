"""The per-step warm-up + cosine schedule: its shape, and that a run steps it every optimizer step."""

import math
from itertools import pairwise

import pytest
import torch

from helpers import compose
from seg_helpers import TINY_SEG
from visionlab.config.errors import ConfigError
from visionlab.record.folder import RunFolder
from visionlab.record.metric_keys import lr_column
from visionlab.run.execute import run
from visionlab.tasks.schedules import is_per_step, warmup_cosine


def _lrs(steps: int, **kw) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=steps, **kw)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return lrs


def test_warmup_then_half_cosine_to_the_final_fraction():
    lrs = _lrs(100, steps_per_epoch=10, warmup_epochs=1, final_lr_fraction=0.01, warmup_start_fraction=0.1)
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(1.0)
    assert all(a < b for a, b in pairwise(lrs[:11]))  # linear ramp up
    assert all(a >= b for a, b in pairwise(lrs[10:]))  # then never up again
    assert lrs[55] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lrs[-1] == pytest.approx(0.01, abs=0.002)
    no_warmup = _lrs(
        20, steps_per_epoch=10, warmup_epochs=0, final_lr_fraction=0.0, warmup_start_fraction=0.1
    )
    assert no_warmup[0] == pytest.approx(1.0) and no_warmup[-1] < 0.01
    with pytest.raises(ConfigError, match="final_lr_fraction in"):
        _lrs(10, steps_per_epoch=1, warmup_epochs=1, final_lr_fraction=2.0, warmup_start_fraction=0.1)


@pytest.mark.parametrize(
    "budget",
    [["trainer.max_epochs=3"], ["trainer.max_epochs=-1", "trainer.max_steps=6"]],
    ids=["epochs", "optimizer_steps"],
)
def test_a_run_steps_the_schedule_every_batch(tmp_path, budget):
    """2 batches per epoch, warm-up of 1 epoch: epoch 1 starts at the full LR (per-epoch stepping would not);
    a budget in optimizer steps (trainer.max_steps) gives the same schedule as the same budget in epochs."""
    cfg = compose(
        tmp_path,
        [
            "experiment=unet_baseline",
            *TINY_SEG,
            "logger=none",
            *budget,
            "model.scheduler.warmup_epochs=1",
            "model.optimizer.lr=0.01",
        ],
    )
    from hydra.utils import instantiate

    assert is_per_step(instantiate(cfg.model.scheduler)) and not is_per_step(torch.optim.lr_scheduler.StepLR)
    summary = run(cfg)
    lrs = [row[lr_column(0)] for row in RunFolder(tmp_path / "run").read_metrics()]
    assert summary["steps"] == 6 and lrs[0] == pytest.approx(0.001) and lrs[1] == pytest.approx(0.01)
    assert lrs[2] == pytest.approx(0.01 * (0.01 + 0.99 * 0.5))  # half-way down the 4 cosine steps
