"""Summation (Kazemnejad et al. 2023): the target is the sum of the source digits modulo the base.

Kazemnejad et al. use decimal digits and the sum mod 10; here the base is ``vocab_size``: the
source digits are ``0 .. vocab_size-1`` and the single target symbol is their sum mod vocab_size
(with vocab_size = 10 this is the paper's task).
Order-free: the sum does not depend on the order of the digits, so PE should not matter.
Chance: 1 / vocab_size (uniform guess among the residues)."""

from torch import Tensor

from posbench.tasks.base import TASKS, Task


@TASKS.register("summation")
class Summation(Task):
    description = "output the sum of the digits mod vocab_size (order-free control)"
    order_sensitive = False

    def target(self, src: Tensor) -> Tensor:
        return src.sum(dim=1, keepdim=True) % self.vocab_size

    def target_len(self, length: int) -> int:
        return 1
