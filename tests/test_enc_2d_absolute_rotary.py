"""Tests for the 2D absolute and rotary encodings: sincos2d, learned2d, fourier, rope2d_axial and
rope2d_mixed (posbench/encodings/{sincos2d,learned2d,fourier,rope2d_axial,rope2d_mixed}.py).

Expected values are written out here from each paper's formula (``math`` in float64, or by hand);
bicubic resampling is checked against an independent float64 implementation of the antialiased
cubic filter (Keys' kernel with a = -0.5, as PIL and torch's ``antialias=True`` use). timm (a test-only
dependency) serves as an oracle for sincos2d and both 2D RoPEs, up to the feature permutations
each module documents.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import Tensor

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.encodings.base import NO_POSITION, grid_coordinates
from posbench.encodings.resize import resample
from posbench.errors import ConfigError
from posbench.models import MODELS

NAMES_2D = ["sincos2d", "learned2d", "fourier", "rope2d_axial", "rope2d_mixed"]
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "encoding"


def shape(d_model: int = 32, heads: int = 4, layers: int = 2, grid: int = 4, prefix: int = 1) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=False, grid=grid, prefix=prefix)


def build(name: str, attn: AttentionShape | None = None, **options):
    return ENCODINGS.build({"name": name, **options}, attn or shape())


def token(r: int, c: int, side: int, prefix: int = 1) -> int:
    """Index of patch (r, c) in the raster order of ``grid_coordinates``."""
    return prefix + r * side + c


def to_interleaved(d: int) -> list[int]:
    """Our half-split layout -> adjacent pairs: pair j on features (j, j + d/2) moves to (2j, 2j + 1)."""
    return [f for j in range(d // 2) for f in (j, j + d // 2)]


def logits(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1)


def shifted(pos: Tensor, a: int, b: int, prefix: int = 1) -> Tensor:
    """Every patch coordinate moved by (a, b); the class token stays at NO_POSITION."""
    out = pos.clone()
    out[:, prefix:] += torch.tensor([a, b])
    return out


# ---- sincos2d -------------------------------------------------------------------------------------
def test_sincos2d_hand_computed():
    """d_model 8, base 10000: 2 frequencies per axis, 1 and 10000^(-4/8) = 1/100.
    PE(r, c) = [sin r, cos r, sin(r/100), cos(r/100), sin c, cos c, sin(c/100), cos(c/100)]."""
    enc = build("sincos2d", shape(d_model=8, heads=2))
    pos = grid_coordinates(4, prefix=1)
    x = torch.randn(2, 17, 8)
    out = enc.embed(x, pos)
    for r, c in [(1, 2), (3, 0), (0, 0)]:
        expected = [math.sin(r), math.cos(r), math.sin(r / 100), math.cos(r / 100),
                    math.sin(c), math.cos(c), math.sin(c / 100), math.cos(c / 100)]
        got = out[:, token(r, c, 4)] - x[:, token(r, c, 4)]
        torch.testing.assert_close(got, torch.tensor(expected).expand(2, 8), atol=1e-6, rtol=0)
    assert torch.equal(out[:, 0], x[:, 0]), "the class token gets no position (zero code, as MAE)"


@pytest.mark.parametrize("side", [4, 7])
def test_sincos2d_closed_form_at_any_grid(side):
    """Vaswani's formula per axis in float64, base 1000, every patch of a grid of any size."""
    d, base = 32, 1000.0
    enc = build("sincos2d", base=base)
    pos = grid_coordinates(side, prefix=1)
    out = enc.embed(torch.zeros(1, 1 + side * side, d), pos)
    for r in range(side):
        for c in range(side):
            expected = []
            for p in (r, c):
                for i in range(d // 4):
                    angle = p / base ** (4 * i / d)
                    expected += [math.sin(angle), math.cos(angle)]
            got = out[0, token(r, c, side)].double()
            torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0)
    assert torch.equal(out[0, 0], torch.zeros(d))


