"""Bilevel positional encoding, BiPE (He et al. 2024, "Two Stones Hit One Bird: Bilevel Positional
Encoding for Better Length Extrapolation", ICML 2024, arXiv:2401.16421): a sequence is cut into
segments (the paper's sentences or lines: its reference code cuts after a full-stop token and a
newline token), and every token gets two positions,

    a_t = the token's index within its segment (0 for a segment's first token)
    s_t = the index of its segment (0 for the first segment)

an *intra-segment* absolute encoding of ``a_t`` added to the input, ``x_t + APE(a_t)``, and an
*inter-segment* relative encoding of ``s_t`` inside attention:

    BiPE-RoPE:   logit_ij = (R(s_i) q_i) . (R(s_j) k_j) / sqrt(d)      (a function of s_i - s_j)
    BiPE-ALiBi:  logit_ij = q_i . k_j / sqrt(d) - m_h (s_i - s_j)

Tokens of one segment share a segment index, so within a segment attention has only the absolute
intra codes to tell tokens apart, and across segments only the segment offset enters attention.

Conventions, as in the authors' reference code (zhenyuhe00/BiPE, ``get_bilevel_ids`` in
``my_modeling_llama_bipe_rope.py``): both indices count from 0; the separator token itself is the
*last* token of the segment it ends (its segment index is the number of separators before it, and
the token after it starts the next segment at intra index 0). Example, separator ``.``:

    tokens  a b . c d . e
    a_t     0 1 2 0 1 2 0
    s_t     0 0 0 1 1 1 2

Segments (exactly one of the two options is set; the other is null):

* ``separator``: a token id; a new segment starts after each occurrence (the paper's mode). The
  models' SEP token (between a task's source and its answer) has the id ``task.vocab_size``, plus one
  for a task whose answers end with ``eos`` (``SequenceModel.sep``); an id that never occurs leaves
  the whole sequence one segment. The intra index is read from the positions the model hands the
  encoding (``a_t = p_t - p_start``, the offset from the segment's first token: the token index by
  default, randomized positions inside ``encoding=randomized``).
* ``segment_size``: fixed segments of that many positions, ``a_t = p_t mod size``, ``s_t = floor(p_t /
  size)`` (not in the paper: text without separators, or an image's patches in raster order).

Parts (each a name, or a mapping with the name and that encoding's options, e.g.
``encoding.intra={name:learned,max_len:64}``): ``intra`` is ``sinusoidal`` (Vaswani et al. 2017) or
``learned`` (the reference code's choice: an ``nn.Embedding`` table of the indices within a
segment); ``inter`` is ``rope`` (BiPE-RoPE) or ``alibi`` (BiPE-ALiBi). They are posbench's own
encodings, built here and called through their hooks at ``a_t`` (``embed``) and ``s_t`` (``rotate``,
``bias``), so every option and convention of theirs holds (bidirectional ALiBi's mirrored slopes in
an encoder). ``segment_scale`` multiplies the segment indices before the inter part reads them: the
reference code's BiPE-ALiBi multiplies the ALiBi slopes by 96 (``_init_alibi_mul96``), which is
``inter=alibi segment_scale=96``; 1 (default) is the formula above, and the reference BiPE-RoPE.

The ``positions`` hook (once per forward, with the stack's token ids) returns ``[B or 1, L, 2]``
integer pairs ``(a_t, s_t)``, what every other hook reads; those hooks also accept plain positions
``[B or 1, L]`` (a direct call, as tests and pictures make), read as the ``positions`` hook reads
them without token ids. Without token ids there is no separator to see: in ``separator`` mode the
whole sequence is then one segment. A stack that reads vectors has no token ids: on an image grid
(``model=vit``, an image encoder) ``separator`` is refused when built; ``model=prefix_captioner``'s
one stack reads vectors too (its image patches), but nothing tells the encoding so when it is built,
so there ``separator`` leaves one segment: use ``segment_size``. No other encoding can read the
pairs, so ``encoding=combo`` refuses ``bipe`` beside other parts (``private_positions``). On a ViT,
``segment_size`` cuts the raster order as a 1D encoding reads it: the class token is index 0, so
with ``segment_size`` equal to the grid's side the segments are offset by one token from the rows.

Table size: a ``learned`` intra part represents indices ``0 .. max_len - 1`` within a segment. With
``segment_size`` that is checked when built (``segment_size <= max_len``), and any sequence length
fits. With ``separator`` nothing bounds a segment but the sequence (no separator, one segment), so
the run is refused before training when its longest sequence exceeds the table (the reference code
clips instead: ``train_scale - 1``).

Shift invariance: with ``separator`` the intra index is an offset and the segment index counts
separators, so shifting every position changes nothing; with ``segment_size`` the segments are cut
at multiples of the size, so a shift moves the cuts and changes the intra codes (invariant only
for ``segment_size = 1``, where every intra index is 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.combo import part_section
from posbench.errors import ConfigError
from posbench.schema import NonNegativeInt, PositiveFloat, PositiveInt

#: The encodings each part may be.
INTRA = ("sinusoidal", "learned")
INTER = ("rope", "alibi")


@ENCODINGS.register("bipe")
class BiPE(PositionalEncoding):
    description = "bilevel: absolute code of the index within a segment + RoPE/ALiBi on segment indices (He et al. 2024)"
    family = "composite"
    wraps = ("intra", "inter")
    #: Declared for the default (``segment_size``); an instance decides (module docstring).
    shift_invariant = False
    private_positions = True

    def __init__(
        self,
        shape: AttentionShape,
        separator: NonNegativeInt | None = None,
        segment_size: PositiveInt | None = 8,
        intra: str | Mapping = "learned",
        inter: str | Mapping = "rope",
        segment_scale: PositiveFloat = 1.0,
    ):
        """``separator``: the token id that ends a segment; ``segment_size``: fixed segments instead
        (exactly one of the two); ``intra``/``inter``: the parts (a name or a mapping with options);
        ``segment_scale``: the factor on segment indices that the inter part reads."""
        super().__init__(shape)
        if (separator is None) == (segment_size is None):
            raise ConfigError(
                f"encoding={self.name} cuts segments at encoding.separator or every encoding.segment_size positions: "
                f"set exactly one and the other to null (e.g. encoding.separator=16 encoding.segment_size=null); "
                f"got separator={'null' if separator is None else separator}, "
                f"segment_size={'null' if segment_size is None else segment_size}"
            )
        if separator is not None and shape.grid is not None:
            raise ConfigError(
                f"encoding={self.name} with encoding.separator reads token ids, which an image's patches do not have; "
                f"use encoding.segment_size (segments of patches in raster order)"
            )
        self.separator = separator
        self.segment_size = segment_size
        self.segment_scale = float(segment_scale)
        # the parts read plain indices of their own: no image grid (a learned table is not resampled as a grid's)
        plain = replace(shape, grid=None, prefix=0)
        self.intra = ENCODINGS.build(self.part(intra, "intra", INTRA), plain)
        self.inter = ENCODINGS.build(self.part(inter, "inter", INTER), plain)
        table = self.intra.max_positions()
        if segment_size is not None and table is not None and segment_size > table:
            raise ConfigError(
                f"encoding={self.name}: segment_size={segment_size} needs indices within a segment up to "
                f"{segment_size - 1} but encoding.intra={self.intra.name} represents {table}; "
                f"raise its max_len (encoding.intra={{name:{self.intra.name},max_len:{segment_size}}}) or lower segment_size"
            )
        self.shift_invariant = separator is not None or segment_size == 1

    def part(self, spec, option: str, allowed: tuple[str, ...]) -> dict:
        """The config section of part ``option``, refused unless it names one of ``allowed``."""
        section = part_section(spec, f"encoding.{option}")
        if section["name"] not in allowed:
            raise ConfigError(
                f"encoding={self.name}: encoding.{option}={section['name']} is not one of {', '.join(allowed)}"
            )
        return section

    # ---- the two positions -------------------------------------------------------------------
    def positions(self, pos: Tensor, tokens: Tensor | None = None) -> Tensor:
        """``[B or 1, L, 2]`` integer pairs (index within the segment, segment index)."""
        if self.segment_size is not None:
            return torch.stack((pos % self.segment_size, torch.div(pos, self.segment_size, rounding_mode="floor")), -1)
        if tokens is None:  # no token ids, no separator: one segment
            return torch.stack((pos - pos[..., :1], torch.zeros_like(pos)), -1)
        ends = tokens == self.separator  # [B, L]
        segment = ends.long().cumsum(-1) - ends.long()  # separators strictly before each token
        index = torch.arange(tokens.shape[-1], device=tokens.device).expand_as(tokens)
        before = torch.cat((index.new_full((*tokens.shape[:-1], 1), -1), torch.where(ends, index, -1)[..., :-1]), -1)
        start = before.cummax(-1).values + 1  # the first token of each token's segment
        pos = pos.expand_as(tokens)
        return torch.stack((pos - pos.gather(-1, start), segment), -1)

    def bilevel(self, pos: Tensor) -> Tensor:
        """The pairs of the ``positions`` hook; plain positions ``[B or 1, L]`` are turned into them."""
        return pos if pos.dim() == 3 else self.positions(pos)

    def segments(self, pos: Tensor) -> Tensor:
        """What the inter part reads: the segment indices times ``segment_scale``, ``[B or 1, L]``."""
        segment = self.bilevel(pos)[..., 1]
        return segment if self.segment_scale == 1.0 else segment * self.segment_scale

    # ---- hooks: the parts' own, at the two positions ---------------------------------------------
    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return self.intra.embed(x, self.bilevel(pos)[..., 0])

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        q_seg = self.segments(q_pos)
        k_seg = q_seg if k_pos is q_pos else self.segments(k_pos)
        return self.inter.rotate(q, k, q_seg, k_seg, layer)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        q_seg = self.segments(q_pos)
        k_seg = q_seg if k_pos is q_pos else self.segments(k_pos)
        return self.inter.bias(q_seg, k_seg, layer)

    @property
    def rotates(self) -> bool:
        return self.inter.rotates

    # ---- sizes ---------------------------------------------------------------------------------
    def max_positions(self) -> int | None:
        """With a separator and a bounded intra table: the table's size (a segment may be the whole
        sequence); otherwise unbounded."""
        return self.intra.max_positions() if self.separator is not None else None

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        limit = self.max_positions()
        if limit is not None and positions_needed > limit:
            raise ConfigError(
                f"encoding={self.name}: encoding.intra={self.intra.name} represents indices within a segment up to "
                f"{limit - 1}, but with encoding.separator a segment can be as long as this run's longest sequence, "
                f"{positions_needed} tokens; raise its max_len (encoding.intra={{name:{self.intra.name},"
                f"max_len:{positions_needed}}}) or shorten {shorten}"
            )
