"""Errors for bad data input: each names the file or key and says what to do."""


class DataError(ValueError):
    """Raised for missing or malformed data; the message is meant for the user, not a traceback reader."""
