"""Learnable Fourier features of the patch coordinates, followed by an MLP, added to the input (Li et
al. 2021, "Learnable Fourier Features for Multi-Dimensional Spatial Positional Encoding", §3, eqs. 2-3
and Algorithm 1, with one positional group).

For a patch at x = (r, c) / grid (see below), with F = ``features`` and W_r of shape ``[F/2, 2]``:

    eq. 2:  f(x) = 1/sqrt(F) [cos(x W_r^T) ; sin(x W_r^T)]          W_r initialised N(0, gamma^-2)
    eq. 3:  PE(x) = GELU(f(x) W_1 + b_1) W_2 + b_2                    hidden width ``hidden``, out d_model

and ``x + PE`` is the input of the first block. ``learnable=false`` gives random Fourier features
(Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency Functions in Low
Dimensional Domains", the Gaussian mapping gamma(v) = [cos(2 pi B v) ; sin(2 pi B v)],
B ~ N(0, sigma^2)): W_r is drawn the same way and frozen (a buffer, not a parameter), i.e.
B = W_r / (2 pi) with sigma = 1 / (2 pi gamma); only the MLP is trained. The 1/sqrt(F) factor is
kept in both modes (a constant the MLP's first layer absorbs).

Coordinates: the (row, col) of a patch divided by the side of the *training* grid, so the training
image spans [0, 1) on each axis, the unit Tancik et al. assume, and ``gamma`` does not depend on the
patch size or image size. The divisor is fixed on purpose: a patch's code depends only on its
(row, col), never on the size of the image it is in, so on a larger evaluation grid the neighbours
keep their spacing and the new patches read coordinates beyond 1, which the trained features and MLP
never saw (extrapolation, as ``sincos2d`` and the rotary encodings). Dividing by the *current* side
would instead squeeze every grid into [0, 1) (interpolation, as the ``resize=bicubic`` tables) and
move every patch's code when the image grows.

Default scale: gamma = 0.1 draws frequencies of standard deviation 10 radians per training-image
side (about 1.6 periods), enough to tell neighbouring patches apart on posbench's small grids.

Class token (the first ``shape.prefix`` tokens): no position, nothing is added; its coordinates are
ignored.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, add_to_patches
from posbench.errors import ConfigError
from posbench.schema import PositiveFloat, PositiveInt


@ENCODINGS.register("fourier")
class Fourier(PositionalEncoding):
    description = "Fourier features of (row, col) and an MLP, added to the input (Li et al. 2021; Tancik et al. 2020)"
    family = "absolute"
    axes = 2
    shift_invariant = False

    def __init__(
        self,
        shape: AttentionShape,
        features: PositiveInt = 64,
        hidden: PositiveInt = 32,
        gamma: PositiveFloat = 0.1,
        learnable: bool = True,
    ):
        """``features``: F, the number of Fourier features (cosines and sines, even); ``hidden``: the
        MLP's hidden width; ``gamma``: W_r ~ N(0, gamma^-2); ``learnable``: train W_r (Li et al.) or
        keep the random draw fixed (Tancik et al.)."""
        super().__init__(shape)
        if features % 2:
            raise ConfigError(f"encoding={self.name} needs an even encoding.features (cosines, sines), got {features}")
        frequencies = torch.randn(features // 2, 2) / gamma
        if learnable:
            self.frequencies = nn.Parameter(frequencies)
        else:
            self.register_buffer("frequencies", frequencies)
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, shape.d_model))

    def fourier_features(self, pos: Tensor) -> Tensor:
        """Eq. 2: ``[*, 2]`` integer (row, col) -> ``[*, F]`` Fourier features (float32)."""
        x = pos.to(torch.float32) / self.shape.grid
        angles = x @ self.frequencies.T
        return torch.cat((angles.cos(), angles.sin()), dim=-1) / math.sqrt(self.frequencies.shape[0] * 2)

    def code(self, pos: Tensor) -> Tensor:
        """Eq. 3: the vector added to each patch, ``[*, d_model]``."""
        return self.mlp(self.fourier_features(pos))

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        prefix = self.shape.prefix
        return add_to_patches(x, self.code(pos[:, prefix:]), prefix)
