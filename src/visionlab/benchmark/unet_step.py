"""Training throughput of the U-Net (forward + backward + Adam step), fp32 vs bf16 autocast, channels_last.

python -m visionlab.benchmark.unet_step [--features 64 32] [--size 256] [--batch 4] [--steps 5] [--device
cpu|cuda] [--json out.json]

On a GPU the clock is read after ``torch.cuda.synchronize()``; bf16 is autocast on the device the model is on.
The training loop's share of this speed is ``visionlab-bench --tasks unet``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
import torch.nn.functional as F

from visionlab.networks.registry import SEGMENTATION, NetworkIO, build_network


def measure(
    features: int,
    precision: str,
    size: int = 256,
    batch: int = 4,
    steps: int = 5,
    warmup: int = 2,
    device: str = "cpu",
    up_mode: str = "bilinear",
    depth: int = 5,
) -> float:
    """Training images per second for one configuration."""
    torch.manual_seed(0)
    spec = {"type": "unet", "features_start": features, "depth": depth, "up_mode": up_mode}
    model = build_network(spec, NetworkIO(SEGMENTATION, 1, 1))
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, size, size, 1, device=device).permute(
        0, 3, 1, 2
    )  # NHWC strides, as the model feeds it
    y = (torch.rand(batch, 1, size, size, device=device) > 0.5).float()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = (
        torch.autocast(device_type=device.split(":")[0], dtype=dtype) if dtype else contextlib.nullcontext()
    )

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = model(x)
        F.binary_cross_entropy_with_logits(logits.float(), y).backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows and the environment to this JSON file")
    args = parser.parse_args(argv)
    rows = []
    print(
        f"U-Net training throughput, {args.size}×{args.size}, batch {args.batch}, {args.device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    print("| features_start | params | precision | img/s |\n|---|---|---|---|")
    for features in args.features:
        unet = build_network({"type": "unet", "features_start": features}, NetworkIO(SEGMENTATION, 1, 1))
        params = sum(p.numel() for p in unet.parameters())
        for precision in args.precision:
            ips = measure(
                features, precision, args.size, args.batch, args.steps, args.warmup, device=args.device
            )
            rows.append(
                {"features_start": features, "params": params, "precision": precision, "img_per_s": ips}
            )
            print(f"| {features} | {params:,} | {precision} | {ips:.2f} |", flush=True)
    if args.json:
        from visionlab.benchmark.pipeline import environment

        with open(args.json, "w") as f:
            json.dump(
                {"environment": environment(args.device), "args": vars(args), "rows": rows}, f, indent=2
            )
    return rows


if __name__ == "__main__":
    main()
