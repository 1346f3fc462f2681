"""Positional encodings: ``base.py`` holds the contract; every other module registers one or more."""

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = ["ENCODINGS", "AttentionShape", "PositionalEncoding"]
