"""Tests for the positional encodings in ``posbench/encodings/``.

Expected values are computed here, independently of posbench, from the papers' formulas
(written out with ``math`` in float64) or by hand; nothing is copied from a run of the code.
The registry-wide tests are parametrised over ``ENCODINGS.names()``, so an encoding registered
in the future is covered automatically (it only needs its ``configs/encoding/<name>.yaml``).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from posbench.encodings import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.base import grid_coordinates
from posbench.encodings.alibi import alibi_slopes
from posbench.encodings.t5 import t5_bucket
from posbench.errors import ConfigError

from conftest import skip_unsupported

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "encoding"
FAMILIES = {"none", "absolute", "relative", "rotary", "bias", "composite"}
NAMES = ENCODINGS.names()
#: The encodings of sequence positions (1D, and 3-axis M-RoPE, which reads a 1D index as t = h = w)
#: and the 2D ones (image grid coordinates, ``axes = 2``).
NAMES_1D = [name for name in NAMES if ENCODINGS.get(name).axes != 2]
NAMES_2D = [name for name in NAMES if ENCODINGS.get(name).axes == 2]
FAMILIES = FAMILIES | {"conditional"}


# ---- helpers ------------------------------------------------------------------------------------
def shape(
    d_model: int = 32, heads: int = 4, layers: int = 2, causal: bool = False, grid: int | None = None, prefix: int = 0,
    streams: tuple[int, ...] | None = None,
) -> AttentionShape:
    return AttentionShape(
        d_model=d_model, heads=heads, layers=layers, causal=causal, grid=grid, prefix=prefix, streams=streams
    )


#: The streams of a model built for task=sync: what an encoding that reads their timeline (fpe) needs.
STREAMS = (2, 3)


def yaml_config(name: str) -> dict:
    """The content of ``configs/encoding/<name>.yaml`` as a plain dict."""
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"), resolve=True)


def build(name: str, attn: AttentionShape) -> PositionalEncoding:
    """Build an encoding the way a run does: from its YAML config (one that reads the streams'
    timeline in a model for a task with streams)."""
    if ENCODINGS.get(name).reads_time:
        attn = replace(attn, streams=STREAMS)
    return ENCODINGS.build(yaml_config(name), attn)


def randomise_parameters(enc: nn.Module, seed: int = 0) -> None:
    """Give every trainable parameter N(0, 1) values, so zero-initialised tables (T5) have teeth."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))


