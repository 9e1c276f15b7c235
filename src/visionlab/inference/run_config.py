"""``ckpt_path=<run folder>`` is enough: evaluation, resume and ``init_from`` take the model and its inputs
from the run that trained it.

The run's ``config.yaml`` (read as data, ``loading.read_run_config``) defines the model (``model``: network,
channels, classes, normalisation), its inputs (``data``: image size, crop, channels, classes and their names,
contrast normalisation, the splits) and what it was judged by (``monitor``). Given on the command line, a
value that says the same is fine, one that contradicts the run (``data.image_size=64`` for a model trained at
36) is refused with one line naming both values, before anything is written. What only says *where* or *how
fast* (``data.data_dir``, batch sizes, loader workers; an evaluation's ``model.tta`` or ``model.threshold``)
may change.

With the command line known (``python train.py`` / ``visionlab-eval``: Hydra's overrides), the run's ``model``
and ``data`` replace the composed ones and the overrides apply on top. Composed in-process (no Hydra runtime:
the overrides are unknown), the composed config stands, and every value that defines the model or its inputs
must agree with the run's.

A completed run's record is never rewritten: ``train=true`` with its folder or its ``best.ckpt`` is refused
with the commands that do what was meant (``init_from=`` fine-tunes its weights in a new run; its
``last.ckpt`` trains it on in a new folder)."""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from visionlab.config.errors import ConfigError
from visionlab.inference.loading import (
    BEST,
    MODEL_TASKS,
    RunSource,
    checkpoint_in,
    read_run_config,
    read_summary,
)
from visionlab.record import layout

# the values that define the model and its inputs: given, they must agree with the run's
MODEL_DEFINING = ("_target_", "net", "num_classes", "in_channels", "input_size", "mean", "std")
DATA_DEFINING = ("image_size", "crop", "channels", "num_classes", "class_names", "contrast_norm")
TOP_LEVEL = ("monitor", "monitor_mode", "seed")  # taken from the run unless given
_MISSING = object()


def source_for(value: str, key: str, train: bool) -> RunSource | None:
    """The run behind ``ckpt_path``/``init_from`` (None for a checkpoint outside a run folder); a run folder
    given names its checkpoint: best.ckpt to evaluate or initialise, last.ckpt to resume."""
    given = Path(str(value)).expanduser()
    if not given.exists():
        raise ConfigError(
            f"{key}={value} does not exist; pass a run folder (logs/runs/<experiment>/<run>) or a "
            "checkpoint file."
        )
    folder = layout.run_folder_with_config(given)
    if folder is None:
        if given.is_dir():
            raise ConfigError(
                f"{key}={value}: not a run folder (it has no {layout.CONFIG}); pass a run folder or "
                "a checkpoint file."
            )
        return None
    resuming = key == "ckpt_path" and train
    checkpoint = (
        given
        if given.is_file()
        else checkpoint_in(folder, (layout.LAST_CHECKPOINT,) if resuming else (BEST, layout.LAST_CHECKPOINT))
    )
    return RunSource(checkpoint, folder, read_run_config(folder), read_summary(folder))


def _keys(overrides: list[str]) -> list[str]:
    """The config keys the command line sets (``model/net=timm`` → ``model.net``, ``+a.b=1`` → ``a.b``); not
    those ``run_overrides`` added."""
    keys = []
    for override in overrides:
        if override in ADDED:
            continue
        key = override.split("=", 1)[0].lstrip("+~").replace("/", ".")
        if key and not key.startswith("hydra"):
            keys.append(key.split("@", 1)[0])
    return keys


def _given(keys: list[str], key: str) -> bool:
    """Whether the command line sets ``key``, a key inside it, or a group holding it."""
    return any(k == key or key.startswith(k + ".") or k.startswith(key + ".") for k in keys)


def _composed(cfg: DictConfig, key: str):
    """The composed value of ``key``, resolved (a resolver's own UserError, e.g. a missing image folder, as
    is)."""
    from omegaconf.errors import OmegaConfBaseException

    from visionlab.config.rules import _user_error_in

    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    except OmegaConfBaseException as exc:
        if (cause := _user_error_in(exc)) is not None:
            raise cause from None
        raise ConfigError(
            f"{key}: cannot be resolved ({str(exc).splitlines()[0]}); set it on the command line."
        ) from None


def _shown(value) -> str:
    text = "null" if value is None else str(value).replace("'", "")
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(key: str, given, theirs, source: RunSource, what: str) -> ConfigError:
    return ConfigError(
        f"{key}={_shown(given)} contradicts {what} {source.folder}, trained with {key}="
        f"{_shown(theirs)}: its config defines the model and its inputs. Drop {key} (ckpt_path=<run> "
        "alone is enough), or train a new model for it."
    )


