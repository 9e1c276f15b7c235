"""``visionlab-bench``: how much of the bare model speed survives the full training loop, per augmentation
backend.

Side by side in one process, on the same model, batch size, precision, thread count and device:
- bare: forward/backward/optimizer steps on one resident batch (no data pipeline, no Lightning);
- full: ``Trainer.fit`` through the datamodule (index batches + augmentation on the device for ``batched``,
  albumentations in a loader worker for ``albumentations``), Lightning and a W&B offline logger, timed over
  whole training iterations (the batch's augmentation included) from the end of the warm-up to the last
  measured step. The ratio full/bare is the overhead budget (target ≥ 0.95 for the batched backend).
  ``--repeats`` alternates bare and full that many times per configuration and reports the medians (and every
  repeat's ratio): on a shared machine single runs vary by ±10 % or more. Also measured: the segmentation
  augmentation alone (images/s) and the wall time of one training + validation epoch.

``--device cuda``: the model, the resident data and the batched augmentation live on the GPU, bf16 means CUDA
bf16 autocast, the model runs channels_last as in training, and the clock is read after
``torch.cuda.synchronize()`` (only at the ends of the measured window: the loop keeps its asynchrony).
``--json out.json`` writes the figures with the date, the commit, the device and the torch/CUDA versions.

``--paired`` (CPU): a bare step of a twin model right after every training step, ratios per pair; on a shared
machine whose load changes from minute to minute the block design's ratios scattered from 0.35 to 4 where the
paired medians stayed within a few per cent.

    visionlab-bench [--device cpu|cuda] [--gtsrb-dir DIR] [--isbi-dir DIR] [--tasks cnn cnn_best unet epoch]
                    [--repeats R] [--paired] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed"}
BACKENDS = ("batched", "albumentations")
TASKS = ("cnn", "cnn_best", "unet", "epoch")
# what a plain run measures on each device: the CPU defaults are the historical ones (README table)
DEVICE_DEFAULTS = {
    "cpu": {
        "tasks": ["cnn", "unet", "epoch"],
        "precision": list(PRECISIONS),
        "backends": list(BACKENDS),
        "unet_features": 32,
        "unet_batch": 4,
    },
    "cuda": {
        "tasks": ["cnn", "cnn_best", "unet"],
        "precision": ["bf16"],
        "backends": ["batched"],
        "unet_features": 64,
        "unet_batch": 16,
    },
}


def compose(overrides: list[str]):
    """The training config for ``overrides``, composed from the packaged conf/ (the only home of defaults)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import visionlab.cli.resolvers  # noqa: F401
    from visionlab.config.location import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(
            "train",
            overrides=[
                f"paths.root_dir={tempfile.gettempdir()}",
                "paths.output_dir=" + tempfile.mkdtemp(),
                *overrides,
            ],
        )


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


def _device(device):
    import torch

    return torch.device(device)


def synchronize(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, whose ops return when done)."""
    import torch

    if _device(device).type == "cuda":
        torch.cuda.synchronize(_device(device))


def _autocast(precision: str, device="cpu"):
    import torch

    if precision != "bf16-mixed":
        return contextlib.nullcontext()
    return torch.autocast(_device(device).type, dtype=torch.bfloat16)


def _trainer_device(device) -> dict:
    """``pl.Trainer`` arguments that put the run on ``device``."""
    device = _device(device)
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index] if device.index is not None else 1}
    return {"accelerator": "cpu", "devices": 1}


def _clip(cfg) -> float | None:
    """The experiment's gradient clipping (part of its optimizer step, so bare steps do it too)."""
    trainer = cfg.get("trainer") or {}
    return trainer.get("gradient_clip_val")