@pytest.mark.parametrize("side", [4, 6])
def test_sincos2d_matches_timm_up_to_permutation(side):
    """timm's build_sincos2d_pos_embed lays out [sin(row) | sin(col) | cos(row) | cos(col)] (n = d/4
    frequencies each); ours [sin r0, cos r0, sin r1, ... | sin c0, cos c0, ...]: channel
    s * 2n + axis * n + i of timm's is channel axis * 2n + 2i + s of ours."""
    pytest.importorskip("timm")
    from timm.layers.pos_embed_sincos import build_sincos2d_pos_embed

    d = 32
    n = d // 4
    theirs = build_sincos2d_pos_embed([side, side], dim=d, temperature=10000.0)
    ours = build("sincos2d").embed(torch.zeros(1, 1 + side * side, d), grid_coordinates(side, 1))[0, 1:]
    perm = [axis * 2 * n + 2 * i + s for s in range(2) for axis in range(2) for i in range(n)]
    torch.testing.assert_close(ours[:, perm], theirs, atol=1e-5, rtol=0)


# ---- learned2d ------------------------------------------------------------------------------------
def set_tables(enc, width: int) -> None:
    """rows[r, j] = 10 r + j, cols[c, j] = 100 c - j, prefix_code[0, j] = -1000 - j."""
    with torch.no_grad():
        j = torch.arange(width, dtype=torch.float32)
        enc.rows.copy_(10 * torch.arange(4.0)[:, None] + j)
        enc.cols.copy_(100 * torch.arange(4.0)[:, None] - j)
        enc.prefix_code.copy_(-1000 - torch.arange(float(enc.shape.d_model))[None])


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_learned2d_hand_checked(combine):
    enc = build("learned2d", shape(d_model=4, heads=1), combine=combine)
    width = 4 if combine == "sum" else 2
    assert enc.rows.shape == enc.cols.shape == (4, width)
    set_tables(enc, width)
    x = torch.randn(1, 17, 4)
    out = enc.embed(x, grid_coordinates(4, 1)) - x
    # patch (2, 3): row vector [20, 21, 22, 23] (or [20, 21]), column vector [300, 299, 298, 297] (or [300, 299])
    expected = [320.0, 320.0, 320.0, 320.0] if combine == "sum" else [20.0, 21.0, 300.0, 299.0]
    torch.testing.assert_close(out[0, token(2, 3, 4)], torch.tensor(expected))
    # patch (1, 0): row vector [10, 11, 12, 13] (or [10, 11]), column vector [0, -1, -2, -3] (or [0, -1])
    expected = [10.0, 10.0, 10.0, 10.0] if combine == "sum" else [10.0, 11.0, 0.0, -1.0]
    torch.testing.assert_close(out[0, token(1, 0, 4)], torch.tensor(expected))
    torch.testing.assert_close(out[0, 0], torch.tensor([-1000.0, -1001.0, -1002.0, -1003.0]))  # class token


def test_learned2d_class_token_vector_is_trained():
    enc = build("learned2d")
    assert any(p is enc.prefix_code for p in enc.parameters())
    assert enc.prefix_code.shape == (1, 32)
    x = torch.randn(2, 17, 32)
    out = enc.embed(x, grid_coordinates(4, 1))
    torch.testing.assert_close(out[:, 0], x[:, 0] + enc.prefix_code[0])
    (out[:, 0] ** 2).sum().backward()
    assert enc.prefix_code.grad.abs().sum() > 0
    assert enc.rows.grad is None or enc.rows.grad.abs().sum() == 0, "the class token must not read a row"
    assert build("learned2d", shape(prefix=0)).prefix_code is None


