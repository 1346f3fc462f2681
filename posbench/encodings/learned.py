"""Learned absolute position embeddings: a trainable table E[p] added to the token embeddings
(Gehring et al. 2017 "Convolutional Sequence to Sequence Learning"; BERT, GPT-2). It cannot
represent positions beyond its table, so a run whose longest evaluation sequence exceeds
``max_len`` is refused before training.

On an image (``model=vit``) the table is ViT's (Dosovitskiy et al. 2021 eq. 1): the class token is
row 0 (its own vector) and patch (r, c) of the training grid row ``1 + r * side + c``. Scored at
another image size, the patch rows, read as a ``side x side`` image, are resampled bicubically to
the new grid (``resize=bicubic``, as timm's ``resample_abs_pos_embed``) or the run is refused
(``resize=refuse``); see ``posbench.encodings.resize``.

``learned_scaled``: the same table multiplied by ``sqrt(d_model)`` before it is added,

    x + sqrt(d_model) * E[p]

the multiplier Vaswani et al. 2017 §3.4 apply to embedding weights, applied here to the position
table as tutorial implementations do (posbench's token embeddings are owned by the model and are
not rescaled). With the same ``init_std`` as ``learned`` the added codes start ``sqrt(d_model)``
times larger (std 0.16 instead of 0.02 at d_model=64), and every gradient step moves them
``d_model`` times further: a re-parameterisation that changes the effective initial scale and
learning rate of the table, not what it can represent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, grid_side
from posbench.encodings.resize import Resize, check_resize, resample
from posbench.errors import ConfigError
from posbench.schema import NonNegativeFloat, PositiveInt


@ENCODINGS.register("learned")
class Learned(PositionalEncoding):
    description = "trainable absolute table added to the input (Gehring et al. 2017; BERT/GPT-2)"
    family = "absolute"
    shift_invariant = False

    def __init__(
        self,
        shape: AttentionShape,
        max_len: PositiveInt = 256,
        init_std: NonNegativeFloat = 0.02,
        resize: Resize = "bicubic",
    ):
        """``resize``: what the table does on an image grid other than the training one."""
        super().__init__(shape)
        self.table = nn.Embedding(max_len, shape.d_model)
        nn.init.normal_(self.table.weight, std=init_std)
        self.resize = resize
        if shape.grid is not None and shape.prefix + shape.grid**2 > max_len:
            raise ConfigError(
                f"encoding={self.name} represents {max_len} positions but the training images have "
                f"{shape.prefix + shape.grid**2} tokens; raise encoding.max_len"
            )

    def max_positions(self) -> int:
        return self.table.num_embeddings

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        """On an image grid with ``resize=bicubic`` any grid is served by resampling the training
        grid's rows (whose fit ``__init__`` checked); otherwise the table must hold every position."""
        if self.shape.grid is None or self.resize == "refuse":
            super().check_fits(positions_needed, shorten)

    def check_grid(self, side: int) -> None:
        check_resize(self.name, self.resize, self.shape.grid, side)

    def weights(self, tokens: int) -> Tensor:
        """The table for a sequence of ``tokens`` tokens: as trained, or with the patch rows of the
        training grid resampled to the grid these tokens form."""
        grid, prefix = self.shape.grid, self.shape.prefix
        weight = self.table.weight
        if grid is None or tokens == prefix + grid * grid:
            return weight
        side = grid_side(tokens, prefix)
        patches = weight[prefix : prefix + grid * grid].T.reshape(-1, grid, grid)
        return torch.cat((weight[:prefix], resample(patches, (side, side)).flatten(1).T))

    def code(self, pos: Tensor) -> Tensor:
        """The vector added to the token embedding at each position: ``[*pos.shape, d_model]``."""
        return nn.functional.embedding(pos, self.weights(pos.shape[-1]))

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        return x + self.code(pos).to(x.dtype)


@ENCODINGS.register("learned_scaled")
class LearnedScaled(Learned):
    description = "trainable absolute table times sqrt(d_model), added to the input (Vaswani et al. 2017 §3.4 scaling)"

    def code(self, pos: Tensor) -> Tensor:
        return math.sqrt(self.shape.d_model) * super().code(pos)
