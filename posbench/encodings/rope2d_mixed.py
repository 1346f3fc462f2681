"""2D rotary embedding with learnable mixed frequencies, RoPE-Mixed (Heo et al. 2024, "Rotary
Position Embedding for Vision Transformer", ECCV, §3.2 "Mixed learnable frequency").

Each layer l, head h and feature pair j has a learnable 2D frequency (f_row, f_col) = F[l, h, j]; the
pair of a query or key at patch (r, c) is rotated by

    phi_j = r * F[l, h, j, 0] + c * F[l, h, j, 1]

(the paper's theta^y_t p^y_n + theta^x_t p^x_n, y the row and x the column), so one pair can rotate
along any direction of the image, e.g. the diagonals, which axial RoPE cannot. The angle is linear in
(r, c), so patch-to-patch logits depend only on (r - r', c - c') for any F: shift invariant in 2D,
norm preserving. Layer l uses F[l] (the ``layer`` argument of ``rotate``).

Initialisation (the paper's, as naver-ai/rope-vit's ``init_random_2d_freqs``): with d the head
dimension, magnitudes m_t = base^(-4t / d) for t = 0 .. d/4 - 1 (base 10), and one angle alpha drawn
uniformly in [0, 2 pi) per layer and head,

    F[l, h, t]         = m_t * (sin alpha, cos alpha)                  (row, col)
    F[l, h, t + d/4]   = m_t * (sin(alpha + pi/2), cos(alpha + pi/2))

i.e. the axial frequencies (row for one half, column for the other) rotated by a random angle per
head and layer. F is an encoding parameter (no weight decay, as the paper excludes ``freqs``).

Convention: half-split pairs (feature i with i + d/2), as ``rope`` and ``rope2d_axial``. timm's
``RotaryEmbeddingMixed`` stores ``freqs[0]`` (x: column) and ``freqs[1]`` (y: row) with shape
``[2, depth, heads, d/2]`` and pairs adjacent features (2j, 2j+1); with its frequencies copied into
F (``F[..., 0] = freqs[1]``, ``F[..., 1] = freqs[0]``) the two agree up to that fixed feature
permutation (tests/test_enc_2d_absolute_rotary.py).

Class token (the first ``shape.prefix`` tokens): not rotated, as rope-vit and timm; its coordinates
are ignored. As for ``rope2d_axial``, an instance with a class token declares
``shift_invariant = False`` (its logits with patches depend on their absolute position).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.rope2d_axial import Rotary2D
from posbench.encodings.sinusoidal import inverse_frequencies
from posbench.schema import FrequencyBase


def mixed_frequencies(layers: int, heads: int, head_dim: int, base: float) -> Tensor:
    """Heo et al.'s initial frequencies ``[layers, heads, head_dim/2, 2]`` (row, col)."""
    magnitudes = inverse_frequencies(head_dim // 2, base)  # base^(-4t / head_dim), head_dim/4 of them
    alpha = (torch.rand(layers, heads, 1) * 2 * math.pi).expand(-1, -1, magnitudes.numel())
    directions = torch.cat((alpha, alpha + math.pi / 2), dim=-1)  # [layers, heads, head_dim/2]
    scale = magnitudes.repeat(2)
    return torch.stack((scale * directions.sin(), scale * directions.cos()), dim=-1)


@ENCODINGS.register("rope2d_mixed")
class RoPE2DMixed(Rotary2D):
    description = "2D rotary embedding with learnable 2D frequencies per head and layer (Heo et al. 2024, RoPE-Mixed)"

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10.0):
        """``base``: the initial magnitudes are base^(-4t / head_dim) (the paper uses 10)."""
        super().__init__(shape)
        self.freqs = nn.Parameter(mixed_frequencies(shape.layers, shape.heads, shape.head_dim, float(base)))

    def angles(self, pos: Tensor, layer: int) -> Tensor:
        """``[B or 1, N, 2]`` patch (row, col) -> angles ``[B or 1, heads, N, d/2]`` of layer ``layer``."""
        return torch.einsum("bnc,hjc->bhnj", pos.to(torch.float32), self.freqs[layer].float())
