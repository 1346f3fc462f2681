"""posbench: positional-encoding ablations for Transformers."""

__version__ = "0.1.0"
