"""pytest-utgen: write, validate and run unit tests for untested modules with a local code model."""

__version__ = "0.1.0"
