"""Published results as an input (``--reference <yaml>``): the reference's per-trial numbers beside this study's.

The file (see ``experiments/reference/*.yaml``) names its source, the data and split it was measured on, its
training length when the source gives one, the run-record key its numbers correspond to, and per variant (named
as this study's experiments) a list of trials per key::

    name: seed study
    source: where the numbers were taken from
    task: classification
    metric: test/acc            # the key compared (Δ and its 95 % interval)
    data: ..., split: ..., epochs: null
    variants:
      cnn_baseline: {trials: {test/acc: [0.9589, 0.9582, 0.9588]}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ReferenceFileError(ValueError):
    """A reference file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Reference:
    name: str
    source: str
    task: str
    metric: str
    data: str = ""
    split: str = ""
    epochs: int | None = None
    note: str = ""
    variants: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # variant → key → trials

    def trials(self, variant: str, key: str | None = None) -> list[float]:
        return list((self.variants.get(variant) or {}).get(key or self.metric) or [])

    def keys(self) -> list[str]:
        """The reference's keys, the compared metric first."""
        found = dict.fromkeys([self.metric])
        for per_key in self.variants.values():
            found.update(dict.fromkeys(per_key))
        return list(found)

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "task": self.task, "metric": self.metric,
                "data": self.data, "split": self.split, "epochs": self.epochs, "note": self.note,
                "variants": self.variants}


def _numbers(path: Path, where: str, values) -> list[float]:
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise ReferenceFileError(f"{path}: {where} must be a list of numbers, one per trial")
    return [float(v) for v in values]


def load_reference(path: Path) -> Reference:
    """Read and check a reference file (YAML, data only)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ReferenceFileError(f"{path}: cannot read the reference file: {exc}") from exc
    if not isinstance(raw, dict):
        raise ReferenceFileError(f"{path}: expected a mapping with name, source, task, metric and variants")
    missing = [k for k in ("name", "source", "task", "metric", "variants") if not raw.get(k)]
    if missing:
        raise ReferenceFileError(f"{path}: missing {', '.join(missing)}")
    variants = {}
    for variant, entry in dict(raw["variants"]).items():
        trials = (entry or {}).get("trials") if isinstance(entry, dict) else None
        if not isinstance(trials, dict) or not trials:
            raise ReferenceFileError(f"{path}: variants.{variant}.trials must map metric keys to per-trial lists")
        variants[str(variant)] = {str(k): _numbers(path, f"variants.{variant}.trials.{k}", v) for k, v in trials.items()}
    epochs = raw.get("epochs")
    return Reference(str(raw["name"]), str(raw["source"]), str(raw["task"]), str(raw["metric"]),
                     str(raw.get("data") or ""), str(raw.get("split") or ""),
                     int(epochs) if isinstance(epochs, (int, float)) else None, str(raw.get("note") or ""), variants)
