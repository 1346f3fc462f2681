"""Cells: the drawing shared by the shape-based image tasks (``relation``, ``count``, ``patch_order``,
``shapes_caption``).

An image is a grid of ``cell x cell`` pixel cells; a shape (a 3x3 plus, hollow square or cross) fills a
cell at a uniform random offset inside it. With ``cell`` a multiple of the ViT's patch size, no
patch ever straddles two cells, so a patch shows at most one shape: what keeps these tasks'
patch contents free of position information (each task's docstring says how).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import Range
from posbench.tasks.image import ImageTask, pixel_grid, uniform_int

#: The shapes a cell can hold, as 3x3 masks: 0 nothing, 1 a plus, 2 a hollow square, 3 a cross.
SHAPES = torch.tensor(
    [
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
        [[1, 1, 1], [1, 0, 1], [1, 1, 1]],
        [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
    ],
    dtype=torch.float32,
)
SHAPE_SIDE = 3
PLUS, SQUARE, CROSS = 1, 2, 3

#: A cell's side: at least a shape's.
CellSide = Annotated[int, Range(ge=SHAPE_SIDE)]


def check_cells(task: ImageTask, cell: int, min_cells: int) -> None:
    """Every image side the task draws is a multiple of ``cell`` and at least ``min_cells`` cells."""
    sizes = (task.image_size, *task.eval_sizes)
    untiled = [size for size in sizes if size % cell]
    if untiled:
        raise ConfigError(
            f"task.cell={cell} does not tile a {untiled[0]}-pixel image; use image sizes that are multiples of task.cell"
        )
    small = [size for size in sizes if size // cell < min_cells]
    if small:
        raise ConfigError(
            f"task.cell={cell} leaves a {small[0]}-pixel image fewer than {min_cells} cells per side, "
            f"which task={task.name} needs; use a smaller cell or larger images"
        )


def render_cells(kinds: Tensor, cell: int, generator: torch.Generator) -> Tensor:
    """Images ``[B, G*cell, G*cell]`` with shape ``kinds[b, i, j]`` (``SHAPES`` index, 0: none)
    drawn in cell ``(i, j)`` of image ``b`` at a uniform random offset inside the cell."""
    batch, grid, _ = kinds.shape
    device = kinds.device
    offsets = uniform_int(0, cell - SHAPE_SIDE, (batch, grid, grid, 2), generator)

    def per_pixel(t: Tensor) -> Tensor:  # [B, G, G] -> [B, S, S]: each cell's value on its pixels
        return t.repeat_interleave(cell, dim=1).repeat_interleave(cell, dim=2)

    rows, cols = pixel_grid(grid * cell, device)
    r = rows % cell - per_pixel(offsets[..., 0])
    c = cols % cell - per_pixel(offsets[..., 1])
    inside = (r >= 0) & (r < SHAPE_SIDE) & (c >= 0) & (c < SHAPE_SIDE)
    pixels = SHAPES.to(device)[per_pixel(kinds), r.clamp(0, SHAPE_SIDE - 1), c.clamp(0, SHAPE_SIDE - 1)]
    return pixels * inside


def check_cell_patches(cell: int, patch: int) -> None:
    """Patches must not straddle cells: ``cell`` a multiple of ``patch``, so no patch shows parts of
    two cells (two shapes, or a seam between shuffled cells)."""
    if cell % patch:
        raise ConfigError(
            f"task.cell={cell} is not a multiple of model.patch_size={patch}: a patch would straddle cells and "
            "show how they are placed, which the no-PE twin could read; use a patch size that divides task.cell"
        )
