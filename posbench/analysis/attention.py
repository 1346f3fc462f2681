"""Attention maps and mean attention distance.

The *mean attention distance* of a head is ``sum_j a_ij |i - j|`` averaged over its queries i and
over examples: how far, in tokens, the head looks on average (the "attention distance" of
Dosovitskiy et al. 2021, ViT, Fig. 7 right and appendix D.7, on token indices instead of pixels).
It is measured in distribution (at the longest training length) and beyond it, where a head that
keeps its weight local keeps its distance while one that spreads it out grows with the length
(ALiBi's premise, Press et al. 2022: a recency bias that extrapolates). ``uniform`` is the
distance of attention spread evenly over every visible key (``(L - 1) / 4`` for causal attention
over L tokens, ``(L² - 1) / (3L)`` for bidirectional), the reference of a head that does not look
at position at all.

Weights come from ``posbench.models.attention.recording_attention``: the softmax the model uses
(computed beside the fused path), so the numbers are those of the model's own forward, in eval
mode, teacher-forced (``model.target_logits``: the decoder reads the true target, as in training).
Self-attention only; positions are token indices within the stack's input (the encoder's
``source SEP BLANK...``, 2L + 1 tokens for copy; the decoder's ``source SEP target``, 2L).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from posbench.analysis.probe import named_stacks
from posbench.models.attention import recording_attention

#: Sequences run through the model at once (the weights are ``[B, heads, L, L]`` per layer), and
#: at most this many query-key pairs per head and layer in one chunk (long lengths: fewer sequences).
CHUNK = 32
PAIRS = 1 << 21


def mean_distance(weights: Tensor) -> Tensor:
    """``weights [..., Lq, Lk]`` (rows sum to 1) -> ``[...]``: ``sum_j w_ij |i - j|`` averaged
    over the queries i; query i sits at key index ``i + Lk - Lq`` (aligned at the end, as
    ``causal_mask``)."""
    q_len, k_len = weights.shape[-2:]
    queries = torch.arange(q_len, device=weights.device) + (k_len - q_len)
    distance = (queries[:, None] - torch.arange(k_len, device=weights.device)[None]).abs().to(weights.dtype)
    return (weights * distance).sum(-1).mean(-1)


def uniform_distance(length: int, causal: bool) -> float:
    """The mean distance of attention spread evenly over the visible keys of ``length`` tokens."""
    visible = torch.ones(length, length, dtype=torch.float64)
    if causal:
        visible = visible.tril()
    return float(mean_distance(visible / visible.sum(-1, keepdim=True)))


def encoding_stack(model: nn.Module) -> str:
    """The name of the stack the model's configured encoding acts in (``net``; seq2seq: ``encoder``)."""
    return next(name for name, module in named_stacks(model).items() if module.encoding is model.encoding)


def self_attention_layers(records: dict[str, list[Tensor]], stack: str) -> list[str]:
    """The names of ``stack``'s self-attention modules in block order (``net.blocks.3.attn``)."""
    pattern = re.compile(rf"{re.escape(stack)}\.blocks\.(\d+)\.attn")
    found = [(int(m.group(1)), name) for name in records if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


@torch.no_grad()
def distances(model, batch: tuple[Tensor, Tensor], chunk: int = CHUNK) -> dict[str, dict]:
    """Per stack: ``{"heads": [[distance per head] per layer], "layers": [mean over heads per
    layer], "uniform": the evenly spread reference, "tokens": the stack's sequence length}``
    of the self-attention of ``model`` on ``batch`` (one source length)."""
    was_training = model.training
    model.eval()
    stacks = named_stacks(model)
    totals: dict[str, Tensor] = {}
    lengths: dict[str, int] = {}
    src_all, tgt_all = batch
    chunk = max(1, min(chunk, PAIRS // (2 * src_all.shape[1] + 1) ** 2))  # about 2L + 1 tokens per sequence
    try:
        for start in range(0, src_all.shape[0], chunk):
            with recording_attention(model) as records:
                model.target_logits(src_all[start : start + chunk], tgt_all[start : start + chunk])
            for stack in stacks:
                layers = self_attention_layers(records, stack)
                if not layers:
                    continue
                weights = [records[name][-1] for name in layers]
                per_head = torch.stack([mean_distance(w.double()).sum(0) for w in weights]).cpu()  # [layers, heads]
                totals[stack] = totals.get(stack, 0) + per_head
                lengths[stack] = weights[0].shape[-1]
    finally:
        model.train(was_training)
    count = src_all.shape[0]
    result = {}
    for stack, total in totals.items():
        heads = total / count
        result[stack] = {
            "tokens": lengths[stack],
            "uniform": round(uniform_distance(lengths[stack], stacks[stack].causal), 4),
            "layers": [round(float(value), 4) for value in heads.mean(1)],
            "heads": [[round(float(value), 4) for value in row] for row in heads],
        }
    return result


@torch.no_grad()
def attention_maps(model, batch: tuple[Tensor, Tensor], index: int = 0, stack: str | None = None) -> Tensor:
    """The self-attention weights of example ``index`` of ``batch`` (a ``(src, tgt)`` pair as in a
    task's test set), ``[layers, heads, L, L]`` float32 on the CPU (each row sums to 1; causal
    stacks are zero above the diagonal), from one teacher-forced forward in eval mode
    (``model.target_logits``).

    ``stack``: which Transformer stack (``net``; seq2seq's ``encoder``); by default the one the
    configured encoding acts in (``model.encoding``: ``net``, seq2seq's ``encoder``). Meant for
    images of attention in TensorBoard, e.g. ``writer.add_image(f"attention/layer{l}_head{h}",
    maps[l, h][None], step)``; runs one example only, so it is cheap at any evaluation length."""
    stacks = named_stacks(model)
    stack = encoding_stack(model) if stack is None else stack
    if stack not in stacks:
        raise ValueError(f"no stack {stack!r} in this model; its stacks: {', '.join(stacks)}")
    src, tgt = batch
    was_training = model.training
    model.eval()
    try:
        with recording_attention(model) as records:
            model.target_logits(src[index : index + 1], tgt[index : index + 1])
    finally:
        model.train(was_training)
    return torch.stack([records[name][-1][0] for name in self_attention_layers(records, stack)]).float().cpu()
