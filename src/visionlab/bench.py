"""``visionlab-bench``: how much of the bare model speed survives the full training loop, per augmentation backend.

Side by side in one process, on the same model, batch size, precision and thread count:
- bare: forward/backward/optimizer steps on one preloaded batch (no data pipeline, no Lightning);
- full: ``Trainer.fit`` through the datamodule (index batches + augmentation on the device for ``batched``,
  albumentations in a loader worker for ``albumentations``), Lightning and a W&B offline logger, timed from the
  first measured batch to the last.
The ratio full/bare is the overhead budget (target ≥ 0.90 for the batched backend). Also measured: the elastic
augmentation alone (images/s) and the wall time of one training + validation epoch.

    visionlab-bench [--gtsrb-dir DIR] [--isbi-dir DIR] [--tasks cnn unet epoch]
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

PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
BACKENDS = ("batched", "albumentations")


def compose(overrides: list[str]):
    """The training config for ``overrides``, composed from the packaged conf/ (the only home of defaults)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import visionlab.resolvers  # noqa: F401
    from visionlab.configs import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose("train", overrides=[f"paths.root_dir={tempfile.gettempdir()}",
                                                 "paths.output_dir=" + tempfile.mkdtemp(), *overrides])


def build(overrides: list[str], **data_changes):
    from hydra.utils import instantiate

    cfg = compose(overrides)
    datamodule = instantiate(cfg.data, **data_changes)
    datamodule.setup("fit")
    return cfg, datamodule


def new_model(cfg):
    import torch
    from hydra.utils import instantiate

    torch.manual_seed(0)
    return instantiate(cfg.model)


def _autocast(precision: str):
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()


