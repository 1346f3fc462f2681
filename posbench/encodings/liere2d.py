"""2D LieRE on an image grid (Ostmeier et al. 2024, "LieRE: Lie Rotational Positional Encodings",
arXiv:2406.10322; the reference's ViT setting, StanfordMIMI/LieRE ``models/rope_vit.py``): each
patch at (row, col) rotates its query and key by

    R(r, c) = expm( r A_1 + c A_2 ),     A_a skew-symmetric, learned per head and layer

the 1D ``liere`` with two generators (its module docstring holds the parameterisation, blocks,
float64 exponential and options). Unlike RoPE-Axial, the two generators act on the same features
and need not commute, so ``R(p)^T R(s)`` is not a function of ``s - p`` alone: logits depend on
where a pair of patches is, not only on their offset (``shift_invariant = False``; the registry-wide
test shows the change under a shift). That is the paper's point: a richer, learned family of
rotations than axial RoPE.

Coordinates are posbench's patch indices (one unit per patch; the reference spreads the training
grid over [0, 1] per axis, see ``liere``'s ``init_range``). The class token (``NO_POSITION``,
(-1, -1)) gets the identity rotation, that of coordinates (0, 0): it carries no position, and
patch (0, 0) is the grid's origin. Initialisation is ``uniform`` only (``liere``'s ``init: rope``
is RoPE's 1D frequencies).
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, NO_POSITION
from posbench.encodings.liere import LieRE
from posbench.schema import PositiveFloat, Range


@ENCODINGS.register("liere2d")
class LieRE2D(LieRE):
    description = "learned 2D rotations expm(r A_1 + c A_2) of patches (Ostmeier et al. 2024, LieRE)"
    axes = 2
    shift_invariant = False
    fractional = False

    def __init__(
        self,
        shape: AttentionShape,
        block_size: Annotated[int, Range(ge=2)] | None = None,
        per_head: bool = True,
        per_layer: bool = True,
        init_range: PositiveFloat | None = None,
    ):
        super().__init__(shape, block_size, per_head, per_layer, "uniform", init_range)

    def points(self, pos: Tensor) -> Tensor:
        """(row, col) of each patch, ``[..., 2]``; the class token's ``NO_POSITION`` becomes (0, 0)."""
        return pos.masked_fill(pos == NO_POSITION, 0)
