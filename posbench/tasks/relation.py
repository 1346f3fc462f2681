"""Relation: where is shape A relative to shape B?

The image is a grid of ``cell x cell`` cells on Gaussian background noise (``noise``, its standard
deviation). Shape A (a 3x3 plus) fills one cell and shape B (a 3x3 hollow square) another, each at
a random offset inside its cell; A and B never share a row or a column of cells, so the relation
is strict. Label: ``2 * [A above B] + [A left of B]`` (0: A below and right of B, 1: below and
left, 2: above and right, 3: above and left).

Order-sensitive by construction: the label is where A is relative to B, not what either looks
like. With the default ``cell: 4`` matching the default patch size (more generally: whenever
``model.patch_size`` divides ``cell``), no patch ever holds parts of both shapes, so the set of
patch contents (one patch with A, one with B, the rest noise) has the same distribution for all
four labels, and a ViT without positional information (a function of that set) cannot beat
chance. A patch larger than a cell could hold both shapes and reveal their relation.
Chance: 1/4 (balanced labels: A's and B's rows and columns are exchangeable).
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.schema import NonNegativeFloat
from posbench.tasks.base import TASKS
from posbench.tasks.cells import check_cell_patches, PLUS, SQUARE, CellSide, check_cells, render_cells
from posbench.tasks.image import ImageTask, uniform_int


def distinct_pair(grid: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two different indices in ``0 .. grid-1`` per example, uniform over ordered pairs."""
    first = uniform_int(0, grid - 1, (batch,), generator)
    second = (first + uniform_int(1, grid - 1, (batch,), generator)) % grid
    return first, second


@TASKS.register("relation")
class Relation(ImageTask):
    description = "is a plus above/left of a hollow square (4 classes; chance 1/4)"
    classes = 4

    def __init__(self, cell: CellSide = 4, noise: NonNegativeFloat = 0.1, **options):
        """``cell``: the side of the cells shapes are drawn in (keep it a multiple of
        ``model.patch_size``: the default 4 matches the default patch); ``noise``: standard
        deviation of the background."""
        self.cell, self.noise = int(cell), float(noise)
        super().__init__(**options)
        check_cells(self, self.cell, min_cells=2)

    def check_patch_size(self, patch: int) -> None:
        check_cell_patches(self.cell, patch)

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        grid = size // self.cell
        row_a, row_b = distinct_pair(grid, batch_size, generator)
        col_a, col_b = distinct_pair(grid, batch_size, generator)
        label = 2 * (row_a < row_b).long() + (col_a < col_b).long()
        kinds = torch.zeros((batch_size, grid, grid), dtype=torch.long, device=generator.device)
        index = torch.arange(batch_size, device=generator.device)
        kinds[index, row_a, col_a] = PLUS
        kinds[index, row_b, col_b] = SQUARE
        shapes = render_cells(kinds, self.cell, generator)
        noise = self.noise * torch.randn((batch_size, size, size), generator=generator, device=generator.device)
        return (shapes + noise)[:, None], label