def paper_sinusoid(p: float, d: int, base: float = 10000.0) -> list[float]:
    """Vaswani et al. 2017 §3.5: PE(p, 2i) = sin(p / base^(2i/d)), PE(p, 2i+1) = cos(same)."""
    out = []
    for i in range(d // 2):
        angle = p / base ** (2 * i / d)
        out += [math.sin(angle), math.cos(angle)]
    return out


def paper_rope_interleaved(x: Tensor, pos: Tensor, base: float = 10000.0) -> Tensor:
    """RoFormer eq. 34 (paper convention): pair (x_{2i}, x_{2i+1}) rotated by p * base^(-2i/d).

    ``x`` is ``[B, H, L, d]``, ``pos`` is ``[B or 1, L]``; written element by element in float64.
    """
    d = x.shape[-1]
    out = torch.empty_like(x, dtype=torch.float64)
    xd = x.double()
    for i in range(d // 2):
        theta = base ** (-2 * i / d)
        angle = (pos.double() * theta)[:, None, :]  # [B, 1, L]
        c, s = angle.cos(), angle.sin()
        a, b = xd[..., 2 * i], xd[..., 2 * i + 1]
        out[..., 2 * i] = a * c - b * s
        out[..., 2 * i + 1] = a * s + b * c
    return out


def half_split_to_interleaved(d: int) -> list[int]:
    """Index list ``perm`` with ``y_interleaved = y_half[..., perm]``: feature 2i <- i, 2i+1 <- i + d/2."""
    perm = []
    for i in range(d // 2):
        perm += [i, i + d // 2]
    return perm


def paper_alibi_slopes(n: int) -> list[float]:
    """Press et al. 2022 §3 (and their reference code), written independently of posbench.

    Power of two n: the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8).
    Otherwise: the slopes of the closest smaller power of two c, then every other slope of
    the 2c sequence (its 1st, 3rd, 5th, ...) until there are n.
    """

    def geometric(m: int) -> list[float]:
        return [2.0 ** (-8.0 * (k + 1) / m) for k in range(m)]

    c = 1
    while c * 2 <= n:
        c *= 2
    if c == n:
        return geometric(n)
    return geometric(c) + geometric(2 * c)[0::2][: n - c]


def paper_t5_bucket(n: int, bidirectional: bool, num_buckets: int = 32, max_distance: int = 128) -> int:
    """Raffel et al. 2020 §2.1 / the T5 reference code, for one relative position n = key - query."""
    offset = 0
    if bidirectional:
        num_buckets //= 2
        if n > 0:
            offset = num_buckets
        d = abs(n)
    else:
        d = max(-n, 0)
    exact = num_buckets // 2
    if d < exact:
        return offset + d
    far = exact + int(math.floor(math.log(d / exact) / math.log(max_distance / exact) * (num_buckets - exact)))
    return offset + min(far, num_buckets - 1)


def hook_logits(enc: PositionalEncoding, x: Tensor, pos: Tensor, proj: list[Tensor]) -> list[Tensor]:
    """Attention logits of every layer, computed through the hooks the way ``SelfAttention`` does.

    x' = embed(x, pos); per layer: q, k = x' W_q, x' W_k split into heads; q, k = rotate(...);
    logits = q k^T / sqrt(d_head) + bias + score; then x' = between_blocks(x', pos, layer).
    """
    batch, length, _ = x.shape
    heads = enc.shape.heads
    h = enc.embed(x, pos)
    out = []
    for layer, (w_q, w_k) in enumerate(proj):
        q = (h @ w_q).view(batch, length, heads, -1).transpose(1, 2)
        k = (h @ w_k).view(batch, length, heads, -1).transpose(1, 2)
        q, k = enc.rotate(q, k, pos, pos, layer)
        logits = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        bias = enc.bias(pos, pos, layer)
        if bias is not None:
            logits = logits + bias
        score = enc.score(q, k, pos, pos, layer)
        if score is not None:
            logits = logits + score
        out.append(logits)
        h = enc.between_blocks(h, pos, layer)
    return out


# ---- 1. sinusoidal --------------------------------------------------------------------------------
def test_sinusoidal_hand_computed_values():
    """Vaswani §3.5 for d=4, base 10000: PE(p) = [sin p, cos p, sin(p/100), cos(p/100)]."""
    enc = ENCODINGS.get("sinusoidal")(shape(d_model=4, heads=1), base=10000.0)
    pos = torch.tensor([[0, 1, 2]])
    pe = enc.embed(torch.zeros(1, 3, 4), pos)[0]
    expected = torch.tensor(
        [[math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)] for p in (0, 1, 2)]
    )
    torch.testing.assert_close(pe, expected, atol=1e-6, rtol=0)
    # a larger case against the formula, and the encoding is *added* to x
    enc = ENCODINGS.get("sinusoidal")(shape(d_model=10, heads=2), base=500.0)
    x = torch.randn(2, 5, 10)
    pos = torch.tensor([[0, 3, 7, 40, 123], [5, 6, 7, 8, 9]])
    expected = torch.tensor([[paper_sinusoid(p, 10, 500.0) for p in row] for row in pos.tolist()])
    torch.testing.assert_close(enc.embed(x, pos) - x, expected, atol=1e-4, rtol=0)


def test_sinusoidal_offset_is_fixed_block_rotation():
    """Vaswani §3.5: PE(p + k) = M_k PE(p) with M_k block-diagonal 2x2 rotations by k * w_i."""
    d, k = 8, 7
    enc = ENCODINGS.get("sinusoidal")(shape(d_model=d, heads=1))
    pe = lambda p: enc.embed(torch.zeros(1, len(p), d), torch.tensor([p]))[0].double()  # noqa: E731
    fit = list(range(0, 1000, 9))
    # least squares for M_k^T: PE(fit) @ M^T = PE(fit + k)
    m = torch.linalg.lstsq(pe(fit), pe([p + k for p in fit])).solution.T
    # M_k is independent of p: it maps positions it was not fitted on
    check = list(range(1003, 1200, 5))
    torch.testing.assert_close(pe(check) @ m.T, pe([p + k for p in check]), atol=2e-3, rtol=0)
    # ... and is the block-diagonal rotation written out from sin/cos addition formulas
    expected = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d // 2):
        a = k / 10000.0 ** (2 * i / d)
        expected[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
            [[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]
        )
    torch.testing.assert_close(m, expected, atol=2e-3, rtol=0)


# ---- 2. learned -----------------------------------------------------------------------------------
def test_learned_embed_adds_table_rows():
    """Gehring et al. 2017: x + E[p], one trainable row per position."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("learned")(shape(d_model=8, heads=2), max_len=10)
    randomise_parameters(enc)
    x = torch.randn(2, 4, 8)
    pos = torch.tensor([[3, 0, 9, 3], [1, 2, 3, 4]])
    table = enc.table.weight
    expected = x + torch.stack([table[row] for row in pos.tolist()])
    torch.testing.assert_close(enc.embed(x, pos), expected)
    assert table.requires_grad, "learned table must be trainable"


def test_learned_check_fits():
    """A run needing more positions than ``max_len`` is refused with ConfigError, not otherwise."""
    enc = ENCODINGS.build({"name": "learned", "max_len": 10}, shape())
    assert enc.max_positions() == 10
    for needed in (1, 9, 10):
        enc.check_fits(needed)  # must not raise
    for needed in (11, 1000):
        with pytest.raises(ConfigError, match="learned"):
            enc.check_fits(needed)


# ---- 3. RoPE --------------------------------------------------------------------------------------
def test_rope_hand_computed_rotation():
    """RoFormer eq. 34, half-split: head_dim 4 pairs (0, 2) at angle p and (1, 3) at angle p/100."""
    enc = ENCODINGS.get("rope")(shape(d_model=8, heads=2))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).expand(1, 2, 1, 4)  # same vector in both heads
    p = 2
    q, k = enc.rotate(x, x, torch.tensor([[p]]), torch.tensor([[p]]))
    a, b = p * 1.0, p / 100.0  # theta_0 = 1, theta_1 = 10000^(-2/4) = 1/100
    expected = torch.tensor(
        [
            1 * math.cos(a) - 3 * math.sin(a),
            2 * math.cos(b) - 4 * math.sin(b),
            1 * math.sin(a) + 3 * math.cos(a),
            2 * math.sin(b) + 4 * math.cos(b),
        ]
    ).expand(1, 2, 1, 4)
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(k, expected, atol=1e-6, rtol=0)
    # position 0 is the identity
    q0, _ = enc.rotate(x, x, torch.tensor([[0]]), torch.tensor([[0]]))
    torch.testing.assert_close(q0, x)


def test_rope_preserves_norms():
    """Rotations are orthogonal: |R(p) x| = |x| for every head, position and batch row."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("rope")(shape())
    q, k = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 16, 8)
    q_pos = torch.randint(0, 5000, (2, 16))
    k_pos = torch.randint(0, 5000, (2, 16))
    rq, rk = enc.rotate(q, k, q_pos, k_pos)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rk.norm(dim=-1), k.norm(dim=-1), atol=1e-4, rtol=1e-5)
    assert not torch.allclose(rq, q, atol=1e-3), "rope did not rotate anything"


def test_rope_logits_depend_only_on_offset():
    """RoFormer eq. 16: <R(m) q, R(n) k> = g(q, k, n - m)."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("rope")(shape())
    length = 12
    # one query vector and one key vector repeated at every position: the logit matrix must be
    # Toeplitz (constant along diagonals), i.e. a function of i - j only
    q = torch.randn(1, 4, 1, 8).expand(1, 4, length, 8)
    k = torch.randn(1, 4, 1, 8).expand(1, 4, length, 8)
    pos = torch.arange(length)[None]
    rq, rk = enc.rotate(q, k, pos, pos)
    logits = rq @ rk.transpose(-2, -1)
    for offset in range(-length + 1, length):
        diag = logits.diagonal(offset, dim1=-2, dim2=-1)
        torch.testing.assert_close(diag, diag[..., :1].expand_as(diag), atol=1e-4, rtol=0)
    # and random q, k: shifting every position by the same amount leaves q.k unchanged
    q, k = torch.randn(2, 4, length, 8), torch.randn(2, 4, length, 8)
    pos = torch.randint(0, 100, (2, length))
    rq, rk = enc.rotate(q, k, pos, pos)
    a = rq @ rk.transpose(-2, -1)
    for shift in (1, 7, 1000):
        rq, rk = enc.rotate(q, k, pos + shift, pos + shift)
        torch.testing.assert_close(rq @ rk.transpose(-2, -1), a, atol=1e-4, rtol=0)
    # the logits are not constant in the offset (position does enter)
    rq, rk = enc.rotate(q, k, pos, pos + 3)
    assert not torch.allclose(rq @ rk.transpose(-2, -1), a, atol=1e-3)


def test_rope_half_split_equals_paper_interleaved_up_to_permutation():
    """posbench's half-split rotation is the paper's interleaved eq. 34 after a fixed feature permutation."""
    torch.manual_seed(0)
    d = 8
    enc = ENCODINGS.get("rope")(shape())
    q, k = torch.randn(2, 4, 6, d), torch.randn(2, 4, 6, d)
    pos = torch.randint(0, 300, (2, 6))
    rq, rk = enc.rotate(q, k, pos, pos)
    perm = half_split_to_interleaved(d)
    torch.testing.assert_close(rq[..., perm].double(), paper_rope_interleaved(q[..., perm], pos), atol=1e-4, rtol=0)
    torch.testing.assert_close(rk[..., perm].double(), paper_rope_interleaved(k[..., perm], pos), atol=1e-4, rtol=0)
    # without the permutation they differ: the conventions are genuinely different
    assert not torch.allclose(rq.double(), paper_rope_interleaved(q, pos), atol=1e-3)


# ---- 4. ALiBi -------------------------------------------------------------------------------------
def test_alibi_slopes_power_of_two():
    """Press et al. §3: 8 heads -> 1/2, 1/4, ..., 1/256; 4 heads -> 1/4, 1/16, 1/64, 1/256."""
    torch.testing.assert_close(torch.tensor(alibi_slopes(8)), torch.tensor([2.0**-i for i in range(1, 9)]))
    torch.testing.assert_close(torch.tensor(alibi_slopes(4)), torch.tensor([1 / 4, 1 / 16, 1 / 64, 1 / 256]))
    torch.testing.assert_close(torch.tensor(alibi_slopes(1)), torch.tensor([1 / 256]))


@pytest.mark.parametrize("heads", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24])
def test_alibi_slopes_any_head_count(heads):
    """Press et al. §3: non-powers of two take the closest power's slopes plus every other 2x slope."""
    torch.testing.assert_close(
        torch.tensor(alibi_slopes(heads), dtype=torch.float64),
        torch.tensor(paper_alibi_slopes(heads), dtype=torch.float64),
    )


def test_alibi_slopes_hand_checked_non_power_of_two():
    """6 heads = [4-head slopes] + 1st, 3rd of the 8-head ones; 12 = [8-head] + odd 16-head ones."""
    six = [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    twelve = [2.0**-i for i in range(1, 9)] + [2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]
    torch.testing.assert_close(torch.tensor(alibi_slopes(6)), torch.tensor(six))
    torch.testing.assert_close(torch.tensor(alibi_slopes(12)), torch.tensor(twelve))


@pytest.mark.parametrize("heads", [4, 6])
def test_alibi_causal_bias(heads):
    """Press et al. §3: logits[h, i, j] += -m_h * (i - j) for every visible key j <= i."""
    enc = ENCODINGS.get("alibi")(shape(d_model=heads * 4, heads=heads, causal=True))
    length = 9
    pos = torch.arange(length)[None] + 5  # absolute offset must not matter
    bias = enc.bias(pos, pos, 0)
    assert bias.shape[-3:] == (heads, length, length)
    slopes = paper_alibi_slopes(heads)
    for h in range(heads):
        for i in range(length):
            for j in range(i + 1):
                assert bias[0, h, i, j].item() == pytest.approx(-slopes[h] * (i - j), abs=1e-6), (h, i, j)


def test_alibi_bidirectional_bias_reversed_slopes_to_the_right():
    """posbench's documented bidirectional ALiBi: m_h to the left, m_(n-1-h) to the right."""
    heads = 4
    enc = ENCODINGS.get("alibi")(shape(d_model=16, heads=heads, causal=False))
    length = 10
    pos = torch.arange(length)[None]
    bias = enc.bias(pos, pos, 0)[0]
    slopes = paper_alibi_slopes(heads)
    for h in range(heads):
        for i in range(length):
            for j in range(length):
                m = slopes[h] if j <= i else slopes[heads - 1 - h]
                assert bias[h, i, j].item() == pytest.approx(-m * abs(i - j), abs=1e-6), (h, i, j)
    # left/right symmetry is broken: some head sees bias(i, i-d) != bias(i, i+d)
    i, dist = 5, 3
    assert not torch.allclose(bias[:, i, i - dist], bias[:, i, i + dist]), (
        "bidirectional ALiBi is blind to left versus right"
    )


# ---- 5. T5 ----------------------------------------------------------------------------------------
# (relative = key - query, expected bucket) for num_buckets=32, max_distance=128; worked by hand:
# bidirectional: 16 buckets per side, 8 exact; far bucket = 8 + floor(log(d/8) / log(16) * 8)
T5_BIDIRECTIONAL = [
    (0, 0), (-1, 1), (-7, 7), (1, 17), (7, 23),  # exact range; keys to the right use 16..31
    (-8, 8), (8, 24),  # first log bucket: log(1) = 0
    (-11, 8), (-12, 9), (-20, 10), (-40, 12), (-100, 15),  # 8+floor(.92), 8+floor(1.17), +2.64, +4.64, +7.29
    (20, 26), (40, 28), (100, 31),
    (-127, 15), (-128, 15), (-1000, 15), (127, 31), (128, 31), (1000, 31),  # clipped at max distance
]
# causal: all 32 buckets for keys at or left of the query, 16 exact; far = 16 + floor(log(d/16) / log(8) * 16)
T5_CAUSAL = [
    (0, 0), (-1, 1), (-15, 15), (-16, 16), (-20, 17), (-50, 24), (-127, 31), (-128, 31), (-1000, 31),
    (1, 0), (3, 0), (100, 0),  # future keys collapse to bucket 0
]


@pytest.mark.parametrize("bidirectional, cases", [(True, T5_BIDIRECTIONAL), (False, T5_CAUSAL)])
def test_t5_bucket_hand_checked(bidirectional, cases):
    """Raffel et al. §2.1: exact small buckets, log-spaced buckets, clipping at max_distance."""
    relative = torch.tensor([n for n, _ in cases])
    got = t5_bucket(relative, bidirectional, num_buckets=32, max_distance=128).tolist()
    assert got == [b for _, b in cases], list(zip(relative.tolist(), got))


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (16, 64), (64, 500)])
def test_t5_bucket_matches_formula(bidirectional, num_buckets, max_distance):
    """The bucket function equals the reference formula on every relative position in a wide range."""
    relative = torch.arange(-3 * max_distance, 3 * max_distance + 1)
    got = t5_bucket(relative, bidirectional, num_buckets, max_distance)
    expected = torch.tensor([paper_t5_bucket(n, bidirectional, num_buckets, max_distance) for n in relative.tolist()])
    assert torch.equal(got, expected), relative[got != expected].tolist()
    assert got.min() >= 0 and got.max() == num_buckets - 1


@pytest.mark.parametrize("causal", [False, True])
def test_t5_bias_looks_up_table(causal):
    """bias[b, h, i, j] = table[bucket(j - i), h], shared by all layers."""
    enc = ENCODINGS.get("t5")(shape(causal=causal), num_buckets=32, max_distance=128)
    randomise_parameters(enc)
    pos = torch.tensor([[0, 1, 2, 10, 50, 200], [3, 4, 5, 6, 7, 8]])
    bias = enc.bias(pos, pos, 0)
    assert bias.shape == (2, 4, 6, 6)
    table = enc.table.weight
    for b in range(2):
        for i, pi in enumerate(pos[b].tolist()):
            for j, pj in enumerate(pos[b].tolist()):
                bucket = paper_t5_bucket(pj - pi, not causal)
                torch.testing.assert_close(bias[b, :, i, j], table[bucket])
    torch.testing.assert_close(enc.bias(pos, pos, 1), bias)


def test_t5_bucket_matches_huggingface():
    """Cross-check with transformers' T5Attention._relative_position_bucket (memory - context)."""
    pytest.importorskip("transformers")
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-400, 401)
    for bidirectional in (True, False):
        theirs = T5Attention._relative_position_bucket(relative, bidirectional=bidirectional)
        assert torch.equal(t5_bucket(relative, bidirectional), theirs)


