"""Training throughput of every posbench encoding, next to x-transformers at the same shapes.

What is measured
    Training steps per second on CPU, float32, for a Transformer of d_model 128, 2 layers,
    4 heads (head dim 32), MLP ratio 4, no dropout, on a [batch 64, length 64] token batch.
    One step is: logits = net(tokens) ([B, L, vocab]), cross-entropy over all B*L positions,
    backward, AdamW step, zero_grad. The posbench network is ``MODELS.get(model)(...).net`` (the
    Transformer stack, built exactly as the trainer builds it, default encoding options); the
    x-transformers network is a ``TransformerWrapper`` over an ``Encoder`` (``Decoder`` for
    ``--model decoder``) configured to match, with every positional option set explicitly
    (``XT_POSITION``). Both get the same input vocabulary (task symbols + posbench's SEP and BLANK),
    the same output vocabulary, the same targets, loss, optimizer and learning rate.

How
    Every 1D encoding in ``ENCODINGS.names()`` is measured (``none`` first; the 2D ones need an
    image grid: ``scripts/bench_vit.py`` measures them), each followed by the options that change
    its cost or its method (``VARIANTS``: p-RoPE, RoPE scalings, ALiBi on half the heads, soft
    one-hot CoPE, log-n scaled NoPE), so newly registered encodings appear automatically, with the attention path they take (``fused``: SDPA with the
    bias as its float mask; ``explicit``: logits materialised for a content-position term) and
    their steps/s relative to ``none``; those without an x-transformers counterpart (or every encoding, when
    x-transformers is not importable) show '-' in the x-transformers columns. For each
    encoding both networks are built, warmed up (``--warmup`` steps each), then timed for
    ``--repeats`` repeats of ``--steps`` steps each. The repeats of the two implementations are
    interleaved, and their order alternates from one repeat to the next, so that a burst of load
    on the machine hits both equally. A column shows the median steps/s over the repeats; the
    ratio is the median over repeats of the paired ratio posbench/x-transformers (paired: timed
    back to back), which cancels load that drifts between repeats, and its interquartile range
    shows how noisy the machine was. Rows whose ratio is below ``RATIO_TARGET`` are marked.
    The script writes nothing to disk (no caches, nothing in $HOME).

Run from the project root:  ``.venv/bin/python scripts/bench_throughput.py [--model decoder] [--encodings fox,pope]``
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from importlib.metadata import version

import torch
from benchlib import (  # scripts/benchlib.py
    RATIO_TARGET,
    Trainer,
    below_mark,
    measure,
    peer_columns,
)
from torch import nn

from posbench.encodings import ENCODINGS
from posbench.models import MODELS

with warnings.catch_warnings():  # x-transformers applies the deprecated torch.jit.script at import
    warnings.simplefilter("ignore", FutureWarning)
    try:
        from x_transformers import Decoder as XDecoder
        from x_transformers import Encoder as XEncoder
        from x_transformers import TransformerWrapper
    except ImportError:
        TransformerWrapper = None

D_MODEL, LAYERS, HEADS, FFN_MULT = 128, 2, 4, 4
HEAD_DIM = D_MODEL // HEADS
BATCH, LENGTH = 64, 64

#: posbench row -> (TransformerWrapper keywords, Encoder/Decoder keywords), set explicitly
#: because x-transformers' defaults differ (partial rotary; ALiBi keeps the absolute embedding).
XT_POSITION: dict[str, tuple[dict, dict]] = {
    "none": ({"use_abs_pos_emb": False}, {}),
    "sinusoidal": ({"use_abs_pos_emb": True, "scaled_sinu_pos_emb": True}, {}),
    "learned": ({"use_abs_pos_emb": True}, {}),
    "rope": ({"use_abs_pos_emb": False}, {"rotary_pos_emb": True, "rotary_emb_dim": HEAD_DIM}),
    "alibi": ({"use_abs_pos_emb": False}, {"alibi_pos_bias": True}),
    "alibi(heads_fraction=0.5)": ({"use_abs_pos_emb": False}, {"alibi_pos_bias": True, "alibi_num_heads": HEADS // 2}),
    "t5": ({"use_abs_pos_emb": False}, {"rel_pos_bias": True}),
    "fox": ({"use_abs_pos_emb": False}, {"attn_data_dependent_alibi": True}),
    "pope": ({"use_abs_pos_emb": False}, {"polar_pos_emb": True}),
    "cope": ({"use_abs_pos_emb": False}, {"attn_use_cope": True, "attn_cope_max_pos": 64}),
}

#: Options measured beside the defaults: row label -> the encoding's config section.
VARIANTS: dict[str, dict] = {
    "rope(p=0.75)": {"name": "rope", "p": 0.75},
    "rope(scaling=yarn)": {"name": "rope", "scaling": "yarn", "factor": 2.0, "original_max_len": 32},
    "rope(scaling=llama3)": {"name": "rope", "scaling": "llama3", "factor": 2.0, "original_max_len": 32},
    "rope(scaling=dynamic_ntk)": {"name": "rope", "scaling": "dynamic_ntk", "factor": 2.0, "original_max_len": 32},
    "alibi(heads_fraction=0.5)": {"name": "alibi", "heads_fraction": 0.5},
    "cope(soft_onehot=true)": {"name": "cope", "soft_onehot": True},
    "none(logn_scale=1)": {"name": "none", "logn_scale": 1.0},
}


def rows(only: list[str] | None = None) -> list[tuple[str, dict]]:
    """Every 1D encoding (those in ``only``, when given) with its default options (``none`` first:
    the baseline, always measured), each followed by its measured option variants."""
    names = sorted(ENCODINGS.names(), key=lambda name: name != "none")
    names = [name for name in names if only is None or name in only or name == "none"]
    return [
        (label, section)
        for name in names
        for label, section in [(name, {"name": name}), *((k, v) for k, v in VARIANTS.items() if v["name"] == name)]
    ]


FOOTNOTES = [
    "x-transformers runs its default attention (attn_flash=False: explicit einsum + softmax); "
    "posbench uses torch's fused scaled_dot_product_attention.",
    "architecture differences that remain: x-transformers has bias-free LayerNorms and logits head, "
    "and separate q/k/v projections (posbench: one fused qkv).",
    "sinusoidal: x-transformers has no plain fixed sinusoidal embedding; ScaledSinusoidalEmbedding "
    "(concatenated [sin | cos] codes times one learned scale) is the closest match.",
    "learned: posbench's table keeps its default max_len (256 rows), x-transformers' has "
    "max_seq_len=64 rows: most of the parameter difference.",
    "rope: full rotary on both (rotary_emb_dim=32); x-transformers rotates adjacent feature pairs, "
    "posbench half-split pairs.",
    "fox: x-transformers' data_dependent_alibi (the Forgetting Transformer's gates); pope: its "
    "polar_pos_emb; cope: its use_cope (max_pos 64; posbench's table has npos_max + 1 = 65 rows); its "
    "soft one-hot CoPE fails with einx 0.4 (a 4-D einx.subtract), so cope(soft_onehot=true) has no peer row.",
    "alibi (encoder): bidirectional x-transformers ALiBi is symmetric in |i - j|; posbench uses one "
    "slope per direction (identical under a causal mask).",
]


def posbench_net(model: str, section: dict, vocab: int) -> nn.Module:
    """posbench's Transformer stack: ``vocab + 2`` input tokens (SEP, BLANK), ``vocab`` outputs."""
    family = MODELS.get(model)(
        vocab, section, d_model=D_MODEL, layers=LAYERS, heads=HEADS, ffn_mult=FFN_MULT, dropout=0.0
    )
    return family.net


