"""2D relative and convolutional encodings: rel_bias2d (Swin), rel2d (Shaw in 2D, BoTNet), alibi2d,
peg (CPVT) and convffn (SegFormer's Mix-FFN).

Expected values are computed here from the papers' formulas, by hand, or with an independent call
(``F.interpolate`` for Swin's table resampling, explicit loops for depthwise convolutions, timm's
BEiT relative-position index as an oracle); nothing is copied from a run of the code.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor

from posbench.encodings import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.alibi import alibi_slopes
from posbench.encodings.base import NO_POSITION, grid_coordinates
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.tasks import TASKS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "encoding"
NAMES = ["rel_bias2d", "rel2d", "alibi2d", "peg", "convffn"]
HEADS = 4


# ---- helpers ------------------------------------------------------------------------------------
def shape(grid: int = 4, prefix: int = 1, d_model: int = 32, heads: int = HEADS, layers: int = 2) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=False, grid=grid, prefix=prefix)


def yaml_config(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"), resolve=True)


def build(name: str, attn: AttentionShape | None = None, **options) -> PositionalEncoding:
    return ENCODINGS.build({**yaml_config(name), **options}, attn or shape())


def randomise(enc: torch.nn.Module, seed: int = 0) -> None:
    """N(0, 1) values for every parameter, so zero-initialised entries have teeth."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def token(r: int, c: int, side: int = 4, prefix: int = 1) -> int:
    """Index of patch (r, c) in raster order after the class token."""
    return prefix + r * side + c


def shifted(coords: Tensor, a: int, b: int, prefix: int = 1, move_prefix: bool = False) -> Tensor:
    """Every patch coordinate + (a, b); the class token's (-1, -1) too when ``move_prefix``."""
    out = coords.clone()
    start = 0 if move_prefix else prefix
    out[..., start:, 0] += a
    out[..., start:, 1] += b
    return out


def transposed(coords: Tensor, prefix: int = 1) -> Tensor:
    """(r, c) -> (c, r) for every patch: not a shift, so a 2D encoding must notice."""
    out = coords.clone()
    out[..., prefix:, :] = coords[..., prefix:, :].flip(-1)
    return out


def swapped(coords: Tensor, i: int = 1, j: int = 8) -> Tensor:
    """Tokens i and j exchange coordinates: not a shift, so a 2D logit term must notice."""
    out = coords.clone()
    out[..., [i, j], :] = coords[..., [j, i], :]
    return out


def conv3x3_by_hand(x: Tensor, side: int, weight: Tensor, bias: Tensor) -> Tensor:
    """Depthwise 3x3 cross-correlation with zero padding, written as loops over the grid:
    ``out[b, r*side + c, ch] = bias[ch] + sum_{u,v in 0..2} weight[ch, 0, u, v] x[b, (r+u-1)*side + (c+v-1), ch]``
    over the neighbours inside the grid. ``x``: ``[B, side*side, C]`` in raster order."""
    x, weight, bias = x.double(), weight.double(), bias.double()
    out = bias.expand(x.shape[0], side * side, -1).clone()
    for r in range(side):
        for c in range(side):
            for u in range(3):
                for v in range(3):
                    rr, cc = r + u - 1, c + v - 1
                    if 0 <= rr < side and 0 <= cc < side:
                        out[:, r * side + c] += weight[:, 0, u, v] * x[:, rr * side + cc]
    return out


