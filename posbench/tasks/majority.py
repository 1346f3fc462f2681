"""Majority (an order-free control): the target is the single most frequent source symbol, ties
going to the smallest symbol. The answer is a function of the multiset of symbols, so position is
not needed and NoPE should do as well as any encoding. Chance: 1 / vocab_size (uniform guess)."""

import torch.nn.functional as F
from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("majority")
class Majority(Task):
    description = "output the most frequent symbol (order-free control: PE should not matter)"
    order_sensitive = False

    def target(self, src: Tensor) -> Tensor:
        counts = F.one_hot(src, self.vocab_size).sum(dim=1)  # [B, vocab]
        return counts.argmax(dim=1, keepdim=True)  # first maximum = smallest symbol among ties

    def target_len(self, length: int) -> int:
        return 1
