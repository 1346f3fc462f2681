"""Reverse: the target is the source backwards (Delétang et al. 2023, "reverse string").
Order-sensitive: target slot i must find source position L-1-i. Chance: 1 / vocab_size per token."""

from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("reverse")
class Reverse(Task):
    description = "output the source reversed (order-sensitive)"

    def target(self, src: Tensor) -> Tensor:
        return src.flip(1)
