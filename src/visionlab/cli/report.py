"""`visionlab-report <sweep folder or run folders…> --out <dir>`: REPORT.md, report.html and report.json,
offline.

With --wandb-project (online, optional) the runs of a W&B project/group are fetched into <out>/wandb_runs/
as run records first and reported like local ones.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from visionlab.report.analysis.reference import ReferenceFileError, load_reference
from visionlab.report.render import document as render


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="visionlab-report",
        description="Seed-aggregated report over run folders (found recursively: any folder with "
        "summary.json).",
    )
    parser.add_argument("paths", nargs="*", help="sweep folders, run folders or any folder above them")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument(
        "--baseline",
        help="variant the others are compared with (default: *baseline, else the first alphabetically)",
    )
    parser.add_argument("--title", default="Experiment report")
    parser.add_argument(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="tables and text only: no figure is drawn (drawing is most of a report's time; each "
        "figure's caption stays, and report.json is the same)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="YAML of published per-trial results to print beside this "
        "study's (e.g. experiments/reference/seed_gtsrb_cnn.yaml)",
    )
    parser.add_argument(
        "--copy-records",
        type=Path,
        help="copy the small part of each run record (config, "
        "metrics, summary, per-case and per-class files, sample images; no checkpoints, no W&B "
        "files) into this folder, so the report can be rebuilt from it alone",
    )
    parser.add_argument(
        "--wandb-project", help="optional, online: also report the runs of this entity/project"
    )
    parser.add_argument(
        "--wandb-group",
        help="with --wandb-project: only this W&B group (the sweep name of a multirun, else the experiment "
        "name)",
    )
    args = parser.parse_args(argv)
    if not args.paths and not args.wandb_project:
        parser.error("give run/sweep folders, or --wandb-project")
    return args


def _error(message: str) -> int:
    """A user error: one line on stderr, exit code 2 (as ``cli_errors``)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def _unwritable(folder: Path, flag: str) -> str | None:
    """Why ``folder`` (an output folder, made if needed) cannot be written, or None; checked before any
    work."""
    if folder.exists() and not folder.is_dir():
        return f"{flag} {folder} is a file, not a folder; give a folder (it is created if needed)"
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not existing.is_dir():
        return f"{flag} {folder}: {existing} is a file, so no folder can be made there; give another folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{flag} {folder}: {existing} is not writable; give a folder you can write to"
    return None


def _missing_paths(paths: list[str]) -> str | None:
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            return f"{raw}: no such folder; give sweep folders, run folders or any folder above them"
        if not path.is_dir():
            return f"{raw} is a file, not a folder; give the run folder that holds it"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = list(args.paths)
    for folder, flag in ((args.out, "--out"), (args.copy_records, "--copy-records")):
        if folder is not None and (why := _unwritable(folder, flag)):
            return _error(why)
    if why := _missing_paths(paths):
        return _error(why)
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
        return _error(str(exc))
    # imported once the arguments passed their checks: a refused argument answers at once, without torch
    from visionlab.report.build import build, run_names
    from visionlab.report.collect import collect

    collection = collect(paths)
    note = None
    try:
        if args.copy_records:
            for run, name in run_names(collection.runs).items():
                next(r for r in collection.runs if r.path == run).folder.copy_audit_files(
                    args.copy_records / name
                )
            note = f"their reviewable part is copied to `{args.copy_records}`"
        doc, numbers = build(
            collection, baseline=args.baseline, title=args.title, reference=reference, records_note=note
        )
        replacing = any((args.out / name).is_file() for name in render.REPORT_FILES)
        args.out.mkdir(parents=True, exist_ok=True)
        markdown, page = render.write(doc, args.out, figures=args.figures, numbers=numbers)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: nothing half-written is left
        where = exc.filename or args.out
        print(
            f"error: cannot write the report to {args.out} ({exc.strerror or type(exc).__name__}: {where}); "
            "its report files are as they were",
            file=sys.stderr,
        )
        return 1
    print(
        f"{len(collection.runs)} runs, {len(numbers['caveats'])} caveats"
        + (f", {len(collection.skipped)} skipped (named in the caveats)" if collection.skipped else "")
    )
    print(f"{'replaced the earlier report: ' if replacing else 'wrote '}{markdown} and {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
