"""Training throughput of every posbench encoding on a Vision Transformer, next to timm at the same shapes.

What is measured
    Training steps per second of a ViT of d_model 128, 6 layers, 4 heads (head dim 32), MLP ratio
    4, patch 4, class-token pooling, no dropout, on a [batch 128, 3, 32, 32] float image batch
    (an 8 x 8 grid of patches + the class token: 65 tokens) with 10 classes. One step is: logits
    ([B, 10]), cross-entropy, backward, AdamW step, zero_grad. The posbench network is
    ``MODELS.build({"name": "vit", ...}, 10, {"name": encoding}, channels=3, image_size=32)``
    (built as the trainer builds it, default encoding options), stepped through ``model.logits``;
    the timm network is ``timm.models.vision_transformer.VisionTransformer`` or, for the 2D rotary
    encodings, ``timm.models.eva.Eva``, configured to match with every positional option set
    explicitly (``TIMM_POSITION``). Both get the same images, targets, loss, optimizer and
    learning rate. ``--device cpu`` (default) runs float32; ``--device cuda`` runs float32 or,
    with ``--dtype bf16``, the forward and loss under bfloat16 autocast (parameters and AdamW
    state stay float32), with the device synchronised around every timed repeat.

    CPU results depend on ``--threads`` (torch.set_num_threads; default 1, because the machine
    is shared): the ratio to timm and the ratio to ``none`` both move with the thread count,
    since fixed per-op overheads weigh more when the arithmetic is spread over more cores. Compare
    only runs made with the same thread count, and report it with the numbers (the header does).

How
    Every encoding in ``ENCODINGS.names()`` is tried (``none`` first, the baseline), so newly
    registered encodings appear automatically: the 2D ones (``axes == 2``) and the 1D ones, which
    read the raster index on a ViT. An encoding that refuses a ViT (``ConfigError`` when built, e.g.
    one defined only for causal attention) is listed with the first line of its reason; one that
    fails otherwise is listed as FAILED with its error, the run goes on, and the script exits with
    status 1 at the end. Each measured row shows the attention path posbench takes (``fused``:
    SDPA with the bias as its float mask; ``explicit``: logits materialised for a content-position
    term) and its steps/s relative to ``none``; encodings without a timm counterpart (or every
    encoding, when timm is not importable) show '-' in the timm columns. For each encoding both
    networks are built, warmed up (``--warmup`` steps each), then timed for ``--repeats`` repeats of
    ``--steps`` steps each. The repeats of the two implementations are interleaved, and their order
    alternates from one repeat to the next, so that a burst of load on the machine hits both
    equally. A column shows the median steps/s over the repeats; the ratio is the median over
    repeats of the paired ratio posbench/timm (paired: timed back to back), which cancels load that
    drifts between repeats, and its interquartile range shows how noisy the machine was (needs
    ``--repeats`` >= 2). Rows whose ratio is below ``RATIO_TARGET`` are marked.
    The script writes nothing to disk (no caches, nothing in $HOME).

Run from the project root:  ``.venv/bin/python scripts/bench_vit.py [--threads 1] [--device cuda --dtype bf16]``
Quick smoke check:  ``.venv/bin/python scripts/bench_vit.py --encodings learned rope2d_axial --warmup 1 --repeats 1 --steps 1``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
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
from posbench.errors import ConfigError, first_line
from posbench.models import MODELS

try:
    from timm.layers import use_fused_attn
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer as TimmViT
except ImportError:
    TimmViT = None

D_MODEL, LAYERS, HEADS, FFN_MULT = 128, 6, 4, 4
HEAD_DIM = D_MODEL // HEADS
PATCH, IMAGE, CHANNELS, CLASSES = 4, 32, 3, 10
BATCH = 128
GRID = IMAGE // PATCH

#: The shapes every timm peer shares: posbench's ViT (pre-LN blocks, one fused qkv projection without
#: bias, GELU MLP with biases, final LayerNorm, class token pooled into a linear head), no dropout of
#: any kind. ``qkv_bias`` is set explicitly because both timm classes default to True.
TIMM_COMMON: dict = {
    "img_size": IMAGE,
    "patch_size": PATCH,
    "in_chans": CHANNELS,
    "num_classes": CLASSES,
    "embed_dim": D_MODEL,
    "depth": LAYERS,
    "num_heads": HEADS,
    "mlp_ratio": FFN_MULT,
    "qkv_bias": False,
    "class_token": True,
    "global_pool": "token",
    "drop_rate": 0.0,
    "pos_drop_rate": 0.0,
    "proj_drop_rate": 0.0,
    "attn_drop_rate": 0.0,
    "drop_path_rate": 0.0,
}

#: Eva's extras switched to a plain ViT block (its defaults are already these; set explicitly so that
#: a change of default in timm cannot change the network): one fused qkv, GELU MLP (no SwiGLU), no
#: normformer scale norms, no layer scale, its own EvaAttention, no absolute table, final norm on the
#: tokens then class-token pooling (no fc_norm), and a fixed grid (rotary tables cached at build).
EVA_PLAIN: dict = {
    "qkv_fused": True,
    "swiglu_mlp": False,
    "scale_mlp": False,
    "scale_attn_inner": False,
    "init_values": None,
    "attn_type": "eva",
    "use_abs_pos_emb": False,
    "use_rot_pos_emb": True,
    "use_fc_norm": False,
    "rope_grid_indexing": "ij",  # first coordinate = row, as posbench's (row, col)
    "dynamic_img_size": False,
}

#: posbench encoding -> (timm class name, keywords on top of ``TIMM_COMMON``), positional options set
#: explicitly. timm 1.0.31 facts this relies on (checked in its source):
#:
#: * ``VisionTransformer(pos_embed=...)`` accepts only '', 'none' and 'learn' (there is no fixed
#:   sin-cos option; ``timm.layers.build_sincos2d_pos_embed`` exists but no timm ViT builds its
#:   table from it), so ``sincos2d`` has no peer.
#: * ``Eva(rope_type=...)`` accepts 'cat', 'mixed', 'dinov3', 'mrope' ('base' exists only in
#:   ``create_rope_embed``). 'cat' (``RotaryEmbeddingCat``, in_pixels=False) is RoPE-Axial: head
#:   frequencies temperature^(-t / (head_dim/4)), half applied to the row, half to the column,
#:   exactly posbench's ``rope2d_axial`` with temperature = its base (100); ``rope_rotate_half=True``
#:   gives posbench's half-split feature layout. 'mixed' (``RotaryEmbeddingMixed``) is RoPE-Mixed:
#:   learnable per-layer, per-head 2D frequencies with Heo et al.'s random-angle init, magnitude base
#:   ``rope_temperature`` (posbench's ``rope2d_mixed`` base, 10); it requires the interleaved layout.
#:   'dinov3' (normalised [-1, 1] coordinates) and 'mrope' (3D sections) match no posbench encoding.
#: * Both rotate only the patch tokens (num_prefix_tokens=1: the class token passes through), as
#:   posbench does.
TIMM_POSITION: dict[str, tuple[str, dict]] = {
    "none": ("VisionTransformer", {"pos_embed": "none"}),
    "learned": ("VisionTransformer", {"pos_embed": "learn", "no_embed_class": False}),
    "rope2d_axial": (
        "Eva",
        {
            **EVA_PLAIN,
            "rope_type": "cat",
            "rope_temperature": 100.0,
            "rope_rotate_half": True,
        },
    ),
    "rope2d_mixed": (
        "Eva",
        {
            **EVA_PLAIN,
            "rope_type": "mixed",
            "rope_temperature": 10.0,
            "rope_rotate_half": False,
        },
    ),
}

FOOTNOTES = [
    (
        "attention: posbench's fused path and timm (use_fused_attn() = {fused}) both call torch's "
        "scaled_dot_product_attention; encodings on posbench's explicit path have no timm peer."
    ),
    (
        "architecture differences that remain in every pair: timm's attention output projection has a bias "
        "(posbench: none; VisionTransformer's proj_bias also drives the MLP biases, which posbench has, and "
        "Eva's is fixed on); LayerNorm eps 1e-6 vs 1e-5 (no cost). Both apply the head to the pooled class token."
    ),
    "none: VisionTransformer(pos_embed='none'), class token kept.",
    (
        "learned: VisionTransformer(pos_embed='learn', no_embed_class=False): one table row for the class "
        "token and one per patch (65 rows), as posbench's learned on a ViT; posbench's table keeps its "
        "default max_len (256 rows, 65 read): the parameter difference, updated by AdamW every step."
    ),
    (
        "rope2d_axial: Eva(rope_type='cat', rope_temperature=100, rope_rotate_half=True): same frequencies, "
        "same feature layout; timm caches the sin/cos table of the fixed grid at build and reads it every "
        "forward, posbench computes the angles in rotate (every layer)."
    ),
    (
        "rope2d_mixed: Eva(rope_type='mixed', rope_temperature=10): timm pairs adjacent features (interleaved; "
        "mixed refuses rotate_half), posbench half-split pairs, a fixed permutation; timm computes every "
        "layer's sin/cos in one batched op per forward, posbench per layer."
    ),
    (
        "Eva vs VisionTransformer (the rope rows vs the none/learned rows): Eva is set to the plain ViT block "
        "(EVA_PLAIN: no SwiGLU, no scale norms, no layer scale, fused qkv without bias) and differs only in "
        "its attention module's code."
    ),
    (
        "no peer: sincos2d (timm's VisionTransformer has no fixed sin-cos option: pos_embed in '', 'none', "
        "'learn'); learned2d's closest timm code is NaFlexVit(pos_embed='factorized'), a different model "
        "class (NaFlex embeddings), not mapped; 1D relative/bias encodings have no timm ViT counterpart."
    ),
]


def posbench_model(encoding: str) -> nn.Module:
    """posbench's ViT with ``encoding`` (its default options), as the trainer builds it."""
    section = {
        "name": "vit",
        "d_model": D_MODEL,
        "layers": LAYERS,
        "heads": HEADS,
        "ffn_mult": FFN_MULT,
        "patch_size": PATCH,
        "pool": "cls",
    }
    return MODELS.build(
        section, CLASSES, {"name": encoding}, channels=CHANNELS, image_size=IMAGE
    )


