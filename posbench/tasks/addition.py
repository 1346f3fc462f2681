"""Addition: multi-digit decimal addition (Kazemnejad et al. 2023, "The Impact of Positional
Encoding on Length Generalization in Transformers").

The task length L is the number of digits of each operand, so a source has ``2L + 1`` symbols: the
digits of a (most significant first), the symbol ``+`` (10), then the digits of b. Both operands
have exactly L digits (the first one nonzero when L > 1; any digit when L = 1). The target is the
digits of a + b, most significant first and without leading zeros: L or L + 1 digits, then ``eos``
(``variable_length``; PAD after it up to ``target_len(L) = L + 2``).

Fixed alphabet, as for parity: the symbols are the digits 0..9 and ``+`` = 10 whatever vocab_size,
so vocab_size must be at least 11 (configs/task/addition.yaml sets exactly 11; symbols from 11 up
to vocab_size-1 never occur) and ``eos`` is vocab_size. ``target`` accepts operands with leading
zeros too (``05+03`` -> ``8``); a sum of zero is the single digit 0.

Order-sensitive: a digit's place value is its position, the answer needs the digits of a and b
aligned position by position, and carries run from the right end to the left.
Chance: 1/10 per token, a uniform guess over the digits.

Two formats of Zhou et al. 2024 ("Transformers Can Achieve Length Generalization But Not Robustly",
§2), off by default:

* ``reversed``: ``answer`` writes the sum least significant digit first (the order in which the
  carries are computed); ``all`` writes the operands that way too, so that the digits of one place
  stand at the same offset in a, in b and in the answer.
* ``index_hints: H`` (H > 0): every digit, in the operands and in the answer, is preceded by a hint
  symbol naming its place value: the digit of place p (p = 0 for units) gets hint ``h_(o+p)``, with
  one offset o per example drawn uniformly from ``0 .. H - L - 1``, so that training on short
  numbers visits every hint of the ordered set of H (as the paper samples consecutive hints from a
  larger set). The hints are the symbols ``11 .. 10+H``: ``task.vocab_size`` must be at least 11 + H,
  and H at least the longest evaluation length + 1 (the sum's extra digit). ``a = 12, b = 34``, o = 0,
  msd first: ``h1 1 h0 2 + h1 3 h0 4`` -> ``h1 4 h0 6``. The answer's hints are part of the target
  (predictable from the source: chance stays the digits' 1/10).

``target`` reads the format back from the source (hints at even indices, digits at odd ones; the
offset from the smallest hint), so it stays a function of the source alone."""

from typing import Literal

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import NonNegativeInt
from posbench.tasks.base import TASKS, Batch, Task, pack_answers

PLUS = 10
#: The first hint symbol (after the digits and ``+``).
HINTS = 11


@TASKS.register("addition")
class Addition(Task):
    description = "add two L-digit decimal numbers (reversed formats and index hints as options; order-sensitive)"
    min_vocab = 11
    variable_length = True

    def __init__(self, reversed: Literal["none", "answer", "all"] = "none", index_hints: NonNegativeInt = 0, **options):
        super().__init__(**options)
        self.reversed, self.index_hints = reversed, int(index_hints)
        if self.index_hints and self.vocab_size < HINTS + self.index_hints:
            raise ConfigError(
                f"task.vocab_size={self.vocab_size} is too small for task.index_hints={self.index_hints}: "
                f"the hints are symbols {HINTS}..{HINTS + self.index_hints - 1}, set task.vocab_size={HINTS + self.index_hints}"
            )
        longest = max(self.train_lengths[1], *self.eval_lengths)
        if self.index_hints and self.index_hints < longest + 1:
            raise ConfigError(
                f"task.index_hints={self.index_hints} must be at least {longest + 1}: one hint per place of the "
                f"longest sum (length {longest} + 1)"
            )

    @property
    def width(self) -> int:
        """Symbols per digit: 2 with index hints (hint, digit), else 1."""
        return 2 if self.index_hints else 1

    def source_len(self, length: int) -> int:
        return 2 * length * self.width + 1

    def target_len(self, length: int) -> int:
        return (length + 1) * self.width + 1  # L + 1 digits at most, then eos

    @property
    def chance(self) -> float:
        """Uniform guess over the 10 digits."""
        return 0.1

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        operands = []
        for _ in range(2):
            digits = torch.randint(0, 10, (batch_size, length), generator=generator, device=device)
            if length > 1:  # exactly L digits: no leading zero
                digits[:, 0] = torch.randint(1, 10, (batch_size,), generator=generator, device=device)
            operands.append(digits)
        offsets = None
        if self.index_hints:
            offsets = torch.randint(0, self.index_hints - length, (batch_size,), generator=generator, device=device)
        plus = torch.full((batch_size, 1), PLUS, dtype=torch.long, device=device)
        written = [self._write(digits, offsets, self.reversed == "all") for digits in operands]
        src = torch.cat([written[0], plus, written[1]], dim=1)
        return src, self.target(src)

    def _write(self, digits: Tensor, offsets: Tensor | None, lsd_first: bool) -> Tensor:
        """Digits ``[B, n]`` (most significant first) in this task's format: reversed when
        ``lsd_first``, each after its hint when ``offsets`` (``[B]``) is given."""
        if lsd_first:
            digits = digits.flip(1)
        if offsets is None:
            return digits
        places = torch.arange(digits.shape[1], device=digits.device)
        places = places if lsd_first else places.flip(0)
        hints = HINTS + offsets[:, None] + places[None, :]
        return torch.stack([hints, digits], dim=2).flatten(1)

    def _read(self, written: Tensor) -> Tensor:
        """The digits (most significant first) of an operand written in this task's format."""
        digits = written[:, 1::2] if self.index_hints else written
        return digits.flip(1) if self.reversed == "all" else digits

    def target(self, src: Tensor) -> Tensor:
        width = src.shape[1]
        if width % (2 * self.width) != 1 or width < 2 * self.width + 1:
            raise ValueError(f"addition sources have 2L{'x2' * (self.width > 1)}+1 symbols; got a source of width {width}")
        half = (width - 1) // 2
        a, b = self._read(src[:, :half]), self._read(src[:, half + 1 :])
        length = a.shape[1]
        digits = torch.zeros(src.shape[0], length + 1, dtype=torch.long, device=src.device)
        carry = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)
        for i in range(length - 1, -1, -1):  # least significant digit first
            total = a[:, i] + b[:, i] + carry
            digits[:, i + 1], carry = total % 10, total // 10
        digits[:, 0] = carry
        # strip leading zeros, keeping at least the last digit
        nonzero = digits[:, :length] != 0
        first = torch.where(nonzero.any(dim=1), nonzero.int().argmax(dim=1), length)
        answers = [row[start:] for row, start in zip(digits.tolist(), first.tolist())]
        if self.reversed != "none" or self.index_hints:
            offsets = (src[:, :half:2].min(dim=1).values - HINTS).tolist() if self.index_hints else [None] * len(answers)
            answers = [self._answer(answer, offset) for answer, offset in zip(answers, offsets)]
        return pack_answers(answers, self.target_len(length), self.eos, src.device)

    def _answer(self, digits: list[int], offset: int | None) -> list[int]:
        """One answer's digits (most significant first) in this task's format."""
        written = self._write(torch.tensor([digits]), None if offset is None else torch.tensor([offset]), self.reversed != "none")
        return written[0].tolist()
