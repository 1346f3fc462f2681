"""Fixed 2D sin-cos absolute encoding (He et al. 2022, "Masked Autoencoders Are Scalable Vision
Learners", MAE; its ``get_2d_sincos_pos_embed``, following Vaswani et al. 2017 §3.5 per axis).

Half of the ``d_model`` channels encode the patch's row r, the other half its column c, each with
Vaswani's 1D formula at width ``d/2`` (``d = d_model``, ``i = 0 .. d/4 - 1``):

    PE(r, c) = [S(r) ; S(c)],   S(p)[2i] = sin(p / base^(4i / d)),   S(p)[2i+1] = cos(p / base^(4i / d))

added to the patch embeddings. No table: the codes exist at every grid size, so a larger evaluation
grid simply reads larger coordinates (extrapolation, as 1D ``sinusoidal`` does with longer sequences).

Class token (the first ``shape.prefix`` tokens): it gets no position, a zero code, as MAE's
``cls_token=True`` prepends a row of zeros; its coordinates are ignored.

Convention: each axis block interleaves (sin, cos) pairs as posbench's 1D ``sinusoidal`` does;
MAE and timm's ``build_sincos2d_pos_embed`` lay out [sin | cos] blocks (timm: row block first, MAE:
column block first). The layouts differ by a fixed permutation of channels, which the first layer's
projections absorb (tests/test_enc_2d_absolute_rotary.py compares them numerically).
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, add_to_patches
from posbench.encodings.sinusoidal import sinusoid_table
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase


@ENCODINGS.register("sincos2d")
class SinCos2D(PositionalEncoding):
    description = "fixed 2D sin-cos codes, half the channels per axis, added to the input (MAE, He et al. 2022)"
    family = "absolute"
    axes = 2
    shift_invariant = False

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0):
        super().__init__(shape)
        if shape.d_model % 4:
            raise ConfigError(
                f"encoding={self.name} needs model.d_model divisible by 4 (sin and cos for each of 2 axes), "
                f"got {shape.d_model}"
            )
        self.base = float(base)

    def code(self, pos: Tensor) -> Tensor:
        """``[*, 2]`` (row, col) -> ``[*, d_model]``: the row's codes, then the column's."""
        half = self.shape.d_model // 2
        rows, cols = (sinusoid_table(pos[..., axis], half, self.base) for axis in (0, 1))
        return torch.cat((rows, cols), dim=-1)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        prefix = self.shape.prefix
        return add_to_patches(x, self.code(pos[:, prefix:]), prefix)
