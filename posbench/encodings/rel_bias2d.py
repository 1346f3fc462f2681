"""2D relative position bias (Liu et al. 2021, "Swin Transformer", §3.2, eq. 4):

    Attention(Q, K, V) = SoftMax(Q K^T / sqrt(d) + B) V                         (eq. 4)

    B[h, i, j] = B_hat[h, r_i - r_j + G - 1, c_i - c_j + G - 1]

where patch i sits at (r_i, c_i) on the ``G x G`` training grid and ``B_hat`` is a learned
``(2G - 1) x (2G - 1)`` table per head: one scalar per 2D offset (query minus key, as Swin indexes
it). Swin learns one table per block; so does posbench (one per layer). posbench applies it to
the whole image grid (a global window).

Class token (``shape.prefix`` leading tokens, coordinates ``(-1, -1)``): it has no offset to any
patch, so it gets biases of its own, three learned scalars per head and layer as in BEiT (Bao et
al. 2022), whose released implementation extends the table by three entries: ``cls -> patch``
(query the class token, key any patch), ``patch -> cls`` (query a patch, key the class token) and
``cls -> cls``.

Another grid (``task.eval_sizes``, ``resize`` option, ``posbench.encodings.resize``): with
``bicubic`` the ``(2G - 1) x (2G - 1)`` table of every head, read as an image, is resampled to
``(2S - 1) x (2S - 1)`` for an ``S x S`` grid with ``posbench.encodings.resize.resample``, as Swin
initialises a model with another window size by bicubic interpolation of its tables (Liu et al.
2021 §3.2); the class-token entries are unchanged. With ``refuse`` such a run is
refused before training.

Initialisation: truncated normal with std ``init_std`` cut at two standard deviations. The default
is 2.0, not Swin's 0.02 (``init_std: 0`` gives the zero table BEiT starts from, under which the
encoding starts as NoPE). A content-independent bias tells a query *which way* a key lies only
through how much it attends to it: with near-zero tables every offset is weighted alike, the
attended values are a bag of patches, and the gradient to the table vanishes with the signal.
Large ViTs trained for hundreds of epochs leave that symmetric start; posbench's small, short runs
mostly do not. Measured here (``task=relation``, default ViT and trainer, 1000 CPU steps):
accuracy 0.31 with 0.02, 0.885 with 0.5, 0.53 with 1.0, and 1.000 with 2.0 for seeds 0, 1 and 2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, grid_side
from posbench.encodings.resize import Resize, check_resize, resample
from posbench.schema import NonNegativeFloat


@ENCODINGS.register("rel_bias2d")
class RelativeBias2D(PositionalEncoding):
    description = "learned per-head bias per 2D patch offset, one table per layer (Swin, Liu et al. 2021 eq. 4)"
    family = "bias"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape, resize: Resize = "bicubic", init_std: NonNegativeFloat = 2.0):
        """``resize``: what the tables do on a grid other than the training one; ``init_std``: std of
        the truncated-normal initialisation (0: zeros)."""
        super().__init__(shape)
        self.resize = resize
        size = 2 * shape.grid - 1
        #: ``B_hat`` of every layer: ``[layers, heads, 2G - 1, 2G - 1]``, indexed by (dr + G - 1, dc + G - 1).
        self.table = nn.Parameter(torch.zeros(shape.layers, shape.heads, size, size))
        #: Class-token biases ``[layers, heads, 3]``: cls -> patch, patch -> cls, cls -> cls (BEiT's order).
        self.register_parameter("cls", nn.Parameter(torch.zeros(shape.layers, shape.heads, 3)) if shape.prefix else None)
        if init_std > 0:
            for param in (self.table, self.cls):
                if param is not None:
                    nn.init.trunc_normal_(param, std=init_std, a=-2 * init_std, b=2 * init_std)

    def check_grid(self, side: int) -> None:
        check_resize(self.name, self.resize, self.shape.grid, side)

    def layer_table(self, layer: int, side: int) -> Tensor:
        """Layer ``layer``'s table for a ``side x side`` grid: ``[heads, 2 side - 1, 2 side - 1]``."""
        size = 2 * side - 1
        return resample(self.table[layer], (size, size))

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        prefix = self.shape.prefix
        side = grid_side(k_pos.shape[-2], prefix)
        size = 2 * side - 1
        offset = (q_pos[..., :, None, :] - k_pos[..., None, :, :]).clamp(-(side - 1), side - 1) + side - 1
        index = offset[..., 0] * size + offset[..., 1]  # [B or 1, Lq, Lk] into the flattened table
        values = self.layer_table(layer, side).flatten(1)  # [heads, size * size]
        if prefix:
            q_cls = (torch.arange(q_pos.shape[-2], device=index.device) < prefix)[:, None]
            k_cls = (torch.arange(k_pos.shape[-2], device=index.device) < prefix)[None, :]
            cells = size * size
            index = torch.where(q_cls, cells, torch.where(k_cls, cells + 1, index))
            index = torch.where(q_cls & k_cls, cells + 2, index)
            values = torch.cat((values, self.cls[layer].to(values.dtype)), dim=1)
        return values[:, index].transpose(0, 1)  # [B or 1, heads, Lq, Lk]
