"""Duplicate: the target is the source written twice, ``w -> ww`` (Delétang et al. 2023 and Ruoss
et al. 2023, "duplicate string", a context-sensitive task; the paper uses binary strings, here the
alphabet is ``0 .. vocab_size-1``). Target length 2L.
Order-sensitive: target slots i and L+i must both find source position i. Chance: 1 / vocab_size
per token."""

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("duplicate")
class Duplicate(Task):
    description = "output the source twice in a row, w -> ww (order-sensitive)"

    def target(self, src: Tensor) -> Tensor:
        return torch.cat([src, src], dim=1)

    def target_len(self, length: int) -> int:
        return 2 * length
