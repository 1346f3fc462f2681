"""Even pairs: the source is a binary string (symbols 0 and 1 only, whatever vocab_size) and the
target is one symbol, the number of "01" plus "10" substrings modulo 2 (Delétang et al. 2023,
"even pairs", a regular task; as in the reference implementation, class 0 means the count is even
and class 1 that it is odd). That count is odd exactly when the first and last symbols differ, so
the target is ``int(src[0] != src[-1])``; a length-1 source has no pairs: class 0.
Order-sensitive: the answer depends on which symbols sit at the two ends (permuting the source
changes it). Chance: 1/2, a uniform guess over the two values the target can take."""

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("even_pairs")
class EvenPairs(Task):
    description = "output whether the count of 01/10 pairs in a binary source is odd (order-sensitive)"

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        src = torch.randint(0, 2, (batch_size, length), generator=generator, device=generator.device)
        return src, self.target(src)

    def target(self, src: Tensor) -> Tensor:
        unequal = (src[:, 1:] != src[:, :-1]).sum(dim=1, keepdim=True)
        return unequal % 2

    def target_len(self, length: int) -> int:
        return 1

    @property
    def chance(self) -> float:
        """Uniform guess over the 2 possible target values."""
        return 0.5