# ---- 6. shift invariance, every registered encoding ----------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name", NAMES_1D)
def test_shift_invariance_declaration(name, causal):
    """logits(p + k) == logits(p) for every layer iff the encoding declares ``shift_invariant``."""
    skip_unsupported(name, causal)
    torch.manual_seed(0)
    attn = shape(d_model=32, heads=4, layers=2, causal=causal)
    enc = build(name, attn)
    randomise_parameters(enc, seed=1)
    enc.eval()
    length, k = 16, 7
    x = torch.randn(2, length, 32)
    proj = [(torch.randn(32, 32) / 32**0.5, torch.randn(32, 32) / 32**0.5) for _ in range(attn.layers)]
    pos = torch.arange(length)[None]
    with torch.no_grad():
        base = hook_logits(enc, x, pos, proj)
        shifted = hook_logits(enc, x, pos + k, proj)
    visible = torch.ones(length, length, dtype=torch.bool)
    if causal:
        visible = visible.tril()
    diff = max((a - b)[..., visible].abs().max().item() for a, b in zip(base, shifted))
    if enc.shift_invariant:  # an instance may decide (a composite inherits its parts' property)
        assert diff < 1e-4, f"{name} declares shift_invariant but logits change by {diff:.3g} under a shift of {k}"
    else:
        assert diff > 1e-3, f"{name} declares shift_invariant=False but logits do not change under a shift of {k}"


