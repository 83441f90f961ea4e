"""The error of a setting that cannot work, raised by every layer that checks one."""


class ConfigError(ValueError):
    """A setting that cannot work; the message says which and why, on one line."""
