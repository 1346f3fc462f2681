"""The captioning-task contract (``model=captioner``, ``model=prefix_captioner``): images and the
captions that describe them.

A caption task is an image task (``posbench.tasks.image``: its "length" is the image side, trained
at ``image_size`` and scored at each of ``eval_sizes``) whose target is a caption instead of a
label: word symbols ``0 .. vocab_size-1``, then ``eos`` (= ``vocab_size``), right-padded with PAD
to ``target_len``, the longest caption plus its ``eos``. The models write it greedily and stop at
``eos``, as seq2seq does.

* ``sample(batch, size, generator)`` gives ``images [B, channels, size, size]`` and captions
  ``[B, target_len]``. An evaluation set may hold several references per image,
  ``[B, R, target_len]`` (a reference that is all PAD is absent): token accuracy and exact match
  are scored against the first, BLEU against all (``posbench.training.evaluate``).
* Metrics: token accuracy, exact match, corpus BLEU-4 (sacrebleu) of the decoded captions, and a
  task's own (``shapes_caption``'s spatial-word accuracy).
* ``decode(symbols)``: a caption's text (words up to the first non-word symbol).

This module registers no task.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.data import require
from posbench.tasks.base import Batch
from posbench.tasks.bleu import corpus_bleu
from posbench.tasks.image import ImageTask


class CaptionTask(ImageTask):
    inputs = "captioned images"
    variable_length = True
    #: References per scored image (several for a dataset with more than one caption per image).
    references: int = 1

    def __init__(self, **options):
        require("sacrebleu", f"task={self.name}'s BLEU")  # before anything runs, not at the first evaluation
        super().__init__(**options)

    # ---- what each caption task defines -------------------------------------------------------
    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``batch_size`` images ``[B, channels, size, size]`` and their captions ``[B, target_len]``."""
        raise NotImplementedError

    def decode(self, symbols) -> str:
        """The text of a caption's symbols, up to its first non-word symbol (``eos``, PAD)."""
        raise NotImplementedError

    @property
    def longest_caption(self) -> int:
        """Words in the longest caption (``target_len`` adds the ``eos``)."""
        raise NotImplementedError

    # ---- the task contract -------------------------------------------------------------------
    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        return self.draw(batch_size, length, generator)

    def target_len(self, length: int) -> int:
        return self.longest_caption + 1

    def model_inputs(self) -> dict:
        """The image's channels and size, and ``eos``: the captioners stop writing at it."""
        return super().model_inputs() | {"eos": self.eos}

    def example_bytes(self, length: int) -> int:
        return 4 * self.channels * length * length + 8 * self.references * self.target_len(length)

    def corpus_metrics(self, predictions: list[Tensor], targets: list[Tensor]) -> dict[str, float]:
        return corpus_bleu(predictions, targets, self.decode, f"task={self.name}'s BLEU")

    @property
    def chance(self) -> float:
        """Token accuracy of guessing uniformly among the words."""
        return 1.0 / self.vocab_size
