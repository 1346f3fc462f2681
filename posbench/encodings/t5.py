"""T5 relative position bias (Raffel et al. 2020, "Exploring the Limits of Transfer Learning", §2.1).

Each head learns one scalar per bucket of the relative position ``n = j - i`` (key minus query),
shared by all layers. Buckets are exact for small distances and logarithmic beyond:

* bidirectional: half the buckets for ``n > 0`` (keys to the right), half for ``n <= 0``;
  causal: all buckets for ``n <= 0`` (future keys are masked anyway).
* within a half of ``B`` buckets, with ``d = |n|`` and ``e = B // 2`` exact buckets:
  bucket = ``d`` if ``d < e`` else ``min(B - 1, e + floor(log(d / e) / log(max_distance / e) * (B - e)))``.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding, relative_distance
from posbench.errors import ConfigError
from posbench.schema import PositiveInt, Range


def t5_bucket(relative: Tensor, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128) -> Tensor:
    """Bucket index of each relative position ``j - i`` (integer tensor, any shape)."""
    bucket = torch.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        bucket = bucket + (relative > 0).long() * num_buckets
        distance = relative.abs()
    else:
        distance = (-relative).clamp(min=0)
    exact = num_buckets // 2
    log_ratio = torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
    far = exact + (log_ratio * (num_buckets - exact)).long()
    far = far.clamp(max=num_buckets - 1)
    return bucket + torch.where(distance < exact, distance, far)


@ENCODINGS.register("t5")
class T5Bias(PositionalEncoding):
    description = "learned per-head bias over log-spaced relative-distance buckets (Raffel et al. 2020)"
    family = "bias"
    shift_invariant = True

    def __init__(self, shape: AttentionShape, num_buckets: Annotated[int, Range(ge=2)] = 32, max_distance: PositiveInt = 128):
        super().__init__(shape)
        exact = (num_buckets if shape.causal else num_buckets // 2) // 2
        if exact < 1:
            raise ConfigError(
                f"encoding=t5 with num_buckets={num_buckets} leaves no exact bucket in bidirectional attention "
                "(half the buckets per direction, half of those exact); use num_buckets >= 4"
            )
        if max_distance <= exact:
            raise ConfigError(
                f"encoding=t5 needs max_distance > {exact} (its exact buckets) to space the logarithmic ones, "
                f"got max_distance={max_distance}"
            )
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.table = nn.Embedding(self.num_buckets, shape.heads)
        nn.init.zeros_(self.table.weight)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        relative = -relative_distance(q_pos, k_pos)  # j - i
        buckets = t5_bucket(relative, not self.shape.causal, self.num_buckets, self.max_distance)
        return self.table(buckets).permute(0, 3, 1, 2)  # [B, heads, Lq, Lk]
