"""Language modelling: next-token prediction on chunks of a tokenized text stream.

Default data: WikiText-2 (Merity et al. 2017, "Pointer Sentinel Mixture Models"; hub
``Salesforce/wikitext``, config ``wikitext-2-raw-v1``, column ``text``, one line per row). The
non-empty lines of a split are tokenized and joined into one stream (a line without a final
newline gets one).

Here the task length is the CHUNK length: the source is empty (``[B, 0]``, ``source_len = 0``) and
the target a chunk of ``length`` consecutive tokens, read by the ``decoder`` as ``SEP, chunk``
with teacher forcing (``teacher_forced``: the evaluator reports next-token accuracy and
perplexity, nothing is generated). Every chunk's first token is predicted from SEP alone and is
counted (standard non-overlapping evaluation), so 1/L of a length-L chunk's tokens have no
context: short chunks carry a slightly higher floor, whatever the encoding.

* ``train_lengths: [min, max]``: training chunks have a length drawn uniformly from this range,
  at uniformly random starts in the training stream;
* ``eval_lengths``: chunk lengths scored on the test stream, each on up to ``eval_size``
  non-overlapping chunks from the start of the stream; lengths above the training range measure
  how perplexity holds up beyond the training context (the extrapolation test of Press et al.
  2022, ALiBi);
* the in-distribution test set: ``eval_size`` non-overlapping chunks of the test stream with lengths
  drawn (by ``eval_seed``) from ``train_lengths``.

Chance: 1 / vocab_size per token (a uniform guess over the tokenizer's symbols).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from posbench.errors import ConfigError
from posbench.schema import NonEmptyStr
from posbench.tasks.base import TASKS, Batch
from posbench.tasks.text import TextTask


@TASKS.register("lm")
class LanguageModeling(TextTask):
    description = "next-token prediction on text chunks (default WikiText-2; perplexity by chunk length)"
    teacher_forced = True
    supported_models = ("decoder",)
    default_dataset = "Salesforce/wikitext"
    default_dataset_config = "wikitext-2-raw-v1"

    def __init__(self, text_column: NonEmptyStr = "text", **options):
        """``text_column``: the column holding the text (one line or document per row)."""
        self.text_column = str(text_column)
        super().__init__(**options)

    def data_options(self) -> tuple:
        return (self.text_column,)

    def prepare(self, splits: dict) -> dict:
        lines = {}
        for role in ("train", "test"):
            (texts,) = self.columns(splits[role], role, text_column=self.text_column)
            lines[role] = [t if t.endswith("\n") else t + "\n" for t in texts if isinstance(t, str) and t.strip()]
        tokenizer = self.fit(lines["train"])
        streams = {}
        for role, texts in lines.items():
            ids = [i for row in tokenizer.encode_batch(texts) for i in row]
            streams[role] = torch.tensor(ids, dtype=torch.long)
        return {"tokenizer": tokenizer, "streams": streams}

    def setup(self, prepared: dict) -> None:
        self.train_stream, self.test_stream = prepared["streams"]["train"], prepared["streams"]["test"]
        lo, hi = self.train_lengths
        if self.train_stream.numel() < hi:
            raise ConfigError(
                f"the train split of {self.where} has {self.train_stream.numel()} tokens, fewer than the longest "
                f"training chunk (task.train_lengths={list(self.train_lengths)})"
            )
        longest_eval = max(hi, self.eval_lengths[-1])
        if self.test_stream.numel() < longest_eval:
            raise ConfigError(
                f"the test split of {self.where} has {self.test_stream.numel()} tokens, fewer than a chunk of "
                f"{longest_eval} (task.train_lengths={list(self.train_lengths)}, task.eval_lengths={self.eval_lengths})"
            )

    def example_tensors(self) -> list[torch.Tensor]:
        return [self.train_stream, self.test_stream]

    # ---- the task contract -------------------------------------------------------------------
    def source_len(self, length: int) -> int:
        return 0

    def target_len(self, length: int) -> int:
        return length

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        stream = self._on(("train_stream",), self.train_stream, device)
        starts = torch.randint(0, stream.numel() - length + 1, (batch_size, 1), generator=generator, device=device)
        tgt = stream[starts + torch.arange(length, device=device)]
        return tgt.new_empty((batch_size, 0)), tgt

    def _chunks(self, starts: list[int], length: int, device) -> Batch:
        index = torch.tensor(starts, dtype=torch.long).view(-1, 1) + torch.arange(length)
        tgt = self.test_stream[index].to(device)
        return tgt.new_empty((len(starts), 0)), tgt

    def test_set(self, device: torch.device | str) -> list[Batch]:
        """``eval_size`` consecutive, non-overlapping chunks from the start of the test stream, with
        lengths drawn from ``train_lengths`` by ``eval_seed`` (fewer if the stream runs out)."""
        lo, hi = self.train_lengths
        generator = torch.Generator().manual_seed(self.eval_seed)  # on CPU: the same set on every device
        lengths = torch.randint(lo, hi + 1, (self.eval_size,), generator=generator).tolist()
        starts: dict[int, list[int]] = defaultdict(list)
        position = 0
        for length in lengths:
            if position + length > self.test_stream.numel():
                break
            starts[length].append(position)
            position += length
        return [self._chunks(starts[length], length, device) for length in sorted(starts)]

    def length_sets(self, device: torch.device | str) -> dict[int, list[Batch]]:
        """Chunk length -> up to ``eval_size`` non-overlapping chunks from the start of the test stream."""
        sets = {}
        for length in self.eval_lengths:
            count = min(self.eval_size, self.test_stream.numel() // length)
            sets[length] = [self._chunks([i * length for i in range(count)], length, device)]
        return sets
