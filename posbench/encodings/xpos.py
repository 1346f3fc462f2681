"""xPos, extrapolatable rotary embedding (Sun et al. 2022, "A Length-Extrapolatable Transformer",
arXiv:2212.10554, section "Improve Resolution by Position Encoding": f_q and f_k with the vector zeta):

    q_n -> zeta^( n / scale_base) * R(n) q_n        k_m -> zeta^(-m / scale_base) * R(m) k_m
    zeta_i = (2i / d + gamma) / (1 + gamma),  gamma = 0.4,  i = 0 .. d/2 - 1

where ``R(p)`` is RoPE's rotation (``posbench.encodings.rope``: same half-split pairing and
frequencies ``theta_i = base^(-2i / d)``, full rotary) and zeta_i scales both features of pair i.
Hence ``<q', k'> = sum_i zeta_i^((n - m) / scale_base) * (pair i of <q, R(m - n) k>)``: logits depend
only on ``n - m`` (shift invariant) and, since every zeta_i < 1, decay with the distance ``n - m >= 0``.

Causal only: for keys after the query (``m > n``) the factor zeta^((n - m)/scale_base) *grows* with
distance, so the paper defines xPos for causal (decoder) attention; x-transformers refuses
bidirectional xPos as well (``rotary xpos is not compatible with bidirectional attention``).

Numerical range (convention choice): the factors zeta^(+-n/scale_base) over- or underflow for large
absolute positions, although only their product matters. Like x-transformers' RotaryEmbedding
(``power = (t - max_pos // 2) / scale_base``), rotary-embedding-torch and the authors' torchscale,
posbench measures positions from a centre ``c`` that cancels in every logit:
``q_n -> zeta^((n - c)/scale_base) R(n) q_n``, ``k_m -> zeta^((c - m)/scale_base) R(m) k_m``.
posbench takes ``c = (min + max + 1) // 2`` over the query and key positions of each batch row,
which equals x-transformers' ``max_pos // 2`` for positions 0 .. L-1 and, unlike it, stays centred
when positions start at an offset; it shifts with the positions, so the factors are bit-identical
under a shift. The factors are computed in float32.

What must stay finite is the logit, i.e. the *product* of a query factor and a key factor,
``zeta^((n - m)/scale_base)``, and that for every pair, including the masked future keys m > n of
causal attention: a bias part (``combo [xpos, alibi]``) makes the causal mask a float ``attn_mask``,
where an overflowed logit gives inf + (-inf) = NaN. Over positions 0 .. N-1 the largest product is
``zeta_0^(-(N - 1)/scale_base)`` (query 0, key N-1), ``zeta_0 = gamma / (1 + gamma) = 2/7``. Runs
whose products would leave ``[2^-100, 2^100]`` (float32 ends near 2^128 and 2^-126, leaving
headroom for the q/k values), i.e. ``(N - 1) / scale_base * log2(3.5) > 100``, are refused by
``check_fits``: ``scale_base`` sets how many positions fit, ``1 + floor(100 scale_base / log2(3.5))``
(28329 for the default 512, 443 for scale_base 8). Each factor alone, ``|n - c| <= N // 2``, then
stays within the same range.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.rope import RoPE
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, PositiveFloat

#: The paper's gamma in zeta_i = (2i/d + gamma) / (1 + gamma).
GAMMA = 0.4
#: Largest |log2| of a query factor times a key factor that a run may need (see the module docstring).
MAX_LOG2_FACTOR = 100
#: log2(1 / zeta_0), zeta_0 = gamma / (1 + gamma) the smallest zeta: the fastest-changing factor.
LOG2_INV_ZETA_0 = math.log2((1 + GAMMA) / GAMMA)


def centre(q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """``(min + max + 1) // 2`` over each batch row's query and key positions: ``[B or 1, 1]``."""
    low = torch.minimum(q_pos.amin(-1, keepdim=True), k_pos.amin(-1, keepdim=True))
    high = torch.maximum(q_pos.amax(-1, keepdim=True), k_pos.amax(-1, keepdim=True))
    return (low + high + 1) // 2


@ENCODINGS.register("xpos")
class XPos(RoPE):
    description = "RoPE with per-feature exponential decay of logits with distance, causal only (Sun et al. 2022, xPos)"
    family = "rotary"
    shift_invariant = True
    supports_bidirectional = False

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0, scale_base: PositiveFloat = 512.0):
        super().__init__(shape, base=base)
        self.scale_base = float(scale_base)
        d = shape.head_dim
        zeta = (torch.arange(0, d, 2, dtype=torch.float32) / d + GAMMA) / (1 + GAMMA)
        self.register_buffer("zeta", zeta, persistent=False)

    def factors(self, exponent: Tensor) -> Tensor:
        """``zeta^(exponent / scale_base)`` for integer exponents ``[B or 1, L]``: ``[B or 1, 1, L, d/2]`` (float32)."""
        return self.zeta ** (exponent.to(torch.float32) / self.scale_base)[:, None, :, None]

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        c = centre(q_pos, k_pos)
        q_cos, q_sin = self.cos_sin(q_pos)
        k_cos, k_sin = (q_cos, q_sin) if k_pos is q_pos else self.cos_sin(k_pos)
        up, down = self.factors(q_pos - c), self.factors(c - k_pos)
        return self.apply_rotation(q, q_cos * up, q_sin * up), self.apply_rotation(k, k_cos * down, k_sin * down)

    def max_positions(self) -> int:
        """Longest run (positions 0 .. N-1) whose query-times-key factors stay in [2^-100, 2^100] for
        every pair, masked ones included: the smallest zeta, zeta_0 = gamma / (1 + gamma), needs
        (N - 1) / scale_base * log2(1 / zeta_0) <= 100 (see the module docstring)."""
        return math.floor(self.scale_base * MAX_LOG2_FACTOR / LOG2_INV_ZETA_0) + 1

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        limit = self.max_positions()
        if positions_needed > limit:
            enough = math.ceil((positions_needed - 1) * LOG2_INV_ZETA_0 / MAX_LOG2_FACTOR)
            raise ConfigError(
                f"encoding=xpos keeps the product of its query and key scaling factors within float32 range for at "
                f"most {limit} positions with scale_base={self.scale_base:g} but this run needs {positions_needed}; "
                f"raise encoding.scale_base (to at least {enough}) or shorten {shorten}"
            )
