"""How a value is checked, in one message format, wherever it is checked. Each value has one home: the
component that owns it (a datamodule its loader sizes and splits, a network its arguments, the model its loss)
checks it when it is built, with ``expect``; the runner builds the model (on the meta device) and the
datamodule (without reading data) right after composition, so every refusal is one ``ConfigError`` line before
anything is written. Values that belong to no visionlab component (seed, trainer, logger, optimizer) are
checked in ``config_checks``.

This module imports nothing from visionlab but its errors, so every layer can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from visionlab.config.errors import ConfigError


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def at_least(lowest: int) -> Callable[[Any], bool]:
    return lambda value: is_integer(value) and value >= lowest


def one_of(*choices) -> Callable[[Any], bool]:
    return lambda value: value in choices


def expect(
    key: str, value, valid: Callable[[Any], bool], expected: str, example: str, nullable: bool = False
):
    """``value`` if ``valid(value)`` (or None where ``nullable``), else ConfigError: ``<key>=<value> is not
    valid: expected <expected>; e.g. <example>.``"""
    if value is None and nullable:
        return value
    if not valid(value):
        raise ConfigError(f"{key}={value!r} is not valid: expected {expected}; e.g. {example}.")
    return value


def choose(key: str, value, choices) -> Any:
    """``value`` if it is one of ``choices``, else ConfigError: ``<key>=<value> is not one of <choices>``."""
    if value not in tuple(choices):
        raise ConfigError(f"{key}={value!r} is not one of {tuple(choices)}")
    return value
