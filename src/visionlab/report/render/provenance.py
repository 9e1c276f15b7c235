"""Provenance: each run's folder, a command that reproduces it (its Hydra overrides plus the data it read),
commit (with any hand correction of the record shown), hardware and wall time; config differences between
variants."""

from __future__ import annotations

import json
import shlex

from visionlab.record.layout import SUMMARY
from visionlab.report.collect import Run
from visionlab.report.limits import MAX_CONFIG_NODES
from visionlab.report.render.document import Heading, Paragraph, Table
from visionlab.report.render.escape import code, md
from visionlab.report.render.format import MISSING, fmt_seconds

CORRECTED = "corrected"


def commit_of(run: Run) -> str:
    git = run.summary.get("git") if isinstance(run.summary.get("git"), dict) else {}
    return str(git.get("commit") or MISSING)[:10] + (" (dirty)" if git.get("dirty") else "")


def corrections(runs: list[Run]) -> dict[tuple[str, str], list[Run]]:
    """(field, note) → runs: every ``corrected`` note a summary.json carries (one level deep, e.g.
    ``git``)."""
    found: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        for section, value in run.summary.items():
            if isinstance(value, dict) and value.get(CORRECTED):
                found.setdefault((f"{section}.{CORRECTED}", str(value[CORRECTED])), []).append(run)
            elif section == CORRECTED and value:
                found.setdefault((CORRECTED, str(value)), []).append(run)
    return found


def _flatten(node, prefix: str = "", budget: list[int] | None = None) -> dict[str, str]:
    budget = budget if budget is not None else [MAX_CONFIG_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        return {}
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}.", budget))
        return flat
    return {prefix[:-1]: json.dumps(node, default=str)[:500]}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _per_run(key: str) -> bool:
    """Keys that name this run's own folder, checkpoint or seed: they differ between any two runs, so with one
    seed per variant they would look like a difference between variants."""
    leaf = key.rsplit(".", 1)[-1]
    return (
        key in ("ckpt_path", "run_name")
        or key.startswith(("paths.", "hydra."))
        or leaf in ("dirpath", "default_root_dir", "output_dir", "save_dir", "log_dir", "seed")
    )


_WIDE = 6  # more variants than this: variants become rows, at most _KEYS keys (columns) per table
_WIDE_NAMES = (
    90  # characters of variant names side by side (names a setting sweep gives, ``variants``): rows too
)
_KEYS = 3


def config_differences(runs_by_variant: dict[str, list[Run]]) -> list[Table | Paragraph]:
    """Keys whose value is constant within each variant but differs between variants (seeds, paths drop
    out)."""
    flat = {v: [_flatten(r.config) for r in runs if r.config] for v, runs in runs_by_variant.items()}
    flat = {v: configs for v, configs in flat.items() if configs}
    if len(flat) < 2:
        return [Paragraph("Fewer than two variants with a resolved config: nothing to compare.")]
    keys = sorted(set().union(*(c.keys() for configs in flat.values() for c in configs)))
    variants = sorted(flat)
    rows = []
    for key in (k for k in keys if not _per_run(k)):
        per_variant = {v: {c.get(key, MISSING) for c in flat[v]} for v in variants}
        if (
            all(len(values) == 1 for values in per_variant.values())
            and len({next(iter(values)) for values in per_variant.values()}) > 1
        ):
            rows.append([code(key)] + [md(_short(next(iter(per_variant[v])))) for v in variants])
    if not rows:
        return [Paragraph("The variants' resolved configs do not differ (beyond seeds and run folders).")]
    if len(variants) <= _WIDE and sum(len(v) for v in variants) <= _WIDE_NAMES:
        return [Table(["config key", *[md(v) for v in variants]], rows)]
    # many variants: one row per variant, the differing keys as columns, a few per table so a page stays
    # narrow
    tables = []
    for start in range(0, len(rows), _KEYS):
        part = rows[start : start + _KEYS]
        tables.append(
            Table(
                ["variant", *[row[0] for row in part]],
                [[md(v), *[row[1 + i] for row in part]] for i, v in enumerate(variants)],
            )
        )
    return tables


