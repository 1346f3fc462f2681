"""Dataset-backed tasks: the shared machinery of ``translation``, ``text_classification`` and
``lm`` (this module registers no task). Needs the ``posbench[text]`` extra.

Data flow: ``task.dataset`` (a Hugging Face hub name) or ``task.data_files`` (local files), read by
``posbench.data.hub.load_splits`` with ``task.split`` mapping the roles ``train`` and ``test`` to
dataset splits -> a tokenizer (``task.tokenizer``: ``char`` or ``bpe``) fitted on the training
split only, whose ids are the task's symbols (``task.vocab_size`` becomes the fitted size, saved
as ``tokenizer.json`` in the run folder) -> integer examples. Everything happens when the task is
built, so a wrong option, column or file fails before any training. Loading and fitting are
cached per process, so building the same task again (the no-PE twin) costs nothing.

``PairedTextTask`` (translation, classification): the task length is the SOURCE length in tokens.
Sources are truncated to ``task.max_length`` tokens, and examples are grouped by exact source
length, so a batch never needs source padding (targets may still vary: they end with ``eos`` and
are PAD-padded). For these tasks:

* ``train_lengths: [min, max]``: the training examples are those whose source has ``min..max``
  tokens (default: all, ``[1, max_length]``); training on short sources and scoring longer ones
  measures length generalization on real text. A batch's length is drawn in proportion to the
  number of training examples of that length (the data distribution, not uniform).
* ``eval_lengths``: upper edges of source-length buckets on the test split: ``[8, 16, 32]`` scores
  sources of 1-8, 9-16 and 17-32 tokens (longer ones are left out); each bucket holds the first
  ``eval_size`` test examples that fall in it. An empty bucket is skipped with a warning.
* the in-distribution test set: the first ``eval_size`` test examples whose source length is in
  ``train_lengths``. ``eval_seed`` is unused (the sets are the first examples, in split order).
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections import defaultdict
from typing import Literal

import torch
from torch import Tensor

from posbench.data import hub
from posbench.data.cache import ProcessCache
from posbench.data.tokenizer import TextTokenizer, fit_tokenizer
from posbench.errors import ConfigError
from posbench.schema import LengthSpan, PositiveInt
from posbench.tasks.base import Batch, Task, pack_answers, symbols_before_stop

log = logging.getLogger(__name__)

#: Loaded, tokenized data by configuration (per process): the twin rebuilds the same task.
_PREPARED = ProcessCache(4)
_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """Log a warning once per process (a task is built several times per run)."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning(message)


