"""Tables tied to the training grid, evaluated on another one (``task.eval_sizes``).

A learned table of absolute positions (ViT's, ``learned2d``'s row and column tables) or of relative
offsets (Swin's ``rel_bias2d``) has one entry per position or offset of the *training* grid. On a
larger or smaller grid the encoding's ``resize`` option decides:

* ``bicubic``: the table, read as an image, is resampled to the new grid with bicubic
  interpolation, antialiased (PyTorch's antialiased bicubic kernel, in both directions), exactly as
  timm's ``resample_abs_pos_embed`` does for ViT position embeddings (Dosovitskiy et al. 2021
  §3.2 "2D interpolation of the pre-trained position embeddings"); Swin resamples its bias tables
  bicubically in the same way when fine-tuned at another resolution (Liu et al. 2021 §3.2);
* ``refuse``: a run that scores another size is refused before training, with one line.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from posbench.errors import ConfigError

#: The ``resize`` option of an encoding with a table tied to the training grid.
Resize = Literal["bicubic", "refuse"]


def resample(values: Tensor, size: tuple[int, ...]) -> Tensor:
    """``values [C, *old]`` (channels first, 1 or 2 spatial axes) resampled to ``[C, *size]``:
    antialiased bicubic on a 2D grid, along one axis for a 1D table (a one-row image), computed in
    float32 (timm's ``resample_abs_pos_embed`` settings: ``align_corners=False, antialias=True``)."""
    if tuple(values.shape[1:]) == tuple(size):
        return values
    image = values.float()[None] if values.dim() == 3 else values.float()[None, :, None]
    target = tuple(size) if values.dim() == 3 else (1, *size)
    out = F.interpolate(image, size=target, mode="bicubic", align_corners=False, antialias=True)
    return (out[0] if values.dim() == 3 else out[0, :, 0]).to(values.dtype)


def check_resize(name: str, resize: str, trained: int | None, side: int) -> None:
    """Refuse (``ConfigError``) to score a grid of ``side`` patches per side with an encoding whose
    table covers the ``trained`` grid when its ``resize`` option is ``refuse``."""
    if resize == "refuse" and trained is not None and side != trained:
        raise ConfigError(
            f"encoding={name} has a table for the {trained}x{trained} training grid and encoding.resize=refuse, "
            f"but task.eval_sizes asks for a {side}x{side} grid; set encoding.resize=bicubic or drop that size"
        )
