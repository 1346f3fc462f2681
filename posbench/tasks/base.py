"""The task contract: seeded generators of (source, target) integer sequences.

A task draws symbols from ``0 .. vocab_size-1`` and maps a source of length L to a target of
length ``target_len(L)``. Training batches are generated on the fly on the training device from a
seeded ``torch.Generator`` (one length per batch, uniform over ``train_lengths``); evaluation
sets are fixed by ``eval_seed`` so that every run, whatever its training seed, is scored on the
same examples:

* the in-distribution test set: ``eval_size`` examples with lengths uniform over the training range;
* one set of ``eval_size`` examples for each length in ``eval_lengths`` (some beyond training).
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.registry import Registry

Batch = tuple[Tensor, Tensor]


class Task:
    name: str = ""
    description: str = ""
    #: Whether the target depends on the order of the source (False for the controls).
    order_sensitive: bool = True
    #: The shortest source the task is defined for, and the fewest symbols it needs.
    min_length: int = 1
    min_vocab: int = 2

    def __init__(
        self,
        vocab_size: int = 16,
        train_lengths: tuple[int, int] | None = None,
        eval_lengths: tuple[int, ...] = (8, 16, 32),
        eval_size: int = 256,
        eval_seed: int = 1234,
    ):
        """``train_lengths`` defaults to ``[min_length, 16]``. A subclass with options of its own
        takes ``**options`` and passes them on (``Registry.build`` follows the chain)."""
        train_lengths = (self.min_length, 16) if train_lengths is None else train_lengths
        lo, hi = (int(n) for n in train_lengths)
        if vocab_size < self.min_vocab:
            raise ConfigError(f"task.vocab_size={vocab_size} must be at least {self.min_vocab} for task={self.name}")
        if not self.min_length <= lo <= hi:
            raise ConfigError(
                f"task.train_lengths={list(train_lengths)} must be [min, max] with min <= max and min "
                f"at least {self.min_length} for task={self.name}"
            )
        if not eval_lengths or min(eval_lengths) < self.min_length:
            raise ConfigError(
                f"task.eval_lengths={list(eval_lengths)} must be a non-empty list of lengths of "
                f"at least {self.min_length} for task={self.name}"
            )
        if eval_size < 1:
            raise ConfigError(f"task.eval_size={eval_size} must be positive")
        self.vocab_size = int(vocab_size)
        self.train_lengths = (lo, hi)
        self.eval_lengths = sorted(int(n) for n in eval_lengths)
        self.eval_size = int(eval_size)
        self.eval_seed = int(eval_seed)

    # ---- what each task defines --------------------------------------------------------------
    def target(self, src: Tensor) -> Tensor:
        """The target sequences ``[B, target_len(L)]`` for sources ``[B, L]``."""
        raise NotImplementedError

    def target_len(self, length: int) -> int:
        return length

    @property
    def chance(self) -> float:
        """Token accuracy of guessing uniformly among the symbols."""
        return 1.0 / self.vocab_size

    # ---- generation --------------------------------------------------------------------------
    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        src = torch.randint(
            0, self.vocab_size, (batch_size, length), generator=generator, device=generator.device
        )
        return src, self.target(src)

    def sample_length(self, generator: torch.Generator) -> int:
        lo, hi = self.train_lengths
        return int(torch.randint(lo, hi + 1, (1,), generator=generator, device=generator.device).item())

    def longest(self) -> int:
        return max(self.train_lengths[1], self.eval_lengths[-1])

    def test_set(self, device: torch.device | str) -> list[Batch]:
        """The in-distribution test set, grouped into one batch per length."""
        generator = self._eval_generator(device, 0)
        counts = Counter(self.sample_length(generator) for _ in range(self.eval_size))
        return [self.sample(counts[length], length, generator) for length in sorted(counts)]

    def length_sets(self, device: torch.device | str) -> dict[int, Batch]:
        """One fixed batch of ``eval_size`` examples per evaluation length."""
        return {
            length: self.sample(self.eval_size, length, self._eval_generator(device, length))
            for length in self.eval_lengths
        }

    def _eval_generator(self, device, salt: int) -> torch.Generator:
        generator = torch.Generator(device=device)
        generator.manual_seed(self.eval_seed * 1_000_003 + salt)
        return generator


TASKS: Registry[Task] = Registry("task")
