"""Rotary position embedding, RoPE (Su et al. 2021, "RoFormer", eq. 34).

Each pair of query/key features is rotated by the angle ``p * theta_i`` with
``theta_i = base^(-2i / d_head)``, so that ``<R(p) q, R(s) k> = <q, R(s - p) k>``: logits depend
only on the offset between positions, and rotations preserve norms.

Convention: posbench pairs feature ``i`` with feature ``i + d/2`` ("half-split", as GPT-NeoX and
LLaMA do) rather than adjacent features ``(2i, 2i+1)`` as written in the paper. The two differ only
by a fixed permutation of the head's features, which the learned projections absorb; half-split
avoids strided copies. The rotation is full (all ``d_head`` features) by default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.sinusoidal import inverse_frequencies


def rotate_half_split(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs ``(x[..., i], x[..., i + d/2])`` by the angle whose cosine and sine are given."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).to(x.dtype)


@ENCODINGS.register("rope")
class RoPE(PositionalEncoding):
    description = "rotary embedding of queries and keys (Su et al. 2021, RoFormer eq. 34)"
    family = "rotary"
    shift_invariant = True

    def __init__(self, shape: AttentionShape, base: float = 10000.0):
        super().__init__(shape)
        if shape.head_dim % 2:
            raise ConfigError(f"encoding=rope needs an even head dimension (model.d_model / model.heads), got {shape.head_dim}")
        self.base = float(base)
        self.register_buffer("inv_freq", inverse_frequencies(shape.head_dim, self.base), persistent=False)

    def cos_sin(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine and sine of the angles ``p * theta_i``, each ``[B or 1, 1, L, d_head/2]`` (float32)."""
        angles = pos.to(torch.float32)[:, None, :, None] * self.inv_freq
        return angles.cos(), angles.sin()

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor) -> tuple[Tensor, Tensor]:
        q_cos_sin = self.cos_sin(q_pos)
        k_cos_sin = q_cos_sin if k_pos is q_pos else self.cos_sin(k_pos)
        return rotate_half_split(q, *q_cos_sin), rotate_half_split(k, *k_cos_sin)
