"""Positional encodings. Importing this package registers every module listed below."""

from posbench.encodings import alibi, learned, none, rope, sinusoidal, t5  # noqa: F401  (registration)
from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding

__all__ = ["ENCODINGS", "AttentionShape", "PositionalEncoding"]
