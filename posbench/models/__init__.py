"""Model families. Importing this package registers every family listed below."""

from posbench.models import decoder, encoder  # noqa: F401  (registration)
from posbench.models.base import MODELS, SequenceModel

__all__ = ["MODELS", "SequenceModel"]
