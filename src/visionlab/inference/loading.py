"""A trained model from a run folder or a checkpoint: which checkpoint, the run's config read as data, the
model rebuilt through the network registry, and the facts of its inputs (``InputFacts``).

A run folder is data a user hands us, possibly one they did not make: ``config.yaml`` is read only when it is
a regular file inside the folder and of a bounded size, parsed with ``yaml.safe_load``, and every ``_target_``
in the parts taken from it (``model``, ``data``) must be one visionlab's own configs name
(``allowed_targets``); a string holding an interpolation (``${...}``) is refused (a resolved record has none).
The checkpoint loads with ``weights_only=True`` (``checkpoints.load_checkpoint``). The network is built from
the registry with ``pretrained`` off: the weights come from the checkpoint, nothing is fetched."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from visionlab.config.errors import ConfigError
from visionlab.record import layout
from visionlab.record.former_names import current_names

CONFIG_BYTES = 4_000_000  # a resolved config.yaml is a few kB; anything far larger is not one
BEST = "best.ckpt"
SUMMARY_BYTES = 16_000_000
CLASSIFIER = "visionlab.tasks.classification.module.ClassificationModule"
SEGMENTER = "visionlab.tasks.segmentation.module.SegmentationModule"
MODEL_TASKS = {CLASSIFIER: "classification", SEGMENTER: "segmentation"}
# keys a model config holds that are how it was trained, not what it is (never needed to rebuild it)
TRAINING_ONLY = ("optimizer", "scheduler", "_target_", "_partial_", "_recursive_", "_convert_")


@dataclass(frozen=True)
class RunSource:
    """Where a model comes from: its checkpoint, and the run folder (with its config) when it lies in one."""

    checkpoint: Path
    folder: Path | None = None
    config: dict | None = None  # the run's config.yaml (checked: ``checked_record``)
    summary: dict = field(default_factory=dict)  # the run's summary.json, {} when absent or unreadable

    @property
    def described(self) -> str:
        return str(self.folder) if self.folder is not None else str(self.checkpoint)


def run_folder_of(path: Path) -> Path | None:
    """The run folder ``path`` names: the folder itself, or ``<run>/checkpoints/<file>.ckpt``'s run; a run
    folder holds the resolved ``config.yaml``."""
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == layout.CHECKPOINTS else None
    if folder is not None and (folder / layout.CONFIG).is_file():
        return folder
    return None


def checkpoint_in(folder: Path, preferred: tuple[str, ...] = (BEST, layout.LAST_CHECKPOINT)) -> Path:
    """The first of ``preferred`` in the run's checkpoints/ (evaluation and prediction: best.ckpt, else
    last.ckpt; resuming: last.ckpt)."""
    for name in preferred:
        if (candidate := folder / layout.CHECKPOINTS / name).is_file():
            return candidate
    raise ConfigError(
        f"ckpt_path={folder}: the run folder holds no {' or '.join(preferred)} in "
        f"{layout.CHECKPOINTS}/ (its training may have failed before the first epoch ended); pass "
        "another run folder or a checkpoint file."
    )


def _inside(folder: Path, name: str, limit: int) -> Path:
    """``folder/name`` as a regular file that resolves inside ``folder`` and holds at most ``limit`` bytes."""
    path = folder / name
    try:
        real, root = path.resolve(strict=True), folder.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise FileNotFoundError(str(path)) from exc
    if real.parent != root or not real.is_file():
        raise ConfigError(
            f"{path}: not a regular file inside the run folder (a link out of it or a special file); "
            "a run folder's records are read only from the folder itself."
        )
    if real.stat().st_size > limit:
        raise ConfigError(
            f"{path}: {real.stat().st_size} bytes, more than a run record's {limit}; it is not one."
        )
    return real


def _read_yaml(path: Path, limit: int) -> object:
    import yaml

    real = _inside(path.parent, path.name, limit)
    try:
        return yaml.safe_load(real.read_text(encoding="utf-8"))
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: not a readable config ({reason}); pass a run folder visionlab wrote."
        ) from None


def read_run_config(folder: Path) -> dict:
    """The run's resolved ``config.yaml``, as data, checked (``checked_record``)."""
    config = _read_yaml(folder / layout.CONFIG, CONFIG_BYTES)
    if not isinstance(config, dict):
        raise ConfigError(
            f"{folder / layout.CONFIG}: does not hold a config (a mapping); pass a run folder "
            "visionlab wrote."
        )
    return checked_record(current_names(config), folder / layout.CONFIG)


