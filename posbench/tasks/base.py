"""The task contract: seeded generators of (source, target) integer sequences.

A task draws symbols from ``0 .. vocab_size-1`` and maps a source of length L to a target of
length ``target_len(L)``. Training batches are generated on the fly on the training device from a
seeded ``torch.Generator`` (one length per batch, uniform over ``train_lengths``); evaluation
sets are fixed by ``eval_seed`` so that every run, whatever its training seed, is scored on the
same examples:

* the in-distribution test set: ``eval_size`` examples with lengths uniform over the training range;
* one set of ``eval_size`` examples for each length in ``eval_lengths`` (some beyond training).

Variable-length answers (``variable_length = True``: addition, stack manipulation, text) end with
the end-of-sequence symbol ``eos`` (= ``vocab_size``) and are right-padded with ``PAD`` to
``target_len(L)``, the longest answer a source of length L can have. ``PAD`` is the loss's
``ignore_index``; scores count target positions up to and including ``eos`` and treat everything
a model predicts after its first ``eos`` as padding (Delétang et al. 2023's accuracy mask).
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.registry import Registry
from posbench.schema import Lengths, LengthSpan, PositiveInt, Seed

Batch = tuple[Tensor, Tensor]

#: Target padding after the end of a variable-length answer (``F.cross_entropy``'s ``ignore_index``).
PAD = -100


class Task:
    name: str = ""
    description: str = ""
    #: Whether the target depends on the order of the source (False for the controls).
    order_sensitive: bool = True
    #: The shortest source the task is defined for, and the fewest symbols it needs.
    min_length: int = 1
    min_vocab: int = 2
    #: Answers vary in length for one source length: targets end with ``eos`` and are padded with PAD.
    variable_length: bool = False
    #: Examples come from a dataset (fitted tokenizer, test split) rather than a generator.
    dataset_backed: bool = False
    #: The model families the task is defined for (None: every family).
    supported_models: tuple[str, ...] | None = None
    #: Score with teacher forcing (next-token accuracy and perplexity, as for language modelling)
    #: instead of generating the answer.
    teacher_forced: bool = False
    #: What the examples are: ``sequences`` of symbols, or ``images`` (``posbench.tasks.image``).
    inputs: str = "sequences"
    #: The rates (tokens per time unit) of the streams the source is made of, one after another
    #: over the same time span (``task=sync``); None: the source is one sequence. Models lay the
    #: tokens on that shared timeline for an encoding that reads it (``fpe``).
    streams: tuple[int, ...] | None = None
    #: What the evaluation scales: ``length`` (a sequence task's ``eval_lengths``) or ``size``
    #: (an image task's ``eval_sizes``); results.json holds the scores under ``lengths`` or ``sizes``.
    axis: str = "length"

    def __init__(
        self,
        vocab_size: PositiveInt = 16,
        train_lengths: LengthSpan | None = None,
        eval_lengths: Lengths = (8, 16, 32),
        eval_size: PositiveInt = 256,
        eval_seed: Seed = 1234,
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
        if min(eval_lengths) < self.min_length:
            raise ConfigError(
                f"task.eval_lengths={list(eval_lengths)} must be a non-empty list of lengths of "
                f"at least {self.min_length} for task={self.name}"
            )
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
        """Width of the target tensor for sources of length L (for variable-length answers: the
        longest answer plus its ``eos``)."""
        return length

    def source_len(self, length: int) -> int:
        """Width of the source tensor for a task length L (addition: L digits per operand)."""
        return length

    @property
    def eos(self) -> int | None:
        """The end-of-sequence symbol, or None when the answer length follows from the source."""
        return self.vocab_size if self.variable_length else None

    def example_bytes(self, length: int) -> int:
        """Bytes one stored evaluation example of task length ``length`` takes (source and target)."""
        return 8 * (self.source_len(length) + self.target_len(length))

    def held_bytes(self) -> int:
        """Bytes of data the task keeps on the training device besides its evaluation sets (a
        dataset's training split); 0 for a generator."""
        return 0

    def model_inputs(self) -> dict:
        """What the model family is told about the data when it is built (``eos`` for sequences,
        ``streams`` when the source is made of them)."""
        return {"eos": self.eos} | ({} if self.streams is None else {"streams": self.streams})

    @property
    def n_symbols(self) -> int:
        """The symbols a model reads and writes: ``0 .. n_symbols-1`` (the alphabet, plus ``eos``)."""
        return self.vocab_size + int(self.variable_length)

    def corpus_metrics(self, predictions: list[Tensor], targets: list[Tensor]) -> dict[str, float]:
        """Metrics over a whole evaluation set beyond accuracy (BLEU for translation). Predictions
        are already cut at the model's first ``eos`` (PAD after it)."""
        return {}

    @property
    def chance(self) -> float:
        """Token accuracy of guessing uniformly among the symbols."""
        return 1.0 / self.vocab_size

    def data_fingerprint(self) -> str | None:
        """A hash of what decides the examples beyond the configuration (a dataset's files), or None."""
        return None

    def save(self, folder) -> None:
        """Write what a run must keep to reproduce the task (a fitted tokenizer) into ``folder``."""

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

    def length_sets(self, device: torch.device | str) -> dict[int, list[Batch]]:
        """The batches scored for each evaluation length: here one fixed batch of ``eval_size``
        examples (a dataset-backed task groups its test split by length instead)."""
        return {
            length: [self.sample(self.eval_size, length, self._eval_generator(device, length))]
            for length in self.eval_lengths
        }

    def _eval_generator(self, device, salt: int) -> torch.Generator:
        generator = torch.Generator(device=device)
        generator.manual_seed(self.eval_seed * 1_000_003 + salt)
        return generator


TASKS: Registry[Task] = Registry("task")


def symbols_before_stop(symbols, count: int) -> list[int]:
    """The leading symbols of ``symbols`` (a tensor or list) below ``count``, up to the first that is
    not (``eos``, PAD, a label): the words of a decoded answer."""
    words = []
    for symbol in symbols.tolist() if isinstance(symbols, Tensor) else symbols:
        if not 0 <= symbol < count:
            break
        words.append(symbol)
    return words


def pack_answers(answers: list[list[int]], width: int, eos: int, device: torch.device | str) -> Tensor:
    """Variable-length answers as a ``[B, width]`` target: each answer, then ``eos``, then PAD."""
    rows = []
    for answer in answers:
        if len(answer) + 1 > width:
            raise ValueError(f"answer of length {len(answer)} does not fit a target of width {width}")
        rows.append(list(answer) + [eos] + [PAD] * (width - len(answer) - 1))
    return torch.tensor(rows, dtype=torch.long, device=device).view(len(answers), width)
