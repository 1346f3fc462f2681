"""Cycle navigation: the source is a sequence of moves on a cycle of ``cycle_length`` states (5 in
the paper), 0 = stay, 1 = +1, 2 = -1, starting at state 0; the target is one symbol, the final
state (Delétang et al. 2023, "cycle navigation", a regular task). Symbols follow the paper's text
(0 STAY, 1 INCREASE, 2 DECREASE); the reference code labels the moves ``symbol - 1`` instead, a
mere relabeling of the same task.
Order-free: the final state is the sum of the moves modulo cycle_length, which does not depend on
their order, so position information is not needed. Chance: 1 / cycle_length, a uniform guess over
the states the target can take. Needs vocab_size >= max(3, cycle_length): the target states are
symbols of the shared vocabulary."""

from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import Range
from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("cycle_navigation")
class CycleNavigation(Task):
    description = "output the final state of stay/+1/-1 moves on a 5-cycle (order-free)"
    order_sensitive = False

    def __init__(self, cycle_length: Annotated[int, Range(ge=2)] = 5, **options):
        super().__init__(**options)
        need = max(3, cycle_length)
        if self.vocab_size < need:
            raise ConfigError(
                f"task.vocab_size={self.vocab_size} must be at least {need} for cycle_navigation "
                f"(3 move symbols and {cycle_length} states)"
            )
        self.cycle_length = cycle_length

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        src = torch.randint(0, 3, (batch_size, length), generator=generator, device=generator.device)
        return src, self.target(src)

    def target(self, src: Tensor) -> Tensor:
        moves = (src == 1).long() - (src == 2).long()
        return moves.sum(dim=1, keepdim=True) % self.cycle_length

    def target_len(self, length: int) -> int:
        return 1

    @property
    def chance(self) -> float:
        """Uniform guess over the cycle_length possible final states."""
        return 1.0 / self.cycle_length
