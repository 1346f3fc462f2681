"""Scoring: token accuracy on target tokens and exact-match (sequence) accuracy."""

from __future__ import annotations

import torch

from posbench.models import SequenceModel
from posbench.tasks.base import Batch


@torch.no_grad()
def score(model: SequenceModel, batches: list[Batch], batch_size: int = 512) -> dict[str, float]:
    """``{"acc", "seq_acc"}`` of the model's predictions, pooled over equal-length batches."""
    was_training = model.training
    model.eval()
    correct = tokens = exact = sequences = 0
    for src_all, tgt_all in batches:
        for start in range(0, src_all.shape[0], batch_size):
            src, tgt = src_all[start : start + batch_size], tgt_all[start : start + batch_size]
            hit = model.predict(src, tgt.shape[1]) == tgt
            correct += int(hit.sum())
            tokens += hit.numel()
            exact += int(hit.all(dim=1).sum())
            sequences += hit.shape[0]
    model.train(was_training)
    return {"acc": correct / tokens, "seq_acc": exact / sequences}


def evaluate(model: SequenceModel, test_set: list[Batch], length_sets: dict[int, Batch]) -> dict:
    """In-distribution metrics plus one entry per evaluation length."""
    return {
        "metrics": score(model, test_set),
        "lengths": {str(length): score(model, [batch]) for length, batch in length_sets.items()},
    }


def constant_output_ceiling(batches: list[Batch]) -> float | None:
    """Token accuracy of the best answer that repeats one symbol in every target slot.

    A bidirectional encoder without positional information gives every empty slot the same
    output, so this is the ceiling of a NoPE encoder on these targets (not a trained number).
    None when every target is a single token: the bound is then vacuous.
    """
    if all(tgt.shape[1] == 1 for _, tgt in batches):
        return None
    correct = tokens = 0
    for _, tgt in batches:
        counts = (tgt[:, :, None] == tgt[:, None, :]).sum(dim=2)  # [B, T]: multiplicity of each symbol
        correct += int(counts.max(dim=1).values.sum())
        tokens += tgt.numel()
    return correct / tokens
