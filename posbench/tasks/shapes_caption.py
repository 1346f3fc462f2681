"""Shapes caption: describe 1 to 3 coloured shapes and where they are relative to each other.

The image is a grid of ``cell x cell`` cells on Gaussian background noise (``noise``). It holds
``min_shapes`` to ``max_shapes`` shapes (a 3x3 plus, hollow square or cross, each at a random
offset inside its cell) of distinct colours (red, green, blue, yellow), all in one row of cells
or all in one column (each with probability 1/2), in distinct cells in random order. The caption
names them in the fixed order of their colours (red, green, blue, yellow) and relates each to the
next by where it is: ``left of`` / ``right of`` in a row, ``above`` / ``below`` in a column::

    green cross
    red plus left of blue square
    red cross above green square below yellow plus

Vocabulary: 12 words; the longest caption (3 shapes, two ``left of``) has 10, plus ``eos``.

Where position is needed:

* image side: the spatial words are the only words that depend on where the shapes are. With
  ``model.patch_size`` dividing ``cell`` (the default 4 and 4), a patch shows at most one shape,
  so the set of patch contents has the same distribution for every layout; a captioner whose
  image side has no positional information (``model.image_encoding=none`` with the ViT encoder)
  sees that set only, and every spatial word it writes is right with probability 1/4 at best
  (row or column, and the direction, are uniform and independent of the set): **chance 1/4**.
  Its exact match is then at most 1 for one shape, 1/4 for two, and 1/6 for three (the row or
  column, 1/2, times the best guess of the two directions, 1/3: the six orders of three shapes
  give the direction pairs ++ and -- once each and +- and -+ twice).
* text side: the decoder must know where it is in the caption (after ``blue square``: a spatial
  word or the end; after ``of``: the next colour). A causal decoder without a positional
  encoding still sees the set of words before the current one, and a causal mask lets it count
  (Kazemnejad et al. 2023), so there is no bound below 1: how much the text side's encoding
  matters here is what the 2x2 ablation measures.

Metrics beyond token accuracy, exact match and BLEU: ``spatial_acc``, the accuracy of the words
``left``, ``right``, ``above`` and ``below`` at the caption positions that hold one.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import NonNegativeFloat, Range
from posbench.tasks.base import PAD, TASKS, symbols_before_stop
from posbench.tasks.captions import CaptionTask
from posbench.tasks.cells import CellSide, check_cell_patches, check_cells, render_cells
from posbench.tasks.image import uniform_int

COLOURS = ("red", "green", "blue", "yellow")
RGB = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
#: Shape words, in the order of ``posbench.tasks.cells.SHAPES`` (index 1, 2, 3).
SHAPE_WORDS = ("plus", "square", "cross")
SPATIAL = ("left", "right", "above", "below")
WORDS = (*COLOURS, *SHAPE_WORDS, *SPATIAL, "of")
LEFT, RIGHT, ABOVE, BELOW, OF = (WORDS.index(word) for word in (*SPATIAL, "of"))
#: A slot of the caption template left empty (removed when the caption is packed).
SKIP = -1

Shapes = Annotated[int, Range(ge=1, le=3)]


@TASKS.register("shapes_caption")
class ShapesCaption(CaptionTask):
    description = "caption 1-3 coloured shapes in a row or column: 'red plus left of blue square' (spatial words: chance 1/4)"
    channels = 3
    classes = len(WORDS)

    def __init__(
        self, cell: CellSide = 4, noise: NonNegativeFloat = 0.1, min_shapes: Shapes = 1, max_shapes: Shapes = 3,
        **options,
    ):
        """``cell``: the side of the cells shapes are drawn in (keep it a multiple of
        ``model.patch_size``); ``noise``: standard deviation of the background; ``min_shapes`` /
        ``max_shapes``: how many shapes an image holds (uniform), 1 to 3."""
        if min_shapes > max_shapes:
            raise ConfigError(f"task.min_shapes={min_shapes} is above task.max_shapes={max_shapes}")
        self.cell, self.noise = int(cell), float(noise)
        self.min_shapes, self.max_shapes = int(min_shapes), int(max_shapes)
        super().__init__(**options)
        check_cells(self, self.cell, min_cells=self.max_shapes)

    def check_patch_size(self, patch: int) -> None:
        check_cell_patches(self.cell, patch)

    @property
    def longest_caption(self) -> int:
        return 2 * self.max_shapes + 2 * (self.max_shapes - 1)

    def decode(self, symbols) -> str:
        return " ".join(WORDS[symbol] for symbol in symbols_before_stop(symbols, len(WORDS)))

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        device, grid, most = generator.device, size // self.cell, self.max_shapes
        count = uniform_int(self.min_shapes, most, (batch_size,), generator)
        column = uniform_int(0, 1, (batch_size,), generator).bool()  # in one column (else one row)
        line = uniform_int(0, grid - 1, (batch_size,), generator)
        along = torch.rand((batch_size, grid), generator=generator, device=device).argsort(dim=1)[:, :most]
        colours = torch.rand((batch_size, len(COLOURS)), generator=generator, device=device).argsort(dim=1)[:, :most]
        shapes = uniform_int(1, len(SHAPE_WORDS), (batch_size, most), generator)
        present = torch.arange(most, device=device) < count[:, None]  # [B, most]
        # the caption names the shapes in colour order: sort each image's colours (absent ones last)
        colours = colours.masked_fill(~present, len(COLOURS)).sort(dim=1).values
        rows = torch.where(column[:, None], along, line[:, None])
        cols = torch.where(column[:, None], line[:, None], along)

        kinds = torch.zeros((batch_size, grid, grid), dtype=torch.long, device=device)
        paint = torch.zeros((batch_size, grid, grid, 3), device=device)
        example = torch.arange(batch_size, device=device)[:, None].expand(-1, most)
        kinds[example[present], rows[present], cols[present]] = shapes[present]
        paint[example[present], rows[present], cols[present]] = RGB.to(device)[colours[present]]
        mask = render_cells(kinds, self.cell, generator)  # [B, S, S] 0/1
        paint = paint.repeat_interleave(self.cell, dim=1).repeat_interleave(self.cell, dim=2)
        noise = self.noise * torch.randn((batch_size, 3, size, size), generator=generator, device=device)
        images = (paint * mask[..., None]).permute(0, 3, 1, 2) + noise
        return images, self.captions(count, column, along, colours, shapes)

    def captions(self, count: Tensor, column: Tensor, along: Tensor, colours: Tensor, shapes: Tensor) -> Tensor:
        """Captions ``[B, target_len]``: the template ``c0 s0 r r c1 s1 r r c2 s2`` (colour word,
        shape word, a one- or two-word relation to the next shape) with its unused slots removed."""
        most = colours.shape[1]
        colour_word = colours.clamp(max=len(COLOURS) - 1)
        shape_word = len(COLOURS) + shapes - 1
        after = along[:, 1:] > along[:, :-1]  # the next shape lies right of / below this one
        first = torch.where(column[:, None], torch.where(after, ABOVE, BELOW), torch.where(after, LEFT, RIGHT))
        second = torch.where(column[:, None], SKIP, OF).expand_as(first)
        slots, kept = [], []
        for k in range(most):
            slots += [colour_word[:, k], shape_word[:, k]]
            kept += [count > k] * 2
            if k + 1 < most:
                slots += [first[:, k], second[:, k]]
                kept += [count > k + 1, (count > k + 1) & (second[:, k] != SKIP)]
        slots.append(torch.full_like(count, self.eos))  # room for the eos of the longest caption
        kept.append(torch.zeros_like(count, dtype=torch.bool))
        slots, kept = torch.stack(slots, dim=1), torch.stack(kept, dim=1)
        words = slots.gather(1, torch.sort((~kept).long(), dim=1, stable=True).indices)
        length = kept.sum(dim=1, keepdim=True)
        index = torch.arange(slots.shape[1], device=slots.device)
        return torch.where(index < length, words, torch.where(index == length, self.eos, PAD))

    def corpus_metrics(self, predictions: list[Tensor], targets: list[Tensor]) -> dict[str, float]:
        """BLEU, and ``spatial_acc``: the share of target positions holding a spatial word where the
        (greedy, eos-cut) prediction has the same word."""
        hits = total = 0
        spatial = torch.tensor([LEFT, RIGHT, ABOVE, BELOW])
        for pred, tgt in zip(predictions, targets):
            tgt = tgt[:, 0] if tgt.dim() == 3 else tgt  # the first reference, as token accuracy
            scored = torch.isin(tgt, spatial.to(tgt.device))
            hits += int(((pred == tgt) & scored).sum())
            total += int(scored.sum())
        metrics = super().corpus_metrics(predictions, targets)
        return metrics | ({"spatial_acc": hits / total} if total else {})
