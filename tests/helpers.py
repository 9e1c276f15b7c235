"""Test-only Lightning callbacks, referenced from configs as `helpers.<Name>`."""

import pytorch_lightning as pl
import torch


class PoisonWeightsAtEpoch(pl.Callback):
    """Sets every weight to NaN at the start of ``epoch`` to provoke a non-finite loss."""

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.fill_(float("nan"))
