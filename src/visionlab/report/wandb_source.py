"""Optional online source: turn a W&B project's runs (one group) into local run records, then report as usual.

Only the offline run records are needed for a report; this exists for runs whose folders are elsewhere. It maps
what the W&B logger stored (config, summary with test/* and best/* keys, per-epoch history, state) onto
summary.json, config.yaml and metrics.csv, so the rest of the report does not know where the runs came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from visionlab.tracking.run_record import write_csv

STATES = {"finished": "completed", "failed": "failed", "crashed": "failed", "killed": "interrupted",
          "running": "running"}


def _summary(run) -> dict:
    config, summary = dict(run.config), dict(run.summary)
    meta = getattr(run, "metadata", None) or {}
    cores = meta.get("cpu_count")
    test = {k: v for k, v in summary.items() if k.startswith("test/") and isinstance(v, (int, float))}
    best = {k.removeprefix("best/"): v for k, v in summary.items() if k.startswith("best/")}
    return {
        "experiment": run.group or config.get("experiment_name") or run.name,
        "run_name": run.name,
        "seed": config.get("seed"),
        "status": STATES.get(run.state, run.state),
        "error": None if run.state == "finished" else f"W&B state: {run.state}",
        "overrides": [],
        "n_params": summary.get("n_params"),
        "monitor": config.get("monitor"),
        "precision": (config.get("trainer") or {}).get("precision"),
        "device": meta.get("gpu") or (f"CPU ({cores} cores)" if cores else None),
        "git": {"commit": (meta.get("git") or {}).get("commit")},
        "test": test or None,
        "best": best,
        "wandb": {"id": run.id, "url": run.url},
    }


def _epoch_rows(run) -> list[dict]:
    """History rows merged per epoch (W&B logs train and val metrics as separate steps)."""
    per_epoch: dict[int, dict] = {}
    for row in run.scan_history():
        if row.get("epoch") is None:
            continue
        merged = per_epoch.setdefault(int(row["epoch"]), {"epoch": int(row["epoch"])})
        merged.update({k: v for k, v in row.items() if "/" in k and isinstance(v, (int, float))})
    return [per_epoch[e] for e in sorted(per_epoch)]


def download_runs(project: str, group: str | None, dest: Path) -> Path:
    """Write one run folder per W&B run of ``project`` (``entity/project``), optionally only ``group``."""
    import wandb

    dest.mkdir(parents=True, exist_ok=True)
    filters = {"group": group} if group else {}
    for run in wandb.Api().runs(project, filters=filters):
        folder = dest / run.id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(_summary(run), indent=2, default=str))
        (folder / "config.yaml").write_text(yaml.safe_dump(dict(run.config), sort_keys=False))
        rows = _epoch_rows(run)
        if rows:
            write_csv(folder / "metrics.csv", rows)
    return dest
