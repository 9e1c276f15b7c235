"""Rebuild every study page under experiments/ from its committed records, then the READMEs' copied tables.

    python experiments/regenerate.py                 # every study
    python experiments/regenerate.py seed_optimizers unet_recipe   # some of them
    python experiments/regenerate.py --dry-run       # print the commands only

Each page ``experiments/<study>/report<suffix>/`` is rebuilt from ``experiments/<study>/runs<suffix>/`` with the
title, the ``--reference`` file and the ``--baseline`` the page was made with, all read from its own
``report.json`` (tests/test_committed_studies.py rebuilds every page with this script's own commands), so a page
is rebuilt as it was meant, by today's code. Then ``python -m visionlab.report.readme experiments/<study>`` copies the page tables into the study's
README (its marked blocks), and a README block marked ``<!-- script-output: <script> <arg>... -->`` …
``<!-- /script-output -->`` is replaced by what ``python experiments/<study>/<script> <args>`` prints (e.g.
unet_recipe's tables.py): a script of the study itself; an argument naming a folder of the study is passed as its
path, any other must be a plain word (letters, digits, ``_.:=-``).

Everything runs as ``python -m visionlab.report`` with this checkout's ``src`` first on PYTHONPATH, so the pages
come from the code of this checkout whatever is installed. Run it at a clean commit and name that commit in the
READMEs. It stops at the first failure with the failing command."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

EXPERIMENTS = Path(__file__).resolve().parent
REPO = EXPERIMENTS.parent
SCRIPT_BLOCK = re.compile(
    r"(<!-- script-output: (?P<args>[^>]+?) -->\n)(?P<body>.*?)(<!-- /script-output -->)", re.DOTALL
)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    env.setdefault("WANDB_MODE", "offline")
    return env


def reference_file(name: str) -> Path:
    """The reference YAML whose ``name`` the page recorded (experiments/reference/*.yaml)."""
    found = [
        p
        for p in sorted((EXPERIMENTS / "reference").glob("*.yaml"))
        if (yaml.safe_load(p.read_text()) or {}).get("name") == name
    ]
    if len(found) != 1:
        raise SystemExit(
            f"error: the page names reference {name!r}, found {len(found)} files for it in "
            f"{EXPERIMENTS / 'reference'}; add or rename its YAML."
        )
    return found[0]


def page_command(report: Path) -> list[str]:
    """The command that rebuilds one page from its runs folder, with the page's own title, reference, baseline."""
    runs = report.parent / ("runs" + report.name.removeprefix("report"))
    if not runs.is_dir():
        raise SystemExit(
            f"error: {report} has no records folder {runs}; commit its records (--copy-records)."
        )
    committed = json.loads((report / "report.json").read_text())
    command = [
        sys.executable,
        "-m",
        "visionlab.report",
        str(runs.relative_to(REPO)),
        "--out",
        str(report.relative_to(REPO)),
        "--title",
        committed["title"],
    ]
    if committed.get("reference"):
        command += ["--reference", str(reference_file(committed["reference"]["name"]).relative_to(REPO))]
    baselines = {task["baseline"] for task in committed.get("tasks", {}).values() if task.get("baseline")}
    if (
        len(baselines) == 1
    ):  # the baseline the page compared with, which a study may have picked with --baseline
        command += ["--baseline", baselines.pop()]
    return command


def script_outputs(study: Path, env: dict, dry_run: bool) -> None:
    """Replace each README block marked ``script-output`` by what its study script prints now."""
    readme = study / "README.md"
    text = readme.read_text()

    def run(match: re.Match) -> str:
        script, *rest = shlex.split(match.group("args"))
        # a folder of the study becomes its path; any other argument must be a plain word (e.g. a:b pairs)
        args = [str((study / a).relative_to(REPO)) if (study / a).is_dir() else a for a in rest]
        plain = all((study / a).is_dir() or re.fullmatch(r"[A-Za-z0-9_.:=-]+", a) for a in rest)
        if (
            (study / script).resolve().parent != study.resolve()
            or not (study / script).is_file()
            or not plain
        ):
            raise SystemExit(
                f"error: {readme}: script-output {match.group('args')!r} must name a script of "
                f"{study.name}, then its folders or plain words."
            )
        command = [sys.executable, str((study / script).relative_to(REPO)), *args]
        print("$", shlex.join(command), flush=True)
        if dry_run:
            return match.group(0)
        out = subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
        return match.group(1) + out.strip("\n") + "\n" + match.group(4)

    new = SCRIPT_BLOCK.sub(run, text)
    if new != text:
        readme.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="*", help="study folder names under experiments/ (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, change nothing")
    args = parser.parse_args(argv)
    studies = [EXPERIMENTS / name for name in args.studies] or sorted(
        p for p in EXPERIMENTS.iterdir() if p.is_dir() and any(p.glob("report*/report.json"))
    )
    env = environment()
    for study in studies:
        reports = sorted(p.parent for p in study.glob("report*/report.json"))
        if not reports:
            raise SystemExit(f"error: {study} has no page (report*/report.json) to rebuild.")
        for report in reports:
            command = page_command(report)
            print("$", shlex.join(command), flush=True)
            if not args.dry_run:
                subprocess.run(command, cwd=REPO, env=env, check=True)
        readme = study / "README.md"
        if readme.is_file() and "<!-- report-table:" in readme.read_text():
            command = [sys.executable, "-m", "visionlab.report.readme", str(study.relative_to(REPO))]
            print("$", shlex.join(command), flush=True)
            if not args.dry_run:
                subprocess.run(command, cwd=REPO, env=env, check=True)
        if readme.is_file():
            script_outputs(study, env, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
