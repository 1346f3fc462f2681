"""``Wrapper``: the base of the encodings that decide *which* positions a base encoding reads and
hand it everything else (``randomized``: sorted random positions; ``fpe``: times on a timeline).
It registers no encoding; a subclass sets ``self.base`` and overrides ``positions``."""

from __future__ import annotations

from torch import Tensor

from posbench.encodings.base import PositionalEncoding


class Wrapper(PositionalEncoding):
    """Every hook but ``positions`` is the base's, at the positions the wrapper chose."""

    base: PositionalEncoding

    @property
    def explicit_attention(self) -> bool:
        return self.base.explicit_attention

    @property
    def rotates(self) -> bool:
        return self.base.rotates

    @property
    def replaces_softmax(self) -> bool:
        return self.base.replaces_softmax

    @property
    def private_positions(self) -> bool:
        return self.base.private_positions

    @property
    def commuting_rotation(self) -> bool:
        return self.base.commuting_rotation

    def pair_bytes(self) -> int:
        return self.base.pair_bytes()

    def without_position(self) -> PositionalEncoding:
        """The chosen positions switched off with the rest: the base's position-free version."""
        return self.base.without_position()

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return self.base.embed(x, pos)

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        return self.base.rotate(q, k, q_pos, k_pos, layer)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return self.base.bias(q_pos, k_pos, layer)

    def data_bias(self, x: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return self.base.data_bias(x, q_pos, k_pos, layer)

    def normalize(self, logits: Tensor, layer: int) -> Tensor:
        return self.base.normalize(logits, layer)

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return self.base.score(q, k, q_pos, k_pos, layer)

    def value(self, weights: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return self.base.value(weights, q_pos, k_pos, layer)

    def between_blocks(self, x: Tensor, pos: Tensor, layer: int) -> Tensor:
        return self.base.between_blocks(x, pos, layer)

    def ffn(self, h: Tensor, pos: Tensor, layer: int) -> Tensor:
        return self.base.ffn(h, pos, layer)
