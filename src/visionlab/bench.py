"""``visionlab-bench``: how much of the bare model speed survives the full training loop.

Side by side in one process, on the same model, batch size, precision and thread count:
- bare: forward/backward/optimizer steps on preloaded uint8 crops (no data pipeline, no Lightning);
- full: ``Trainer.fit`` through the datamodule (albumentations in DataLoader workers), Lightning and a W&B
  offline logger, timed from the first measured batch to the last.
The ratio full/bare is the overhead budget; the target on a 2-core CPU is ≥ 0.85.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from visionlab.data.classification.datamodule import GTSRBDataModule, SyntheticSignsDataModule
from visionlab.models.classifier import ClassificationModule

PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}


def _model(lr: float = 1e-3) -> ClassificationModule:
    torch.manual_seed(0)
    return ClassificationModule(optimizer=lambda params: torch.optim.Adam(params, lr=lr))


def bare_steps(datamodule, batch_size: int, precision: str, steps: int, warmup: int) -> float:
    """Images/s of plain training steps on a preloaded batch."""
    model = _model()
    model.setup("fit")
    optimizer = model.configure_optimizers()
    x, y = datamodule.val_set.inputs[:batch_size], datamodule.val_set.targets[:batch_size]
    if len(y) < batch_size:  # repeat to fill the batch
        reps = -(-batch_size // len(y))
        x, y = x.repeat(reps, 1, 1, 1)[:batch_size], y.repeat(reps)[:batch_size]
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed"
                else contextlib.nullcontext())
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


class _Timer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.images = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.images += len(batch[1])
            self.end = time.perf_counter()


def full_loop(datamodule, precision: str, steps: int, warmup: int, logdir: str) -> float:
    """Images/s of ``Trainer.fit`` (data pipeline + augmentation + Lightning + W&B offline logging)."""
    from pytorch_lightning.loggers import WandbLogger

    timer = _Timer(warmup)
    logger = WandbLogger(save_dir=logdir, offline=True, project="visionlab-bench")
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_epochs=1,
                         limit_train_batches=warmup + steps, limit_val_batches=0, num_sanity_val_steps=0,
                         logger=logger, callbacks=[timer], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=10)
    trainer.fit(_model(), datamodule=datamodule)
    logger.experiment.finish()
    return timer.images / (timer.end - timer.start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="GTSRB folder (prepared .npz); default: the embedded synthetic set")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="measured steps per configuration")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    common = dict(batch_size=args.batch_size, num_workers=args.num_workers, seed=0)
    if args.data_dir:
        datamodule = GTSRBDataModule(data_dir=args.data_dir, cache_dir=tempfile.mkdtemp(), **common)
    else:
        tracks = max(10, (args.steps + args.warmup) * args.batch_size // (43 * 10 * 0.8) + 2)
        datamodule = SyntheticSignsDataModule(tracks_per_class=int(tracks), **common)
    datamodule.setup("fit")
    pl.seed_everything(0, verbose=False)

    rows = []
    with tempfile.TemporaryDirectory() as logdir:
        for name in args.precision:
            precision = PRECISIONS[name]
            bare = bare_steps(datamodule, args.batch_size, precision, args.steps, args.warmup)
            full = full_loop(datamodule, precision, args.steps, args.warmup, logdir)
            rows.append((name, bare, full, full / bare))
    print(f"\nSeedCNN, batch {args.batch_size}, {args.threads} threads, {args.num_workers} loader worker(s), "
          f"{args.steps} steps after {args.warmup} warm-up, data: {datamodule.description}")
    print(f"{'precision':<10}{'bare img/s':>12}{'full img/s':>12}{'full/bare':>11}")
    for name, bare, full, ratio in rows:
        print(f"{name:<10}{bare:>12.0f}{full:>12.0f}{ratio:>11.2f}")


if __name__ == "__main__":
    main()
