"""Errors raised for bad user input. Each message names the file or config key and the fix."""


class ConfigError(ValueError):
    """A config value, override or input file that cannot work; the message says which and how to fix it."""