def read_summary(folder: Path) -> dict:
    import json

    try:
        real = _inside(folder, layout.SUMMARY, SUMMARY_BYTES)
        summary = json.loads(real.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, ConfigError):
        return {}
    return summary if isinstance(summary, dict) else {}


@functools.cache
def allowed_targets() -> dict[str, frozenset[str]]:
    """The ``_target_`` a run record may name, per place: those visionlab's own configs name (conf/data,
    conf/model, conf/model/optimizer, conf/model/scheduler); and any torch.optim optimizer (``_allowed``)."""
    import yaml

    from visionlab.config.location import config_dir

    conf = config_dir()
    found: dict[str, set[str]] = {"data": set(), "model": set(), "optimizer": set(), "scheduler": set()}
    for place, pattern in (
        ("data", "data/*.yaml"),
        ("model", "model/*.yaml"),
        ("optimizer", "model/optimizer/*.yaml"),
        ("scheduler", "model/scheduler/*.yaml"),
    ):
        for file in conf.glob(pattern):
            try:
                node = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(node, dict) and isinstance(node.get("_target_"), str):
                found[place].add(node["_target_"])
    return {place: frozenset(targets) for place, targets in found.items()}


_TORCH_OPTIMIZER = re.compile(
    r"torch\.optim\.[A-Z][A-Za-z0-9]*"
)  # a class torch.optim exports (no import here)


def _allowed(place: str, target) -> bool:
    allowed = allowed_targets()[place]
    return isinstance(target, str) and (
        target in allowed or (place == "optimizer" and _TORCH_OPTIMIZER.fullmatch(target) is not None)
    )


_TARGET_PLACES = {
    ("data",): "data",
    ("model",): "model",
    ("model", "optimizer"): "optimizer",
    ("model", "scheduler"): "scheduler",
}


def checked_record(config: dict, where: Path) -> dict:
    """``config`` if its ``model`` and ``data`` parts are safe to compose and build: every ``_target_`` in
    them one of ``allowed_targets`` at its place, and no interpolation anywhere in them; else a
    ConfigError."""

    def walk(node, path: tuple[str, ...], depth: int) -> None:
        if depth > 40:
            raise ConfigError(f"{where}: {'.'.join(path)} is nested deeper than any visionlab config.")
        if isinstance(node, str) and "${" in node:
            raise ConfigError(
                f"{where}: {'.'.join(path)} holds an interpolation; a run's config.yaml is resolved "
                "and holds none. Pass a run folder visionlab wrote."
            )
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*path, str(i)), depth + 1)
        if not isinstance(node, dict):
            return
        target = node.get("_target_")
        if target is not None:
            place = _TARGET_PLACES.get(path)
            if place is None or not _allowed(place, target):
                raise ConfigError(
                    f"{where}: {'.'.join((*path, '_target_'))}={str(target)[:120]!r} is not one visionlab's "
                    "configs build; a run folder is data and builds only visionlab's own parts."
                )
        for key, value in node.items():
            walk(value, (*path, str(key)), depth + 1)

    for part in ("model", "data"):
        node = config.get(part)
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: has no {part} section; pass a run folder visionlab wrote.")
        walk(node, (part,), 0)
    if config["model"].get("_target_") not in MODEL_TASKS:
        raise ConfigError(f"{where}: model._target_ is not a visionlab model.")
    return config


