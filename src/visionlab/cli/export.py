"""``visionlab-export``: parse, call ``inference.export.export``, say what was written; exit 0, or 2 for a
user error (one line)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionlab.cli.errors import refused
from visionlab.config.errors import ConfigError, UserError
from visionlab.inference.export import FORMATS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="visionlab-export",
        description="Export a trained model (a run folder or its "
        "checkpoint) as one ONNX or TorchScript file taking uint8 images (N, H, W, C).",
    )
    p.add_argument("run", help="a run folder (its best.ckpt) or a checkpoint file")
    p.add_argument("--format", required=True, choices=tuple(FORMATS))
    p.add_argument(
        "--out", default=None, help="the file to write (default: <run>/export/model.onnx or model.pt)"
    )
    p.add_argument("--overwrite", action="store_true", help="write over an existing file")
    p.add_argument(
        "--wandb", action="store_true", help="log the file to the run's W&B run as a model artifact"
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load a checkpoint that holds pickled objects (it may run code): only one you trust",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    args = parser().parse_args(argv)
    from visionlab.inference.export import export, log_to_wandb, output_names
    from visionlab.inference.loading import load_model

    try:
        loaded = load_model(args.run, args.trust_checkpoint)
        default = (
            (loaded.source.folder or loaded.source.checkpoint.parent)
            / "export"
            / f"model{FORMATS[args.format]}"
        )
        out = Path(args.out).expanduser() if args.out else default
        if out.exists() and not args.overwrite:
            raise ConfigError(f"--out {out} exists; pass another file, or --overwrite to replace it.")
        export(loaded, args.format, out)
    except UserError as exc:
        return refused(exc)
    print(
        f"exported {loaded.facts.task} model to {out} ({out.stat().st_size / 1e6:.1f} MB): uint8 images (N, "
        f"H, W, {loaded.facts.channels}) → {', '.join(output_names(loaded))}",
        file=sys.stderr,
    )
    if args.wandb:
        print(log_to_wandb(out, loaded), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