def adopt_run(cfg: DictConfig, overrides: list[str] | None) -> RunSource | None:
    """Make ``cfg`` evaluate, resume or initialise from the run ``ckpt_path``/``init_from`` names (see the
    module's docstring); ``overrides``: the command line's (None when unknown). Returns the run, or None when
    there is none (no ckpt_path/init_from, or a checkpoint outside a run folder). A ConfigError, before
    anything is written, for a contradiction or a completed record that training would rewrite."""
    ckpt, init = OmegaConf.select(cfg, "ckpt_path"), OmegaConf.select(cfg, "init_from")
    train = OmegaConf.select(cfg, "train") is not False
    if ckpt and init:
        raise ConfigError(
            f"ckpt_path={ckpt} and init_from={init}: pass one. ckpt_path evaluates (train=false) or "
            "resumes a run; init_from starts a new run from a run's weights."
        )
    key, value = ("ckpt_path", ckpt) if ckpt else ("init_from", init)
    if not value or not isinstance(value, str):
        return None
    source = source_for(value, key, train)
    if source is None:
        return None
    if key == "ckpt_path" and train:
        _refuse_rewriting_a_completed_run(source, value)
    what = {"ckpt_path": "the run" if train else "the checkpoint of run", "init_from": "the run"}[key]
    theirs_task = MODEL_TASKS.get(source.config["model"].get("_target_"))
    composed_task = MODEL_TASKS.get(str(_composed(cfg, "model._target_")))
    with open_dict(cfg):
        if overrides is None:
            if theirs_task == composed_task:  # another task: the weights check names the run to pass
                _agree(cfg, source, what)
        else:
            _take(cfg, source, _keys(overrides), what)
        if key == "ckpt_path" and Path(value).expanduser().is_dir():
            cfg.ckpt_path = str(source.checkpoint)
        elif key == "init_from":
            cfg.init_from = str(source.checkpoint)
    return source


def _refuse_rewriting_a_completed_run(source: RunSource, value: str) -> None:
    if source.summary.get("status") != layout.Status.COMPLETED:
        return
    if source.checkpoint.name == layout.LAST_CHECKPOINT and not Path(value).expanduser().is_dir():
        return  # trains on in a new folder (run_record.resume.run_folder_to_resume)
    raise ConfigError(
        f"ckpt_path={value}: run {source.folder} is completed, and a completed record is never rewritten. "
        f"Fine-tune its weights in a new run with init_from={value} (instead of ckpt_path), train it on in a "
        f"new folder with ckpt_path={source.folder / layout.CHECKPOINTS / layout.LAST_CHECKPOINT} and a "
        "larger trainer.max_epochs, or evaluate it with train=false."
    )


def _agree(cfg: DictConfig, source: RunSource, what: str) -> None:
    """Composed in-process: every defining value the composed config and the run both hold must be the
    same."""
    for part, keys in (
        ("data", DATA_DEFINING),
        ("model", MODEL_DEFINING),
    ):  # the data first: the model follows it
        theirs = source.config[part]
        for name in keys:
            mine = _composed(cfg, f"{part}.{name}")
            if mine is _MISSING or name not in theirs:
                continue
            if not _same(mine, theirs[name]):
                raise _refuse(f"{part}.{name}", mine, theirs[name], source, what)


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _take(cfg: DictConfig, source: RunSource, keys: list[str], what: str) -> None:
    """The command line known: the run's model, data and judging metric, with what the command line gives on
    top (a defining value only when it says the same)."""
    run = source.config
    if _given(keys, "experiment") or _given(keys, "experiment_name"):
        if cfg.experiment_name != run.get("experiment_name"):
            raise ConfigError(
                f"experiment_name={_shown(cfg.experiment_name)} contradicts {what} {source.folder} "
                f"(experiment {run.get('experiment_name')!r}): its config defines the model and its "
                "inputs. Drop experiment=/experiment_name= (ckpt_path=<run> alone is enough)."
            )
    elif isinstance(run.get("experiment_name"), str):
        cfg.experiment_name = run["experiment_name"]
    for name in TOP_LEVEL:
        if not _given(keys, name) and name in run:
            cfg[name] = run[name]
    cfg.model = _merged(cfg, "model", copy.deepcopy(run["model"]), MODEL_DEFINING, keys, source, what)
    # another data config (not the one the run used: choosing that one again changes nothing): its values,
    # with the run's defining ones
    if "data" in keys and _composed(cfg, "data._target_") != run["data"].get("_target_"):
        base = _composed(cfg, "data")
        for name in DATA_DEFINING:
            if name in base and name in run["data"]:
                if _given(keys, f"data.{name}") and not _same(base[name], run["data"][name]):
                    raise _refuse(f"data.{name}", base[name], run["data"][name], source, what)
                base[name] = copy.deepcopy(run["data"][name])
        cfg.data = base
    else:
        run_data = copy.deepcopy(run["data"])
        if _composed(cfg, "data._target_") == run_data.get("_target_"):  # keys added since the run was made:
            for name in sorted(set(cfg.data) - set(run_data)):  # their value in conf/data, their one home
                run_data[name] = _composed(cfg, f"data.{name}")
        cfg.data = _merged(cfg, "data", run_data, DATA_DEFINING, keys, source, what)