class BareStep:
    """One plain training step (the model's loss, backward, clipping if configured, optimizer step) of a fresh
    copy of the configured model on one resident, un-augmented batch: no data pipeline, no Lightning."""

    def __init__(self, cfg, datamodule, precision: str, device="cpu"):
        import torch

        self.device, self.precision = _device(device), precision
        model = new_model(cfg)
        model.setup("fit")  # channels_last, as the Trainer's set-up does
        self.model = model.to(self.device)
        # the bare optimizer: a per-step LR schedule needs a Trainer to size itself, and bare steps have none
        self.optimizer = model.optimizer_factory(params=model.parameters())
        self.kwargs = (
            {"label_smoothing": model.label_smoothing} if getattr(model, "label_smoothing", 0.0) else {}
        )
        self.clip = _clip(cfg)
        x, y = datamodule.splits["val"]
        index = torch.arange(datamodule.batch_size) % len(y)
        self.batch = (x[index].to(self.device), y[index].to(self.device))
        self.images = datamodule.batch_size
        model.train()

    def __call__(self) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.precision, self.device):
            loss = self.model._step(self.batch, **self.kwargs)[0]
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()


def bare_steps(cfg, datamodule, precision: str, steps: int, warmup: int, device="cpu") -> float:
    """Images/s of ``BareStep``s."""
    step = BareStep(cfg, datamodule, precision, device)
    start = None
    for i in range(warmup + steps):
        if i == warmup:
            synchronize(device)
            start = time.perf_counter()
        step()
    synchronize(device)
    return steps * step.images / (time.perf_counter() - start)


def _timer(warmup: int, steps: int, device="cpu"):
    """Clock over whole training iterations: from the end of the last warm-up step (``global_step == warmup``)
    to the end of step ``warmup + steps``, so every measured batch's fetch and augmentation is inside the
    window."""
    import pytorch_lightning as pl

    class Timer(pl.Callback):
        def __init__(self):
            self.start = self.end = None
            self.images = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if step == warmup:
                synchronize(device)
                self.start, self.images = time.perf_counter(), 0
            elif self.start is not None and self.end is None:
                self.images += len(batch[1])
                if step >= warmup + steps:
                    synchronize(device)
                    self.end = time.perf_counter()

    return Timer()