@pytest.mark.parametrize("prefix", [0, 1])
@pytest.mark.parametrize("name", NAMES_2D)
def test_2d_shift_invariance_declaration(name, prefix):
    """For a 2D encoding: logits are unchanged when every patch's (row, col) shifts by the same
    (a, b) iff it declares ``shift_invariant``; the class token (``prefix``) has no coordinates to
    shift and keeps ``NO_POSITION``. An encoding that is not invariant (a table of absolute
    positions) is shown to change under a cyclic shift, which keeps every coordinate on its grid."""
    torch.manual_seed(0)
    side = 4
    attn = shape(d_model=32, heads=4, layers=2, grid=side, prefix=prefix)
    enc = build(name, attn)
    randomise_parameters(enc, seed=1)
    enc.eval()
    length = prefix + side * side
    x = torch.randn(2, length, 32)
    proj = [(torch.randn(32, 32) / 32**0.5, torch.randn(32, 32) / 32**0.5) for _ in range(attn.layers)]
    coords = grid_coordinates(side, prefix)
    shifted = coords.clone()
    shifted[:, prefix:] += torch.tensor([3, 5])
    if not enc.shift_invariant:
        shifted[:, prefix:] %= side
    with torch.no_grad():
        base = hook_logits(enc, x, coords, proj)
        moved = hook_logits(enc, x, shifted, proj)
    diff = max((a - b).abs().max().item() for a, b in zip(base, moved))
    if enc.shift_invariant:
        assert diff < 1e-4, f"{name} declares shift_invariant but logits change by {diff:.3g} under a 2D shift"
    else:
        assert diff > 1e-3, f"{name} declares shift_invariant=False but logits do not change under a 2D shift"


