"""Conditional position encoding: the Position Encoding Generator (PEG) of CPVT (Chu et al.
2021/2023, "Conditional Positional Encodings for Vision Transformers", §3.2, Fig. 2).

After the chosen blocks, the patch tokens ``X [B, N, C]`` are reshaped to the ``S x S`` image grid
(raster order, as the ViT lays them out) and a 3x3 depthwise convolution with bias and zero padding
1 (the paper's F: k = 3, (k - 1) / 2 zeros) is added to them, as in the reference implementation:

    X' = X + DWConv3x3(X)          (on the grid, then flattened back)

The encoding is computed from the tokens themselves, so it follows the grid of any image size.
Position enters through the zero padding at the grid's border (CPVT's ablation of padding: without
it the convolution is translation-equivariant and knows no absolute position).

``layers``: the blocks after which a PEG acts (one convolution each); the default ``[0]``, after the
first block, is the position CPVT's ablation of PEG positions finds best; CPVT-Ti+ uses 0..5.

Class token (``shape.prefix`` leading tokens, coordinates ``(-1, -1)``): not on the grid, it passes
through unchanged (CPVT splits it off before the convolution and concatenates it back).

``shift_invariant = True``: the hooks never read the coordinates' values (only the grid's size, from
the token count), so logits do not change when every patch coordinate shifts. That says nothing
about the patches' order: the convolution mixes grid neighbours, so a ViT with a PEG is no longer
permutation-equivariant over patches. Initialisation: PyTorch's default for ``nn.Conv2d``.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, add_to_patches, grid_side
from posbench.errors import ConfigError
from posbench.schema import EachAtLeast, NonEmpty


def conv_on_grid(conv: nn.Conv2d, x: Tensor, prefix: int) -> Tensor:
    """``conv`` applied to the grid tokens of ``x [B, prefix + S*S, C]`` laid out as an ``S x S``
    image in raster order: ``[B, S*S, C']`` (the ``prefix`` tokens are left to the caller)."""
    batch, tokens, channels = x.shape
    side = grid_side(tokens, prefix)
    image = x[:, prefix:].transpose(1, 2).reshape(batch, channels, side, side)
    return conv(image).flatten(2).transpose(1, 2)


def depthwise3x3(channels: int) -> nn.Conv2d:
    """A 3x3 depthwise convolution with bias and zero padding 1 (size-preserving)."""
    return nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels, bias=True)


@ENCODINGS.register("peg")
class PEG(PositionalEncoding):
    description = "conditional encoding: x + 3x3 depthwise conv of the patch grid after chosen blocks (CPVT, Chu et al. 2021)"
    family = "conditional"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape, layers: Annotated[list[int], NonEmpty(), EachAtLeast(0)] = (0,)):
        """``layers``: the blocks (0 = the first) after which a PEG acts."""
        super().__init__(shape)
        beyond = sorted(layer for layer in layers if layer >= shape.layers)
        if beyond:
            raise ConfigError(
                f"encoding.layers={list(layers)} names block {beyond[0]}, but the model has {shape.layers} blocks "
                f"(0..{shape.layers - 1}); see model.layers"
            )
        self.convs = nn.ModuleDict({str(layer): depthwise3x3(shape.d_model) for layer in sorted(set(layers))})

    def between_blocks(self, x: Tensor, pos: Tensor, layer: int) -> Tensor:
        if str(layer) not in self.convs:
            return x
        prefix = self.shape.prefix
        return add_to_patches(x, conv_on_grid(self.convs[str(layer)], x, prefix), prefix)
