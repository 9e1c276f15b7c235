"""Errors that are the user's to fix, for the whole package: each message names the key, file or value at
fault and says what to do. The CLI shows them as one line and exits with code 2, never as a library traceback.

This module imports nothing from visionlab, so every layer can raise these errors.
"""


class UserError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


class ConfigError(UserError, ValueError):
    """A config key or value that cannot work; the message names the key and what to do."""


class DataError(UserError, ValueError):
    """Missing or malformed data; the message names the file or key and what to do."""


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN/inf; training stops and the last good checkpoint is kept. ``epoch``: where it
    happened."""

    def __init__(self, message: str, epoch: int | None = None):
        super().__init__(message)
        self.epoch = epoch


class TrackingError(UserError, RuntimeError):
    """The experiment tracker (W&B) cannot start as configured; the message says how to run without it."""


class DiskFullError(UserError, RuntimeError):
    """A write failed because the disk (or the user's quota) is full; the message names the file, the room
    left and what was kept (``disk_full``)."""