@pytest.mark.parametrize("name", NAMES_2D)
def test_2d_encoding_refused_on_a_sequence(name):
    with pytest.raises(ConfigError, match=rf"encoding={name} is a 2D encoding: .* needs an image grid \(model=vit"):
        build(name, shape())


# ---- 7. class attributes and configs, every registered encoding ----------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_class_declares_description_and_family(name):
    cls = ENCODINGS.get(name)
    assert issubclass(cls, PositionalEncoding)
    assert cls.name == name
    assert isinstance(cls.description, str) and cls.description.strip(), f"{name} has no description"
    assert cls.family in FAMILIES, f"{name}: family {cls.family!r} not in {sorted(FAMILIES)}"
    assert isinstance(cls.shift_invariant, bool)


@pytest.mark.parametrize("name", NAMES)
def test_config_yaml_matches_class(name):
    """configs/encoding/<name>.yaml exists, names the encoding, and its other keys are __init__ args."""
    path = CONFIG_DIR / f"{name}.yaml"
    assert path.is_file(), f"missing {path}"
    cfg = yaml_config(name)
    assert cfg.get("name") == name, f"{path}: name is {cfg.get('name')!r}"
    cls = ENCODINGS.get(name)
    params = inspect.signature(cls.__init__).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in cfg:
        if key != "name":
            assert takes_kwargs or key in params, f"{path}: key {key!r} is not an argument of {cls.__name__}"
    grid = 4 if cls.axes == 2 else None
    streams = STREAMS if cls.reads_time else None
    enc = ENCODINGS.build(
        cfg, shape(causal=not cls.supports_bidirectional, grid=grid, prefix=int(grid is not None), streams=streams)
    )
    assert type(enc) is cls


