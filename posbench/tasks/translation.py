"""Translation: the source is a sentence in ``source_lang``, the target its translation in
``target_lang``, as symbols of one joint tokenizer fitted on both sides of the training split.

Default data: Multi30k (Elliott et al. 2016, "Multi30K: Multilingual English-German Image
Descriptions"; hub ``bentrevett/multi30k``, columns ``en`` and ``de``, 29k/1k/1k
train/validation/test pairs). Rows may instead hold a ``translation`` column of
``{lang: text}`` dicts, as the WMT and OPUS sets on the hub do.

What it measures: sequence-to-sequence transduction on real text, by source length in tokens
(``train_lengths`` / ``eval_lengths`` as for every paired text task, see ``posbench.tasks.text``):
training on short sentences and scoring longer ones measures length generalization. Answers have
variable length: they end with ``eos`` and are PAD-padded; targets are truncated to
``max_target_length`` tokens. Metrics: exact match and token accuracy (from the evaluator) and
corpus BLEU (sacrebleu, 0-100, effective order) of the detokenized predictions against the
detokenized (possibly truncated) references. Models: ``decoder`` (source, SEP, translation) and ``seq2seq``.
Chance: 1 / vocab_size per token (a uniform guess over the tokenizer's symbols).
"""

from __future__ import annotations

import torch

from posbench.data.tokenizer import TextTokenizer
from posbench.errors import ConfigError
from posbench.schema import NonEmptyStr, PositiveInt
from posbench.tasks.base import TASKS
from posbench.tasks.bleu import corpus_bleu
from posbench.tasks.text import PairedTextTask, drop_missing


@TASKS.register("translation")
class Translation(PairedTextTask):
    description = "translate a sentence (default Multi30k en->de; BLEU, exact match, token accuracy)"
    variable_length = True
    supported_models = ("decoder", "seq2seq")
    default_dataset = "bentrevett/multi30k"

    def __init__(
        self, source_lang: NonEmptyStr = "en", target_lang: NonEmptyStr = "de", max_target_length: PositiveInt = 64,
        **options,
    ):
        """``source_lang``/``target_lang``: the column names (or the keys of a ``translation``
        column); ``max_target_length``: targets are truncated to this many tokens (plus ``eos``)."""
        if source_lang == target_lang:
            raise ConfigError(f"task.source_lang and task.target_lang are both {source_lang!r}")
        self.source_lang, self.target_lang = str(source_lang), str(target_lang)
        self.max_answer = max_target_length
        super().__init__(**options)

    def data_options(self) -> tuple:
        return (self.source_lang, self.target_lang)

    def read(self, table, role: str) -> tuple[list[str], list]:
        names = list(table.column_names)
        if self.source_lang in names and self.target_lang in names:
            sources, targets = self.columns(table, role, source_lang=self.source_lang, target_lang=self.target_lang)
        elif "translation" in names:
            (pairs,) = self.columns(table, role, translation="translation")
            first = next((p for p in pairs if isinstance(p, dict)), {})
            for option, lang in (("source_lang", self.source_lang), ("target_lang", self.target_lang)):
                if lang not in first:
                    raise ConfigError(
                        f"task.{option}={lang!r} is not a language of the translation column of the {role} split of "
                        f"{self.where}; its languages: {', '.join(map(str, first)) or 'none'}"
                    )
            sources = [p.get(self.source_lang) if isinstance(p, dict) else None for p in pairs]
            targets = [p.get(self.target_lang) if isinstance(p, dict) else None for p in pairs]
        else:
            raise ConfigError(
                f"task.source_lang={self.source_lang!r} and task.target_lang={self.target_lang!r} are not columns "
                f"of the {role} split of {self.where}, and it has no 'translation' column; "
                f"available columns: {', '.join(names)}"
            )
        return drop_missing(sources, targets)

    def tokenizer_texts(self, sources: list[str], targets: list) -> list[str]:
        return [*sources, *targets]  # one joint vocabulary for both languages

    def encode_targets(self, targets: list, tokenizer: TextTokenizer, meta: dict, role: str) -> list[list[int]]:
        return tokenizer.encode_batch(targets)

    def corpus_metrics(self, predictions: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
        """``{"bleu"}``: corpus BLEU of the decoded predictions against the decoded targets
        (``posbench.tasks.bleu``)."""
        return corpus_bleu(predictions, targets, self.decode, "task=translation's BLEU")
