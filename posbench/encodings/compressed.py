"""Compressed (block) sinusoidal encoding: the fixed codes of Vaswani et al. 2017 §3.5 evaluated at
a coarsened position,

    x + PE(floor(p / k))        PE(q, 2i) = sin(q / base^(2i/d)),  PE(q, 2i+1) = cos(q / base^(2i/d))

so the k positions of each block ``[m k, (m + 1) k)`` share one code and neighbouring blocks differ.
This is a posbench ablation rather than one paper's method; it is the integer (floored) cousin of
Position Interpolation (Chen et al. 2023, "Extending Context Window of Large Language Models via
Positional Interpolation"), which divides positions by k without flooring. It asks how much a model
needs exact positions versus coarse ones: within a block only content (and, in a decoder, the
causal mask) can tell tokens apart.

``ratio`` (k) defaults to 2: the smallest compression that shares codes, so every block is a pair.
At the default task lengths (training sequences of up to ~20 positions) k = 4 leaves only about five
distinct codes per sequence, which measures the loss of position more than its coarsening.
k = 1 is exactly ``sinusoidal``. Flooring is toward minus infinity, so blocks keep size k for
negative positions too.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.sinusoidal import Sinusoidal
from posbench.schema import FrequencyBase, PositiveInt


@ENCODINGS.register("compressed")
class Compressed(Sinusoidal):
    description = "sin/cos codes of floor(p / ratio): blocks of positions share a code (cf. Chen et al. 2023 interpolation)"

    def __init__(self, shape: AttentionShape, ratio: PositiveInt = 2, base: FrequencyBase = 10000.0):
        super().__init__(shape, base)
        self.ratio = ratio

    def code(self, pos: Tensor) -> Tensor:
        return super().code(torch.div(pos, self.ratio, rounding_mode="floor"))
