"""Factorized learned 2D absolute embeddings: one trainable table per axis of the training grid,
``R`` for rows and ``C`` for columns (``shape.grid`` entries each), added to the patch embeddings.
The factorized form of ViT's learned table (Dosovitskiy et al. 2021, Appendix D.4, "2-dimensional
embedding"); ``2 * side`` vectors instead of ``side^2``.

* ``combine=sum``: ``x + R[r] + C[c]`` with ``d_model``-wide tables;
* ``combine=concat``: ``x + [R[r] ; C[c]]`` with ``d_model/2``-wide tables (ViT's D.4 variant).

Entries are initialised N(0, ``init_std``^2), as ``learned``.

Class token (the first ``shape.prefix`` tokens): it has no grid position, so it gets a learned
vector of its own (``prefix_code``, N(0, ``init_std``^2)), as ViT's table has a row for it; its
coordinates are ignored.

On another grid (``task.eval_sizes``), ``resize`` decides: ``bicubic`` resamples each axis table along
its axis to the new side (``posbench.encodings.resize.resample``). Because bicubic resampling is
separable and its weights sum to one, this equals resampling the full ``side x side`` table that
the two factors define, as ``learned`` does. ``refuse`` refuses the run before training (``check_grid``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, add_to_patches, grid_side
from posbench.encodings.resize import Resize, check_resize, resample
from posbench.errors import ConfigError
from posbench.schema import NonNegativeFloat


@ENCODINGS.register("learned2d")
class Learned2D(PositionalEncoding):
    description = "trainable row and column tables added to the input (2D ViT variant, Dosovitskiy et al. 2021)"
    family = "absolute"
    axes = 2
    shift_invariant = False

    def __init__(
        self,
        shape: AttentionShape,
        combine: Literal["sum", "concat"] = "sum",
        init_std: NonNegativeFloat = 0.02,
        resize: Resize = "bicubic",
    ):
        """``combine``: add the row and column vectors (``sum``) or concatenate half-width ones
        (``concat``); ``resize``: what the tables do on an image grid other than the training one."""
        super().__init__(shape)
        if combine == "concat" and shape.d_model % 2:
            raise ConfigError(f"encoding={self.name} combine=concat needs an even model.d_model, got {shape.d_model}")
        width = shape.d_model if combine == "sum" else shape.d_model // 2
        self.combine, self.resize = combine, resize
        self.rows = nn.Parameter(torch.randn(shape.grid, width) * init_std)
        self.cols = nn.Parameter(torch.randn(shape.grid, width) * init_std)
        self.prefix_code = nn.Parameter(torch.randn(shape.prefix, shape.d_model) * init_std) if shape.prefix else None

    def check_grid(self, side: int) -> None:
        check_resize(self.name, self.resize, self.shape.grid, side)

    def tables(self, side: int) -> tuple[Tensor, Tensor]:
        """The row and column tables ``[side, width]`` for a ``side x side`` grid: as trained, or
        each resampled along its axis."""
        self.check_grid(side)
        return tuple(resample(table.T, (side,)).T for table in (self.rows, self.cols))

    def code(self, pos: Tensor, side: int) -> Tensor:
        """``[*, 2]`` patch (row, col) on a ``side x side`` grid -> ``[*, d_model]``."""
        rows, cols = self.tables(side)
        r, c = rows[pos[..., 0]], cols[pos[..., 1]]
        return r + c if self.combine == "sum" else torch.cat((r, c), dim=-1)

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        prefix = self.shape.prefix
        side = grid_side(pos.shape[-2], prefix)
        return add_to_patches(x, self.code(pos[:, prefix:], side), prefix, self.prefix_code)
