"""Count: how many shapes does the image hold? (an order-free control)

The image is a grid of ``cell x cell`` cells on Gaussian background noise (``noise``, its standard
deviation). Between 1 and ``max_count`` shapes (uniformly many), each a 3x3 plus or hollow square
(a fair coin per shape), fill distinct cells chosen uniformly, each at a random offset inside its
cell. Label: the number of shapes minus 1 (``max_count`` classes).

Order-free by construction: the count is a function of the set of patch contents (with the default
``cell: 4`` matching the default patch size, each patch holds at most one shape), so a ViT without
positional information can learn it as well as one with: the no-PE twin should match the encoding.
Chance: 1 / ``max_count`` (balanced labels).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import NonNegativeFloat, Range
from posbench.tasks.base import TASKS
from posbench.tasks.cells import PLUS, SQUARE, CellSide, check_cells, render_cells
from posbench.tasks.image import ImageTask, uniform_int


@TASKS.register("count")
class Count(ImageTask):
    description = "how many shapes the image holds (order-free control; chance 1/max_count)"
    order_sensitive = False

    def __init__(
        self,
        max_count: Annotated[int, Range(ge=2)] = 4,
        cell: CellSide = 4,
        noise: NonNegativeFloat = 0.1,
        **options,
    ):
        """``max_count``: the most shapes an image holds (the number of classes); ``cell``: the
        side of the cells shapes are drawn in (the default 4 matches the default patch size);
        ``noise``: standard deviation of the background."""
        self.max_count, self.cell, self.noise = int(max_count), int(cell), float(noise)
        self.classes = self.max_count
        super().__init__(**options)
        check_cells(self, self.cell, min_cells=1)
        fewest = min(self.image_size, *self.eval_sizes) // self.cell
        if self.max_count > fewest**2:
            raise ConfigError(
                f"task.max_count={self.max_count} shapes do not fit the {fewest * fewest} cells of the smallest "
                f"image ({fewest * self.cell} pixels, task.cell={self.cell}); use fewer shapes or larger images"
            )

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        grid = size // self.cell
        device = generator.device
        count = uniform_int(1, self.max_count, (batch_size,), generator)
        # a uniform random ranking of the cells; the ``count`` first are filled
        rank = torch.rand((batch_size, grid * grid), generator=generator, device=device).argsort(dim=1).argsort(dim=1)
        kind = uniform_int(PLUS, SQUARE, (batch_size, grid * grid), generator)
        kinds = torch.where(rank < count[:, None], kind, torch.zeros_like(kind)).view(batch_size, grid, grid)
        shapes = render_cells(kinds, self.cell, generator)
        noise = self.noise * torch.randn((batch_size, size, size), generator=generator, device=device)
        return (shapes + noise)[:, None], count - 1
