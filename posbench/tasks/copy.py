"""Copy: the target is the source (Kazemnejad et al. 2023; the "duplicate string" task w -> ww is `duplicate`).
Order-sensitive: target slot i must find source position i. Chance: 1 / vocab_size per token."""

from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("copy")
class Copy(Task):
    description = "output the source unchanged (order-sensitive)"

    def target(self, src: Tensor) -> Tensor:
        return src.clone()
