"""Optional online source: turn a W&B project's runs (optionally one group) into local run records, then
report as usual.

Only the offline run records are needed for a report; this exists for runs whose folders are elsewhere. It
maps what the W&B logger stored (config, summary with the test metrics and ``best/`` metrics, per-epoch
history, state) onto a run folder, so the rest of the report does not know where the runs came from. The
variant is the run's ``experiment_name`` from its config: a multirun groups its jobs by the sweep name, so the
group is not it."""

from __future__ import annotations

from pathlib import Path

from visionlab.record.folder import RunFolder
from visionlab.record.layout import Status
from visionlab.record.metric_keys import BEST_PREFIX, EPOCH, N_PARAMS, TASKS, is_metric
from visionlab.tracking.wandb.policy import SINGLE_RUN_JOB_TYPE

STATES = {
    "finished": Status.COMPLETED,
    "failed": Status.FAILED,
    "crashed": Status.FAILED,
    "killed": Status.INTERRUPTED,
    "running": Status.RUNNING,
}
TEST_KEYS = {metric.key for table in TASKS.values() for metric in table.test}


def variant_of(run) -> str:
    """``experiment_name`` from the config; for runs without it, the job type a multirun gives each
    variant."""
    config = dict(run.config)
    job_type = getattr(run, "job_type", None)
    return (
        config.get("experiment_name")
        or (job_type if job_type not in (None, SINGLE_RUN_JOB_TYPE) else None)
        or run.group
        or run.name
    )


def _summary(run) -> dict:
    config, summary = dict(run.config), dict(run.summary)
    meta = getattr(run, "metadata", None) or {}
    cores = meta.get("cpu_count")
    test = {k: v for k, v in summary.items() if k in TEST_KEYS and isinstance(v, (int, float))}
    best = {k.removeprefix(BEST_PREFIX): v for k, v in summary.items() if k.startswith(BEST_PREFIX)}
    return {
        "experiment": variant_of(run),
        "run_name": run.name,
        "seed": config.get("seed"),
        "status": STATES.get(run.state, run.state),
        "error": None if run.state == "finished" else f"W&B state: {run.state}",
        "overrides": [],
        N_PARAMS: summary.get(N_PARAMS),
        "monitor": config.get("monitor"),
        "precision": summary.get("precision") or (config.get("trainer") or {}).get("precision"),
        "device": meta.get("gpu") or (f"CPU ({cores} cores)" if cores else None),
        "git": {"commit": (meta.get("git") or {}).get("commit")},
        "test": test or None,
        "best": best,
        "wandb": {"id": run.id, "url": run.url, "group": run.group},
    }


def _epoch_rows(run) -> list[dict]:
    """History rows merged per epoch (W&B logs train and val metrics as separate steps)."""
    per_epoch: dict[int, dict] = {}
    for row in run.scan_history():
        if row.get(EPOCH) is None:
            continue
        merged = per_epoch.setdefault(int(row[EPOCH]), {EPOCH: int(row[EPOCH])})
        merged.update({k: v for k, v in row.items() if is_metric(k) and isinstance(v, (int, float))})
    return [per_epoch[e] for e in sorted(per_epoch)]


def download_runs(project: str, group: str | None, dest: Path) -> Path:
    """Write one run folder per W&B run of ``project`` (``entity/project``), optionally only ``group``."""
    import wandb

    dest.mkdir(parents=True, exist_ok=True)
    filters = {"group": group} if group else {}
    for run in wandb.Api().runs(project, filters=filters):
        folder = RunFolder(dest / run.id).create()
        folder.write_summary(_summary(run))
        folder.write_config(dict(run.config))
        rows = _epoch_rows(run)
        if rows:
            folder.write_metrics(rows)
    return dest