def cubic(x: float, a: float = -0.5) -> float:
    """Keys' cubic convolution kernel (a = -0.5: the antialiased filter of PIL and torch)."""
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def resample_reference(table: list[list[float]], size: int) -> list[list[float]]:
    """Antialiased cubic resampling of ``table [n][w]`` along n, in float64: output i is centred at
    (i + 0.5) n / size, its filter is stretched by max(1, n / size) and its taps (inside the table)
    renormalised to sum to one."""
    n = len(table)
    scale = n / size
    stretch = max(scale, 1.0)
    out = []
    for i in range(size):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - 2 * stretch + 0.5), 0), min(int(centre + 2 * stretch + 0.5), n)
        weights = [cubic((j - centre + 0.5) / stretch) for j in range(lo, hi)]
        total = sum(weights)
        out.append([sum(w * table[j][f] for w, j in zip(weights, range(lo, hi))) / total for f in range(len(table[0]))])
    return out


@pytest.mark.parametrize("side", [6, 3, 8])
def test_learned2d_bicubic_resamples_each_axis(side):
    torch.manual_seed(0)
    enc = build("learned2d", combine="concat")
    rows, cols = enc.tables(side)
    for table, got in ((enc.rows, rows), (enc.cols, cols)):
        expected = torch.tensor(resample_reference(table.tolist(), side), dtype=torch.float64)
        torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=0)
        # the same, as torch's interpolate on a [1, width, 1, n] view of the table
        view = table.detach().T[None, :, None, :]
        torch_out = F.interpolate(view, size=(1, side), mode="bicubic", align_corners=False, antialias=True)[0, :, 0].T
        torch.testing.assert_close(got, torch_out, atol=1e-6, rtol=0)
    # the embedding on that grid reads the resampled tables
    x = torch.zeros(1, 1 + side * side, 32)
    out = enc.embed(x, grid_coordinates(side, 1))
    r, c = side - 1, side // 2
    torch.testing.assert_close(out[0, token(r, c, side)], torch.cat((rows[r], cols[c])))


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_learned2d_axis_resampling_equals_resampling_the_full_table(combine):
    """Bicubic is separable with weights summing to one: resampling R and C along their axes equals
    resampling the side x side table R[r] + C[c] (or [R[r]; C[c]]) as an image, as ``learned`` does."""
    torch.manual_seed(1)
    enc = build("learned2d", combine=combine)
    full = enc.embed(torch.zeros(1, 17, 32), grid_coordinates(4, 1))[0, 1:].T.reshape(32, 4, 4)
    for side in (6, 3):
        expected = resample(full, (side, side)).flatten(1).T
        got = enc.embed(torch.zeros(1, 1 + side * side, 32), grid_coordinates(side, 1))[0, 1:]
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_learned2d_refuse():
    enc = build("learned2d", resize="refuse")
    enc.check_grid(4)
    with pytest.raises(ConfigError, match=r"encoding=learned2d .*4x4 training grid.*resize=refuse.*6x6"):
        enc.check_grid(6)
    with pytest.raises(ConfigError):
        enc.embed(torch.zeros(1, 37, 32), grid_coordinates(6, 1))
    build("learned2d").check_grid(6)  # bicubic serves any grid


# ---- fourier --------------------------------------------------------------------------------------
def gelu(v: float) -> float:
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


