"""The one exception type for bad user input: the CLI prints its message and exits with code 2."""


class ConfigError(ValueError):
    """A configuration that cannot run (unknown choice, invalid value, encoding that does not fit)."""
