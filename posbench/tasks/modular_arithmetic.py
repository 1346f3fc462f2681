"""Modular arithmetic (simple): the source is an expression ``a op b op c ...`` whose operands are
residues ``0 .. modulus-1`` (even positions) and whose operators ``+, -, *`` are the symbols
``modulus, modulus+1, modulus+2`` (odd positions); the target is one symbol, the value of the
expression modulo ``modulus`` (Delétang et al. 2023, "modular arithmetic (simple)", a regular task).

Conventions, as in the reference implementation: usual precedence, ``*`` binds tighter than ``+``
and ``-``, which are applied left to right (``1 + 2 * 3 = 7 = 2 mod 5``; ``1 - 1 - 1 = 4 mod 5``).
The paper only uses odd lengths (it shortens an even length by one); the contract here needs any
length, so an even-length source ends with one operator that is ignored (``a op b op`` means
``a op b``).

Modulus: the paper uses 5, which needs 5 + 3 = 8 symbols; the generic contract tests build every
task with vocab_size=7, so the default here is ``modulus=3`` (operands 0..2, operators 3, 4, 5;
needs vocab_size >= 6) and configs/task/modular_arithmetic.yaml sets the paper's ``modulus: 5``
with ``vocab_size: 8``. Symbols from modulus+3 up to vocab_size-1 never occur.

Order-sensitive: with ``-`` and mixed ``+``/``*`` the value depends on where each operand and
operator sits. Chance: 1 / modulus, a uniform guess over the values the target can take."""

from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import Range
from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("modular_arithmetic")
class ModularArithmetic(Task):
    description = "output the value mod m of an expression over + - * with precedence (order-sensitive)"

    def __init__(self, modulus: Annotated[int, Range(ge=2)] = 3, **options):
        super().__init__(**options)
        if self.vocab_size < modulus + 3:
            raise ConfigError(
                f"task.vocab_size={self.vocab_size} must be at least {modulus + 3} for "
                f"modular_arithmetic with modulus={modulus} ({modulus} residues and 3 operators)"
            )
        self.modulus = modulus

    @property
    def plus(self) -> int:
        return self.modulus

    @property
    def minus(self) -> int:
        return self.modulus + 1

    @property
    def times(self) -> int:
        return self.modulus + 2

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        operands = torch.randint(
            0, self.modulus, (batch_size, (length + 1) // 2), generator=generator, device=device
        )
        operators = torch.randint(
            self.modulus, self.modulus + 3, (batch_size, length // 2), generator=generator, device=device
        )
        src = torch.empty(batch_size, length, dtype=torch.long, device=device)
        src[:, 0::2] = operands
        src[:, 1::2] = operators
        return src, self.target(src)

    def target(self, src: Tensor) -> Tensor:
        m = self.modulus
        total = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)
        term = src[:, 0] % m  # the signed product being built, kept in 0..m-1
        for i in range(1, src.shape[1] - 1, 2):  # a trailing operator (even length) has no operand
            op, value = src[:, i], src[:, i + 1]
            product = (term * value) % m
            closes = op != self.times
            total = torch.where(closes, (total + term) % m, total)
            term = torch.where(op == self.times, product, torch.where(op == self.minus, (-value) % m, value))
        return ((total + term) % m).unsqueeze(1)

    def target_len(self, length: int) -> int:
        return 1

    @property
    def chance(self) -> float:
        """Uniform guess over the modulus possible values."""
        return 1.0 / self.modulus