def test_registry_build_rejects_unknown_key_and_name():
    with pytest.raises(ConfigError, match="encoding=rope has no option no_such_option; its options: base"):
        ENCODINGS.build({"name": "rope", "no_such_option": 1}, shape())
    with pytest.raises(ConfigError, match="unknown encoding 'no_such_encoding'; valid choices: "):
        ENCODINGS.build({"name": "no_such_encoding"}, shape())


# ---- 8. cross-checks with x-transformers -----------------------------------------------------------
@pytest.mark.parametrize("heads", [4, 6, 8])
def test_alibi_matches_x_transformers(heads):
    """x-transformers' AlibiPositionalBias(i, j) is -|j - i| * slope, shape [h, i, j]: on the causal
    (j <= i) part this is exactly posbench's -m_h * (i - j); the right half is posbench's own choice."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    length = 11
    theirs = xt.AlibiPositionalBias(heads=heads)(length, length)
    enc = ENCODINGS.get("alibi")(shape(d_model=heads * 4, heads=heads, causal=True))
    pos = torch.arange(length)[None]
    ours = enc.bias(pos, pos, 0)[0]
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[:, lower], theirs[:, lower].to(ours.dtype))


def test_t5_bucket_matches_x_transformers():
    """x-transformers' RelativePositionBias._relative_position_bucket takes rel_pos = k - q (like
    posbench) and a ``causal`` flag where posbench takes ``bidirectional = not causal``."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    relative = torch.arange(-400, 401)
    for num_buckets, max_distance in [(32, 128), (16, 64)]:
        for causal in (False, True):
            theirs = xt.RelativePositionBias._relative_position_bucket(
                relative, causal=causal, num_buckets=num_buckets, max_distance=max_distance
            )
            ours = t5_bucket(relative, not causal, num_buckets, max_distance)
            assert torch.equal(ours, theirs), relative[ours != theirs].tolist()


