"""Positional encodings. Importing this package registers every module listed below."""

from posbench.encodings import alibi, learned, none, rope, sinusoidal, t5  # noqa: F401  (registration)
from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError

__all__ = ["ENCODINGS", "AttentionShape", "PositionalEncoding", "build_encoding"]


def build_encoding(cfg: dict, shape: AttentionShape) -> PositionalEncoding:
    """Instantiate the encoding named by ``cfg["name"]`` with the rest of ``cfg`` as keywords."""
    options = {k: v for k, v in cfg.items() if k != "name"}
    cls = ENCODINGS.get(cfg["name"])
    try:
        return cls(shape, **options)
    except (TypeError, ValueError) as err:  # unknown or invalid keys in the YAML or an override
        raise ConfigError(f"encoding={cfg['name']}: {err}") from None
