"""Errors pytest-utgen raises for bad input; each message says what to do next."""


class UtgenError(Exception):
    """Base class: a problem with the user's input or environment, reported without a traceback."""


class ConfigError(UtgenError):
    """Bad option value or bad ``[tool.utgen]`` table."""


class ModelError(UtgenError):
    """The model file is missing, corrupt, or cannot be loaded."""


class BackendError(UtgenError):
    """The model backend failed to answer (server down, bad reply)."""


class OutputError(UtgenError):
    """A generated file cannot be written without losing user data."""