def timm_model(encoding: str) -> nn.Module:
    """The matching timm network (``TIMM_POSITION``)."""
    cls_name, position = TIMM_POSITION[encoding]
    cls = {"VisionTransformer": TimmViT, "Eva": Eva}[cls_name]
    return cls(**TIMM_COMMON, **position)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where both networks train",
    )
    parser.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16: forward and loss under bfloat16 autocast (CUDA only)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps per network before timing"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="timed repeats per network (median reported)",
    )
    parser.add_argument(
        "--steps", type=int, default=2, help="training steps per timed repeat"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (CPU results depend on it; default 1: shared machine)",
    )
    parser.add_argument(
        "--encodings",
        nargs="+",
        metavar="NAME",
        help="measure only these (none is always measured first); default: all",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.warmup < 0 or args.repeats < 1 or args.steps < 1 or args.threads < 1:
        parser.error("need warmup >= 0, repeats >= 1, steps >= 1, threads >= 1")
    if args.dtype == "bf16" and args.device != "cuda":
        parser.error("--dtype bf16 needs --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    unknown = sorted(set(args.encodings or ()) - set(ENCODINGS.names()))
    if unknown:
        parser.error(
            f"unknown encodings {', '.join(unknown)}; registered: {', '.join(ENCODINGS.names())}"
        )
    return args


ROW = "{:<17} | {:>8} | {:>10} | {:>7} | {:>8} | {:>7} | {:>13} | {:>9} | {:>9}"


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float32)
    device = torch.device(args.device)
    if args.dtype == "bf16":

        def autocast() -> contextlib.AbstractContextManager:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

    else:
        autocast = contextlib.nullcontext
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(BATCH, CHANNELS, IMAGE, IMAGE, generator=generator).to(device)
    targets = torch.randint(0, CLASSES, (BATCH,), generator=generator).to(device)

    timm_version = version("timm") if TimmViT is not None else "not installed"
    where = (
        f"CUDA {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "CPU"
    )
    precision = "bf16 autocast" if args.dtype == "bf16" else "float32"
    print(
        f"torch {torch.__version__} | timm {timm_version} | threads {torch.get_num_threads()} | {precision} {where} | "
        f"ViT d_model {D_MODEL}, {LAYERS} layers, {HEADS} heads x {HEAD_DIM}, ffn x{FFN_MULT}, patch {PATCH}, cls pool | "
        f"batch {BATCH} x {CHANNELS}x{IMAGE}x{IMAGE} ({GRID}x{GRID} patches + cls), {CLASSES} classes | AdamW lr {args.lr} | "
        f"{args.warmup} warmup + {args.repeats} interleaved repeats x {args.steps} steps, median"
    )
    print(
        "ratio = posbench / timm steps/s, median over the paired repeats (IQR: their interquartile range); "
        f"target >= {RATIO_TARGET:.2f}x"
    )
    header = ROW.format(
        "encoding",
        "path",
        "posbench/s",
        "vs none",
        "timm/s",
        "ratio",
        "ratio IQR",
        "params pb",
        "params tm",
    )
    print(header)
    print("-" * len(header))

    names = sorted(
        ENCODINGS.names(), key=lambda name: name != "none"
    )  # none first: the baseline
    if args.encodings:
        names = [name for name in names if name == "none" or name in args.encodings]
    below, refused, failed = [], [], []
    none_rate = None
    for encoding in names:
        try:
            torch.manual_seed(args.seed)
            model = posbench_model(encoding)
        except ConfigError as err:
            refused.append(encoding)
            print(
                ROW.format(encoding, "refused", *["-"] * 7) + f"  {first_line(err)}",
                flush=True,
            )
            continue
        try:
            trainers = {
                "posbench": Trainer(
                    model, model.logits, images, targets, args.lr, autocast
                )
            }
            if TimmViT is not None and encoding in TIMM_POSITION:
                torch.manual_seed(args.seed)
                peer = timm_model(encoding)
                trainers["timm"] = Trainer(
                    peer, peer, images, targets, args.lr, autocast
                )
            rates = measure(trainers, args.warmup, args.repeats, args.steps)
        except Exception as err:  # noqa: BLE001 -- an encoding still being written must not end the whole run
            failed.append(encoding)
            print(
                ROW.format(encoding, "FAILED", *["-"] * 7)
                + f"  {type(err).__name__}: {first_line(err)}",
                flush=True,
            )
            continue
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

        rate = statistics.median(rates["posbench"])
        none_rate = rate if encoding == "none" else none_rate
        first = [
            encoding,
            "explicit" if model.net.encoding.explicit_attention else "fused",
            f"{rate:.2f}",
            f"{rate / none_rate:.2f}x" if none_rate else "-",
        ]
        posbench_params = trainers["posbench"].params
        if "timm" not in trainers:
            print(ROW.format(*first, "-", "-", "-", posbench_params, "-"), flush=True)
            continue
        cells, slow = peer_columns(rates["posbench"], rates["timm"])
        if slow:
            below.append(encoding)
        row = ROW.format(*first, *cells, posbench_params, trainers["timm"].params)
        print(row + below_mark(slow), flush=True)

    print()
    if refused:
        print(f"refused on a ViT (ConfigError): {', '.join(refused)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    if TimmViT is not None:
        verdict = (
            f"below target: {', '.join(below)}"
            if below
            else "every compared encoding meets the target"
        )
        print(f"ratio target {RATIO_TARGET:.2f}x: {verdict}")
        print("notes:")
        for note in FOOTNOTES:
            print(f"  * {note.format(fused=use_fused_attn())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
