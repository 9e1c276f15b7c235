"""Config values checked once, right after composition and before anything runs or is written: a bad value is one
``ConfigError`` naming the key, the value and what to do, never an exception from deep inside a library.

One table (``RULES``) of the values a run depends on; a key the composed config does not have (e.g. a data option
of the other task family) is not checked. Then the values that must agree with each other or with the environment
(``CROSS_CHECKS``). A refused run writes nothing: these checks run before its folder is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from visionlab.errors import ConfigError

_ABSENT = object()
SEED_MAX = 2**32 - 1  # seed_everything (numpy) takes seeds in [0, 2**32 - 1]


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def _int(lowest: int) -> Callable[[Any], bool]:
    return lambda v: _integer(v) and v >= lowest


def _positive(v) -> bool:
    return _number(v) and v > 0


RULES: tuple[Rule, ...] = (
    Rule("seed", lambda v: _integer(v) and 0 <= v <= SEED_MAX, f"an integer in [0, {SEED_MAX}]", "seed=1"),
    Rule("train", lambda v: isinstance(v, bool), "true or false", "train=true"),
    Rule("test", lambda v: isinstance(v, bool), "true or false", "test=true"),
    Rule("monitor_mode", lambda v: v in ("min", "max"), "min or max", "monitor_mode=max"),
    Rule("threads", _int(1), "an integer ≥ 1, or null for all cores", "threads=4", nullable=True),
    Rule("ckpt_path", lambda v: isinstance(v, str) and v != "", "a checkpoint file",
         "ckpt_path=<run>/checkpoints/last.ckpt", nullable=True),
    Rule("trust_checkpoint", lambda v: isinstance(v, bool), "true or false", "trust_checkpoint=false"),
    Rule("trainer.max_epochs", lambda v: _integer(v) and (v >= 1 or v == -1), "an integer ≥ 1 (-1: no limit)",
         "trainer.max_epochs=10", nullable=True),
    Rule("trainer.min_epochs", _int(0), "an integer ≥ 0", "trainer.min_epochs=1", nullable=True),
    Rule("trainer.check_val_every_n_epoch", _int(1), "an integer ≥ 1", "trainer.check_val_every_n_epoch=1",
         nullable=True),
    Rule("trainer.log_every_n_steps", _int(1), "an integer ≥ 1", "trainer.log_every_n_steps=10"),
    Rule("trainer.num_sanity_val_steps", lambda v: _integer(v) and v >= -1, "an integer ≥ -1",
         "trainer.num_sanity_val_steps=1"),
    Rule("trainer.gradient_clip_val", lambda v: _number(v) and v >= 0, "a number ≥ 0, or null",
         "trainer.gradient_clip_val=1.0", nullable=True),
    *(Rule(f"trainer.limit_{stage}_batches", _batch_limit, "a batch count (integer ≥ 0) or a fraction in [0, 1]",
           f"trainer.limit_{stage}_batches=0.5", nullable=True) for stage in ("train", "val", "test")),
    Rule("data.batch_size", _int(1), "an integer ≥ 1", "data.batch_size=64"),
    Rule("data.eval_batch_size", _int(1), "an integer ≥ 1", "data.eval_batch_size=256", nullable=True),
    Rule("data.num_workers", _int(0), "an integer ≥ 0", "data.num_workers=0"),
    Rule("data.val_fraction", lambda v: _number(v) and 0 <= v < 1, "a fraction in [0, 1)", "data.val_fraction=0.2"),
    Rule("data.test_fraction", lambda v: _number(v) and 0 <= v < 1, "a fraction in [0, 1)",
         "data.test_fraction=0.2"),
    Rule("data.image_size", _int(1), "an integer ≥ 1, or null to keep the stored size", "data.image_size=256",
         nullable=True),
    Rule("data.train_repeats", _int(1), "an integer ≥ 1", "data.train_repeats=1"),
    Rule("data.crop", _int(1), "an integer ≥ 1 (pixels)", "data.crop=28"),
    Rule("model.optimizer.lr", _positive, "a number > 0", "model.optimizer.lr=0.001"),
    Rule("model.optimizer.weight_decay", lambda v: _number(v) and v >= 0, "a number ≥ 0",
         "model.optimizer.weight_decay=0.0"),
    Rule("model.num_classes", _int(2), "an integer ≥ 2", "model.num_classes=43"),
    Rule("model.features_start", _int(1), "an integer ≥ 1", "model.features_start=64"),
    Rule("model.depth", _int(1), "an integer ≥ 1", "model.depth=5"),
    Rule("logger.wandb.mode", lambda v: v in ("auto", "online", "offline", "disabled"),
         "one of auto, online, offline, disabled", "logger.wandb.mode=offline"),
    Rule("logger.wandb.init_timeout", _positive, "a number of seconds > 0", "logger.wandb.init_timeout=30"),
)


def _value(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        reason = str(exc).splitlines()[0]
        raise ConfigError(f"{key}: cannot be resolved ({reason}); set it, e.g. on the command line as "
                          f"{key}=<value>.") from None


def _evaluation_has_a_checkpoint(cfg: DictConfig) -> None:
    if _value(cfg, "train") is False and not _value(cfg, "ckpt_path"):
        raise ConfigError("train=false evaluates a checkpoint: also pass ckpt_path=<run>/checkpoints/best.ckpt")


def _flip_classes_are_classes(cfg: DictConfig) -> None:
    flip, classes = _value(cfg, "data.flip_classes"), _value(cfg, "model.num_classes")
    if flip is _ABSENT or flip is None:
        return
    shown = list(flip) if isinstance(flip, (list, tuple, ListConfig)) else flip
    if not isinstance(flip, (list, tuple, ListConfig)) or not all(_integer(c) for c in flip):
        raise ConfigError(f"data.flip_classes={shown!r} is not valid: expected a list of class ids; "
                          "e.g. data.flip_classes=[11,12,13] (or [] to flip none).")
    upper = classes if _integer(classes) else None
    bad = [c for c in flip if c < 0 or (upper is not None and c >= upper)]
    if bad:
        within = f"[0, {upper}) (model.num_classes={upper})" if upper is not None else "≥ 0"
        raise ConfigError(f"data.flip_classes={shown!r} is not valid: {', '.join(map(str, bad))} "
                          f"{'is not a class id' if len(bad) == 1 else 'are not class ids'}; class ids are in "
                          f"{within}. Pass only the ids of mirror-symmetric classes, e.g. data.flip_classes=[11,12,13].")


def _crop_is_the_model_input(cfg: DictConfig) -> None:
    crop, size = _value(cfg, "data.crop"), _value(cfg, "model.input_size")
    if _integer(crop) and _integer(size) and crop != size:
        raise ConfigError(f"data.crop={crop} does not match model.input_size={size}: the CNN is built for "
                          f"{size}×{size} inputs and is fed data.crop×data.crop crops. Set them equal, e.g. "
                          f"data.crop={size} (a crop must also fit inside the images).")


def _wandb_mode_from_the_environment(cfg: DictConfig) -> None:
    """WANDB_MODE wins over logger.wandb.mode: a value wandb would refuse is refused here, naming the variable."""
    wandb = _value(cfg, "logger.wandb")
    if wandb is _ABSENT or not isinstance(wandb, DictConfig) or "_target_" not in wandb:
        return
    from visionlab.tracking.wandb_logger import environment_mode

    environment_mode()


CROSS_CHECKS: tuple[Callable[[DictConfig], None], ...] = (
    _evaluation_has_a_checkpoint,
    _flip_classes_are_classes,
    _crop_is_the_model_input,
    _wandb_mode_from_the_environment,
)


def check_config(cfg: DictConfig, rules: tuple[Rule, ...] = RULES) -> None:
    """Raise a ConfigError for the first value that breaks its rule (keys the config lacks are skipped), then for
    the first disagreement ``CROSS_CHECKS`` find."""
    for rule in rules:
        value = _value(cfg, rule.key)
        if value is _ABSENT or (value is None and rule.nullable):
            continue
        if not rule.valid(value):
            raise ConfigError(f"{rule.key}={value!r} is not valid: expected {rule.expected}; e.g. {rule.example}.")
    for check in CROSS_CHECKS:
        check(cfg)