def permute_patches(images: Tensor, perm: Tensor, patch: int) -> Tensor:
    """The image whose patch k (raster order) is patch ``perm[k]`` of ``images``."""
    batch, channels, size, _ = images.shape
    side = size // patch
    blocks = images.reshape(batch, channels, side, patch, side, patch).permute(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(batch, side * side, channels, patch, patch)[:, perm]
    blocks = blocks.reshape(batch, side, side, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return blocks.reshape(batch, channels, size, size)


def hook_logits(enc: PositionalEncoding, x: Tensor, pos: Tensor, proj: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """Attention logits of every layer through the hooks (as tests/test_encodings.py computes them):
    q k^T / sqrt(d) + bias + score, with ``between_blocks`` applied between layers."""
    batch, length, _ = x.shape
    h = enc.embed(x, pos)
    out = []
    for layer, (w_q, w_k) in enumerate(proj):
        q = (h @ w_q).view(batch, length, enc.shape.heads, -1).transpose(1, 2)
        k = (h @ w_k).view(batch, length, enc.shape.heads, -1).transpose(1, 2)
        score = enc.score(q, k, pos, pos, layer)
        q, k = enc.rotate(q, k, pos, pos, layer)
        logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        for term in (enc.bias(pos, pos, layer), score):
            if term is not None:
                logits = logits + term
        out.append(logits)
        h = enc.between_blocks(h, pos, layer)
    return out


# ---- every encoding of this file ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_class_attributes_and_yaml(name):
    """2D, described, in a known family; the YAML's keys are exactly the __init__ options with defaults."""
    cls = ENCODINGS.get(name)
    assert cls.axes == 2 and cls.description.strip() and cls.shift_invariant is True
    assert cls.family in {"bias", "relative", "conditional"}
    cfg = yaml_config(name)
    assert cfg["name"] == name
    params = inspect.signature(cls.__init__).parameters
    options = {key: p.default for key, p in params.items() if p.default is not p.empty}
    assert set(cfg) - {"name"} == set(options)
    for key, value in cfg.items():
        if key != "name":
            assert value == (list(options[key]) if isinstance(options[key], tuple) else options[key]), key
    assert type(ENCODINGS.build(cfg, shape())) is cls


@pytest.mark.parametrize("prefix", [0, 1])
@pytest.mark.parametrize("name", NAMES)
def test_logits_shift_invariant_in_2d(name, prefix):
    """Logits through the hooks are unchanged when every patch coordinate moves by (a, b) (with or
    without the class token's coordinates); exchanging two patches' coordinates is noticed by the
    logit terms."""
    torch.manual_seed(0)
    attn = shape(prefix=prefix)
    enc = build(name, attn)
    randomise(enc, seed=1)
    enc.eval()
    coords = grid_coordinates(4, prefix)
    x = torch.randn(2, coords.shape[1], 32)
    proj = [(torch.randn(32, 32) / 32**0.5, torch.randn(32, 32) / 32**0.5) for _ in range(attn.layers)]
    with torch.no_grad():
        base = hook_logits(enc, x, coords, proj)
        for a, b, move in [(3, 5, False), (-2, 7, False), (4, 4, True)]:
            moved = hook_logits(enc, x, shifted(coords, a, b, prefix, move_prefix=move), proj)
            for one, two in zip(base, moved):
                torch.testing.assert_close(one, two, atol=1e-4, rtol=0)
        if name not in ("peg", "convffn"):  # these never read coordinates, only the grid's layout
            other = hook_logits(enc, x, swapped(coords), proj)
            assert max((one - two).abs().max().item() for one, two in zip(base, other)) > 1e-3


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("name", NAMES)
def test_inside_a_vit_at_two_sizes(name, pool):
    """Each encoding runs in a real ViT trained on 16 px images at 16 and 24 px (4x4 and 6x6 grids)."""
    torch.manual_seed(0)
    model = MODELS.build({"name": "vit", "pool": pool}, 4, {"name": name}, channels=1, image_size=16)
    assert type(model.encoding) is ENCODINGS.get(name) and model.encoding.shape.grid == 4
    for size in (16, 24):
        model.encoding.check_grid(size // 4)
        logits = model.logits(torch.randn(2, 1, size, size))
        assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    for key, p in model.encoding.named_parameters():
        if pool == "cls" and key.startswith("convs.1."):
            # the last block's Mix-FFN acts on patch tokens only, and only the class token is read
            assert p.grad is None or p.grad.abs().sum() == 0
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {key}"


@pytest.mark.parametrize("name", NAMES)
def test_refused_on_sequences(name):
    """A 2D encoding needs an image grid: a sequence model refuses it with one line."""
    with pytest.raises(ConfigError, match="2D encoding"):
        MODELS.build({"name": "encoder"}, 8, {"name": name}, eos=None)


# ---- 1. rel_bias2d --------------------------------------------------------------------------------
def test_rel_bias2d_table_entries_hand_picked():
    """Swin eq. 4: B[h, i, j] = B_hat[h, r_i - r_j + G - 1, c_i - c_j + G - 1], one table per layer."""
    enc = build("rel_bias2d")
    randomise(enc)
    coords = grid_coordinates(4, 1)
    assert enc.table.shape == (2, HEADS, 7, 7)
    # (query patch, key patch) -> (row, col) of the table: offset (query - key) + 3
    cases = [((0, 0), (0, 0), (3, 3)), ((3, 3), (0, 0), (6, 6)), ((0, 0), (3, 3), (0, 0)),
             ((1, 2), (3, 0), (1, 5)), ((2, 0), (0, 1), (5, 2)), ((3, 1), (3, 2), (3, 2))]
    for layer in (0, 1):
        bias = enc.bias(coords, coords, layer)
        assert bias.shape == (1, HEADS, 17, 17)
        for q, k, (row, col) in cases:
            torch.testing.assert_close(bias[0, :, token(*q), token(*k)], enc.table[layer, :, row, col])
    assert not torch.allclose(enc.bias(coords, coords, 0), enc.bias(coords, coords, 1))


def test_rel_bias2d_every_pair_and_class_token():
    """All 17 x 17 pairs: patches by offset; the class token's three per-head biases (BEiT):
    cls -> patch, patch -> cls, cls -> cls."""
    enc = build("rel_bias2d")
    randomise(enc, seed=3)
    coords = grid_coordinates(4, 1)
    cells = [(r, c) for r in range(4) for c in range(4)]
    for layer in (0, 1):
        bias = enc.bias(coords, coords, layer)[0]
        cls = enc.cls[layer]
        torch.testing.assert_close(bias[:, 0, 0], cls[:, 2])
        for j, (r, c) in enumerate(cells, start=1):
            torch.testing.assert_close(bias[:, 0, j], cls[:, 0])
            torch.testing.assert_close(bias[:, j, 0], cls[:, 1])
            for jj, (rr, cc) in enumerate(cells, start=1):
                torch.testing.assert_close(bias[:, j, jj], enc.table[layer, :, r - rr + 3, c - cc + 3])


def test_rel_bias2d_matches_timm_beit_index():
    """timm's BEiT gen_relative_position_index (flat table of (2G-1)^2 offsets + 3 class-token entries)
    gives the same bias once posbench's table is flattened in its (row offset, col offset) order."""
    beit = pytest.importorskip("timm.models.beit")
    enc = build("rel_bias2d")
    randomise(enc, seed=5)
    index = beit.gen_relative_position_index((4, 4))
    coords = grid_coordinates(4, 1)
    for layer in (0, 1):
        flat = torch.cat((enc.table[layer].permute(1, 2, 0).reshape(-1, HEADS), enc.cls[layer].T))
        theirs = flat[index.reshape(-1)].reshape(17, 17, HEADS).permute(2, 0, 1)
        torch.testing.assert_close(enc.bias(coords, coords, layer)[0], theirs)


def test_rel_bias2d_without_class_token_and_batched_positions():
    """pool=mean (prefix 0): no class-token parameters; per-example coordinates give per-example biases."""
    enc = build("rel_bias2d", shape(prefix=0))
    randomise(enc)
    assert enc.cls is None
    coords = torch.cat((grid_coordinates(4, 0), transposed(grid_coordinates(4, 0), prefix=0)))
    bias = enc.bias(coords, coords, 1)
    assert bias.shape == (2, HEADS, 16, 16)
    # patch 1 = (0, 1), patch 4 = (1, 0): offset (-1, 1) in row 0, (1, -1) in the transposed row
    torch.testing.assert_close(bias[0, :, 1, 4], enc.table[1, :, 2, 4])
    torch.testing.assert_close(bias[1, :, 1, 4], enc.table[1, :, 4, 2])


@pytest.mark.parametrize("side", [6, 2])
def test_rel_bias2d_bicubic_resampling(side):
    """Another grid: each head's 7x7 table resampled to (2S-1)x(2S-1) as an image, by an independent
    F.interpolate call (bicubic, align_corners=False, antialias=True: what posbench.encodings.resize
    does, as timm's resample_abs_pos_embed; note that PyTorch's antialiased bicubic uses PIL's cubic
    kernel, a = -0.5, also when enlarging, where timm's Swin table resize uses a = -0.75 without
    antialiasing); the class-token entries are kept."""
    antialias = True
    enc = build("rel_bias2d")
    randomise(enc, seed=2)
    size = 2 * side - 1
    coords = grid_coordinates(side, 1)
    cells = [(r, c) for r in range(side) for c in range(side)]
    for layer in (0, 1):
        expected = F.interpolate(enc.table[layer][None].detach(), size=(size, size), mode="bicubic",
                                 align_corners=False, antialias=antialias)[0]
        bias = enc.bias(coords, coords, layer)[0].detach()
        assert bias.shape == (HEADS, 1 + side * side, 1 + side * side)
        for j, (r, c) in enumerate(cells, start=1):
            for jj, (rr, cc) in enumerate(cells, start=1):
                torch.testing.assert_close(bias[:, j, jj], expected[:, r - rr + side - 1, c - cc + side - 1])
        torch.testing.assert_close(bias[:, 0, 0], enc.cls[layer, :, 2].detach())
        torch.testing.assert_close(bias[:, 0, 1], enc.cls[layer, :, 0].detach())
        torch.testing.assert_close(bias[:, 1, 0], enc.cls[layer, :, 1].detach())
    # the table really was resampled: offset (0, -1) on the 6x6 grid differs from the trained entry
    if side == 6:
        assert not torch.allclose(bias[:, token(2, 2, 6), token(2, 3, 6)], enc.table[1, :, 3, 2].detach())


def test_rel_bias2d_resize_refuse():
    """resize=refuse: check_grid accepts the training grid and refuses any other with ConfigError."""
    enc = build("rel_bias2d", resize="refuse")
    enc.check_grid(4)
    for side in (2, 6):
        with pytest.raises(ConfigError, match="rel_bias2d.*resize=refuse"):
            enc.check_grid(side)
    build("rel_bias2d").check_grid(6)  # bicubic: fine
    model = MODELS.build({"name": "vit"}, 4, {"name": "rel_bias2d", "resize": "refuse"}, channels=1, image_size=16)
    with pytest.raises(ConfigError, match="6x6"):
        model.check_task(TASKS.build({"name": "quadrant", "eval_sizes": [16, 24]}))


def test_rel_bias2d_initialisation():
    """Truncated normal within +-2 std (std 2.0 by default, Swin's 0.02 on request); init_std=0 gives
    zeros (BEiT)."""
    torch.manual_seed(0)
    enc = build("rel_bias2d", shape(grid=8))
    assert enc.table.abs().max() <= 4.0 and 1.0 < enc.table.std() < 2.0  # trunc. at 2 std: std 0.88 * 2
    swin = build("rel_bias2d", shape(grid=8), init_std=0.02)
    assert swin.table.abs().max() <= 0.04 and 0.01 < swin.table.std() < 0.03
    zero = build("rel_bias2d", init_std=0.0)
    assert zero.table.abs().sum() == 0 and zero.cls.abs().sum() == 0


# ---- 2. rel2d ------------------------------------------------------------------------------------
def fill_rel2d(enc) -> None:
    """Row table vector o = (o, 0, 0, 0), column table vector o = (0, 10 o, 0, 0) in every layer."""
    rows = enc.w_row.shape[1]
    with torch.no_grad():
        enc.w_row.zero_()
        enc.w_col.zero_()
        enc.w_row[:, :, 0] = torch.arange(rows, dtype=torch.float32)
        enc.w_col[:, :, 1] = 10 * torch.arange(rows, dtype=torch.float32)


def test_rel2d_score_hand_case():
    """q_i . (r^row[r_j - r_i + k] + r^col[c_j - c_i + k]) / sqrt(d_head), d_head = 4, k = G - 1 = 3.
    With q = (1, 1, 0, 0): score = ((dr + 3) + 10 (dc + 3)) / 2 for key-minus-query offsets (dr, dc)."""
    enc = build("rel2d", shape(d_model=8, heads=2))
    assert enc.max_offset == 3 and enc.w_row.shape == (2, 7, 4)
    fill_rel2d(enc)
    coords = grid_coordinates(4, 1)
    q = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(1, 2, 17, 4)
    k = torch.randn(1, 2, 17, 4)  # the score never reads keys
    score = enc.score(q, k, coords, coords, 0)
    assert score.shape == (1, 2, 17, 17)
    cases = [((1, 2), (3, 0), (5 + 10 * 1) / 2),  # dr = 2, dc = -2
             ((0, 0), (0, 0), (3 + 30) / 2), ((3, 3), (0, 0), (0 + 0) / 2), ((0, 3), (3, 0), (6 + 0) / 2),
             ((2, 2), (1, 3), (2 + 40) / 2)]
    for qp, kp, value in cases:
        assert score[0, 0, token(*qp), token(*kp)].item() == pytest.approx(value)
        assert score[0, 1, token(*qp), token(*kp)].item() == pytest.approx(value)


def test_rel2d_score_random_against_formula():
    """Random q and tables, every pair, both layers: the formula written out in float64."""
    torch.manual_seed(0)
    enc = build("rel2d")
    randomise(enc)
    coords = grid_coordinates(4, 1)
    q = torch.randn(2, HEADS, 17, 8)
    cells = [(r, c) for r in range(4) for c in range(4)]
    for layer in (0, 1):
        score = enc.score(q, q, coords, coords, layer).double()
        row, col = enc.w_row[layer].double().detach(), enc.w_col[layer].double().detach()
        for i, (ri, ci) in enumerate(cells, start=1):
            for j, (rj, cj) in enumerate(cells, start=1):
                expected = q[:, :, i].double() @ (row[rj - ri + 3] + col[cj - ci + 3]) / math.sqrt(8)
                torch.testing.assert_close(score[:, :, i, j], expected, atol=1e-5, rtol=1e-5)


def test_rel2d_clipping():
    """Offsets beyond +-max_offset share the vector of +-max_offset, on the training grid and beyond."""
    enc = build("rel2d", shape(d_model=8, heads=2), max_offset=1)
    assert enc.w_row.shape == (2, 3, 4)
    fill_rel2d(enc)
    coords = grid_coordinates(4, 1)
    q = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(1, 2, 17, 4)
    score = enc.score(q, q, coords, coords, 1)[0, 0]
    # (1, 2) -> (3, 0): offsets (2, -2) clip to (1, -1): ((1 + 1) + 10 (-1 + 1)) / 2 = 1
    assert score[token(1, 2), token(3, 0)].item() == pytest.approx(1.0)
    torch.testing.assert_close(score[token(1, 2), token(3, 0)], score[token(1, 2), token(2, 1)])
    torch.testing.assert_close(score[token(0, 0), token(3, 3)], score[token(0, 0), token(1, 1)])
    assert score[token(0, 0), token(3, 3)].item() == pytest.approx((2 + 20) / 2)
    # default max_offset (3) on a 6x6 grid: offset 5 is clipped to 3
    enc = build("rel2d", shape(d_model=8, heads=2))
    fill_rel2d(enc)
    coords = grid_coordinates(6, 1)
    q = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(1, 2, 37, 4)
    score = enc.score(q, q, coords, coords, 0)[0, 1]
    assert score[token(0, 0, 6), token(5, 5, 6)].item() == pytest.approx((6 + 60) / 2)
    # (5, 0) -> (0, 4): offsets (-5, 4) clip to (-3, 3): ((-3 + 3) + 10 (3 + 3)) / 2 = 30
    assert score[token(5, 0, 6), token(0, 4, 6)].item() == pytest.approx(30.0)
    assert score[token(0, 0, 6), token(5, 5, 6)] == score[token(0, 0, 6), token(3, 3, 6)]


def test_rel2d_shift_invariant_and_class_token_zero():
    """The term depends on coordinate differences only; the class token's row and column are zero."""
    torch.manual_seed(0)
    enc = build("rel2d")
    randomise(enc)
    coords = grid_coordinates(4, 1)
    q, k = torch.randn(2, HEADS, 17, 8), torch.randn(2, HEADS, 17, 8)
    score = enc.score(q, k, coords, coords, 0)
    for moved in (shifted(coords, 2, -3), shifted(coords, 9, 9, move_prefix=True)):
        torch.testing.assert_close(enc.score(q, k, moved, moved, 0), score)
    assert not torch.allclose(enc.score(q, k, transposed(coords), transposed(coords), 0), score, atol=1e-3)
    assert torch.all(score[:, :, 0, :] == 0) and torch.all(score[:, :, :, 0] == 0)
    assert score[:, :, 1:, 1:].abs().min() > 0
    assert enc.explicit_attention  # a score term: attention takes the explicit path


# ---- 3. alibi2d ----------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", ["euclidean", "manhattan"])
def test_alibi2d_hand_checked(distance):
    """-m_h * dist((r_i, c_i), (r_j, c_j)); slopes 1/4, 1/16, 1/64, 1/256 for 4 heads (= alibi_slopes)."""
    enc = build("alibi2d", distance=distance)
    assert list(enc.parameters()) == []
    slopes = [2**-2, 2**-4, 2**-6, 2**-8]
    assert alibi_slopes(HEADS) == pytest.approx(slopes)
    coords = grid_coordinates(4, 1)
    bias = enc.bias(coords, coords, 0)
    assert bias.shape == (1, HEADS, 17, 17)
    torch.testing.assert_close(enc.bias(coords, coords, 1), bias)  # one set of slopes for all layers
    euclidean = {((0, 0), (3, 3)): math.sqrt(18), ((1, 2), (3, 0)): math.sqrt(8), ((2, 1), (2, 1)): 0.0,
                 ((0, 1), (3, 1)): 3.0, ((3, 0), (1, 1)): math.sqrt(5)}
    manhattan = {((0, 0), (3, 3)): 6.0, ((1, 2), (3, 0)): 4.0, ((2, 1), (2, 1)): 0.0,
                 ((0, 1), (3, 1)): 3.0, ((3, 0), (1, 1)): 3.0}
    for (qp, kp), dist in (euclidean if distance == "euclidean" else manhattan).items():
        for h in range(HEADS):
            assert bias[0, h, token(*qp), token(*kp)].item() == pytest.approx(-slopes[h] * dist, abs=1e-6)
            assert bias[0, h, token(*kp), token(*qp)].item() == pytest.approx(-slopes[h] * dist, abs=1e-6)
    # class token: zero bias to and from it
    assert torch.all(bias[:, :, 0, :] == 0) and torch.all(bias[:, :, :, 0] == 0)


def test_alibi2d_other_grid_and_non_power_of_two_heads():
    """Any grid (6x6) and any head count (6): the formula over every pair."""
    enc = build("alibi2d", shape(d_model=24, heads=6))
    coords = grid_coordinates(6, 1)
    bias = enc.bias(coords, coords, 0)[0]
    slopes = alibi_slopes(6)
    cells = [(r, c) for r in range(6) for c in range(6)]
    for h in (0, 5):
        for i, (ri, ci) in enumerate(cells, start=1):
            for j, (rj, cj) in enumerate(cells, start=1):
                expected = -slopes[h] * math.hypot(ri - rj, ci - cj)
                assert bias[h, i, j].item() == pytest.approx(expected, abs=1e-5)


# ---- 4. peg --------------------------------------------------------------------------------------
def test_peg_adds_depthwise_conv_and_keeps_class_token():
    """CPVT: x + DWConv3x3(x) on the 4x4 patch grid after block 0; the class token is unchanged,
    and block 1 (not chosen) is the identity."""
    torch.manual_seed(0)
    enc = build("peg")
    assert list(enc.convs) == ["0"]
    conv = enc.convs["0"]
    assert conv.groups == 32 and conv.weight.shape == (32, 1, 3, 3) and conv.bias is not None
    x = torch.randn(2, 17, 32)
    coords = grid_coordinates(4, 1)
    out = enc.between_blocks(x, coords, 0)
    assert torch.equal(out[:, 0], x[:, 0])
    expected = x[:, 1:].double() + conv3x3_by_hand(x[:, 1:], 4, conv.weight.detach(), conv.bias.detach())
    torch.testing.assert_close(out[:, 1:].double(), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(enc.between_blocks(x, coords, 1), x)


def test_peg_only_chosen_layers_act():
    torch.manual_seed(0)
    x = torch.randn(1, 17, 32)
    coords = grid_coordinates(4, 1)
    enc = build("peg", layers=[1])
    assert torch.equal(enc.between_blocks(x, coords, 0), x)
    assert not torch.allclose(enc.between_blocks(x, coords, 1), x)
    enc = build("peg", shape(layers=3), layers=[0, 2])
    assert list(enc.convs) == ["0", "2"]
    assert torch.equal(enc.between_blocks(x, coords, 1), x)
    for layer in (0, 2):
        assert not torch.allclose(enc.between_blocks(x, coords, layer), x)
    with pytest.raises(ConfigError, match="block 2"):
        build("peg", layers=[2])  # a 2-block model has blocks 0 and 1
    for bad in ([], [-1]):
        with pytest.raises(ConfigError, match="encoding.layers"):
            build("peg", layers=bad)


@pytest.mark.parametrize("prefix", [0, 1])
def test_peg_on_another_grid(prefix):
    """The convolution follows the grid of the tokens it is given: 6x6 (trained on 4x4)."""
    torch.manual_seed(0)
    enc = build("peg", shape(prefix=prefix))
    x = torch.randn(2, prefix + 36, 32)
    out = enc.between_blocks(x, grid_coordinates(6, prefix), 0)
    conv = enc.convs["0"]
    expected = x[:, prefix:].double() + conv3x3_by_hand(x[:, prefix:], 6, conv.weight.detach(), conv.bias.detach())
    torch.testing.assert_close(out[:, prefix:].double(), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(out[:, :prefix], x[:, :prefix])


def vit_outputs(encoding: str, images: Tensor, perm: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A float64 ViT (pool=mean, 16 px, 4 px patches): pooled logits and per-token outputs for
    ``images`` and for the same images with their patches permuted by ``perm``."""
    torch.manual_seed(0)
    model = MODELS.build({"name": "vit", "pool": "mean"}, 4, {"name": encoding}, channels=1, image_size=16).double()
    model.eval()
    moved = permute_patches(images, perm, 4)
    with torch.no_grad():
        outs = []
        for image in (images, moved):
            x, coords = model.tokens(image)
            outs.append(model.net(x, coords=coords))
        return model.logits(images), model.logits(moved), outs[0], outs[1]


def test_permute_patches_helper():
    """permute_patches moves whole 4x4 blocks: patch k of the result is patch perm[k] of the input."""
    images = torch.arange(256, dtype=torch.float64).reshape(1, 1, 16, 16)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    moved = permute_patches(images, perm, 4)
    for k in range(16):
        r, c = divmod(k, 4)
        pr, pc = divmod(perm[k].item(), 4)
        block = images[0, 0, 4 * pr : 4 * pr + 4, 4 * pc : 4 * pc + 4]
        assert torch.equal(moved[0, 0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4], block)


def test_vit_without_encoding_is_permutation_invariant():
    """encoding=none, pool=mean: the ViT is a function of the set of patches (per-token outputs are
    permuted with the patches, the pooled logits do not change)."""
    images = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(perm, torch.arange(16))
    logits, moved_logits, tokens, moved_tokens = vit_outputs("none", images, perm)
    torch.testing.assert_close(moved_logits, logits, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(moved_tokens, tokens[:, perm], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", ["peg", "convffn"])
def test_conv_encodings_depend_on_patch_order(name):
    """With a PEG (or Mix-FFN) the same permutation changes the outputs beyond permuting them."""
    images = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    logits, moved_logits, tokens, moved_tokens = vit_outputs(name, images, perm)
    assert (moved_logits - logits).abs().max() > 1e-4
    assert (moved_tokens - tokens[:, perm]).abs().max() > 1e-3


# ---- 5. convffn ----------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [4, 6])
def test_convffn_hook_is_depthwise_conv_without_residual(side):
    """SegFormer eq. 3: the hidden activations (4 * 32 = 128 channels) on the grid are replaced by a
    3x3 depthwise convolution (no residual); the class token's pass through unchanged; one conv per layer."""
    torch.manual_seed(0)
    enc = build("convffn")
    assert len(enc.convs) == 2 and enc.convs[0].weight.shape == (128, 1, 3, 3)
    h = torch.randn(2, 1 + side * side, 128)
    coords = grid_coordinates(side, 1)
    for layer in (0, 1):
        conv = enc.convs[layer]
        out = enc.ffn(h, coords, layer)
        assert out.shape == h.shape
        assert torch.equal(out[:, 0], h[:, 0])
        expected = conv3x3_by_hand(h[:, 1:], side, conv.weight.detach(), conv.bias.detach())
        torch.testing.assert_close(out[:, 1:].double(), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(enc.ffn(h, coords, 0), enc.ffn(h, coords, 1))


def test_convffn_without_class_token_and_initialisation():
    """pool=mean (prefix 0): every token is on the grid. SegFormer's init: N(0, 2 / 9), zero bias."""
    torch.manual_seed(0)
    enc = build("convffn", shape(prefix=0, d_model=64))
    weights = torch.cat([conv.weight.flatten() for conv in enc.convs])
    assert abs(weights.std().item() - math.sqrt(2 / 9)) < 0.02
    assert all(torch.all(conv.bias == 0) for conv in enc.convs)
    h = torch.randn(1, 16, 256)
    conv = enc.convs[1]
    expected = conv3x3_by_hand(h, 4, conv.weight.detach(), conv.bias.detach())
    torch.testing.assert_close(enc.ffn(h, grid_coordinates(4, 0), 1).double(), expected, atol=1e-5, rtol=1e-5)


def test_no_position_marker():
    """The class token's coordinates are (-1, -1), the marker every 2D encoding here documents."""
    coords = grid_coordinates(4, 1)
    assert coords[0, 0].tolist() == [NO_POSITION, NO_POSITION] and coords[0, 1:].min() == 0
