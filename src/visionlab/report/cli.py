"""`visionlab-report <sweep folder or run folders…> --out <dir>`: REPORT.md, report.html and report.json, offline.

With --wandb-project (online, optional) the runs of a W&B project/group are fetched into <out>/wandb_runs/
as run records first and reported like local ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visionlab.report import render
from visionlab.report.build import build, run_names, write_numbers
from visionlab.report.collect import collect
from visionlab.report.reference import ReferenceFileError, load_reference


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="visionlab-report",
        description="Seed-aggregated report over run folders (found recursively: any folder with summary.json).")
    parser.add_argument("paths", nargs="*", help="sweep folders, run folders or any folder above them")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--baseline", help="variant the others are compared with (default: *baseline, "
                                           "else the first alphabetically)")
    parser.add_argument("--title", default="Experiment report")
    parser.add_argument("--no-figures", dest="figures", action="store_false",
                        help="tables and text only: no figure is drawn (drawing is most of a report's time; each "
                             "figure's caption stays, and report.json is the same)")
    parser.add_argument("--reference", type=Path, help="YAML of published per-trial results to print beside this "
                                                       "study's (e.g. experiments/reference/seed_gtsrb_cnn.yaml)")
    parser.add_argument("--copy-records", type=Path, help="copy the small part of each run record (config, "
                        "metrics, summary, per-case and per-class files, sample images; no checkpoints, no W&B "
                        "files) into this folder, so the report can be rebuilt from it alone")
    parser.add_argument("--wandb-project", help="optional, online: also report the runs of this entity/project")
    parser.add_argument("--wandb-group", help="with --wandb-project: only this W&B group (the sweep name of a multirun, else the experiment name)")
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb_project:
        parser.error("give run/sweep folders, or --wandb-project")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = list(args.paths)
    if args.wandb_project:
        from visionlab.report.wandb_source import download_runs

        try:
            paths.append(download_runs(args.wandb_project, args.wandb_group, args.out / "wandb_runs"))
        except Exception as exc:  # noqa: BLE001 - offline, no login, unknown project: say so, report the rest
            print(f"cannot fetch runs from W&B project {args.wandb_project}: {type(exc).__name__}: {exc}")
            if not paths:
                return 2
    try:
        reference = load_reference(args.reference) if args.reference else None
    except ReferenceFileError as exc:
        print(exc)
        return 2
    collection = collect(paths)
    note = None
    if args.copy_records:
        for run, name in run_names(collection.runs).items():
            next(r for r in collection.runs if r.path == run).folder.copy_audit_files(args.copy_records / name)
        note = f"their reviewable part is copied to `{args.copy_records}`"
    doc, numbers = build(collection, baseline=args.baseline, title=args.title, reference=reference,
                         records_note=note)
    args.out.mkdir(parents=True, exist_ok=True)
    markdown, page = render.write(doc, args.out, figures=args.figures)
    write_numbers(numbers, args.out)
    print(f"{len(collection.runs)} runs, {len(numbers['caveats'])} caveats")
    print(f"wrote {markdown} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