def locate(path: str | Path, preferred: tuple[str, ...] = (BEST, layout.LAST_CHECKPOINT)) -> RunSource:
    """A run folder (its best.ckpt, else last.ckpt) or a checkpoint file (with its run's config when it lies
    in a run folder), for evaluation and prediction."""
    given = Path(str(path)).expanduser()
    if not given.exists():
        raise ConfigError(
            f"{path}: no such run folder or checkpoint; pass a run folder (logs/runs/<experiment>/"
            "<run>) or its checkpoints/best.ckpt."
        )
    folder = run_folder_of(given)
    if given.is_dir():
        if folder is None:
            raise ConfigError(
                f"{path}: not a run folder (it has no {layout.CONFIG}); pass a run folder "
                "(logs/runs/<experiment>/<run>) or a checkpoint file."
            )
        checkpoint = checkpoint_in(folder, preferred)
    else:
        checkpoint = given
    if folder is None:
        return RunSource(checkpoint)
    return RunSource(checkpoint, folder, read_run_config(folder), read_summary(folder))


# --------------------------------------------------------------------------------------------- input facts
@dataclass(frozen=True)
class InputFacts:
    """What a model takes and how its training turned images into inputs: enough to feed it new image files.

    ``reader``: how a file was decoded (``fit``: image_folder's shorter side to ``image_size`` and the centre
    square; ``stretch32``: GTSRB's files stretched to 32×32, then ``image_size`` when set (CIFAR-10);
    ``segmentation``: read as stored, grey or RGB, resized to ``image_size`` when set). ``crop``: the centre
    crop evaluation took (classification). ``mean``/``std``: the model's normalisation (applied inside the
    model)."""

    task: str
    channels: int
    reader: str
    image_size: int | None
    crop: int | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    contrast_norm: str = "none"
    threshold: float = 0.5
    tta: str = "none"

    def record(self) -> dict:
        """Plain values, for a checkpoint's ``visionlab`` stamp (loads with weights_only=True)."""
        return {
            "task": self.task,
            "channels": self.channels,
            "reader": self.reader,
            "image_size": self.image_size,
            "crop": self.crop,
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
            "contrast_norm": self.contrast_norm,
            "threshold": self.threshold,
            "tta": self.tta,
        }

    @classmethod
    def from_record(cls, record: Mapping) -> InputFacts:
        return cls(
            task=str(record["task"]),
            channels=int(record["channels"]),
            reader=str(record["reader"]),
            image_size=None if record.get("image_size") is None else int(record["image_size"]),
            crop=None if record.get("crop") is None else int(record["crop"]),
            mean=tuple(float(v) for v in record["mean"]),
            std=tuple(float(v) for v in record["std"]),
            class_names=tuple(str(n) for n in record["class_names"]),
            contrast_norm=str(record.get("contrast_norm", "none")),
            threshold=float(record.get("threshold", 0.5)),
            tta=str(record.get("tta", "none")),
        )


READERS = {  # the data config's class → how its training read an image file
    "ImageFolderDataModule": "fit",
    "GTSRBDataModule": "stretch32",
    "SyntheticSignsDataModule": "stretch32",
    "CIFAR10DataModule": "stretch32",
    "FileSegmentationDataModule": "segmentation",
    "SyntheticSegmentationDataModule": "segmentation",
}


