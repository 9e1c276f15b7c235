"""``visionlab-predict``: parse, call ``inference.predict.predict``, say what was written; exit 0, 1 when no
file was predicted, 2 for a user error (one line). The prediction stack is imported after the arguments are
parsed, so ``--help`` and a usage error answer at once."""

from __future__ import annotations

import argparse
import sys

from visionlab.cli.errors import refused
from visionlab.config.errors import UserError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="visionlab-predict",
        description="Apply a trained model (a run folder or its checkpoint) to image files.",
    )
    p.add_argument(
        "run", help="a run folder (logs/runs/<experiment>/<run>: its best.ckpt) or a checkpoint file"
    )
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or quoted globs")
    p.add_argument("--out", required=True, help="the folder to write predictions into (must be new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="write into a folder that holds earlier predictions"
    )
    p.add_argument(
        "--top-k", type=int, default=5, help="classification: classes per image in predictions.csv"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument(
        "--tta",
        default="as-trained",
        choices=("as-trained", "none", "flips"),
        help="segmentation: test-time flips (default: as the run was tested, model.tta)",
    )
    p.add_argument("--probabilities", action="store_true", help="segmentation: also write probability maps")
    p.add_argument(
        "--overlays", action="store_true", help="segmentation: also write the masks over the images"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="load a checkpoint that holds pickled objects (it may run code): only one you trust",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    import logging
    import os

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.getLogger("visionlab").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    from visionlab.inference.predict import SKIPPED, predict

    try:
        outcome = predict(
            args.run,
            args.inputs,
            args.out,
            args.top_k,
            args.batch_size,
            args.device,
            args.tta,
            args.probabilities,
            args.overlays,
            args.overwrite,
            not args.no_progress,
            args.trust_checkpoint,
        )
    except UserError as exc:
        return refused(exc)
    total = outcome.predicted + len(outcome.skipped)
    print(
        f"predicted {outcome.predicted} of {total} file(s) into {outcome.out}"
        + (
            f"; {len(outcome.skipped)} skipped (unreadable), listed in {outcome.out / SKIPPED}"
            if outcome.skipped
            else ""
        ),
        file=sys.stderr,
    )
    for name, reason in outcome.skipped[:5]:
        print(f"  skipped {name}: {reason}", file=sys.stderr)
    return 1 if outcome.predicted == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
