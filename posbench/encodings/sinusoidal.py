"""Fixed sinusoidal absolute encoding (Vaswani et al. 2017, "Attention Is All You Need", §3.5):

    PE(p, 2i)   = sin(p / base^(2i / d))
    PE(p, 2i+1) = cos(p / base^(2i / d))

added to the token embeddings. For any offset k, PE(p + k) is a fixed linear map (a block-diagonal
rotation, independent of p) of PE(p): each (sin, cos) pair is rotated by the angle k / base^(2i/d).

Scaled sinusoidal (Hua et al. 2022, "Transformer Quality in Linear Time", FLASH): the same codes
times one learned scalar ``s`` shared by every position and feature,

    x + s * PE(p)

so the network can learn how loud position is relative to content.

Initialisation of ``s`` (``init_scale``, default 1.0): x-transformers' ``ScaledSinusoidalEmbedding``
starts at ``d_model ** -0.5``, a value matched to its token embeddings, which are initialised
``kaiming_normal`` (std ``sqrt(2 / d_model)``): codes of RMS ``d^-0.5 / sqrt(2)`` against tokens of
RMS ``sqrt(2 / d)``, a position:content ratio of 1/2. posbench's token embeddings are ``nn.Embedding``
defaults, N(0, 1), so the same start would give a ratio of ``1 / sqrt(2 d)``, ``sqrt(d / 2)`` times
quieter than there (about 1/11 at d_model=64). With ``s = 1`` the ratio is ``1/sqrt(2)``, close to x-transformers'
1/2, and at step 0 the encoding *equals* ``sinusoidal``, so comparing the two isolates the learned
scale. ``encoding.init_scale`` reproduces x-transformers' start when set to ``d_model ** -0.5``.

Convention: posbench interleaves (sin, cos) pairs as the paper's formula is written;
x-transformers concatenates ``[sin | cos]``. The two differ by a fixed permutation of features,
which the first layer's projections absorb (tests/test_enc_absolute.py compares them numerically).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase


def inverse_frequencies(dim: int, base: float, device=None) -> Tensor:
    """``1 / base^(2i / dim)`` for i = 0 .. dim/2 - 1."""
    return base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)


def sinusoid_table(pos: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """Interleaved sin/cos codes of shape ``[*pos.shape, dim]`` (float32)."""
    angles = pos.to(torch.float32)[..., None] * inverse_frequencies(dim, base, pos.device)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


@ENCODINGS.register("sinusoidal")
class Sinusoidal(PositionalEncoding):
    description = "fixed sin/cos codes added to the input (Vaswani et al. 2017, §3.5)"
    family = "absolute"
    shift_invariant = False
    fractional = True

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0):
        super().__init__(shape)
        if shape.d_model % 2:
            raise ConfigError(f"encoding={self.name} needs an even model.d_model, got {shape.d_model}")
        self.base = float(base)

    def code(self, pos: Tensor) -> Tensor:
        """The vector added to the token embedding at each position: ``[*pos.shape, d_model]``."""
        return sinusoid_table(pos, self.shape.d_model, self.base)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + self.code(pos).to(x.dtype)


@ENCODINGS.register("scaled_sinusoidal")
class ScaledSinusoidal(Sinusoidal):
    description = "sin/cos codes times one learned scalar, added to the input (Hua et al. 2022, FLASH)"

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0, init_scale: float = 1.0):
        super().__init__(shape, base)
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    def code(self, pos: Tensor) -> Tensor:
        return self.scale * super().code(pos)
