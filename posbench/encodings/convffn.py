"""Mix-FFN, the "positional-encoding-free" feed-forward of SegFormer (Xie et al. 2021, "SegFormer:
Simple and Efficient Design for Semantic Segmentation with Transformers", §3.1, eq. 3):

    x_out = MLP(GELU(Conv3x3(MLP(x_in)))) + x_in                               (eq. 3)

A 3x3 depthwise convolution (with bias, zero padding 1) acts on the feed-forward's hidden
activations, ``ffn_mult * d_model`` channels laid out on the ``S x S`` patch grid (raster order),
between the first linear layer and the GELU, in every block (one convolution per layer). The
convolution replaces the hidden activations: there is no residual around it, as in eq. 3 (the
block's own residual ``+ x_in`` is the model's). No position table exists; position leaks in through
the zero padding at the grid's border (SegFormer §3.1, after Islam et al. 2020), so the encoding
follows any image size.

Class token (``shape.prefix`` leading tokens, coordinates ``(-1, -1)``; SegFormer has none): not on the
grid, its hidden activations pass through unchanged (straight from the first linear layer to GELU).

``shift_invariant = True``: the hook never reads the coordinates' values, and it does not act on
attention logits at all. Initialisation: SegFormer's, normal with std ``sqrt(2 / fan_out)``,
``fan_out = 3 * 3`` for a depthwise kernel, zero bias.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.peg import conv_on_grid, depthwise3x3


@ENCODINGS.register("convffn")
class ConvFFN(PositionalEncoding):
    description = "Mix-FFN: 3x3 depthwise conv on the FFN hidden grid, no position table (SegFormer, Xie et al. 2021 eq. 3)"
    family = "conditional"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape):
        super().__init__(shape)
        hidden = shape.ffn_mult * shape.d_model
        self.convs = nn.ModuleList(depthwise3x3(hidden) for _ in range(shape.layers))
        for conv in self.convs:
            nn.init.normal_(conv.weight, std=math.sqrt(2.0 / (3 * 3)))
            nn.init.zeros_(conv.bias)

    def ffn(self, h: Tensor, pos: Tensor, layer: int) -> Tensor:
        prefix = self.shape.prefix
        return torch.cat((h[:, :prefix], conv_on_grid(self.convs[layer], h, prefix)), dim=1)
