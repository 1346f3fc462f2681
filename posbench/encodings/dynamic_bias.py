"""Dynamic position bias: a small MLP from the relative distance to one bias per head, the dynamic
position bias of CrossFormer (Wang et al. 2021, "CrossFormer: A Versatile Vision Transformer Hinging
on Cross-scale Attention") and the continuous position bias of Swin Transformer V2 (Liu et al.
2022, "Swin Transformer V2: Scaling Up Capacity and Resolution", §3.3), here for 1D sequences:

    logits[h, i, j] += MLP(g(i - j))[h],     g(d) = d,  or  sign(d) * log(1 + |d|)  (``log_distance``)

``MLP`` = Linear(1, hidden), SiLU, then ``depth - 1`` times [Linear(hidden, hidden), SiLU], then
Linear(hidden, heads): exactly x-transformers' ``DynamicPositionBias`` (without its optional norm),
with the same defaults (``depth`` 2, ``hidden`` = d_model // 4, CrossFormer's D/4), so its weights copy
over one to one. ``log_distance`` is SwinV2's log-spaced coordinate, which lets an MLP trained on short
distances extrapolate more smoothly to long ones.

Differences from the papers, documented: both papers work on 2D offsets (dx, dy) of image windows;
here the input is the 1D signed distance ``i - j``, so keys to the left and right of a query get
different biases in bidirectional attention. CrossFormer's MLP uses ReLU with a LayerNorm before
each activation, and SwinV2's has one hidden layer of 512 with ReLU (its code also squashes the
output with ``16 * sigmoid``); posbench follows x-transformers (SiLU, no norm, no squashing). Each
layer has its own MLP, as in both papers (x-transformers instead shares one MLP across layers).

The MLP is evaluated on the distinct distances present (at most ``Lq + Lk - 1`` for consecutive
positions) and gathered into the ``Lq x Lk`` matrix, which is differentiable in the MLP weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance
from posbench.schema import PositiveInt


def dynamic_bias_mlp(hidden: int, heads: int, depth: int) -> nn.Sequential:
    """Linear(1, hidden), SiLU, ``depth - 1`` x [Linear(hidden, hidden), SiLU], Linear(hidden, heads)."""
    layers: list[nn.Module] = [nn.Linear(1, hidden), nn.SiLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(hidden, hidden), nn.SiLU()]
    return nn.Sequential(*layers, nn.Linear(hidden, heads))


@ENCODINGS.register("dynamic_bias")
class DynamicBias(PositionalEncoding):
    description = "per-head bias from an MLP of the relative distance (CrossFormer 2021; SwinV2 2022 log-spaced)"
    family = "bias"
    shift_invariant = True
    fractional = True

    def __init__(
        self, shape: AttentionShape, log_distance: bool = False, depth: PositiveInt = 2, hidden: PositiveInt | None = None
    ):
        super().__init__(shape)
        hidden = max(1, shape.d_model // 4) if hidden is None else hidden
        self.log_distance = bool(log_distance)
        self.mlps = nn.ModuleList(dynamic_bias_mlp(hidden, shape.heads, depth) for _ in range(shape.layers))

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        distances, index = torch.unique(relative_distance(q_pos, k_pos), return_inverse=True)
        x = distances.to(torch.float32)[:, None]
        if self.log_distance:
            x = torch.sign(x) * torch.log1p(x.abs())
        table = self.mlps[layer](x)  # [distinct distances, heads]
        return table[index].permute(0, 3, 1, 2)  # [B, heads, Lq, Lk]
