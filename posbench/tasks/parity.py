"""Parity: the source is a binary string (symbols 0 and 1 only, whatever vocab_size) and the target
is one symbol, the number of 1s modulo 2 (Delétang et al. 2023, "parity check", a regular task;
class 1 means an odd number of 1s, as in the reference implementation).
Order-free: the answer depends only on how many 1s there are, so it is a control for which
position information is not needed (though counting mod 2 is hard for attention models).
Chance: 1/2, a uniform guess over the two values the target can take (not 1 / vocab_size)."""

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("parity")
class Parity(Task):
    description = "output the number of 1s mod 2 of a binary source (order-free)"
    order_sensitive = False

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        src = torch.randint(0, 2, (batch_size, length), generator=generator, device=generator.device)
        return src, self.target(src)

    def target(self, src: Tensor) -> Tensor:
        return (src == 1).sum(dim=1, keepdim=True) % 2

    def target_len(self, length: int) -> int:
        return 1

    @property
    def chance(self) -> float:
        """Uniform guess over the 2 possible target values."""
        return 0.5