def command(run: Run) -> str:
    """The run's Hydra overrides, plus the data folder it read when no override names it (a data folder picked
    by an environment variable or a default is not in the overrides, so they alone would read other data)."""
    overrides = [str(o) for o in run.overrides]
    data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    if data.get("data_dir") and not any(o.lstrip("+").startswith("data.data_dir=") for o in overrides):
        overrides.append(f"data.data_dir={data['data_dir']}")
    return ("python train.py " + " ".join(_quote(o) for o in overrides)).strip()


def _quote(override: str) -> str:
    """Shell quoting that keeps the page's named roots ($DATA, $LOGS: ``portable``) expandable: a reader sets
    them to their own folders and pastes the command."""
    plain = override.replace("$DATA", "DATA").replace("$LOGS", "LOGS")
    if plain == override or "$" in plain or '"' in plain or "`" in plain or "\\" in plain:
        return shlex.quote(override)
    return override if shlex.quote(plain) == plain else f'"{override}"'


def _versions(runs: list[Run]) -> list:
    versions = {
        json.dumps(r.summary.get("versions"), sort_keys=True)
        for r in runs
        if isinstance(r.summary.get("versions"), dict)
    }
    if len(versions) == 1:
        listed = json.loads(versions.pop())
        known = ", ".join(f"{k} {v}" for k, v in listed.items() if v is not None)
        unknown = [k for k, v in listed.items() if v is None]
        return [
            Paragraph(
                f"Package versions (all runs): {md(known)}."
                + (
                    f" Not recorded (not installed as a package where the runs ran; the commit identifies "
                    f"the code): {md(', '.join(unknown))}."
                    if unknown
                    else ""
                )
            )
        ]
    if versions:
        return [Paragraph(f"Package versions differ between runs; see each run's {SUMMARY}.")]
    return []


def provenance(
    runs: list[Run],
    by_task: dict[str, dict[str, list[Run]]],
    names: dict,
    together: dict[int, int] | None = None,
) -> list:
    fixes = corrections(runs)
    marks = {id(r): i + 1 for i, (_, rs) in enumerate(sorted(fixes.items())) for r in rs}
    rows = []
    for run in runs:
        commit = md(commit_of(run)) + (f" (corrected, note {marks[id(run)]})" if id(run) in marks else "")
        at_once = (together or {}).get(id(run))
        rows.append(
            [
                md(run.variant),
                md(run.seed),
                f"{code(names[run.path])}: {code(command(run))}",
                commit,
                md(run.summary.get("device", MISSING)),
                fmt_seconds(run.summary.get("wall_time_s")),
                str(at_once) if at_once else MISSING,
            ]
        )
    sweeps = sorted({str(r.config.get("sweep_name")) for r in runs if r.config.get("sweep_name")})
    launched = (
        (
            f" The runs were jobs of the multirun {', '.join(map(code, sweeps))}: each command reruns one "
            "job alone; how many jobs ran at once is not in the records (the launcher's settings are not "
            "copied), but the last column counts the runs of these records that overlapped in time on the "
            "same device (from their epoch timestamps and wall times)."
        )
        if sweeps
        else ""
    )
    blocks = [
        Heading(2, "Provenance"),
        Paragraph(
            "Each run's folder and a command that reproduces it: its Hydra overrides, plus `data.data_dir` "
            "set to the data the run read when no override names it." + launched
        ),
        Table(
            ["variant", "seed", "folder: command", "git commit", "device", "wall time", "runs at once"],
            rows,
            "provenance",
        ),
    ]
    if fixes:
        blocks.append(
            Paragraph(
                "Corrections made by hand to the records after the runs, as each summary.json states them: "
                + "; ".join(
                    f"note {i + 1} ({len(rs)} run{'s' * (len(rs) != 1)}, `{md(field)}`): “{md(note)}”"
                    for i, ((field, note), rs) in enumerate(sorted(fixes.items()))
                )
                + "."
            )
        )
    for task, runs_by_variant in sorted(by_task.items()):
        suffix = f" ({task})" if len(by_task) > 1 else ""
        blocks += [
            Heading(3, f"Config differences between variants{suffix}"),
            *config_differences(runs_by_variant),
        ]
    return blocks + _versions(runs)
