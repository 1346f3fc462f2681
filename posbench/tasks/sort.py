"""Sort: the target is the source sorted ascending (Kazemnejad et al. 2023; Delétang et al. 2023).
The answer depends only on the multiset of source symbols, but emitting it needs the order of the
target slots, so a bidirectional NoPE encoder cannot produce it. Chance: 1 / vocab_size per token."""

from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("sort")
class Sort(Task):
    description = "output the source sorted ascending (order of output slots matters)"

    def target(self, src: Tensor) -> Tensor:
        return src.sort(dim=1).values