def _merged(
    cfg: DictConfig,
    part: str,
    base: dict,
    defining: tuple[str, ...],
    keys: list[str],
    source: RunSource,
    what: str,
) -> dict:
    # the group chosen again (model=cnn) is structure, not a value: only another model class contradicts
    given = {k.split(".")[1] for k in keys if k.startswith(part + ".")} | (
        {"_target_"} if part in keys else set()
    )
    for name in sorted(given):
        mine = _composed(cfg, f"{part}.{name}")
        if mine is _MISSING:
            continue
        if name in defining:
            if name in base and not _same(mine, base[name]):
                raise _refuse(f"{part}.{name}", mine, base[name], source, what)
            continue
        base[name] = mine
    return base


def load_initial_weights(model, path: str, trusted: bool) -> None:
    """``init_from``: the checkpoint's weights into the new run's model (already checked to fit it)."""
    from visionlab.run.checkpoints import load_checkpoint

    model.load_state_dict(load_checkpoint(path, trusted)["state_dict"], strict=True)


# --------------------------------------------------------------------------------------------- the command
# line overrides the command-line wrapper added (not the user's): the run's own config groups and experiment
# name
ADDED: list[str] = []


def run_overrides(argv: list[str]) -> list[str]:
    """When the command line evaluates or resumes a run (``ckpt_path=``) or starts from one (``init_from=``):
    the run's experiment name (unless one is given; the new run's folder is named after it) and the config
    groups its model and data were composed from (unless given), so ``data.image_size=64`` is a key the
    composed config has, and is checked against the run's value instead of being an unknown key."""
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep:
            values[key.lstrip("+~")] = value.strip("'\"")
    given = values.get("ckpt_path") or values.get("init_from")
    if not given or given == "null" or "-m" in argv or "--multirun" in argv:
        return []
    folder = layout.run_folder_with_config(Path(given).expanduser())
    if folder is None:
        return []
    try:
        run = read_run_config(folder)
    except (ConfigError, OSError):
        return []  # said with one line when the run starts
    added = []
    if "experiment" in values or "experiment_name" in values:
        return added
    if isinstance(run.get("experiment_name"), str) and run["experiment_name"]:
        added.append("experiment_name=" + _quoted(run["experiment_name"]))
    for group, option in _groups(run).items():
        if group not in values:
            added.append(f"{group}={option}")
    return added


def _groups(run: dict) -> dict[str, str]:
    """The config groups (``data``, ``model``, ``model/net``) whose option builds what the run's config
    holds."""
    import yaml

    from visionlab.config.location import config_dir

    conf = config_dir()

    def target(file: Path):
        try:
            node = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return None
        return node.get("_target_") if isinstance(node, dict) else None

    groups = {}
    name = run["data"].get("name")
    if (
        isinstance(name, str)
        and name.isidentifier()
        and (conf / "data" / f"{name}.yaml").is_file()
        and target(conf / "data" / f"{name}.yaml") == run["data"].get("_target_")
    ):
        groups["data"] = name
    model = next(
        (
            f.stem
            for f in sorted((conf / "model").glob("*.yaml"))
            if target(f) == run["model"].get("_target_")
        ),
        None,
    )
    if model is not None:
        groups["model"] = model
        net = (
            (run["model"].get("net") or {}).get("type") if isinstance(run["model"].get("net"), dict) else None
        )
        if isinstance(net, str) and net.isidentifier() and (conf / "model" / "net" / f"{net}.yaml").is_file():
            groups["model/net"] = net
    return groups


def names_runs_after_their_model(main: Callable[..., Any]) -> Callable[..., Any]:
    """``main`` (reading its overrides from ``sys.argv``, as ``hydra.main`` does) with ``run_overrides`` added
    when the command line evaluates, resumes or starts from a run: the new run's folder and record carry the
    name of the model they use (not the default ``cnn_synthetic``), and its keys are the run's."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        if "--help" not in sys.argv and "-h" not in sys.argv:
            added = run_overrides(sys.argv[1:])
            ADDED[:] = added
            sys.argv.extend(added)
        return main(*args, **kwargs)

    return wrapper


def _quoted(text: str) -> str:
    """A Hydra override value that is ``text`` verbatim (single-quoted, quotes and backslashes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
