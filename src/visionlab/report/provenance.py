"""Provenance: each run's command, commit, hardware, precision and wall time; config differences between variants."""

from __future__ import annotations

import json
import shlex

from visionlab.report.collect import Run
from visionlab.report.escape import code, md
from visionlab.report.format import MISSING, fmt_seconds
from visionlab.report.render import Heading, Paragraph, Table
from visionlab.run_record.layout import SUMMARY


def commit_of(run: Run) -> str:
    git = run.summary.get("git") or {}
    return (git.get("commit") or MISSING)[:10] + (" (dirty)" if git.get("dirty") else "")


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(node, default=str)}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_differences(runs_by_variant: dict[str, list[Run]]) -> Table | Paragraph:
    """Keys whose value is constant within each variant but differs between variants (seeds, paths drop out)."""
    flat = {v: [_flatten(r.config) for r in runs if r.config] for v, runs in runs_by_variant.items()}
    flat = {v: configs for v, configs in flat.items() if configs}
    if len(flat) < 2:
        return Paragraph("Fewer than two variants with a resolved config: nothing to compare.")
    keys = sorted(set().union(*(c.keys() for configs in flat.values() for c in configs)))
    variants = sorted(flat)
    rows = []
    for key in keys:
        per_variant = {v: {c.get(key, MISSING) for c in flat[v]} for v in variants}
        if all(len(values) == 1 for values in per_variant.values()) and len(
                {next(iter(values)) for values in per_variant.values()}) > 1:
            rows.append([code(key)] + [md(_short(next(iter(per_variant[v])))) for v in variants])
    if not rows:
        return Paragraph("The variants' resolved configs do not differ (beyond seeds and run folders).")
    return Table(["config key", *[md(v) for v in variants]], rows)


def provenance(runs: list[Run], by_task: dict[str, dict[str, list[Run]]], names: dict) -> list:
    rows = []
    for run in runs:
        command = "python train.py " + " ".join(shlex.quote(str(o)) for o in run.overrides)
        rows.append([md(run.variant), md(run.seed), md(run.status), code(names[run.path]), code(command.strip()),
                     md(commit_of(run)), md(run.summary.get("device", MISSING)),
                     md(run.summary.get("precision", MISSING)), fmt_seconds(run.summary.get("wall_time_s"))])
    versions = {json.dumps(r.summary.get("versions"), sort_keys=True) for r in runs if r.summary.get("versions")}
    blocks = [Heading(2, "Provenance"), Paragraph("Each run's folder, exact command (its Hydra overrides), code "
                                                  "version, hardware, precision and wall time."),
              Table(["variant", "seed", "status", "run folder", "command", "git commit", "device", "precision",
                     "wall time"], rows)]
    for task, runs_by_variant in sorted(by_task.items()):
        suffix = f" ({task})" if len(by_task) > 1 else ""
        blocks += [Heading(3, f"Config differences between variants{suffix}"), config_differences(runs_by_variant)]
    if len(versions) == 1:
        listed = ", ".join(f"{k} {v}" for k, v in json.loads(versions.pop()).items())
        blocks.append(Paragraph(f"Package versions (all runs): {md(listed)}."))
    elif versions:
        blocks.append(Paragraph(f"Package versions differ between runs; see each run's {SUMMARY}."))
    return blocks
