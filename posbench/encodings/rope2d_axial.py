"""2D axial rotary embedding, RoPE-Axial (Heo et al. 2024, "Rotary Position Embedding for Vision
Transformer", ECCV, §3.2 "Axial frequency"): RoFormer's rotation (Su et al. 2021, eq. 34) applied
with half of each head's frequencies to the patch's row and half to its column.

With ``d`` the head dimension and ``n = d/4`` frequencies per axis,

    theta_t = base^(-t / n) = base^(-4t / d),   t = 0 .. n-1      (Heo et al.: 100^(-t / (d_head/4)))

feature pair j (j = 0 .. d/2 - 1) of a query or key at patch (r, c) is rotated by the angle

    phi_j = r * theta_j          for j < n        (the row's frequencies)
    phi_j = c * theta_(j - n)    for j >= n       (the column's)

so that ``<R(r, c) q, R(r', c') k>`` depends only on (r - r', c - c'): patch-to-patch logits are
invariant to a 2D shift of every patch, and rotations preserve norms. The paper writes the row/column
split as alternating complex pairs (R(n, 2t) by x, R(n, 2t+1) by y) and uses base 100 for the axial
variant (naver-ai/rope-vit's ``rope_theta=100``), the default here.

Convention: as posbench's 1D ``rope``, feature i is paired with feature i + d/2 ("half-split"), the
row's pairs first. timm's ``RotaryEmbedding(rotate_half=True)`` uses this exact layout (identity
permutation); its default interleaved layout (``RotaryEmbeddingCat`` + ``apply_rot_embed_cat``) puts
pair j on features (2j, 2j+1), a fixed permutation of ours. Both are compared numerically in
tests/test_enc_2d_absolute_rotary.py.

Class token (the first ``shape.prefix`` tokens): not rotated (angle 0), as rope-vit and timm rotate
only the patch tokens; its coordinates are ignored. Its logits with a patch therefore depend on the
patch's absolute position, so an instance with a class token declares ``shift_invariant = False``
(the patch-to-patch logits stay shift invariant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.rope import rotate_half_split
from posbench.encodings.sinusoidal import inverse_frequencies
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase


def rotate_patches(x: Tensor, angles: Tensor, prefix: int) -> Tensor:
    """Rotate ``x [B, heads, prefix + N, d]`` half-split by ``angles [B or 1, heads or 1, N, d/2]``
    (float32) on its last N tokens; the first ``prefix`` tokens get angle 0 (cosine 1, sine 0), so
    they pass through exactly unchanged, without slicing and re-joining q and k."""
    angles = F.pad(angles, (0, 0, prefix, 0))
    return rotate_half_split(x, angles.cos(), angles.sin())


class Rotary2D(PositionalEncoding):
    """What the 2D rotary encodings share: each patch's queries and keys are rotated half-split by
    the angles ``angles(pos, layer)`` of its (row, col); the class token is not rotated, so an
    instance with one is not shift invariant (see the module docstring)."""

    family = "rotary"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape):
        super().__init__(shape)
        if shape.head_dim % 4:  # 2 axes of (cos, sin) pairs
            raise ConfigError(
                f"encoding={self.name} needs a head dimension (model.d_model / model.heads) divisible by 4, "
                f"got {shape.head_dim}"
            )
        self.shift_invariant = shape.prefix == 0

    def angles(self, pos: Tensor, layer: int) -> Tensor:
        """``[B or 1, N, 2]`` patch (row, col) -> angles ``[B or 1, heads or 1, N, d/2]`` of layer ``layer``."""
        raise NotImplementedError

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        prefix = self.shape.prefix
        q_angles = self.angles(q_pos[:, prefix:], layer)
        k_angles = q_angles if k_pos is q_pos else self.angles(k_pos[:, prefix:], layer)
        return rotate_patches(q, q_angles, prefix), rotate_patches(k, k_angles, prefix)


@ENCODINGS.register("rope2d_axial")
class RoPE2DAxial(Rotary2D):
    description = "2D rotary embedding, half the frequencies by row, half by column (Heo et al. 2024, RoPE-Axial)"

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 100.0):
        super().__init__(shape)
        self.base = float(base)
        self.register_buffer("inv_freq", inverse_frequencies(shape.head_dim // 2, self.base), persistent=False)

    def angles(self, pos: Tensor, layer: int) -> Tensor:
        """The same for every layer, ``[B or 1, 1, N, d/2]``: rows' then columns'."""
        scaled = pos.to(torch.float32)[..., None] * self.inv_freq  # [B, N, 2, n]
        return scaled.flatten(-2)[:, None]
