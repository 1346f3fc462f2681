"""Rotary position embedding, RoPE (Su et al. 2021, "RoFormer", eq. 34), with three options.

Each pair of query/key features is rotated by the angle ``p * theta_i`` with
``theta_i = base^(-2i / d_rot)``, so that ``<R(p) q, R(s) k> = <q, R(s - p) k>``: logits depend
only on the offset between positions, and rotations preserve norms.

Convention: posbench pairs feature ``i`` with feature ``i + d_rot/2`` ("half-split", as GPT-NeoX
and LLaMA do) rather than adjacent features ``(2i, 2i+1)`` as written in the paper. The two differ
only by a fixed permutation of the head's features, which the learned projections absorb;
half-split avoids strided copies.

Options (the defaults give plain, full RoPE with base 10000):

* ``rotary_fraction`` (partial rotary, as in GPT-J / GPT-NeoX): only the first
  ``d_rot = round(rotary_fraction * d_head)`` features of each head are rotated (half-split within
  them, ``theta_i = base^(-2i / d_rot)``); the other ``d_head - d_rot`` pass through unchanged.
  ``d_rot`` must be even and positive.
* ``scale``, position interpolation (Chen et al. 2023, "Extending Context Window of Large Language
  Models via Positional Interpolation", §2.2, ``f'(x, m) = f(x, m L / L')``): position ``p`` is
  rotated as if it were ``p / scale``; implemented as ``theta_i / scale``.
* ``ntk_alpha``, "NTK-aware" base rescaling (bloc97, r/LocalLLaMA, June 2023; written as
  ``b' = b * s^(|D| / (|D| - 2))`` in Peng et al. 2023, "YaRN", arXiv:2309.00071, §3.1,
  Definition 1): ``base' = base * ntk_alpha^(d_rot / (d_rot - 2))``, which divides the lowest
  frequency ``theta_(d_rot/2 - 1)`` by exactly ``ntk_alpha`` (as interpolation by ``ntk_alpha``
  would) and leaves the highest, ``theta_0 = 1``, unchanged.

Interpolation and NTK rescaling only change the frequencies, so every variant stays a rotation:
shift invariant and norm preserving.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.sinusoidal import inverse_frequencies
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, PositiveFloat, Range


def rotate_half_split(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs ``(x[..., i], x[..., i + d/2])`` by the angle whose cosine and sine are given."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).to(x.dtype)


@ENCODINGS.register("rope")
class RoPE(PositionalEncoding):
    description = "rotary embedding of queries and keys (Su et al. 2021, RoFormer eq. 34); partial, PI, NTK options"
    family = "rotary"
    shift_invariant = True
    fractional = True

    def __init__(
        self,
        shape: AttentionShape,
        base: FrequencyBase = 10000.0,
        rotary_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0,
        scale: PositiveFloat = 1.0,
        ntk_alpha: PositiveFloat = 1.0,
    ):
        super().__init__(shape)
        if shape.head_dim % 2:
            raise ConfigError(
                f"encoding={self.name} needs an even head dimension (model.d_model / model.heads), got {shape.head_dim}"
            )
        rotated = round(rotary_fraction * shape.head_dim)
        if rotated == 0 or rotated % 2:
            raise ConfigError(
                f"encoding={self.name}: rotary_fraction={rotary_fraction} rotates round({rotary_fraction} * "
                f"{shape.head_dim}) = {rotated} features of each head; it must be an even number > 0"
            )
        if ntk_alpha != 1.0:
            if rotated == 2:
                raise ConfigError(
                    f"encoding={self.name}: ntk_alpha needs at least 4 rotated features (the formula divides by d_rot - 2)"
                )
            base *= ntk_alpha ** (rotated / (rotated - 2))
        #: number of rotated features per head, and the base actually used (after NTK rescaling)
        self.rotated = rotated
        self.base = base
        self.register_buffer("inv_freq", inverse_frequencies(rotated, base) / scale, persistent=False)

    def cos_sin(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine and sine of the angles ``p * theta_i``, each ``[B or 1, 1, L, d_rot/2]`` (float32)."""
        angles = pos.to(torch.float32)[:, None, :, None] * self.inv_freq
        return angles.cos(), angles.sin()

    def apply_rotation(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Rotate the first ``d_rot`` features of ``x`` (half-split) and pass the rest through."""
        return torch.cat((rotate_half_split(x[..., : self.rotated], cos, sin), x[..., self.rotated :]), dim=-1)

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        q_cos_sin = self.cos_sin(q_pos)
        k_cos_sin = q_cos_sin if k_pos is q_pos else self.cos_sin(k_pos)
        return self.apply_rotation(q, *q_cos_sin), self.apply_rotation(k, *k_cos_sin)
