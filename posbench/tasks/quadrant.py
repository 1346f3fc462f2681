"""Quadrant: which quadrant of the image holds the marker?

A ``marker x marker`` square of ones lies entirely inside one of the four quadrants, uniformly at
random within it, on Gaussian background noise (``noise``, its standard deviation). Label: 0 top
left, 1 top right, 2 bottom left, 3 bottom right.

Order-sensitive by construction: the label is where the marker is, not what it looks like. As long
as half the image side is a multiple of the patch size (the defaults: sizes 16, 24, 32 with patch
4), the four quadrants hold the same patch contents in distribution, so a ViT without positional
information (a function of the set of patches) cannot beat chance.
Chance: 1/4 (balanced labels).
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import NonNegativeFloat, PositiveInt
from posbench.tasks.base import TASKS
from posbench.tasks.image import ImageTask, pixel_grid, uniform_int


@TASKS.register("quadrant")
class Quadrant(ImageTask):
    description = "which quadrant holds the marker (4 classes; chance 1/4)"
    classes = 4

    def __init__(self, marker: PositiveInt = 3, noise: NonNegativeFloat = 0.1, **options):
        """``marker``: the marker's side in pixels; ``noise``: standard deviation of the background."""
        self.marker, self.noise = int(marker), float(noise)
        super().__init__(**options)
        too_small = [size for size in (self.image_size, *self.eval_sizes) if size // 2 < self.marker]
        if too_small:
            raise ConfigError(
                f"task.marker={self.marker} does not fit a quadrant of a {too_small[0]}-pixel image; "
                "use a smaller marker or larger images"
            )

    def check_patch_size(self, patch: int) -> None:
        """Quadrant boundaries must fall between patches, else the patch on a boundary shows on which
        side of it the marker lies."""
        off = [size for size in (self.image_size, *self.eval_sizes) if (size // 2) % patch]
        if off:
            raise ConfigError(
                f"half of a {off[0]}-pixel image is not a multiple of model.patch_size={patch}: a patch would "
                "straddle the quadrant boundary and show where the marker is, which the no-PE twin could read; "
                "use sizes that are multiples of twice the patch size"
            )

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        label = uniform_int(0, 3, (batch_size,), generator)
        half = size // 2
        top = (label // 2) * half + uniform_int(0, half - self.marker, (batch_size,), generator)
        left = (label % 2) * half + uniform_int(0, half - self.marker, (batch_size,), generator)
        rows, cols = pixel_grid(size, generator.device)
        top, left = top[:, None, None], left[:, None, None]
        marker = (rows >= top) & (rows < top + self.marker) & (cols >= left) & (cols < left + self.marker)
        noise = self.noise * torch.randn((batch_size, size, size), generator=generator, device=generator.device)
        return (noise + marker.float())[:, None], label
