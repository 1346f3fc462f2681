"""Patch order: is the image shown as drawn, or with its cells shuffled?

Each image is a smooth linear ramp ``cos(a) * x + sin(a) * y`` (``x``, ``y`` in ``[-1, 1]`` across
the image, direction ``a`` uniform) plus Gaussian pixel noise (``noise``, its standard deviation).
It is cut into a grid of ``cell x cell`` cells and shown either as drawn (label 1) or with its cells
moved by a uniformly random non-identity permutation (label 0); a fair coin picks which.

Order-sensitive by construction: both classes hold exactly the same multiset of cells (a shuffle
only moves them, noise included), and the unshuffled image is drawn the same way in both classes.
With the default ``cell: 4`` matching the default patch size (more generally: whenever
``model.patch_size`` divides ``cell``), the set of patch contents therefore has the same
distribution in both classes, and a ViT without positional information (a function of that set)
cannot beat chance; the label is only visible in where the cells are (a ramp is continuous, a
shuffled one is not). A patch larger than a cell would hold shuffled seams and leak the label.
Chance: 1/2 (balanced labels).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from posbench.schema import NonNegativeFloat
from posbench.tasks.base import TASKS
from posbench.tasks.cells import check_cell_patches, CellSide, check_cells
from posbench.tasks.image import ImageTask, pixel_grid, uniform_int


def to_cells(images: Tensor, cell: int) -> Tensor:
    """``[B, S, S]`` -> its cells ``[B, G*G, cell, cell]`` in raster order (``G = S / cell``)."""
    batch, size, _ = images.shape
    grid = size // cell
    return images.view(batch, grid, cell, grid, cell).transpose(2, 3).reshape(batch, grid * grid, cell, cell)


def from_cells(cells: Tensor) -> Tensor:
    """The inverse of ``to_cells``."""
    batch, count, cell, _ = cells.shape
    grid = math.isqrt(count)
    return cells.view(batch, grid, grid, cell, cell).transpose(2, 3).reshape(batch, grid * cell, grid * cell)


def permute_cells(images: Tensor, permutation: Tensor, cell: int) -> Tensor:
    """``images [B, S, S]`` with cell ``permutation[b, k]`` shown at cell position ``k``."""
    cells = to_cells(images, cell)
    index = permutation[:, :, None, None].expand(-1, -1, cell, cell)
    return from_cells(cells.gather(1, index))


def shuffles(batch_size: int, count: int, generator: torch.Generator) -> Tensor:
    """A uniformly random non-identity permutation of ``count`` items per example ``[B, count]``."""
    device = generator.device
    permutation = torch.rand((batch_size, count), generator=generator, device=device).argsort(dim=1)
    identity = torch.arange(count, device=device)
    swapped = identity.clone()
    swapped[[0, 1]] = swapped[[1, 0]]
    unchanged = (permutation == identity).all(dim=1, keepdim=True)
    return torch.where(unchanged, swapped, permutation)


@TASKS.register("patch_order")
class PatchOrder(ImageTask):
    description = "is the image as drawn or are its cells shuffled (2 classes; chance 1/2)"
    classes = 2

    def __init__(self, cell: CellSide = 4, noise: NonNegativeFloat = 0.1, **options):
        """``cell``: the side of the shuffled cells (keep it a multiple of ``model.patch_size``:
        the default 4 matches the default patch); ``noise``: standard deviation of the pixel noise."""
        self.cell, self.noise = int(cell), float(noise)
        super().__init__(**options)
        check_cells(self, self.cell, min_cells=2)

    def check_patch_size(self, patch: int) -> None:
        check_cell_patches(self.cell, patch)

    def pair(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Smooth images ``[B, S, S]`` and the same images with their cells shuffled."""
        device = generator.device
        angle = 2 * math.pi * torch.rand((batch_size, 1, 1), generator=generator, device=device)
        rows, cols = pixel_grid(size, device)
        y, x = (2 * rows + 1) / size - 1, (2 * cols + 1) / size - 1
        ramp = torch.cos(angle) * x + torch.sin(angle) * y
        images = ramp + self.noise * torch.randn((batch_size, size, size), generator=generator, device=device)
        grid = size // self.cell
        return images, permute_cells(images, shuffles(batch_size, grid * grid, generator), self.cell)

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        label = uniform_int(0, 1, (batch_size,), generator)
        images, shuffled = self.pair(batch_size, size, generator)
        shown = torch.where(label[:, None, None] == 1, images, shuffled)
        return shown[:, None], label
