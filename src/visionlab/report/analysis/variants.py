"""Which runs are one variant. A variant is an experiment name; but a sweep over settings that leaves the name
alone (``python train.py -m experiment=cnn_best data.scale=0,0.1 seed=1,2``) would otherwise be read as one
variant with twice the seeds, and its mean would mix two recipes. Runs of one experiment whose command lines
set a result-relevant key to different values are therefore split, each named after the experiment and those
keys' values."""

from __future__ import annotations

from collections.abc import Iterable

# keys that name, place or show a run, or pick its seed: they never make another variant
PER_RUN = {
    "seed",
    "run_name",
    "sweep_name",
    "ckpt_path",
    "threads",
    "logger",
    "force",
    "experiment_name",
    "train",
    "test",
    "data.num_workers",
    "data.pin_memory",
}
PER_RUN_PREFIXES = (
    "paths.",
    "hydra.",
    "hydra/",
    "trainer.enable_",
    "callbacks.rich_progress_bar",
    "logger.",
    "callbacks.pause",
)


def _key_value(override: str) -> tuple[str, str] | None:
    if "=" not in override:
        return None
    key, value = override.split("=", 1)
    key = key.lstrip("+~")
    if key in PER_RUN or key.startswith(PER_RUN_PREFIXES):
        return None
    return key, value


def _resolved(config: dict, key: str):
    """The run's resolved scalar value of a dotted key (its config.yaml), else None (also for a group choice
    such as ``data=<name>``, whose node holds per-run values like the seed)."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return None if isinstance(node, (dict, list)) else node


def _text(value) -> str:
    """One spelling per value: 0, 0.0 and "0" (a command line's text) are the same setting."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _value(run, setting: dict, key: str) -> str:
    if key in setting:
        return _text(setting[key])
    resolved = _resolved(run.config, key)
    return "default" if resolved is None else _text(resolved)


def split_names(runs: Iterable) -> dict[int, str]:
    """id(run) → its variant name where runs of one experiment differ in a result-relevant override."""
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.variant, []).append(run)
    names: dict[int, str] = {}
    for experiment, members in groups.items():
        settings = [dict(kv for kv in map(_key_value, run.overrides) if kv) for run in members]
        keys = sorted({k for s in settings for k in s})
        # compared by what the command line said (one text for "${paths.output_dir}/…" in every run); a key a
        # run did not set counts as its resolved config value, or "default"; a run with no recorded command
        # line (e.g. one killed before Hydra saved it) is unknown and left out of the comparison
        values = [
            {k: _value(run, s, k) for k in keys} if run.overrides else {k: None for k in keys}
            for run, s in zip(members, settings)
        ]
        differing = [k for k in keys if len({v[k] for v in values if v[k] is not None}) > 1]
        if not differing:
            continue
        for run, value in zip(members, values):
            shown = ", ".join(f"{k}={value[k] if value[k] is not None else '?'}" for k in differing)
            names[id(run)] = f"{experiment} ({shown})"
    return names
