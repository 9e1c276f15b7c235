"""Errors that are the user's to fix: shown as one clear message, never as a library traceback."""

from visionlab.data.errors import DataError
from visionlab.models.base import NonFiniteLossError


class ConfigError(ValueError):
    """A config key or value that cannot work; the message names the key and what to do."""


UserError = (DataError, ConfigError, NonFiniteLossError)
