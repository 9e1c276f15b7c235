"""Published results as an input (``--reference <yaml>``): the reference's per-trial numbers beside this
study's, and its *effects* (each variant's difference to its own baseline) beside this study's effects.

A reference is compared with this study only as far as it measured the same thing. The file says what its
source states and what is inferred (``measured``): an absolute difference (this study − reference) with an
interval is computed only when the source states its data and split and this study's scores are on that same
split of that same data (``Reference.same_measurement``). Otherwise the page shows the two side by side and
compares effects, never absolute scores. The file (see ``experiments/reference/*.yaml``)::

    name: seed study (CNN ablation)
    source: the seed study (seed_study_004.txt), section 1.4, table "Accuracy of the Network on Test Images"
    task: <task>                     # the task of the runs it is compared with
    metric: test/acc                 # the quantity whose effects are compared
    baseline: cnn_baseline           # the reference's own baseline (its effects are differences to it)
    measured:                        # each: what the source states (null: not stated) and what is inferred
      data: {stated: null, inferred: "<data set> (43 classes)"}
      split: {stated: test, inferred: "the data set's official test set"}   # stated split: test or validation
      epochs: {stated: null}
    quantities:                      # per key: the label the page gives it, and this study's key for the
    same quantity
      test/acc: {label: "accuracy on test images", ours: test/acc}
    variants:                        # named as this study's experiments; ``name``: what the source calls it
      cnn_baseline: {name: Baseline, trials: {test/acc: [0.9589, 0.9582, 0.9588]}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from visionlab.record.files import RefusedFile, parse_yaml, read_text

SPLITS = ("test", "validation")


class ReferenceFileError(ValueError):
    """A reference file that cannot be used; the message names the file and what is wrong."""


@dataclass
class Fact:
    """What the source states (None: it does not say) and what is inferred from it (None: nothing)."""

    stated: str | None = None
    inferred: str | None = None

    def words(self) -> str:
        if self.stated and self.inferred:
            return f"{self.stated} (stated); inferred: {self.inferred}"
        if self.stated:
            return f"{self.stated} (stated)"
        if self.inferred:
            return f"not stated; inferred: {self.inferred}"
        return "not stated"


@dataclass
class Quantity:
    label: str
    ours: str | None  # this study's key for the same quantity, None when this study has no such quantity


@dataclass
class Reference:
    name: str
    source: str
    task: str
    metric: str
    baseline: str | None = None
    data: Fact = field(default_factory=Fact)
    split: Fact = field(default_factory=Fact)
    epochs: Fact = field(default_factory=Fact)
    note: str = ""
    quantities: dict[str, Quantity] = field(default_factory=dict)
    variants: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # variant → key → trials
    names: dict[str, str] = field(default_factory=dict)  # variant → what the source calls it

    def trials(self, variant: str, key: str | None = None) -> list[float]:
        return list((self.variants.get(variant) or {}).get(key or self.metric) or [])

    def keys(self) -> list[str]:
        """The reference's keys, the compared metric first."""
        found = dict.fromkeys([self.metric])
        for per_key in self.variants.values():
            found.update(dict.fromkeys(per_key))
        return list(found)

    def label(self, key: str) -> str:
        return self.quantities[key].label if key in self.quantities else key

    def same_measurement(self, split: str, data: list[str]) -> bool:
        """Whether an absolute difference to this study is meaningful: the source states its data and its
        split, this study's scores are on that split, and every run's data names the stated data set."""
        return bool(
            self.data.stated
            and self.split.stated
            and self.split.stated == split
            and data
            and all(self.data.stated.lower() in str(d).lower() for d in data)
        )

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "task": self.task,
            "metric": self.metric,
            "baseline": self.baseline,
            "data": vars(self.data),
            "split": vars(self.split),
            "epochs": vars(self.epochs),
            "note": self.note,
            "quantities": {k: vars(q) for k, q in self.quantities.items()},
            "names": self.names,
            "variants": self.variants,
        }