def xt_net(model: str, label: str, vocab: int) -> nn.Module:
    """The matching x-transformers network, extras left at (or set to) their plain defaults."""
    wrapper_kwargs, layer_kwargs = XT_POSITION[label]
    layers_cls = XDecoder if model == "decoder" else XEncoder
    layers = layers_cls(
        dim=D_MODEL,
        depth=LAYERS,
        heads=HEADS,
        attn_dim_head=HEAD_DIM,
        ff_mult=FFN_MULT,
        attn_flash=False,
        attn_dropout=0.0,
        ff_dropout=0.0,
        pre_norm=True,
        verbose=False,
        **layer_kwargs,
    )
    return TransformerWrapper(
        num_tokens=vocab + 2, logits_dim=vocab, max_seq_len=LENGTH, attn_layers=layers, emb_dropout=0.0, **wrapper_kwargs
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["encoder", "decoder"], default="encoder", help="model family")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per network before timing")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per network (median reported)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed repeat")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--vocab", type=int, default=16, help="task symbols (posbench adds SEP and BLANK to the input)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--encodings", type=lambda text: text.split(","), default=None,
        help="comma-separated encodings to measure (with their variants; none is always measured); default: all",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.encodings or []) - set(ENCODINGS.names()))
    if unknown:
        parser.error(f"unknown encodings: {', '.join(unknown)}")
    if args.warmup < 0 or args.repeats < 2 or args.steps < 1 or args.threads < 1 or args.vocab < 2:
        parser.error("need warmup >= 0, repeats >= 2, steps >= 1, threads >= 1, vocab >= 2")
    return args