class TextTask(Task):
    """A task read from a dataset and tokenized. Subclasses define ``prepare`` (load -> tokenizer
    and encoded data; cached) and ``setup`` (encoded data -> the examples this configuration uses).
    """

    #: Needs a dataset (registry-wide tests of the synthetic tasks skip these).
    dataset_backed = True
    #: The hub dataset used when ``task.dataset`` is not set.
    default_dataset: str = ""
    default_dataset_config: str | None = None

    def __init__(
        self,
        dataset: str | None = None,
        dataset_config: str | None = None,
        data_files=None,
        split: dict | None = None,
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: PositiveInt = 1000,
        **options,
    ):
        """``dataset``/``dataset_config``: a Hugging Face hub dataset; ``data_files``: local files
        instead (a path, list, or ``{split: path}``; the dataset name is then ignored); ``split``:
        ``{train: ..., test: ...}`` dataset splits, slicing allowed; ``tokenizer``: ``char`` or
        ``bpe``; ``vocab_size``: the BPE size (ignored by ``char``), replaced by the fitted size."""
        super().__init__(vocab_size=vocab_size, **options)
        self.dataset = dataset or self.default_dataset
        self.dataset_config = dataset_config if dataset is not None else (dataset_config or self.default_dataset_config)
        self.data_files = data_files
        self.split = hub.split_mapping(split)
        self.tokenizer_kind = tokenizer
        self.requested_vocab = int(vocab_size)
        self.validate()
        prepared = self._prepared()
        self.tokenizer: TextTokenizer = prepared["tokenizer"]
        self.vocab_size = self.tokenizer.vocab_size
        self._device_cache: dict[tuple, Tensor] = {}
        self.setup(prepared)

    # ---- what subclasses define --------------------------------------------------------------
    def validate(self) -> None:
        """Check the options before any loading (cheap checks only)."""

    def data_options(self) -> tuple:
        """The subclass options that change what ``prepare`` returns (columns, languages)."""
        return ()

    def prepare(self, splits: dict) -> dict:
        """``{"tokenizer": TextTokenizer, ...}`` from the loaded ``{"train", "test"}`` splits."""
        raise NotImplementedError

    def setup(self, prepared: dict) -> None:
        """Select and tensorize the examples this configuration uses."""
        raise NotImplementedError

    # ---- loading -----------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """How messages name the data (``task.dataset=...`` or ``task.data_files=...``)."""
        return hub.describe(self.dataset, self.data_files)

    def _prepared(self) -> dict:
        source = (None, None) if self.data_files is not None else (self.dataset, self.dataset_config)
        key = [
            type(self).__qualname__, source, hub.files_signature(self.data_files), self.split,
            self.tokenizer_kind, self.requested_vocab, self.data_options(),
        ]

        def load() -> dict:
            return self.prepare(hub.load_splits(self.dataset, self.dataset_config, self.data_files, self.split))

        return _PREPARED.get(key, load)

    def columns(self, table, role: str, **columns: str) -> list[list]:
        """The named columns of one split as lists (``columns``: option name -> column), with a
        ``ConfigError`` listing the available columns for a wrong name."""
        hub.require_columns(table, {f"task.{option}": name for option, name in columns.items()}, role, self.where)
        return [hub.column(table, name) for name in columns.values()]

    def fit(self, texts: list[str]) -> TextTokenizer:
        if not texts:
            raise ConfigError(f"the train split of {self.where} has no text to fit the tokenizer on")
        return fit_tokenizer(self.tokenizer_kind, texts, self.requested_vocab)

    # ---- symbols and text --------------------------------------------------------------------
    def decode(self, ids) -> str:
        """Text of a symbol sequence, up to its first non-text symbol (``eos``, PAD, a label)."""
        return self.tokenizer.decode(symbols_before_stop(ids, self.vocab_size))

    def save(self, folder) -> None:
        """Write the fitted tokenizer (``tokenizer.json``) into ``folder``."""
        self.tokenizer.save(folder)

    def data_fingerprint(self) -> str:
        """A hash of what the configuration does not show (for a cache key such as the no-PE
        twin's): the fitted tokenizer and every example this task trains and scores on, so that
        an edited file, local folder or hub revision is never mistaken for the old data."""
        digest = hashlib.sha256(self.tokenizer.to_str().encode())
        for tensor in self.example_tensors():
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def example_tensors(self) -> list[Tensor]:
        """Every tensor of examples (training and evaluation), on CPU, in a fixed order."""
        raise NotImplementedError

    def _on(self, key: tuple, tensor: Tensor, device) -> Tensor:
        """``tensor`` on ``device``, moved once and cached."""
        device = torch.device(device)
        if device.type == "cpu":
            return tensor
        full = (*key, str(device))
        if full not in self._device_cache:
            self._device_cache[full] = tensor.to(device)
        return self._device_cache[full]