def _numbers(path: Path, where: str, values) -> list[float]:
    if not isinstance(values, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise ReferenceFileError(f"{path}: {where} must be a list of numbers, one per trial")
    return [float(v) for v in values]


def _fact(path: Path, where: str, raw) -> Fact:
    if raw is None:
        return Fact()
    if not isinstance(raw, dict) or set(raw) - {"stated", "inferred"}:
        raise ReferenceFileError(
            f"{path}: measured.{where} must be a mapping with 'stated' and/or 'inferred' "
            "(null where the source does not say)"
        )
    return Fact(*(None if raw.get(k) is None else str(raw[k]) for k in ("stated", "inferred")))


def load_reference(path: Path) -> Reference:
    """Read and check a reference file (YAML, data only), through the record reader's bounds: a regular file
    of at most ``files.MAX_RECORD_BYTES``, nested at most ``files.MAX_DEPTH`` levels; every error is one line
    naming it."""
    try:
        raw = parse_yaml(read_text(Path(path)), Path(path).name)
    except RefusedFile as exc:
        raise ReferenceFileError(f"{path}: not read: {exc.why}") from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split(": ", 1)[-1]
        raise ReferenceFileError(f"{path}: cannot read the reference file: {why}") from None
    try:
        return _checked(path, raw)
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ReferenceFileError):
            raise
        raise ReferenceFileError(
            f"{path}: not a reference file: a value has the wrong type ({type(exc).__name__})"
        ) from None


def _checked(path: Path, raw) -> Reference:
    if not isinstance(raw, dict):
        raise ReferenceFileError(f"{path}: expected a mapping with name, source, task, metric and variants")
    missing = [k for k in ("name", "source", "task", "metric", "variants") if not raw.get(k)]
    if missing:
        raise ReferenceFileError(f"{path}: missing {', '.join(missing)}")
    if "data" in raw or "split" in raw:
        raise ReferenceFileError(
            f"{path}: 'data' and 'split' go under 'measured', each as {{stated: ..., "
            "inferred: ...}} (null where the source does not say)"
        )
    measured = raw.get("measured") or {}
    if not isinstance(measured, dict):
        raise ReferenceFileError(f"{path}: measured must be a mapping (data, split, epochs)")
    split = _fact(path, "split", measured.get("split"))
    if split.stated is not None and split.stated not in SPLITS:
        raise ReferenceFileError(f"{path}: measured.split.stated must be one of {SPLITS} or null")
    variants, names = {}, {}
    for variant, entry in dict(raw["variants"]).items():
        trials = (entry or {}).get("trials") if isinstance(entry, dict) else None
        if not isinstance(trials, dict) or not trials:
            raise ReferenceFileError(
                f"{path}: variants.{variant}.trials must map metric keys to per-trial lists"
            )
        variants[str(variant)] = {
            str(k): _numbers(path, f"variants.{variant}.trials.{k}", v) for k, v in trials.items()
        }
        names[str(variant)] = str(entry.get("name") or variant)
    quantities = {}
    for key, entry in dict(raw.get("quantities") or {}).items():
        if not isinstance(entry, dict) or not entry.get("label"):
            raise ReferenceFileError(
                f"{path}: quantities.{key} needs a label (and 'ours': this study's key or null)"
            )
        quantities[str(key)] = Quantity(
            str(entry["label"]), None if entry.get("ours") is None else str(entry["ours"])
        )
    baseline = raw.get("baseline")
    if baseline is not None and str(baseline) not in variants:
        raise ReferenceFileError(f"{path}: baseline {baseline!r} is not one of the variants")
    return Reference(
        str(raw["name"]),
        str(raw["source"]),
        str(raw["task"]),
        str(raw["metric"]),
        None if baseline is None else str(baseline),
        _fact(path, "data", measured.get("data")),
        split,
        _fact(path, "epochs", measured.get("epochs")),
        str(raw.get("note") or ""),
        quantities,
        variants,
        names,
    )