ROW = "{:<27} | {:>15} | {:>10} | {:>7} | {:>8} | {:>7} | {:>13} | {:>9} | {:>9}"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    generator = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, args.vocab + 2, (BATCH, LENGTH), generator=generator)
    targets = torch.randint(0, args.vocab, (BATCH, LENGTH), generator=generator)

    xt_version = version("x-transformers") if TransformerWrapper is not None else "not installed"
    print(
        f"torch {torch.__version__} | x-transformers {xt_version} | threads {torch.get_num_threads()} | "
        f"float32 CPU | model {args.model} | d_model {D_MODEL}, {LAYERS} layers, {HEADS} heads x {HEAD_DIM}, "
        f"ffn x{FFN_MULT} | batch {BATCH} x length {LENGTH}, vocab {args.vocab} (+2 input) | AdamW lr {args.lr} | "
        f"{args.warmup} warmup + {args.repeats} interleaved repeats x {args.steps} steps, median"
    )
    print(
        "ratio = posbench / x-transformers steps/s, median over the paired repeats (IQR: their interquartile "
        f"range); target >= {RATIO_TARGET:.2f}x"
    )
    header = ROW.format(
        "encoding", "path", "posbench/s", "vs none", "xt/s", "ratio", "ratio IQR", "params pb", "params xt"
    )
    print(header)
    print("-" * len(header))

    below = []
    none_rate = None
    for label, section in rows(args.encodings):
        cls = ENCODINGS.get(section["name"])
        if cls.axes == 2:  # image grid coordinates: measured on the ViT by scripts/bench_vit.py
            continue
        if cls.reads_time:  # needs a task made of streams; on their timeline it costs what its base costs
            print(ROW.format(label, "as its base", *["-"] * 7), flush=True)
            continue
        if not (cls.supports_causal if args.model == "decoder" else cls.supports_bidirectional):
            print(ROW.format(label, f"not for {args.model}", *["-"] * 7), flush=True)
            continue
        torch.manual_seed(args.seed)
        net = posbench_net(args.model, section, args.vocab)
        trainers = {"posbench": Trainer(net, net, tokens, targets, args.lr)}
        if TransformerWrapper is not None and label in XT_POSITION:
            torch.manual_seed(args.seed)
            peer = xt_net(args.model, label, args.vocab)
            trainers["xt"] = Trainer(peer, peer, tokens, targets, args.lr)
        rates = measure(trainers, args.warmup, args.repeats, args.steps)

        rate = statistics.median(rates["posbench"])
        none_rate = rate if label == "none" else none_rate
        first = [
            label,
            "explicit" if trainers["posbench"].net.encoding.explicit_attention else "fused",
            f"{rate:.2f}",
            f"{rate / none_rate:.2f}x",
        ]
        posbench_params = trainers["posbench"].params
        if "xt" not in trainers:
            print(ROW.format(*first, "-", "-", "-", posbench_params, "-"), flush=True)
            continue
        cells, slow = peer_columns(rates["posbench"], rates["xt"])
        if slow:
            below.append(label)
        row = ROW.format(*first, *cells, posbench_params, trainers["xt"].params)
        print(row + below_mark(slow), flush=True)

    if TransformerWrapper is not None:
        print()
        verdict = f"below target: {', '.join(below)}" if below else "every compared encoding meets the target"
        print(f"ratio target {RATIO_TARGET:.2f}x: {verdict}")
        print("notes:")
        for note in FOOTNOTES:
            print(f"  * {note}")


if __name__ == "__main__":
    main()