def input_facts(model: Mapping, data: Mapping, class_names=None) -> InputFacts:
    """The input facts of a resolved ``model`` and ``data`` config (a run's config.yaml, or the composed one);
    ``class_names``: the names the data served (summary.json's ``data_facts``), when known."""
    task = MODEL_TASKS.get(str(model.get("_target_")))
    if task is None:
        raise ConfigError(f"model._target_={model.get('_target_')!r} is not a visionlab model.")
    reader = READERS.get(str(data.get("_target_", "")).rsplit(".", 1)[-1])
    if reader is None:
        raise ConfigError(
            f"data._target_={data.get('_target_')!r}: visionlab does not know how its training read "
            "image files, so it cannot feed the model new ones."
        )
    names = class_names if class_names is not None else data.get("class_names")
    if task == "classification":
        count = int(model.get("num_classes") or data.get("num_classes") or 0)
        names = (
            names
            if isinstance(names, (list, tuple)) and len(names) == count
            else [str(i) for i in range(count)]
        )
        crop = data.get("crop")
    else:
        names = names if isinstance(names, (list, tuple)) else ["background", "foreground"]
        crop = None
    return InputFacts(
        task=task,
        channels=int(data.get("channels") or model.get("in_channels") or 3),
        reader=reader,
        image_size=data.get("image_size"),
        crop=crop,
        mean=_floats(model.get("mean", (0.5,))),
        std=_floats(model.get("std", (0.5,))),
        class_names=tuple(str(n) for n in names),
        contrast_norm=str(data.get("contrast_norm") or "none"),
        threshold=float(model.get("threshold", 0.5)),
        tta=str(model.get("tta") or "none"),
    )


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in (values if isinstance(values, (list, tuple)) else [values]))


# --------------------------------------------------------------------------------------------- the model
def model_arguments(cls: type, hparams: Mapping) -> dict:
    """The constructor arguments of ``cls`` among ``hparams`` (plain values), the network with ``pretrained``
    off (the weights come from the checkpoint)."""
    accepted = set(inspect.signature(cls.__init__).parameters) | set(
        inspect.signature(cls.__mro__[1].__init__).parameters
    )
    args = {key: value for key, value in hparams.items() if key in accepted and key not in TRAINING_ONLY}
    if isinstance(args.get("net"), Mapping) and "pretrained" in args["net"]:
        args["net"] = {**args["net"], "pretrained": False}
    return args


@dataclass
class LoadedModel:
    """A trained visionlab model in eval mode, on the CPU, and the facts of its inputs."""

    module: object  # ClassificationModule | SegmentationModule
    facts: InputFacts
    source: RunSource
    stamp: dict = field(default_factory=dict)


def load_model(path: str | Path, trusted: bool = False) -> LoadedModel:
    """The model a run folder or checkpoint holds, its weights loaded, in eval mode."""
    from visionlab.run.checkpoints import ORIGIN, load_checkpoint

    source = locate(path)
    checkpoint = load_checkpoint(str(source.checkpoint), trusted)
    stamp = checkpoint.get(ORIGIN) if isinstance(checkpoint.get(ORIGIN), dict) else {}
    hparams = checkpoint.get("hyper_parameters")
    config = source.config
    if config is not None:
        model_cfg = config["model"]
        facts_names = (source.summary.get("data_facts") or {}).get("class_names")
        facts = input_facts(model_cfg, config["data"], facts_names)
        hparams = {**model_cfg, **(hparams if isinstance(hparams, Mapping) else {})}
        target = model_cfg["_target_"]
    elif isinstance(stamp.get("inputs"), Mapping) and isinstance(hparams, Mapping):
        facts = InputFacts.from_record(stamp["inputs"])
        target = CLASSIFIER if facts.task == "classification" else SEGMENTER
    else:
        raise ConfigError(
            f"{path}: a checkpoint outside a run folder and without visionlab's input facts (written "
            "by an older visionlab); pass its run folder, which holds the config it was trained with."
        )
    cls = _model_class(target)
    module = cls(**model_arguments(cls, hparams))
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        shown = ", ".join(
            [*(f"{k} missing" for k in missing[:3]), *(f"{k} unexpected" for k in unexpected[:3])]
        )
        raise ConfigError(
            f"{source.checkpoint}: its weights do not fit the model its config describes ({shown}); "
            "pass the run folder it was trained in."
        )
    module.eval()
    return LoadedModel(module, facts, source, stamp)


def _model_class(target: str) -> type:
    if target == CLASSIFIER:
        from visionlab.tasks.classification.module import ClassificationModule

        return ClassificationModule
    from visionlab.tasks.segmentation.module import SegmentationModule

    return SegmentationModule