def bare_steps(cfg, datamodule, precision: str, steps: int, warmup: int) -> float:
    """Images/s of plain training steps on one preloaded, un-augmented batch."""
    import torch

    model = new_model(cfg)
    model.setup("fit")
    # the bare optimizer: a per-step LR schedule needs a Trainer to size itself, and bare steps have none
    optimizer = model.optimizer_factory(params=model.parameters())
    x, y = datamodule.splits["val"]
    reps = -(-datamodule.batch_size // len(y))
    index = torch.arange(datamodule.batch_size) % len(y) if reps > 1 else torch.arange(datamodule.batch_size)
    batch = (x[index], y[index])
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with _autocast(precision):
            loss = model._step(batch)[0]
        loss.backward()
        optimizer.step()
    return steps * datamodule.batch_size / (time.perf_counter() - start)


def _timer(warmup: int):
    import pytorch_lightning as pl

    class Timer(pl.Callback):
        def __init__(self):
            self.start = self.end = None
            self.images = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if self.start is not None:
                self.images += len(batch[1])
                self.end = time.perf_counter()

    return Timer()


def full_loop(cfg, datamodule, precision: str, steps: int, warmup: int, logdir: str) -> float:
    """Images/s of ``Trainer.fit`` (data path + augmentation + Lightning + W&B offline logging)."""
    import pytorch_lightning as pl
    from visionlab.tracking.wandb_logger import make_wandb_logger

    timer = _timer(warmup)
    per_epoch = len(datamodule.train_dataloader())
    logger = make_wandb_logger(mode="offline", save_dir=logdir, project="visionlab-bench")  # as a run logs
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=warmup + steps,
                         max_epochs=-(-(warmup + steps) // per_epoch), limit_val_batches=0, num_sanity_val_steps=0,
                         logger=logger, callbacks=[timer], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=10)
    trainer.fit(new_model(cfg), datamodule=datamodule)
    logger.experiment.finish()
    return timer.images / (timer.end - timer.start)


def loop_ratios(overrides: list[str], label: str, args, steps: int) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as logdir:
        for name in args.precision:
            precision = PRECISIONS[name]
            for backend in args.backends:
                cfg, datamodule = build(overrides, augment_backend=backend, num_workers=args.num_workers)
                bare = bare_steps(cfg, datamodule, precision, steps, args.warmup)
                full = full_loop(cfg, datamodule, precision, steps, args.warmup, logdir)
                rows.append((label, backend, name, bare, full, full / bare))
                print(f"| {label} | {backend} | {name} | {bare:.1f} | {full:.1f} | {full / bare:.2f} |", flush=True)
    return rows


def elastic_throughput(overrides: list[str], batches: int = 10) -> dict[str, float]:
    """Images/s of the segmentation training augmentation alone (batch as configured), per backend."""
    import torch

    from visionlab.data.batched_ops import batch_generator

    cfg, datamodule = build(overrides, augment_backend="batched")
    x, y = datamodule.splits["train"]
    n = datamodule.batch_size
    augment = datamodule.batch_augment()
    reference = datamodule.reference_dataset()
    out = {}
    start = time.perf_counter()
    for b in range(batches):
        index = (b * n + torch.arange(n)) % len(y)
        augment(x[index], y[index], batch_generator(0, 0, b))
    out["batched"] = batches * n / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in range(batches):
        reference.__getitems__([(b * n + i) % len(y) for i in range(n)])
    out["albumentations"] = batches * n / (time.perf_counter() - start)
    return out


def epoch_seconds(overrides: list[str], precision: str, backend: str, epochs: int = 2) -> float:
    """Wall seconds of one training + validation epoch (the second of ``epochs``, so start-up is excluded)."""
    import pytorch_lightning as pl

    class EpochClock(pl.Callback):
        def __init__(self):
            self.times: list[float] = []
            self.started = 0.0

        def on_train_epoch_start(self, trainer, pl_module):
            self.started = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.times.append(time.perf_counter() - self.started)

    cfg, datamodule = build(overrides, augment_backend=backend)
    clock = EpochClock()
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision=PRECISIONS[precision], max_epochs=epochs,
                         num_sanity_val_steps=0, logger=False, callbacks=[clock], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(new_model(cfg), datamodule=datamodule)
    return clock.times[-1]


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gtsrb-dir", help="GTSRB folder (prepared .npz); also benchmarked when given")
    parser.add_argument("--isbi-dir", help="ISBI 2012 .npz or folder; default: the synthetic segmentation set")
    parser.add_argument("--tasks", nargs="+", default=["cnn", "unet", "epoch"], choices=["cnn", "unet", "epoch"])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--batch-size", type=int, default=256, help="CNN batch size")
    parser.add_argument("--steps", type=int, default=20, help="measured CNN steps per configuration")
    parser.add_argument("--unet-steps", type=int, default=8, help="measured U-Net steps per configuration")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--num-workers", type=int, default=1, help="loader workers (albumentations backend)")
    args = parser.parse_args(argv)
    from visionlab.console import quiet_library_noise

    quiet_library_noise()
    torch.set_num_threads(args.threads)
    print(f"visionlab-bench: {args.threads} threads, {args.num_workers} loader worker(s) for albumentations, "
          f"{args.warmup} warm-up steps; img/s")
    print("| data | backend | precision | bare img/s | full img/s | full/bare |\n|---|---|---|---|---|---|")
    if "cnn" in args.tasks:
        cnn = ["model=cnn", f"data.batch_size={args.batch_size}"]
        tracks = max(10, (args.steps + args.warmup) * args.batch_size // (43 * 10 * 0.8) + 2)
        loop_ratios([*cnn, "data=synthetic_signs", f"data.tracks_per_class={int(tracks)}"], "CNN, synthetic signs",
                    args, args.steps)
        if args.gtsrb_dir:
            loop_ratios([*cnn, "data=gtsrb", f"data.data_dir={args.gtsrb_dir}"], "CNN, GTSRB", args, args.steps)
    seg = ["experiment=unet_baseline", "model.features_start=32", "data.batch_size=4", "data.train_repeats=4"]
    seg += [f"data.data_dir={args.isbi_dir}"] if args.isbi_dir else ["data=synthetic_seg"]
    if "unet" in args.tasks:
        loop_ratios(seg, "U-Net 32, " + ("ISBI" if args.isbi_dir else "synthetic"), args, args.unet_steps)
        rates = elastic_throughput(seg)
        print("\nsegmentation augmentation alone (256², batch 4, img/s): "
              + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()))
    if "epoch" in args.tasks and args.gtsrb_dir:
        print("\nGTSRB epoch wall time (train + validation), experiment=cnn_baseline:")
        for precision in args.precision:
            for backend in args.backends:
                seconds = epoch_seconds(["experiment=cnn_baseline", f"data.data_dir={args.gtsrb_dir}"], precision,
                                        backend)
                print(f"  {precision} {backend}: {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
