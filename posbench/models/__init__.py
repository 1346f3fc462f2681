"""Model families: ``base.py`` holds the contract; each family module registers itself."""

from posbench.models.base import MODELS, SequenceModel
from posbench.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = ["MODELS", "SequenceModel"]
