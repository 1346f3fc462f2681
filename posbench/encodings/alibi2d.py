"""2D ALiBi: ALiBi's linear distance penalty (Press et al. 2022, "Train Short, Test Long", §3) with
the distance between two patches of the image grid:

    logits[h, i, j] += -m_h * dist((r_i, c_i), (r_j, c_j))

    euclidean: dist = sqrt((r_i - r_j)^2 + (c_i - c_j)^2)    (the 2D-ALiBi of CROMA, Fuller et al. 2023)
    manhattan: dist = |r_i - r_j| + |c_i - c_j|

with the paper's fixed per-head slopes ``m_h`` (``posbench.encodings.alibi.alibi_slopes``), one set
for all layers. The penalty is symmetric: unlike ``alibi``'s bidirectional variant there is no
direction to tell apart on a grid by one slope per head, only a distance.

Class token (``shape.prefix`` leading tokens, coordinates ``(-1, -1)``): zero bias to and from it
(it is at no distance from anything), so it attends to every patch without penalty.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from posbench.encodings.alibi import alibi_slopes
from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, grid_pairs


@ENCODINGS.register("alibi2d")
class ALiBi2D(PositionalEncoding):
    description = "ALiBi's per-head linear penalty on the 2D patch distance, Euclidean or Manhattan (Press et al. 2022)"
    family = "bias"
    axes = 2
    shift_invariant = True

    def __init__(self, shape: AttentionShape, distance: Literal["euclidean", "manhattan"] = "euclidean"):
        """``distance``: the metric between patches (row, col)."""
        super().__init__(shape)
        self.distance = distance
        self.register_buffer("slopes", torch.tensor(alibi_slopes(shape.heads))[:, None, None], persistent=False)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        delta = (q_pos[..., :, None, :] - k_pos[..., None, :, :]).to(torch.float32)  # [B or 1, Lq, Lk, 2]
        if self.distance == "euclidean":
            dist = delta.square().sum(-1).sqrt()
        else:
            dist = delta.abs().sum(-1)
        prefix = self.shape.prefix
        if prefix:
            dist = dist * grid_pairs(q_pos.shape[-2], k_pos.shape[-2], prefix, dist.device)
        return -self.slopes * dist[:, None]  # [B or 1, heads, Lq, Lk]