def test_fourier_formula_hand_case():
    """Li et al. eqs. 2-3 with F = 4 (two frequencies), hidden width 3, coordinates (r, c) / 4."""
    enc = build("fourier", shape(d_model=8, heads=2), features=4, hidden=3)
    w = [[1.5, -2.0], [0.25, 3.0]]
    with torch.no_grad():
        enc.frequencies.copy_(torch.tensor(w))
    r, c = 3, 1
    x = (r / 4, c / 4)
    angles = [row[0] * x[0] + row[1] * x[1] for row in w]
    feats = [math.cos(a) / 2 for a in angles] + [math.sin(a) / 2 for a in angles]  # 1/sqrt(F) = 1/2
    got = enc.fourier_features(torch.tensor([[r, c]])).double()
    torch.testing.assert_close(got, torch.tensor([feats], dtype=torch.float64), atol=1e-6, rtol=0)
    w1, b1 = enc.mlp[0].weight.double().tolist(), enc.mlp[0].bias.double().tolist()
    w2, b2 = enc.mlp[2].weight.double().tolist(), enc.mlp[2].bias.double().tolist()
    hidden = [gelu(sum(w1[h][f] * feats[f] for f in range(4)) + b1[h]) for h in range(3)]
    expected = [sum(w2[o][h] * hidden[h] for h in range(3)) + b2[o] for o in range(8)]
    inp = torch.randn(1, 17, 8)
    out = enc.embed(inp, grid_coordinates(4, 1))
    got = (out - inp)[0, token(r, c, 4)].double()
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0)
    assert torch.equal(out[:, 0], inp[:, 0]), "the class token gets no position"


def test_fourier_initial_frequencies():
    """W_r ~ N(0, gamma^-2): standard deviation 1/gamma."""
    torch.manual_seed(0)
    enc = build("fourier", features=8192, gamma=0.5)
    assert enc.frequencies.shape == (4096, 2)
    assert enc.frequencies.std().item() == pytest.approx(2.0, rel=0.05)
    assert enc.frequencies.mean().abs().item() < 0.1


@pytest.mark.parametrize("learnable", [True, False])
def test_fourier_random_option_has_no_trainable_frequencies(learnable):
    """learnable=false: Tancik et al.'s fixed Gaussian features; only the MLP is trained."""
    enc = build("fourier", learnable=learnable)
    names = {name for name, _ in enc.named_parameters()}
    assert ("frequencies" in names) is learnable
    assert "frequencies" in enc.state_dict(), "the random draw must be saved with the model"
    before = enc.frequencies.detach().clone()
    out = enc.embed(torch.randn(2, 17, 32), grid_coordinates(4, 1))
    out.pow(2).sum().backward()
    assert enc.mlp[0].weight.grad.abs().sum() > 0
    if learnable:
        assert enc.frequencies.grad.abs().sum() > 0
    else:
        assert enc.frequencies.grad is None and not enc.frequencies.requires_grad
        torch.optim.SGD(enc.parameters(), lr=1.0).step()
        assert torch.equal(enc.frequencies, before)


def test_fourier_on_another_grid():
    """Any grid: shape [B, 1 + side^2, d]; a patch's code depends on its (row, col) only (coordinates
    are divided by the training side, not the current one)."""
    torch.manual_seed(0)
    enc = build("fourier")
    small = enc.embed(torch.zeros(2, 17, 32), grid_coordinates(4, 1))
    large = enc.embed(torch.zeros(2, 37, 32), grid_coordinates(6, 1))
    assert large.shape == (2, 37, 32) and torch.isfinite(large).all()
    for r, c in [(0, 0), (2, 3), (3, 1)]:
        torch.testing.assert_close(large[:, token(r, c, 6)], small[:, token(r, c, 4)])
    assert not torch.allclose(large[:, token(5, 5, 6)], large[:, token(3, 3, 6)])


# ---- 2D RoPE: shared checks -----------------------------------------------------------------------
def random_qk(attn: AttentionShape, side: int, batch: int = 2) -> tuple[Tensor, Tensor]:
    length = attn.prefix + side * side
    return torch.randn(batch, attn.heads, length, attn.head_dim), torch.randn(batch, attn.heads, length, attn.head_dim)


