"""Fixed sinusoidal absolute encoding (Vaswani et al. 2017, "Attention Is All You Need", §3.5):

    PE(p, 2i)   = sin(p / base^(2i / d))
    PE(p, 2i+1) = cos(p / base^(2i / d))

added to the token embeddings. For any offset k, PE(p + k) is a fixed linear map (a block-diagonal
rotation, independent of p) of PE(p): each (sin, cos) pair is rotated by the angle k / base^(2i/d).
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding


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

    def __init__(self, shape: AttentionShape, base: float = 10000.0):
        super().__init__(shape)
        if shape.d_model % 2:
            raise ConfigError(f"encoding=sinusoidal needs an even model.d_model, got {shape.d_model}")
        self.base = float(base)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + sinusoid_table(pos, x.shape[-1], self.base).to(x.dtype)
