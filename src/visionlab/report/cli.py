"""`visionlab-report <sweep folder or run folders…> --out <dir>`: REPORT.md, report.html and report.json, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionlab.report import render
from visionlab.report.build import build, write_numbers
from visionlab.report.collect import collect


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="visionlab-report",
        description="Seed-aggregated report over run folders (found recursively: any folder with summary.json).")
    parser.add_argument("paths", nargs="+", help="sweep folders, run folders or any folder above them")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--baseline", help="variant the others are compared with (default: *baseline, "
                                           "else the first alphabetically)")
    parser.add_argument("--title", default="Experiment report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    collection = collect(args.paths)
    doc, numbers = build(collection, baseline=args.baseline, title=args.title)
    args.out.mkdir(parents=True, exist_ok=True)
    markdown, page = render.write(doc, args.out)
    write_numbers(numbers, args.out)
    print(f"{len(collection.runs)} runs, {len(numbers['warnings'])} warnings")
    print(f"wrote {markdown} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