def _trainer(cfg, datamodule, precision: str, steps: int, warmup: int, logdir: str, callback, device):
    import pytorch_lightning as pl

    from visionlab.tracking.wandb.logger import make_wandb_logger

    per_epoch = len(datamodule.train_dataloader())
    logger = make_wandb_logger(mode="offline", save_dir=logdir, project="visionlab-bench")  # as a run logs
    trainer = pl.Trainer(
        **_trainer_device(device),
        precision=precision,
        max_steps=warmup + steps,
        max_epochs=-(-(warmup + steps) // per_epoch),
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        gradient_clip_val=_clip(cfg),
    )
    return trainer, logger


def full_loop(cfg, datamodule, precision: str, steps: int, warmup: int, logdir: str, device="cpu") -> float:
    """Images/s of ``Trainer.fit`` (data path + augmentation + Lightning + W&B offline logging)."""
    timer = _timer(warmup, steps, device)
    trainer, logger = _trainer(cfg, datamodule, precision, steps, warmup, logdir, timer, device)
    trainer.fit(new_model(cfg), datamodule=datamodule)
    logger.experiment.finish()
    if timer.end is None:
        raise RuntimeError(
            f"the full loop ran {trainer.global_step} steps, fewer than the {warmup + steps} timed"
        )
    return timer.images / (timer.end - timer.start)


def paired_loop(
    cfg, datamodule, precision: str, steps: int, warmup: int, logdir: str, device="cpu"
) -> tuple[list[float], list[float]]:
    """(full, bare) seconds per step, in pairs: inside ``Trainer.fit``, right after each training iteration,
    one ``BareStep`` of a twin model. A change in machine load hits both halves of a pair alike, so the ratio
    of a pair holds where whole blocks of bare and full steps, minutes apart on a shared machine, do not. Each
    pair is timed on its own: on a GPU that stops the CPU from queueing ahead, so use the block design
    there."""
    import pytorch_lightning as pl

    twin = BareStep(cfg, datamodule, precision, device)

    class Pairs(pl.Callback):
        def __init__(self):
            self.full: list[float] = []
            self.bare: list[float] = []
            self.since: float | None = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            synchronize(device)
            now = time.perf_counter()
            measured = trainer.global_step > warmup
            if measured and self.since is not None:
                self.full.append(now - self.since)
            twin()
            synchronize(device)
            if measured:
                self.bare.append(time.perf_counter() - now)
            self.since = time.perf_counter()

    pairs = Pairs()
    trainer, logger = _trainer(cfg, datamodule, precision, steps + 1, warmup, logdir, pairs, device)
    trainer.fit(new_model(cfg), datamodule=datamodule)
    logger.experiment.finish()
    n = min(len(pairs.full), len(pairs.bare))
    return pairs.full[:n], pairs.bare[:n]


def loop_ratios(overrides: list[str], label: str, args, steps: int, task: str) -> list[dict]:
    """Bare and full, ``args.repeats`` times per (precision, backend); medians and every repeat. Block design:
    ``steps`` bare steps, then a ``Trainer.fit`` of ``steps`` timed steps. Paired design (``args.paired``):
    ``paired_loop``, per repeat the median of the pairs' ratios."""
    rows = []
    with tempfile.TemporaryDirectory() as logdir:
        for name in args.precision:
            precision = PRECISIONS[name]
            for backend in args.backends:
                cfg, datamodule = build(overrides, augment_backend=backend, num_workers=args.num_workers)
                n = datamodule.batch_size
                bares, fulls, ratios = [], [], []
                for _ in range(args.repeats):
                    if args.paired:
                        full, bare = paired_loop(
                            cfg, datamodule, precision, steps, args.warmup, logdir, args.device
                        )
                        bares.append(n / statistics.median(bare))
                        fulls.append(n / statistics.median(full))
                        ratios.append(statistics.median(b / f for b, f in zip(bare, full)))
                        continue
                    bares.append(bare_steps(cfg, datamodule, precision, steps, args.warmup, args.device))
                    fulls.append(
                        full_loop(cfg, datamodule, precision, steps, args.warmup, logdir, args.device)
                    )
                    ratios.append(fulls[-1] / bares[-1])
                row = {
                    "task": task,
                    "data": label,
                    "backend": backend,
                    "precision": name,
                    "batch_size": n,
                    "steps": steps,
                    "warmup": args.warmup,
                    "design": "paired" if args.paired else "blocks",
                    "bare_img_s": statistics.median(bares),
                    "full_img_s": statistics.median(fulls),
                    "full_over_bare": statistics.median(ratios),
                    "repeats": {"bare_img_s": bares, "full_img_s": fulls, "full_over_bare": ratios},
                }
                rows.append(row)
                spread = ", ".join(f"{r:.2f}" for r in ratios)
                print(
                    f"| {label} | {backend} | {name} | {row['bare_img_s']:.1f} | {row['full_img_s']:.1f} | "
                    f"{row['full_over_bare']:.2f} | {spread} |",
                    flush=True,
                )
    return rows


def elastic_throughput(overrides: list[str], batches: int = 10, device="cpu") -> dict[str, float]:
    """Images/s of the segmentation training augmentation alone (batch as configured): batched on ``device``,
    albumentations (per sample, one process) on the CPU."""
    import torch

    from visionlab.data.batched_ops import batch_generator

    _, datamodule = build(overrides, augment_backend="batched")
    x, y = datamodule.resident("train", _device(device))
    n = datamodule.batch_size
    augment = datamodule.batch_augment()
    reference = datamodule.reference_dataset()
    out = {}
    for warm in (True, False):
        synchronize(device)
        start = time.perf_counter()
        for b in range(1 if warm else batches):
            index = ((b * n + torch.arange(n)) % len(y)).to(x.device)
            augment(x[index], y[index], batch_generator(0, 0, b))
        synchronize(device)
    out["batched"] = batches * n / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in range(batches):
        reference.__getitems__([(b * n + i) % len(y) for i in range(n)])
    out["albumentations"] = batches * n / (time.perf_counter() - start)
    return out


def epoch_seconds(overrides: list[str], precision: str, backend: str, epochs: int = 2, device="cpu") -> float:
    """Wall seconds of one training + validation epoch (the second of ``epochs``, so start-up is excluded)."""
    import pytorch_lightning as pl

    class EpochClock(pl.Callback):
        def __init__(self):
            self.times: list[float] = []
            self.started = 0.0

        def on_train_epoch_start(self, trainer, pl_module):
            synchronize(device)
            self.started = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                synchronize(device)
                self.times.append(time.perf_counter() - self.started)

    cfg, datamodule = build(overrides, augment_backend=backend)
    clock = EpochClock()
    trainer = pl.Trainer(
        **_trainer_device(device),
        precision=PRECISIONS[precision],
        max_epochs=epochs,
        num_sanity_val_steps=0,
        logger=False,
        callbacks=[clock],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(new_model(cfg), datamodule=datamodule)
    return clock.times[-1]


def _unet_width_key() -> str:
    """Where the U-Net's base width lives in the config: ``model.net.features_start`` when the network is its
    own config group (``model/net``), else ``model.features_start``."""
    net = compose(["experiment=unet_baseline"]).model.get("net")
    return (
        "model.net.features_start" if net is not None and "features_start" in net else "model.features_start"
    )


def environment(device) -> dict:
    """Where and with what the figures were measured (written into ``--json``)."""
    import torch

    from visionlab.record.provenance import git_state, package_versions

    device = _device(device)
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(),
        "packages": package_versions(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info |= {
            "gpu": torch.cuda.get_device_name(index),
            "cudnn": torch.backends.cudnn.version(),
            "gpu_capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        }
    return info


def parse_args(argv: list[str] | None = None):
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--gtsrb-dir", help="GTSRB folder (prepared .npz); also benchmarked when given")
    parser.add_argument(
        "--isbi-dir", help="ISBI 2012 .npz or folder; default: the synthetic segmentation set"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=TASKS,
        help="default: cnn unet epoch on the CPU, cnn cnn_best unet on a GPU",
    )
    parser.add_argument(
        "--backends", nargs="+", choices=list(BACKENDS), help="default: both on the CPU, batched on a GPU"
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=list(PRECISIONS),
        help="default: fp32 bf16 on the CPU, bf16 on a GPU",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="CNN batch size (seed CNN and cnn_best)")
    parser.add_argument("--steps", type=int, default=20, help="measured CNN steps per configuration")
    parser.add_argument("--unet-steps", type=int, default=8, help="measured U-Net steps per configuration")
    parser.add_argument(
        "--unet-features", type=int, help="U-Net base width (default: 32 on the CPU, 64 on a GPU)"
    )
    parser.add_argument(
        "--unet-batch", type=int, help="U-Net batch size (default: 4 on the CPU, 16 on a GPU)"
    )
    parser.add_argument("--unet-size", type=int, default=256, help="U-Net image side (synthetic data)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps first (at least 1)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="bare/full measurements per configuration (medians)"
    )
    parser.add_argument(
        "--paired",
        action="store_true",
        help="time a bare step right after every training step instead of in separate blocks: "
        "robust on a shared CPU (not for GPUs: it times every step on its own)",
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--num-workers", type=int, default=1, help="loader workers (albumentations backend)")
    parser.add_argument("--json", help="also write the figures and the environment to this JSON file")
    args = parser.parse_args(argv)
    try:
        device = _device(args.device)
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICE_DEFAULTS:
        parser.error(f"--device {args.device}: use cpu or cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device {args.device}: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        )
    defaults = DEVICE_DEFAULTS[device.type]
    for key in ("tasks", "precision", "backends", "unet_features", "unet_batch"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    args.warmup, args.repeats = max(1, args.warmup), max(1, args.repeats)
    return args


def run_bench(argv: list[str] | None = None) -> dict:
    """Measure what ``argv`` asks for, print the tables, write ``--json``; returns the figures as data."""
    import torch

    args = parse_args(argv)
    from visionlab.run.console import quiet_library_noise

    quiet_library_noise()
    torch.set_num_threads(args.threads)
    env = environment(args.device)
    result = {
        "environment": env,
        "args": vars(args),
        "loops": [],
        "augmentation_img_s": None,
        "epoch_seconds": {},
    }
    where = env.get("gpu", f"CPU ({env['cpu_capability']})")
    print(
        f"visionlab-bench on {args.device} ({where}), torch {env['torch']}, CUDA {env['cuda']}: "
        f"{args.threads} threads, {args.num_workers} loader worker(s) for albumentations, {args.warmup} "
        f"warm-up steps, {args.repeats} repeat(s), {'paired' if args.paired else 'block'} design; img/s "
        "(medians over the repeats)"
    )
    print(
        "| data | backend | precision | bare img/s | full img/s | full/bare | full/bare per repeat |\n"
        "|---|---|---|---|---|---|---|"
    )
    cnn = ["model=cnn", f"data.batch_size={args.batch_size}"]
    tracks = int(max(10, (args.steps + args.warmup) * args.batch_size // (43 * 10 * 0.8) + 2))
    synthetic_signs = ["data=synthetic_signs", f"data.tracks_per_class={tracks}"]
    if "cnn" in args.tasks:
        result["loops"] += loop_ratios(
            [*cnn, *synthetic_signs], "CNN, synthetic signs", args, args.steps, "cnn"
        )
        if args.gtsrb_dir:
            result["loops"] += loop_ratios(
                [*cnn, "data=gtsrb", f"data.data_dir={args.gtsrb_dir}"], "CNN, GTSRB", args, args.steps, "cnn"
            )
    if "cnn_best" in args.tasks:
        best = ["experiment=cnn_best", f"data.batch_size={args.batch_size}"]
        best += [f"data.data_dir={args.gtsrb_dir}"] if args.gtsrb_dir else synthetic_signs
        label = "cnn_best, " + ("GTSRB" if args.gtsrb_dir else "synthetic signs")
        result["loops"] += loop_ratios(best, label, args, args.steps, "cnn_best")
    seg = [
        "experiment=unet_baseline",
        f"{_unet_width_key()}={args.unet_features}",
        f"data.batch_size={args.unet_batch}",
    ]  # the preset's fixed 160-sample epoch: 10–40 batches
    seg += (
        [f"data.data_dir={args.isbi_dir}"]
        if args.isbi_dir
        else ["data=synthetic_seg", f"data.image_size={args.unet_size}"]
    )
    if "unet" in args.tasks:
        label = f"U-Net {args.unet_features}, " + ("ISBI" if args.isbi_dir else "synthetic")
        result["loops"] += loop_ratios(seg, label, args, args.unet_steps, "unet")
        rates = elastic_throughput(seg, device=args.device)
        result["augmentation_img_s"] = {"batch_size": args.unet_batch, **rates}
        print(
            f"\nsegmentation augmentation alone ({args.unet_size}², batch {args.unet_batch}, img/s): "
            + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
        )
    if "epoch" in args.tasks and args.gtsrb_dir:
        print("\nGTSRB epoch wall time (train + validation), experiment=cnn_baseline:")
        for precision in args.precision:
            for backend in args.backends:
                seconds = epoch_seconds(
                    ["experiment=cnn_baseline", f"data.data_dir={args.gtsrb_dir}"],
                    precision,
                    backend,
                    device=args.device,
                )
                result["epoch_seconds"][f"{precision} {backend}"] = seconds
                print(f"  {precision} {backend}: {seconds:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    run_bench()