@pytest.mark.parametrize("name", ["rope2d_axial", "rope2d_mixed"])
def test_rope2d_shift_invariant_norm_preserving_class_token_untouched(name):
    torch.manual_seed(0)
    enc = build(name)
    q, k = random_qk(enc.shape, 5)
    pos = grid_coordinates(5, 1)
    for layer in range(enc.shape.layers):
        rq, rk = enc.rotate(q, k, pos, pos, layer)
        assert torch.equal(rq[:, :, 0], q[:, :, 0]) and torch.equal(rk[:, :, 0], k[:, :, 0]), "class token rotated"
        torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5, rtol=0)
        base = logits(rq, rk)
        for a, b in [(1, 0), (0, 3), (7, -2), (-4, -9), (100, 250)]:
            sq, sk = enc.rotate(q, k, shifted(pos, a, b), shifted(pos, a, b), layer)
            tolerance = 1e-4 * max(1.0, (abs(a) + abs(b)) / 10)  # float32 angles lose digits far out
            torch.testing.assert_close(logits(sq, sk)[..., 1:, 1:], base[..., 1:, 1:], atol=tolerance, rtol=0)
        # the unrotated class token sees the patches' absolute positions
        sq, sk = enc.rotate(q, k, shifted(pos, 2, 1), shifted(pos, 2, 1), layer)
        assert (logits(sq, sk)[..., 0, 1:] - base[..., 0, 1:]).abs().max() > 1e-3
    assert enc.shift_invariant is False, "with a class token the logits are not all shift invariant"
    assert build(name, shape(prefix=0)).shift_invariant is True
    assert type(enc).shift_invariant is True


@pytest.mark.parametrize("name", ["rope2d_axial", "rope2d_mixed"])
def test_rope2d_without_class_token_is_fully_shift_invariant(name):
    torch.manual_seed(0)
    enc = build(name, shape(prefix=0))
    q, k = random_qk(enc.shape, 4)
    pos = grid_coordinates(4, 0)
    base = logits(*enc.rotate(q, k, pos, pos, 1))
    moved = shifted(pos, 3, -5, prefix=0)
    torch.testing.assert_close(logits(*enc.rotate(q, k, moved, moved, 1)), base, atol=1e-4, rtol=0)
    assert not torch.allclose(base, logits(q, k), atol=1e-3), "no rotation at all"


# ---- rope2d_axial ---------------------------------------------------------------------------------
def test_rope2d_axial_hand_computed():
    """Head dim 8, base 100: theta = (1, 100^(-1/2) = 0.1); pairs (0,4), (1,5) rotate by r, r/10 and
    pairs (2,6), (3,7) by c, c/10."""
    enc = build("rope2d_axial", shape(d_model=8, heads=1))
    x = torch.arange(1.0, 9.0).view(1, 1, 1, 8).expand(1, 1, 17, 8)
    r, c = 2, 3
    q, _ = enc.rotate(x, x, grid_coordinates(4, 1), grid_coordinates(4, 1))
    angles = [r, r / 10, c, c / 10]
    expected = [0.0] * 8
    for j, a in enumerate(angles):
        x1, x2 = j + 1.0, j + 5.0
        expected[j] = x1 * math.cos(a) - x2 * math.sin(a)
        expected[j + 4] = x1 * math.sin(a) + x2 * math.cos(a)
    got = q[0, 0, token(r, c, 4)].double()
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(q[0, 0, token(0, 0, 4)], x[0, 0, 0])  # patch (0, 0): angle 0
    assert torch.equal(q[0, 0, 0], x[0, 0, 0])


@pytest.mark.parametrize("side", [4, 7])
def test_rope2d_axial_matches_timm(side):
    """timm's 2D rotary embedding with integer coordinates (in_pixels=False), the same base and
    'ij' indexing (row first): RotaryEmbedding(rotate_half=True) is our layout exactly; the default
    interleaved RotaryEmbeddingCat layout is ours permuted by ``to_interleaved``."""
    pytest.importorskip("timm")
    from timm.layers.pos_embed_sincos import (
        RotaryEmbedding,
        RotaryEmbeddingCat,
        apply_rot_embed,
        apply_rot_embed_cat,
    )

    torch.manual_seed(0)
    enc = build("rope2d_axial")
    d = enc.shape.head_dim
    q, k = random_qk(enc.shape, side)
    ours, _ = enc.rotate(q, k, grid_coordinates(side, 1), grid_coordinates(side, 1))
    patches = q[:, :, 1:]

    half = RotaryEmbedding(dim=d, temperature=100.0, in_pixels=False, rotate_half=True)
    sin, cos = half.get_embed([side, side])
    torch.testing.assert_close(ours[:, :, 1:], apply_rot_embed(patches, sin, cos, half=True), atol=1e-5, rtol=0)

    perm = to_interleaved(d)
    cat = RotaryEmbeddingCat(dim=d, temperature=100.0, in_pixels=False)
    theirs = apply_rot_embed_cat(patches[..., perm], cat.get_embed([side, side]))
    torch.testing.assert_close(ours[:, :, 1:, perm], theirs, atol=1e-5, rtol=0)


