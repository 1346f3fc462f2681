"""The one exception type for bad user input: the CLI prints its message and exits with code 2."""


class ConfigError(ValueError):
    """A configuration that cannot run (unknown choice, invalid value, encoding that does not fit)."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (its type's name if it has none)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