def test_rope_matches_x_transformers():
    """x-transformers' RotaryEmbedding + apply_rotary_pos_emb use the paper's *interleaved* pairs
    (2i, 2i+1) (its rotate_half splits '(d r)' with r=2 and repeats each frequency twice), so it
    equals posbench's half-split rotation after permuting features with ``half_split_to_interleaved``."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    d = 8
    enc = ENCODINGS.get("rope")(shape())
    q, k = torch.randn(2, 4, 10, d), torch.randn(2, 4, 10, d)
    pos = torch.arange(10)[None] + 3
    rq, rk = enc.rotate(q, k, pos, pos)
    freqs, scale = xt.RotaryEmbedding(d, base=10000)(pos)
    perm = half_split_to_interleaved(d)
    torch.testing.assert_close(rq[..., perm], xt.apply_rotary_pos_emb(q[..., perm], freqs, scale), atol=1e-5, rtol=0)
    torch.testing.assert_close(rk[..., perm], xt.apply_rotary_pos_emb(k[..., perm], freqs, scale), atol=1e-5, rtol=0)
    # logits are permutation-invariant, so they agree without any permutation at all
    theirs = xt.apply_rotary_pos_emb(q[..., perm], freqs, scale) @ xt.apply_rotary_pos_emb(k[..., perm], freqs, scale).transpose(-2, -1)
    torch.testing.assert_close(rq @ rk.transpose(-2, -1), theirs, atol=1e-4, rtol=0)
