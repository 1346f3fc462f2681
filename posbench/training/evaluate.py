"""Scoring: token accuracy on target tokens, exact-match (sequence) accuracy, and the task's own
corpus metrics (BLEU); perplexity where the task is scored teacher-forced (language modelling).

Target positions holding ``PAD`` are not scored; a prediction is cut at the model's first ``eos``
(everything after it counts as padding), so stopping early or late costs accuracy. An evaluation
target may hold several references per example (``[B, R, T]``, a captioning dataset's captions):
token and exact-match accuracy are scored against the first, corpus metrics (BLEU) against all.

Greedy decoding at long lengths and text datasets can take minutes: given a description, scoring
shows its progress over examples (see ``posbench.training.progress``: a bar on a terminal, a line
every 30 s elsewhere, nothing extra for a quick evaluation).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor

from posbench import scales
from posbench.models import SequenceModel
from posbench.tasks.base import PAD, Batch, Task
from posbench.training.progress import Progress


def cut_at_eos(pred: Tensor, eos: int | None) -> Tensor:
    """``pred`` with every position after the first ``eos`` of its row replaced by PAD."""
    if eos is None:
        return pred
    is_eos = (pred == eos).long()
    return pred.masked_fill(is_eos.cumsum(dim=1) - is_eos > 0, PAD)


def token_hits(pred: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
    """Per-position hits and the mask of scored (non-PAD) target positions."""
    scored = tgt != PAD
    return (pred == tgt) & scored, scored


def examples(*sets: list[Batch]) -> int:
    """How many examples the batch lists hold together."""
    return sum(src.shape[0] for batches in sets for src, _ in batches)


def evaluation_progress(desc: str, total: int) -> Progress:
    """Progress over ``total`` examples that adds no line when the evaluation is quick."""
    return Progress(desc, total, unit="example", announce=False)


@torch.no_grad()
def score(
    model: SequenceModel, batches: list[Batch], task: Task, batch_size: int = 512, progress: Progress | str | None = None
) -> dict[str, float]:
    """``{"acc", "seq_acc", ...}`` of the model on ``batches`` (each of one source length).

    ``progress``: a description (``rope: evaluating``) to show this scoring's progress under, or
    a ``Progress`` over examples to advance and leave open (``evaluate`` shares one between the
    test set and every length); None shows nothing."""
    was_training = model.training
    model.eval()
    correct = tokens = exact = sequences = 0
    nll = 0.0
    predictions, targets = [], []
    own = isinstance(progress, str)
    with evaluation_progress(progress, examples(batches)) if own else nullcontext(progress) as bar:
        for src_all, tgt_all in batches:
            for start in range(0, src_all.shape[0], batch_size):
                src, references = src_all[start : start + batch_size], tgt_all[start : start + batch_size]
                tgt = references[:, 0] if references.dim() == 3 else references
                if task.teacher_forced:
                    logits = model.target_logits(src, tgt)
                    nll += F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=PAD, reduction="sum").item()
                    pred = logits.argmax(-1)
                else:
                    pred = cut_at_eos(model.predict(src, tgt.shape[1]), model.eos)
                hit, scored = token_hits(pred, tgt)
                correct += int(hit.sum())
                tokens += int(scored.sum())
                exact += int((hit | ~scored).all(dim=1).sum())
                sequences += hit.shape[0]
                predictions.append(pred)
                targets.append(references)
                if bar is not None:
                    bar.update(src.shape[0])
    model.train(was_training)
    metrics = {"acc": correct / max(tokens, 1), "seq_acc": exact / max(sequences, 1)}
    if task.teacher_forced:
        metrics["ppl"] = math.exp(nll / max(tokens, 1))
    return metrics | task.corpus_metrics(predictions, targets)


def evaluate(
    model: SequenceModel, task: Task, test_set: list[Batch], length_sets: dict[int, list[Batch]], desc: str | None = None
) -> dict:
    """In-distribution metrics plus one entry per evaluation length (``lengths``; an image task's
    per evaluation size: ``sizes``). ``desc`` (the run's progress
    prefix, ``rope``): show progress as ``rope: evaluating``, one count over the test set and every
    length together, so that many lengths each quick to score still show up as a long evaluation."""
    total = examples(test_set, *length_sets.values())
    with nullcontext() if desc is None else evaluation_progress(f"{desc}: evaluating", total) as bar:

        def scored(batches: list[Batch], what: str) -> dict[str, float]:
            if bar is not None:
                bar.update(0, on=what)
            return score(model, batches, task, progress=bar)

        metrics = scored(test_set, "test set")
        by_scale = {str(n): scored(batches, f"{task.axis} {n}") for n, batches in length_sets.items()}
    return {"metrics": metrics, scales.key(task.axis): by_scale}


#: Examples of each evaluation length (size) scored with the encoding switched off: the whole set
#: at the default ``task.eval_size`` (256), the first 256 of a larger one, so that PE off per length
#: costs at most one more pass over 256 examples a length.
PE_OFF_EXAMPLES = 256


def first_examples(batches: list[Batch], count: int) -> list[Batch]:
    """The first ``count`` examples of ``batches``, in the same batches (the last one cut)."""
    kept, left = [], count
    for src, tgt in batches:
        if left <= 0:
            break
        kept.append((src[:left], tgt[:left]))
        left -= src.shape[0]
    return kept


def evaluate_pe_off(
    model: SequenceModel, task: Task, test_set: list[Batch], length_sets: dict[int, list[Batch]], desc: str | None = None
) -> dict:
    """The model with every encoding switched off (``SequenceModel.encoding_off``), scored as
    ``evaluate`` scores it: ``pe_off`` on the whole in-distribution test set and ``pe_off_lengths``
    (``pe_off_sizes``) on the first ``PE_OFF_EXAMPLES`` examples of each evaluation length (size)."""
    short = {n: first_examples(batches, PE_OFF_EXAMPLES) for n, batches in length_sets.items()}
    with model.encoding_off():
        scored = evaluate(model, task, test_set, short, desc=None if desc is None else f"{desc}: encoding off")
    return {"pe_off": scored["metrics"], scales.pe_off_key(task.axis): scored[scales.key(task.axis)]}


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
        scored = tgt != PAD
        same = (tgt[:, :, None] == tgt[:, None, :]) & scored[:, None, :]
        counts = same.sum(dim=2).masked_fill(~scored, 0)  # [B, T]: multiplicity of each scored symbol
        correct += int(counts.max(dim=1).values.sum())
        tokens += int(scored.sum())
    return correct / max(tokens, 1)
