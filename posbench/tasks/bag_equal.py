"""Bag equality (an order-free control): are the two halves of the source equal as multisets?

To keep the answer a function of the multiset of source symbols only (a true control: the task is
invariant to ANY permutation of the source, so a NoPE encoder can solve it), the second half is
written in a shifted alphabet. With ``K = (vocab_size - 1) // 2``: the first half uses symbols
``0 .. K-1``, the second half ``K .. 2K-1`` (symbol ``x + K`` stands for ``x``), and
``vocab_size-1`` is a filler that sits in the middle of odd-length sources and is ignored. The
target is 1 when every x has ``count(x) == count(x + K)``, else 0 (symbols between 2K and
vocab_size-2, unused by sample, are ignored too). Needs vocab_size >= 5.
(Halves in one shared alphabet would NOT be order-free: moving a symbol across the middle changes
the answer, so the model would need to know which half each symbol is in.)
Sampling: the first half is uniform; with probability 1/2 the second half is a shuffle of it
(answer 1), else a shuffle with one symbol changed to a different one (answer 0: a near miss).
L = 1 (two empty halves around the filler) is always equal.
Chance: 0.5 (uniform guess between the two possible answers 0 and 1)."""

import torch
import torch.nn.functional as F
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("bag_equal")
class BagEqual(Task):
    description = "output 1 if the two halves hold the same multiset, else 0 (order-free control)"
    order_sensitive = False
    min_vocab = 5

    @property
    def half(self) -> int:
        return (self.vocab_size - 1) // 2

    @property
    def chance(self) -> float:
        return 0.5

    def target_len(self, length: int) -> int:
        return 1

    def target(self, src: Tensor) -> Tensor:
        k = self.half
        counts = F.one_hot(src, self.vocab_size).sum(dim=1)  # [B, vocab]
        equal = (counts[:, :k] == counts[:, k : 2 * k]).all(dim=1, keepdim=True)
        return equal.long()

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        k, m = self.half, length // 2
        first = torch.randint(0, k, (batch_size, m), generator=generator, device=device)
        order = torch.rand(batch_size, m, generator=generator, device=device).argsort(dim=1)
        second = first.gather(1, order)
        differ = torch.rand(batch_size, 1, generator=generator, device=device) < 0.5
        if m > 0:
            slot = torch.randint(0, m, (batch_size, 1), generator=generator, device=device)
            shift = torch.randint(1, k, (batch_size, 1), generator=generator, device=device)
            changed = (second.gather(1, slot) + shift) % k
            second = torch.where(differ, second.scatter(1, slot, changed), second)
        parts = [first]
        if length % 2:
            parts.append(torch.full((batch_size, 1), self.vocab_size - 1, device=device, dtype=first.dtype))
        parts.append(second + k)
        src = torch.cat(parts, dim=1)
        return src, self.target(src)
