"""ALiBi, attention with linear biases (Press et al. 2022, "Train Short, Test Long", §3):

    logits[h, i, j] += -m_h * (i - j)          (causal: only j <= i is visible)

with head slopes forming a geometric sequence that starts at ``2^(-8/n)`` with the same ratio for
``n`` heads a power of two; for other head counts the paper takes the slopes of the closest
smaller power of two ``c`` and adds every other slope of the ``2c`` sequence (``alibi_slopes``).

Bidirectional attention (posbench's choice, documented): the paper defines only the causal case,
and a penalty on ``|i - j|`` alone would make every head blind to left versus right. posbench gives
each head one slope for keys to its left and another for keys to its right: head h uses
``m_h`` to the left and ``m_(n-1-h)`` (the same slopes in reverse order) to the right, so
``bias = -m_h * max(i - j, 0) - m_(n-1-h) * max(j - i, 0)``. Under a causal mask this is
exactly the paper's ALiBi.

Learned slopes (option ``learned_slopes``, default false; not in the paper, which keeps the slopes
fixed): the slopes become trainable, parameterised by their logarithms (``m = exp(log_m)``, so they
stay positive), initialised to the paper's geometric slopes above, one set shared by all layers like
the fixed slopes (older x-transformers releases had the same ``LearnedAlibiPositionalBias``:
exponentiated learned log-slopes). Bidirectional attention learns the left and the right slopes
separately (initialised as above); under a causal mask the right-hand slopes only ever meet masked
keys, so there they are not parameters but mirror the learned left slopes, exactly as fixed ALiBi does.

ALiBi on some heads only (option ``heads_fraction``, default 1.0; not in the paper): the first
``n = round(heads_fraction * heads)`` heads (Python's round: halves to even) get ALiBi with the
slopes of an ``n``-head model (``alibi_slopes(n)``, so the steepest of them is ``2^(-8/n)``, not the
``heads``-head one), the other ``heads - n`` heads get no bias at all (NoPE heads: in a decoder they
see order only through the causal mask). This is x-transformers' ``alibi_num_heads`` (``AlibiPositionalBias(heads=n,
total_heads=heads)``: slopes for ``n`` heads, the bias padded with zeros for the last heads), checked
against it in tests/test_enc_options_2025.py. Learned slopes are learned for the ``n`` ALiBi heads
only; bidirectional attention mirrors the ``n`` slopes among the ALiBi heads (head h < n uses
``m_(n-1-h)`` to the right). A fraction that leaves no ALiBi head is refused.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import Tensor, nn

from posbench.encodings.base import (
    ENCODINGS,
    AttentionShape,
    PositionalEncoding,
    relative_distance,
)
from posbench.errors import ConfigError
from posbench.schema import Range


def alibi_slopes(heads: int) -> list[float]:
    """The paper's head slopes for any head count."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(heads).is_integer():
        return power_of_two(heads)
    closest = 2 ** math.floor(math.log2(heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: heads - closest]


@ENCODINGS.register("alibi")
class ALiBi(PositionalEncoding):
    description = "linear distance penalty on logits, per-head slopes, optionally learned or on some heads (Press et al. 2022)"
    family = "bias"
    shift_invariant = True
    fractional = True

    def __init__(
        self,
        shape: AttentionShape,
        learned_slopes: bool = False,
        heads_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0,
    ):
        super().__init__(shape)
        self.learned_slopes = bool(learned_slopes)
        #: the number of heads with ALiBi (the first ones); the others have no bias
        self.alibi_heads = round(heads_fraction * shape.heads)
        if self.alibi_heads == 0:
            raise ConfigError(
                f"encoding={self.name}: heads_fraction={heads_fraction} gives round({heads_fraction} * {shape.heads}) = 0 "
                f"ALiBi heads; raise it to at least {1 / shape.heads:.3g} (one of model.heads={shape.heads})"
            )
        slopes = torch.tensor(alibi_slopes(self.alibi_heads))[:, None, None]  # [alibi heads, 1, 1]
        if not self.learned_slopes:
            self.register_buffer("left", self.all_heads(slopes), persistent=False)
            self.register_buffer("right", self.all_heads(slopes.flip(0)), persistent=False)
            return
        self.log_left = nn.Parameter(slopes.log())
        self.log_right = None if shape.causal else nn.Parameter(slopes.flip(0).log())

    def all_heads(self, slopes: Tensor) -> Tensor:
        """``[heads, 1, 1]``: the ALiBi heads' slopes followed by zeros for the heads without ALiBi."""
        return torch.cat((slopes, slopes.new_zeros(self.shape.heads - self.alibi_heads, 1, 1)))

    def slopes(self) -> tuple[Tensor, Tensor]:
        """The slopes for keys to the left and to the right of the query, each ``[heads, 1, 1]``
        (zero for the heads without ALiBi)."""
        if not self.learned_slopes:
            return self.left, self.right
        left = self.log_left.exp()
        right = left.flip(0) if self.log_right is None else self.log_right.exp()
        return self.all_heads(left), self.all_heads(right)

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        left, right = self.slopes()
        dist = relative_distance(q_pos, k_pos).to(torch.float32)[:, None]  # [B, 1, Lq, Lk]
        return -(left * dist.clamp(min=0) + right * (-dist).clamp(min=0))
