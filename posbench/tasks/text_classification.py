"""Text classification: the source is a text, the target one symbol for its label.

Default data: AG News (Zhang, Zhao and LeCun 2015, "Character-level Convolutional Networks for
Text Classification"; hub ``fancyzhx/ag_news``, columns ``text`` and ``label``, 4 topics,
120k/7.6k train/test). Any dataset with a text column and a label column works.

Symbols: the tokenizer's ``0 .. V-1`` for the text; label k of the sorted distinct training labels
(ints or strings) is the symbol ``V + k``, so ``n_symbols = V + num_classes``. A test label never
seen in training is a ``ConfigError``.
What it measures: mostly order-light (bag-of-words features solve AG News well), so it is the
real-text control for the order-sensitive translation; source length buckets (``eval_lengths``)
show how accuracy holds up on texts longer than those trained on. Models: ``encoder`` (the BLANK
slot after SEP is the pooled, [CLS]-style readout), ``decoder`` and ``seq2seq``.
Chance: 1 / num_classes (a uniform guess among the labels).
"""

from __future__ import annotations

from pathlib import Path

from posbench.data.tokenizer import TextTokenizer
from posbench.errors import ConfigError
from posbench.schema import NonEmptyStr
from posbench.tasks.base import TASKS
from posbench.tasks.text import PairedTextTask, drop_missing
from posbench.training.files import write_json


def _label_order(label):
    return (type(label).__name__, label)


@TASKS.register("text_classification")
class TextClassification(PairedTextTask):
    description = "classify a text into one label symbol (default AG News topics; chance 1/classes)"
    default_dataset = "fancyzhx/ag_news"

    def __init__(self, text_column: NonEmptyStr = "text", label_column: NonEmptyStr = "label", **options):
        """``text_column``/``label_column``: the dataset columns holding the text and its label."""
        self.text_column, self.label_column = str(text_column), str(label_column)
        super().__init__(**options)

    def data_options(self) -> tuple:
        return (self.text_column, self.label_column)

    def read(self, table, role: str) -> tuple[list[str], list]:
        texts, labels = self.columns(table, role, text_column=self.text_column, label_column=self.label_column)
        if role == "train":  # a ClassLabel column (AG News) names its integer labels
            self._class_names = getattr(table.features.get(self.label_column), "names", None)
        return drop_missing(texts, labels)

    def fit_targets(self, targets: list, tokenizer: TextTokenizer) -> dict:
        labels = sorted(set(targets), key=_label_order)
        if len(labels) < 2:
            raise ConfigError(
                f"task.label_column={self.label_column!r} of {self.where} has {len(labels)} distinct label(s) "
                "in the train split; classification needs at least 2"
            )
        names = getattr(self, "_class_names", None)
        if names and all(isinstance(label, int) and 0 <= label < len(names) for label in labels):
            names = [names[label] for label in labels]
        else:
            names = None
        return {"labels": labels, "names": names}

    def encode_targets(self, targets: list, tokenizer: TextTokenizer, meta: dict, role: str) -> list[list[int]]:
        index = {label: k for k, label in enumerate(meta["labels"])}
        unseen = sorted({label for label in targets if label not in index}, key=_label_order)
        if unseen:
            raise ConfigError(
                f"the {role} split of {self.where} has label(s) {', '.join(map(repr, unseen[:5]))} never seen in "
                "the train split; choose splits that share their labels"
            )
        first = tokenizer.vocab_size
        return [[first + index[label]] for label in targets]

    @property
    def labels(self) -> list:
        """The raw labels in symbol order: label ``labels[k]`` is the symbol ``vocab_size + k``."""
        return self.meta["labels"]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def n_symbols(self) -> int:
        return self.vocab_size + self.num_classes

    @property
    def chance(self) -> float:
        """A uniform guess among the labels."""
        return 1.0 / self.num_classes

    def target_len(self, length: int) -> int:
        return 1

    def label_of(self, symbol: int):
        """The raw label of a target symbol (None for a text symbol)."""
        k = int(symbol) - self.vocab_size
        return self.labels[k] if 0 <= k < self.num_classes else None

    def save(self, folder) -> None:
        """The tokenizer, and ``labels.json``: ``{"first_symbol": V, "labels": [...], "names": [...]}``
        (label ``labels[k]`` is the symbol ``V + k``; ``names``: a ClassLabel column's names, or null)."""
        super().save(folder)
        labels = {"first_symbol": self.vocab_size, "labels": self.labels, "names": self.meta["names"]}
        write_json(Path(folder) / "labels.json", labels)