class PairedTextTask(TextTask):
    """Source text -> target symbols, grouped by exact source length (see the module docstring).

    Subclasses define ``read`` (a split -> source texts and raw targets), ``fit_targets`` and
    ``encode_targets``; ``tokenizer_texts`` says what the tokenizer is fitted on.
    """

    #: Truncation of answers in tokens (None: answers are not truncated).
    max_answer: int | None = None

    def __init__(self, max_length: PositiveInt = 64, train_lengths: LengthSpan | None = None, **options):
        """``max_length``: sources are truncated to this many tokens; ``train_lengths`` defaults to
        ``[1, max_length]`` (every training example)."""
        self.max_length = max_length
        train_lengths = (self.min_length, self.max_length) if train_lengths is None else train_lengths
        super().__init__(train_lengths=train_lengths, **options)

    def validate(self) -> None:
        if self.train_lengths[1] > self.max_length:
            raise ConfigError(
                f"task.train_lengths={list(self.train_lengths)} goes beyond task.max_length={self.max_length} "
                "(sources are truncated to max_length tokens)"
            )
        if self.eval_lengths[-1] > self.max_length:
            raise ConfigError(
                f"task.eval_lengths={self.eval_lengths} goes beyond task.max_length={self.max_length} "
                "(sources are truncated to max_length tokens, so those buckets would be empty)"
            )

    # ---- what subclasses define --------------------------------------------------------------
    def read(self, table, role: str) -> tuple[list[str], list]:
        """Source texts and raw targets of one split (rows with a missing value left out)."""
        raise NotImplementedError

    def tokenizer_texts(self, sources: list[str], targets: list) -> list[str]:
        return sources

    def fit_targets(self, targets: list, tokenizer: TextTokenizer) -> dict:
        """What the target encoding learns from the training targets (kept in ``self.meta``)."""
        return {}

    def encode_targets(self, targets: list, tokenizer: TextTokenizer, meta: dict, role: str) -> list[list[int]]:
        """Each raw target as its answer symbols (without ``eos``)."""
        raise NotImplementedError

    # ---- loading -----------------------------------------------------------------------------
    def prepare(self, splits: dict) -> dict:
        raw = {role: self.read(splits[role], role) for role in hub.ROLES}
        tokenizer = self.fit(self.tokenizer_texts(*raw["train"]))
        meta = self.fit_targets(raw["train"][1], tokenizer)
        encoded = {
            role: (tokenizer.encode_batch(sources), self.encode_targets(targets, tokenizer, meta, role))
            for role, (sources, targets) in raw.items()
        }
        return {"tokenizer": tokenizer, "meta": meta, "encoded": encoded}

    def setup(self, prepared: dict) -> None:
        self.meta = prepared["meta"]
        examples = {role: self._truncated(*prepared["encoded"][role]) for role in hub.ROLES}
        lo, hi = self.train_lengths
        train = [ex for ex in examples["train"] if lo <= len(ex[0]) <= hi]
        if not train:
            raise ConfigError(
                f"no training example of {self.where} has a source of {lo} to {hi} tokens "
                f"(task.train_lengths={list(self.train_lengths)})"
            )
        test = examples["test"]
        in_distribution = [ex for ex in test if lo <= len(ex[0]) <= hi][: self.eval_size]
        if not in_distribution:
            raise ConfigError(
                f"no test example of {self.where} has a source of {lo} to {hi} tokens "
                f"(task.train_lengths={list(self.train_lengths)})"
            )
        buckets: dict[int, list] = {}
        lower = 0
        for edge in self.eval_lengths:
            bucket = [ex for ex in test if lower < len(ex[0]) <= edge][: self.eval_size]
            if bucket:
                buckets[edge] = bucket
            else:
                warn_once(
                    f"task.eval_lengths: no test example of {self.where} has a source of {lower + 1} to {edge} "
                    f"tokens; bucket {edge} skipped"
                )
            lower = edge
        if not buckets:
            raise ConfigError(
                f"no test example of {self.where} falls in the buckets task.eval_lengths={self.eval_lengths}"
            )

        # Target width: the longest answer (+ eos) over every source length up to L, so that the
        # longest source bounds the positions of every example.
        widest: dict[int, int] = defaultdict(int)
        for src, answer in [*train, *in_distribution, *(ex for b in buckets.values() for ex in b)]:
            widest[len(src)] = max(widest[len(src)], len(answer) + int(self.variable_length))
        self._width_lengths = sorted(widest)
        self._widths = []
        for length in self._width_lengths:
            self._widths.append(max(widest[length], self._widths[-1] if self._widths else 1))

        self._train = {length: self._tensors(group, length) for length, group in _by_length(train).items()}
        self._train_lengths = sorted(self._train)
        self._train_counts = torch.tensor([self._train[n][0].shape[0] for n in self._train_lengths], dtype=torch.float)
        self._test = [self._tensors(group, length) for length, group in sorted(_by_length(in_distribution).items())]
        self._buckets = {
            edge: [self._tensors(group, length) for length, group in sorted(_by_length(bucket).items())]
            for edge, bucket in buckets.items()
        }

    def _truncated(self, sources: list[list[int]], answers: list[list[int]]) -> list[tuple[list[int], list[int]]]:
        """Sources cut to ``max_length`` tokens and answers to ``max_answer``; empty sources dropped."""
        cut = self.max_answer
        return [
            (src[: self.max_length], answer if cut is None else answer[:cut])
            for src, answer in zip(sources, answers)
            if src
        ]

    def _tensors(self, group: list[tuple[list[int], list[int]]], length: int) -> Batch:
        """One batch (on CPU) of examples whose sources all have ``length`` tokens."""
        src = torch.tensor([s for s, _ in group], dtype=torch.long).view(len(group), length)
        answers = [a for _, a in group]
        if self.variable_length:
            tgt = pack_answers(answers, self.target_len(length), self.eos, "cpu")
        else:
            tgt = torch.tensor(answers, dtype=torch.long).view(len(group), -1)
        return src, tgt

    # ---- the task contract -------------------------------------------------------------------
    def target_len(self, length: int) -> int:
        index = bisect.bisect_right(self._width_lengths, length)
        return self._widths[max(index - 1, 0)]

    def longest(self) -> int:
        return self._width_lengths[-1]

    def sample_length(self, generator: torch.Generator) -> int:
        counts = self._on(("counts",), self._train_counts, generator.device)
        index = torch.multinomial(counts, 1, generator=generator).item()
        return self._train_lengths[int(index)]

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        if length not in self._train:
            raise ValueError(f"no training example has a source of {length} tokens; lengths: {self._train_lengths}")
        device = generator.device
        src, tgt = self._train[length]
        src, tgt = self._on(("train", length, "src"), src, device), self._on(("train", length, "tgt"), tgt, device)
        index = torch.randint(0, src.shape[0], (batch_size,), generator=generator, device=device)
        return src[index], tgt[index]

    def test_set(self, device: torch.device | str) -> list[Batch]:
        """The first ``eval_size`` test examples with a source length in ``train_lengths``, one
        batch per source length."""
        return [(src.to(device), tgt.to(device)) for src, tgt in self._test]

    def length_sets(self, device: torch.device | str) -> dict[int, list[Batch]]:
        """Bucket edge -> the first ``eval_size`` test examples with a source length in the bucket
        ``(previous edge, edge]``, one batch per source length."""
        return {
            edge: [(src.to(device), tgt.to(device)) for src, tgt in batches] for edge, batches in self._buckets.items()
        }

    def example_tensors(self) -> list[Tensor]:
        batches = [*(self._train[n] for n in self._train_lengths), *self._test]
        batches += [batch for edge in sorted(self._buckets) for batch in self._buckets[edge]]
        return [tensor for batch in batches for tensor in batch]

    def training_examples(self) -> int:
        return sum(src.shape[0] for src, _ in self._train.values())


def _by_length(examples: list[tuple[list[int], list[int]]]) -> dict[int, list]:
    groups: dict[int, list] = defaultdict(list)
    for example in examples:
        groups[len(example[0])].append(example)
    return groups


def drop_missing(*columns: list) -> list[list]:
    """The rows of parallel columns where no value is None (or an empty string)."""
    rows = [row for row in zip(*columns) if all(v is not None and v != "" for v in row)]
    return [list(values) for values in zip(*rows)] if rows else [[] for _ in columns]
