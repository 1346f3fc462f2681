"""Multimodal rotary position embedding, M-RoPE (Wang et al. 2024, "Qwen2-VL: Enhancing
Vision-Language Model's Perception of the World at Any Resolution", §2.1): RoFormer's rotation
(Su et al. 2021, eq. 34) in which each frequency pair reads one of three coordinates of its token,
temporal ``t``, height ``h`` and width ``w``.

With ``d`` the head dimension, ``n = d/2`` frequency pairs and ``theta_j = base^(-2j / d)``
(j = 0 .. n-1, the frequencies of 1D ``rope``), the pairs are split into three contiguous sections
of ``sections = (n_t, n_h, n_w)`` pairs, ``n_t + n_h + n_w = n``. Pair j of a query or key at
``(t, h, w)`` is rotated by the angle

    phi_j = t * theta_j     for            j < n_t                (the highest frequencies)
    phi_j = h * theta_j     for      n_t <= j < n_t + n_h
    phi_j = w * theta_j     for n_t + n_h <= j < n                (the lowest)

each section keeping the global frequencies theta_j (they do not restart per section), as in
Qwen2-VL's reference ``apply_multimodal_rotary_pos_emb`` (``mrope_section = [16, 24, 24]`` for
head dimension 128). So ``<R(t, h, w) q, R(t', h', w') k>`` depends only on
``(t - t', h - h', w - w')``: logits are unchanged when every token's three coordinates shift by
the same amounts (together or one axis alone), and rotations preserve norms.

Sections: ``sections=[n_t, n_h, n_w]`` (three positive integers summing to ``d/2``), or null (the
default): Qwen2-VL's 16:24:24 scaled to the head, ``n_h = n_w = round(3n/8)`` with halves rounded
down, ``n_t = n - 2 n_h`` (the rest). It is exact when n is a multiple of 8 and gives every axis at
least one pair for n >= 3 (head dimension 6 or more): head dim 6 -> [1, 1, 1], 8 -> [2, 1, 1],
16 -> [2, 3, 3], 32 -> [4, 6, 6], 64 -> [8, 12, 12], 128 -> [16, 24, 24].

Positions (``PositionalEncoding.axes = 3``): ``[B or 1, L, 3]`` (t, h, w). In Qwen2-VL's layout
(``posbench.encodings.base.multimodal_coordinates``, ``model=prefix_captioner``) the patches of an
image share one t and carry their (row, col) as (h, w); the text that follows starts one past the
largest image coordinate and advances t, h and w together. Wherever t = h = w (text alone, or a
model that passes no coordinates, whose every axis reads the token's index) all sections rotate by
the same position and M-RoPE *is* 1D RoPE with the same base. ``rotate`` also accepts 1D positions
``[B or 1, L]`` (what cross-attention passes: query and key indices), read as t = h = w.
Real-valued positions work unchanged (``fractional``).

Convention: as posbench's 1D ``rope``, feature i is paired with feature i + d/2 ("half-split", as
Qwen2-VL's ``rotate_half``), the t section's pairs first. timm's ``RotaryEmbeddingMRope`` uses the
same half-split layout and frequencies but the *interleaved* assignment of pairs to axes
(Qwen3-VL / GenLIP's ``apply_interleaved_mrope``: pairs 1, 4, 7, ... to h, 2, 5, 8, ... to w, the rest to
t), which no permutation of features turns into contiguous sections (it gives each axis other
frequencies); tests/test_enc_mrope.py compares the two with timm's axis assignment set to the
contiguous one.

An image grid of its own (``model=vit``, a captioner's image encoder) is refused: it has (row, col)
and no t, and the 2D rotary encodings (``rope2d_axial``, ``rope2d_mixed``) are made for it.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.rope import RoPE
from posbench.errors import ConfigError
from posbench.schema import EachAtLeast, FrequencyBase, show

#: Qwen2-VL's sections for head dimension 128 (64 pairs): t, h, w.
QWEN2_VL_SECTIONS = (16, 24, 24)


def default_sections(pairs: int) -> tuple[int, int, int]:
    """Qwen2-VL's 16:24:24 for ``pairs`` frequency pairs: ``h = w = round(3 pairs / 8)`` (halves
    down), ``t`` the rest; every section has at least one pair when ``pairs >= 3``."""
    spatial = (3 * pairs + 3) // 8
    return pairs - 2 * spatial, spatial, spatial


@ENCODINGS.register("mrope")
class MRoPE(RoPE):
    description = "multimodal rotary embedding, frequency sections read t, h, w (Wang et al. 2024, Qwen2-VL M-RoPE)"
    axes = 3  # rotary family, shift-invariant and fractional as RoPE

    def __init__(
        self,
        shape: AttentionShape,
        base: FrequencyBase = 10000.0,
        sections: Annotated[list[int] | None, EachAtLeast(1)] = None,
    ):
        if shape.grid is not None:
            raise ConfigError(
                f"encoding={self.name} is for a sequence mixing image patches and text (model=prefix_captioner), "
                "whose tokens carry (t, h, w); on a ViT's image grid use rope2d_axial or rope2d_mixed"
            )
        super().__init__(shape, base=base)  # full rotary fraction: every feature is rotated
        pairs = shape.head_dim // 2
        if sections is None:
            if pairs < 3:
                raise ConfigError(
                    f"encoding={self.name} needs a head dimension (model.d_model / model.heads) of at least 6, "
                    f"one frequency pair for each of t, h and w; got {shape.head_dim}"
                )
            sections = default_sections(pairs)
        sections = tuple(int(count) for count in sections)
        if len(sections) != 3 or min(sections) < 1 or sum(sections) != pairs:
            raise ConfigError(
                f"encoding={self.name}: sections={show(list(sections))} must be 3 positive numbers of frequency pairs (t, h, w) "
                f"summing to head_dim / 2 = {pairs} (model.d_model / model.heads = {shape.head_dim})"
                + (f", e.g. {show(list(default_sections(pairs)))}" if pairs >= 3 else "")
            )
        #: pairs per section (t, h, w), and the axis (0 = t, 1 = h, 2 = w) each pair reads
        self.sections = sections
        # a plain list, not repeat_interleave (data-dependent): it also builds on the meta device
        axis = torch.tensor([a for a, count in enumerate(sections) for _ in range(count)])
        self.register_buffer("axis", axis, persistent=False)

    def cos_sin(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine and sine of the angles ``pos[axis(j)] * theta_j``, each ``[B or 1, 1, L, d/2]``
        (float32), for positions ``[B or 1, L, 3]`` or 1D ``[B or 1, L]`` (t = h = w: 1D RoPE)."""
        pos = pos.to(torch.float32)
        if pos.dim() == 2:
            return super().cos_sin(pos)
        angles = pos.index_select(-1, self.axis)[:, None] * self.inv_freq
        return angles.cos(), angles.sin()