# ---- rope2d_mixed ---------------------------------------------------------------------------------
def test_rope2d_mixed_initialisation():
    """Heo et al.: per layer and head, magnitudes 10^(-4t/d) (t < d/4) in one random direction, and
    the same magnitudes in the direction turned by +90 degrees for the second d/4 pairs."""
    torch.manual_seed(0)
    enc = build("rope2d_mixed", shape(d_model=64, heads=4, layers=3))
    d = 16
    freqs = enc.freqs.detach().double()  # [layers, heads, d/2, (row, col)]
    assert freqs.shape == (3, 4, d // 2, 2)
    magnitudes = torch.tensor([10.0 ** (-4 * t / d) for t in range(d // 4)], dtype=torch.float64)
    first, second = freqs[..., : d // 4, :], freqs[..., d // 4 :, :]
    torch.testing.assert_close(first.norm(dim=-1), magnitudes.expand(3, 4, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(second.norm(dim=-1), magnitudes.expand(3, 4, -1), atol=1e-6, rtol=0)
    # (x, y) = (col, row) turned by +90 degrees is (-y, x): col' = -row, row' = col
    torch.testing.assert_close(second[..., 1], -first[..., 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(second[..., 0], first[..., 1], atol=1e-6, rtol=0)
    direction = torch.atan2(first[..., 0], first[..., 1])  # one direction per layer and head
    torch.testing.assert_close(direction, direction[..., :1].expand_as(direction), atol=1e-5, rtol=0)
    distinct = torch.unique(direction[..., 0].round(decimals=4)).numel()
    assert distinct == 12, "directions must be drawn per layer and head"


def test_rope2d_mixed_matches_timm():
    """timm's RotaryEmbeddingMixed (grid_indexing 'xy': t_x the column, t_y the row; freqs [2, depth,
    heads, d/2] with [0] for x): with its frequencies copied in, layer l equals
    ``apply_rot_embed_cat(x, get_embed(shape)[l])`` up to the interleaving permutation."""
    pytest.importorskip("timm")
    from timm.layers.pos_embed_sincos import RotaryEmbeddingMixed, apply_rot_embed_cat

    torch.manual_seed(0)
    attn = shape()
    enc = build("rope2d_mixed", attn)
    theirs = RotaryEmbeddingMixed(dim=attn.d_model, depth=attn.layers, num_heads=attn.heads, temperature=10.0)
    with torch.no_grad():
        enc.freqs.copy_(torch.stack((theirs.freqs[1], theirs.freqs[0]), dim=-1))
    perm = to_interleaved(attn.head_dim)
    for side in (4, 6):
        q, k = random_qk(attn, side)
        embeds = theirs.get_embed([side, side])
        for layer in range(attn.layers):
            ours, _ = enc.rotate(q, k, grid_coordinates(side, 1), grid_coordinates(side, 1), layer)
            expected = apply_rot_embed_cat(q[:, :, 1:, perm], embeds[layer])
            torch.testing.assert_close(ours[:, :, 1:, perm], expected, atol=1e-5, rtol=0)


def test_rope2d_mixed_layers_differ_and_gradients_reach_frequencies():
    torch.manual_seed(0)
    enc = build("rope2d_mixed")
    assert not torch.allclose(enc.freqs[0], enc.freqs[1])
    q, k = random_qk(enc.shape, 4)
    pos = grid_coordinates(4, 1)
    l0, l1 = logits(*enc.rotate(q, k, pos, pos, 0)), logits(*enc.rotate(q, k, pos, pos, 1))
    assert (l0 - l1).abs().max() > 1e-3, "each layer must use its own frequencies"
    l1.pow(2).sum().backward()
    assert enc.freqs.grad[1].abs().sum() > 0
    assert enc.freqs.grad[0].abs().sum() == 0, "layer 1's logits read only layer 1's frequencies"


def test_rope2d_mixed_with_axial_frequencies_is_rope2d_axial():
    """Frequencies (theta_t, 0) for the first d/4 pairs and (0, theta_t) for the rest are RoPE-Axial."""
    torch.manual_seed(0)
    mixed, axial = build("rope2d_mixed"), build("rope2d_axial", base=100.0)
    d = mixed.shape.head_dim
    theta = torch.tensor([100.0 ** (-4 * t / d) for t in range(d // 4)])
    zeros = torch.zeros_like(theta)
    axial_freqs = torch.stack((torch.cat((theta, zeros)), torch.cat((zeros, theta))), dim=-1)
    with torch.no_grad():
        mixed.freqs.copy_(axial_freqs.expand_as(mixed.freqs))
    q, k = random_qk(mixed.shape, 5)
    pos = grid_coordinates(5, 1)
    for a, b in zip(mixed.rotate(q, k, pos, pos, 1), axial.rotate(q, k, pos, pos)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


# ---- every 2D encoding: declarations, configs, models ---------------------------------------------
@pytest.mark.parametrize("name", NAMES_2D)
def test_declarations_and_yaml_defaults(name):
    cls = ENCODINGS.get(name)
    assert cls.axes == 2 and cls.description.strip()
    assert cls.family == ("rotary" if name.startswith("rope") else "absolute")
    assert cls.shift_invariant is name.startswith("rope")
    assert "class token" in (__import__(cls.__module__, fromlist=["_"]).__doc__ or "").lower()
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    assert cfg.pop("name") == name
    defaults = ENCODINGS.check({"name": name})
    del defaults["name"]
    assert cfg == defaults, "the YAML must list exactly the __init__ options with their defaults"


@pytest.mark.parametrize("name", NAMES_2D)
def test_in_a_vit_at_two_sizes(name):
    torch.manual_seed(0)
    model = MODELS.build({"name": "vit"}, 4, {"name": name}, channels=1, image_size=16)
    model.eval()
    with torch.no_grad():
        for size in (16, 24):
            out = model.logits(torch.randn(2, 1, size, size))
            assert out.shape == (2, 4) and torch.isfinite(out).all()
    model.encoding.check_grid(6)


@pytest.mark.parametrize("name", NAMES_2D)
def test_refused_on_sequences(name):
    with pytest.raises(ConfigError, match=r"2D encoding"):
        MODELS.build({"name": "encoder"}, 8, {"name": name}, eos=None)


def test_class_token_coordinates_are_ignored():
    """The class token is the first ``prefix`` tokens whatever its coordinates hold."""
    torch.manual_seed(0)
    pos = grid_coordinates(4, 1)
    assert pos[0, 0].tolist() == [NO_POSITION, NO_POSITION]
    other = pos.clone()
    other[0, 0] = torch.tensor([2, 3])
    x = torch.randn(1, 17, 32)
    q, k = random_qk(shape(), 4, batch=1)
    for name in NAMES_2D:
        enc = build(name)
        torch.testing.assert_close(enc.embed(x, other), enc.embed(x, pos))
        for a, b in zip(enc.rotate(q, k, other, other, 1), enc.rotate(q, k, pos, pos, 1)):
            torch.testing.assert_close(a, b)
