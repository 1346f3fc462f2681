"""Corpus BLEU (sacrebleu) of decoded predictions against one or several references per example,
shared by the tasks that write text (translation, captioning)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from posbench.data import require
from posbench.tasks.base import PAD


def corpus_bleu(predictions: list[Tensor], targets: list[Tensor], decode: Callable[[list[int]], str], what: str) -> dict:
    """``{"bleu"}``: sacrebleu corpus BLEU-4 (0-100, 13a tokenization, exp smoothing) of the decoded
    predictions (cut at their first ``eos``) against the decoded targets: ``[B, T]`` (one reference
    each) or ``[B, R, T]`` (up to R; a reference that is all PAD is absent). With ``effective_order``,
    a set without any 4-gram (short answers) is scored on the n-gram orders it has instead of 0;
    sets with 4-grams get standard corpus BLEU. ``what`` names the metric's user in the message
    of a missing ``sacrebleu``. ``{}`` for an empty set."""
    sacrebleu = require("sacrebleu", what)
    hypotheses: list[str] = []
    references: list[list[str | None]] = []  # per hypothesis, None where a reference is absent
    for pred, tgt in zip(predictions, targets):
        for pred_row, refs in zip(pred.tolist(), (tgt[:, None] if tgt.dim() == 2 else tgt).tolist()):
            hypotheses.append(decode(pred_row))
            references.append([decode(ref) if any(symbol != PAD for symbol in ref) else None for ref in refs])
    if not hypotheses:
        return {}
    most = max(map(len, references))
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    bleu = sacrebleu.metrics.BLEU(effective_order=True)
    return {"bleu": float(bleu.corpus_score(hypotheses, streams).score)}
