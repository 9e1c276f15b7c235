"""Config values checked once, right after composition and before anything runs or is written: a bad value is
one ``ConfigError`` naming the key, the value and what to do, never an exception from deep inside a library.

Each value has one home (``checks.py``): a value a visionlab component owns (``data.*``, ``model.*`` but the
optimizer) is checked by that component when it is built, and the run builds the model and the datamodule
(without reading its data) before its folder is made. Here: one table (``RULES``) of the values that belong to
no visionlab component (seed, trainer, optimizer); then the values that must agree with each other or with the
environment (``CROSS_CHECKS``), the model following the data among them, and the settings each visionlab
logger plug-in checks itself (whether the model solves the data's task is the task registry's check,
``tasks.registry.check_model_solves_the_data``, run right after). A key the composed config does not have is
not checked. A refused run writes
nothing: all of this runs before its folder is made (``run.plan.check_composed`` calls it, once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from visionlab.config.checks import at_least, expect, is_integer, is_number
from visionlab.config.errors import ConfigError, UserError

_ABSENT = object()
SEED_MAX = 2**32 - 1  # seed_everything (numpy) takes seeds in [0, 2**32 - 1]


_integer, _number = is_integer, is_number


def _batch_limit(value) -> bool:
    """Lightning's limit_*_batches: a count (int ≥ 0) or a fraction in [0, 1]."""
    return (_integer(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0)


@dataclass(frozen=True)
class Rule:
    key: str
    valid: Callable[[Any], bool]
    expected: str  # what a valid value is, as the message says it
    example: str
    nullable: bool = False


_int = at_least


def _positive(v) -> bool:
    return _number(v) and v > 0


RULES: tuple[Rule, ...] = (
    Rule("seed", lambda v: _integer(v) and 0 <= v <= SEED_MAX, f"an integer in [0, {SEED_MAX}]", "seed=1"),
    Rule("train", lambda v: isinstance(v, bool), "true or false", "train=true"),
    Rule("test", lambda v: isinstance(v, bool), "true or false", "test=true"),
    Rule("monitor_mode", lambda v: v in ("min", "max"), "min or max", "monitor_mode=max"),
    Rule("threads", _int(1), "an integer ≥ 1, or null for all cores", "threads=4", nullable=True),
    Rule(
        "ckpt_path",
        lambda v: isinstance(v, str) and v != "",
        "a checkpoint file",
        "ckpt_path=<run>/checkpoints/last.ckpt",
        nullable=True,
    ),
    Rule("trust_checkpoint", lambda v: isinstance(v, bool), "true or false", "trust_checkpoint=false"),
    Rule(
        "trainer.max_epochs",
        lambda v: _integer(v) and (v >= 1 or v == -1),
        "an integer ≥ 1 (-1: no limit)",
        "trainer.max_epochs=10",
        nullable=True,
    ),
    Rule(
        "trainer.max_steps",
        lambda v: _integer(v) and (v >= 1 or v == -1),
        "an integer ≥ 1 (-1: no limit)",
        "trainer.max_steps=3000",
        nullable=True,
    ),
    Rule("trainer.min_epochs", _int(0), "an integer ≥ 0", "trainer.min_epochs=1", nullable=True),
    Rule(
        "trainer.check_val_every_n_epoch",
        _int(1),
        "an integer ≥ 1",
        "trainer.check_val_every_n_epoch=1",
        nullable=True,
    ),
    Rule("trainer.log_every_n_steps", _int(1), "an integer ≥ 1", "trainer.log_every_n_steps=10"),
    Rule(
        "trainer.num_sanity_val_steps",
        lambda v: _integer(v) and v >= -1,
        "an integer ≥ -1",
        "trainer.num_sanity_val_steps=1",
    ),
    Rule(
        "trainer.gradient_clip_val",
        lambda v: _number(v) and v >= 0,
        "a number ≥ 0, or null",
        "trainer.gradient_clip_val=1.0",
        nullable=True,
    ),
    *(
        Rule(
            f"trainer.limit_{stage}_batches",
            _batch_limit,
            "a batch count (integer ≥ 0) or a fraction in [0, 1]",
            f"trainer.limit_{stage}_batches=0.5",
            nullable=True,
        )
        for stage in ("train", "val", "test")
    ),
    Rule("model.optimizer.lr", _positive, "a number > 0", "model.optimizer.lr=0.001"),
    Rule(
        "model.optimizer.weight_decay",
        lambda v: _number(v) and v >= 0,
        "a number ≥ 0",
        "model.optimizer.weight_decay=0.0",
    ),
)


def _user_error_in(exc: BaseException) -> UserError | None:
    """The UserError a resolver raised, wherever OmegaConf's chain of resolution errors holds it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _value(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        if (
            cause := _user_error_in(exc)
        ) is not None:  # a resolver's own message (e.g. a missing image folder)
            raise cause from None
        reason = str(exc).splitlines()[0]
        raise ConfigError(
            f"{key}: cannot be resolved ({reason}); set it, e.g. on the command line as {key}=<value>."
        ) from None


def _evaluation_has_a_checkpoint(cfg: DictConfig) -> None:
    if _value(cfg, "train") is False and not _value(cfg, "ckpt_path"):
        raise ConfigError(
            "train=false evaluates a checkpoint: also pass ckpt_path=<run>/checkpoints/best.ckpt"
        )


# the model's keys that follow the data's facts by interpolation (conf/model/*.yaml)
FOLLOWS = (
    ("model.num_classes", "data.num_classes"),
    ("model.in_channels", "data.channels"),
    ("model.input_size", "data.input_size"),
)


def _model_follows_the_data(cfg: DictConfig) -> None:
    """An override of a model key that follows the data (``model.input_size=40``) builds a network for other
    data."""
    for model_key, data_key in FOLLOWS:
        model, data = _value(cfg, model_key), _value(cfg, data_key)
        if _integer(model) and _integer(data) and model != data:
            raise ConfigError(
                f"{model_key}={model} does not match {data_key}={data}: the model follows the data "
                f"({model_key}: ${{{data_key}}}). Drop the {model_key} override, or change the data "
                f"(e.g. {'data.crop' if data_key == 'data.input_size' else data_key}={model})."
            )


def _no_network_argument_directly_under_model(cfg: DictConfig) -> None:
    """A config file of an earlier version (the user's own experiment or model config) that sets a network's
    argument as ``model.<key>``: the model class would fail with a constructor TypeError; name the new key.
    (On the command line Hydra refuses the key and ``cli.errors`` names the new one.)"""
    from visionlab.config.moved_keys import NETWORK_ARGUMENTS

    model = _value(cfg, "model")
    if not isinstance(model, DictConfig):
        return
    for key in NETWORK_ARGUMENTS:
        if key in model:
            raise ConfigError(
                f"model.{key}: the network's arguments moved under model.net (the network model/net "
                f"names): write model.net.{key} instead (in a config file, under model: net:)."
            )


def _loggers_check_their_settings(cfg: DictConfig) -> None:
    """Each logger plug-in of visionlab (``logger.<name>._target_`` in ``visionlab.``) checks its own
    values: the ``check_settings(node, key)`` of its target's module, where it has one (W&B: its mode, its
    start timeout and WANDB_MODE). Other loggers are Lightning's, checked when they are built."""
    import importlib

    loggers = _value(cfg, "logger")
    if not isinstance(loggers, DictConfig):
        return
    for name, node in loggers.items():
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        if not isinstance(target, str) or not target.startswith("visionlab.") or "." not in target:
            continue
        try:
            module = importlib.import_module(target.rsplit(".", 1)[0])
        except ImportError:
            continue  # a target that does not exist is named when the logger is built
        if callable(check := getattr(module, "check_settings", None)):
            check(node, f"logger.{name}")


CROSS_CHECKS: tuple[Callable[[DictConfig], None], ...] = (
    _evaluation_has_a_checkpoint,
    _model_follows_the_data,
    _no_network_argument_directly_under_model,
    _loggers_check_their_settings,
)


def check_config(cfg: DictConfig, rules: tuple[Rule, ...] = RULES) -> None:
    """Raise a ConfigError for the first value that breaks its rule (keys the config lacks are skipped), then
    for the first disagreement ``CROSS_CHECKS`` find."""
    for rule in rules:
        value = _value(cfg, rule.key)
        if value is _ABSENT or (value is None and rule.nullable):
            continue
        expect(rule.key, value, rule.valid, rule.expected, rule.example)
    for check in CROSS_CHECKS:
        check(cfg)
