"""Tests for the rotary encodings: RoPE's options (partial rotary, position interpolation, NTK-aware
base) and xPos (posbench/encodings/{rope,xpos}.py).

Expected values are written out here from each paper's formula with ``math`` in float64 (or by
hand); nothing is copied from a run of the code. Registry-wide properties (shift invariance as
declared, YAML keys, causal leaks, permutation equivariance) are covered by tests/test_encodings.py
and tests/test_models.py; plain RoPE's own tests stay in tests/test_encodings.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models import MODELS

GAMMA = 0.4  # Sun et al. 2022, xPos


def shape(d_model: int = 16, heads: int = 2, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=1, causal=causal)


def rope(d_model: int = 16, heads: int = 2, causal: bool = False, **options):
    return ENCODINGS.build({"name": "rope", **options}, shape(d_model, heads, causal))


def xpos(d_model: int = 16, heads: int = 2, **options):
    return ENCODINGS.build({"name": "xpos", **options}, shape(d_model, heads, causal=True))


def reference_rope(x: Tensor, pos: Tensor, thetas: list[float]) -> Tensor:
    """Half-split RoPE written element by element in float64: pair (i, i + r/2) of the first
    r = 2 * len(thetas) features is rotated by pos * thetas[i]; features r.. are copied.
    ``x`` is ``[B, H, L, d]``, ``pos`` (any real numbers) ``[B or 1, L]``."""
    half = len(thetas)
    out = x.double().clone()
    xd = x.double()
    for i, theta in enumerate(thetas):
        angle = (pos.double() * theta)[:, None, :]
        c, s = angle.cos(), angle.sin()
        a, b = xd[..., i], xd[..., i + half]
        out[..., i] = a * c - b * s
        out[..., i + half] = a * s + b * c
    return out


def thetas(rotated: int, base: float = 10000.0) -> list[float]:
    """RoFormer eq. 15: theta_i = base^(-2i / d) for i = 0 .. d/2 - 1, d the rotated dimension."""
    return [base ** (-2 * i / rotated) for i in range(rotated // 2)]


def zetas(d: int) -> list[float]:
    """Sun et al. 2022: zeta_i = (2i/d + gamma) / (1 + gamma)."""
    return [(2 * i / d + GAMMA) / (1 + GAMMA) for i in range(d // 2)]


def to_interleaved(rotated: int, d: int) -> list[int]:
    """Feature permutation from posbench's half-split layout of the first ``rotated`` features to the
    adjacent-pair layout of x-transformers / rotary-embedding-torch (2i <- i, 2i+1 <- i + rotated/2);
    the unrotated tail keeps its place."""
    return [f for i in range(rotated // 2) for f in (i, i + rotated // 2)] + list(range(rotated, d))


def logits(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1)


# ---- RoPE options ---------------------------------------------------------------------------------
def test_partial_rotary_hand_computed():
    """head_dim 8, rotary_fraction 0.5: features (0, 2) rotate by p, (1, 3) by p / 100, 4..7 untouched."""
    enc = rope(d_model=8, heads=1, rotary_fraction=0.5)
    x = torch.arange(1.0, 9.0).view(1, 1, 1, 8)
    p = 3
    q, k = enc.rotate(x, x, torch.tensor([[p]]), torch.tensor([[p]]))
    a, b = p * 1.0, p / 100.0  # d_rot = 4: theta_0 = 1, theta_1 = 10000^(-2/4)
    expected = torch.tensor(
        [
            1 * math.cos(a) - 3 * math.sin(a),
            2 * math.cos(b) - 4 * math.sin(b),
            1 * math.sin(a) + 3 * math.cos(a),
            2 * math.sin(b) + 4 * math.cos(b),
            5.0, 6.0, 7.0, 8.0,
        ]
    ).view(1, 1, 1, 8)
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(k, expected, atol=1e-6, rtol=0)
    assert torch.equal(q[..., 4:], x[..., 4:]), "the unrotated tail must pass through bit for bit"
    # fraction 0.25: only the pair (0, 1) rotates, at theta_0 = 1
    q, _ = rope(d_model=8, heads=1, rotary_fraction=0.25).rotate(x, x, torch.tensor([[p]]), torch.tensor([[p]]))
    expected = torch.tensor([math.cos(a) - 2 * math.sin(a), math.sin(a) + 2 * math.cos(a), 3, 4, 5, 6, 7, 8]).view(1, 1, 1, 8)
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rotary_fraction": 0.0}, r"encoding.rotary_fraction=0.0 must be > 0"),
        ({"rotary_fraction": 1.5}, r"encoding.rotary_fraction=1.5 must be <= 1"),
        ({"rotary_fraction": 0.375}, r"encoding=rope: .*round\(0.375 \* 8\) = 3 features .* even number > 0"),
        ({"rotary_fraction": 0.05}, r"encoding=rope: .*= 0 features .* even number > 0"),
        ({"scale": 0.0}, "encoding.scale=0.0 must be > 0"),
        ({"ntk_alpha": -2.0}, "encoding.ntk_alpha=-2.0 must be > 0"),
        ({"base": 1.0}, "encoding.base=1.0 must be > 1"),
        ({"rotary_fraction": 0.25, "ntk_alpha": 2.0}, "encoding=rope: .*ntk_alpha needs at least 4 rotated features"),
    ],
)
def test_rope_invalid_options(options, message):
    with pytest.raises(ConfigError, match=message):
        rope(d_model=8, heads=1, **options)


def test_interpolation_is_rope_at_divided_positions():
    """Chen et al. 2023 §2.2: f'(x, m) = f(x, m / scale)."""
    torch.manual_seed(0)
    scale = 4.0
    enc, plain = rope(scale=scale), rope()
    q, k = torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    # positions that are multiples of the scale land exactly on plain RoPE's integer positions
    j = torch.randint(0, 500, (2, 6))
    for a, b in zip(enc.rotate(q, k, j * 4, j * 4), plain.rotate(q, k, j, j)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # any position p rotates like plain RoPE at the fraction p / scale
    p = torch.tensor([[0, 1, 2, 3, 5, 999]])
    rq, rk = enc.rotate(q, k, p, p)
    torch.testing.assert_close(rq.double(), reference_rope(q, p / scale, thetas(8)), atol=1e-5, rtol=0)
    torch.testing.assert_close(rk.double(), reference_rope(k, p / scale, thetas(8)), atol=1e-5, rtol=0)
    assert not torch.allclose(rq, plain.rotate(q, k, p, p)[0], atol=1e-3), "scale had no effect"


@pytest.mark.parametrize("fraction, alpha", [(1.0, 2.0), (1.0, 8.0), (0.5, 2.0), (0.75, 3.0)])
def test_ntk_aware_base(fraction, alpha):
    """YaRN §3.1 Definition 1: b' = b * alpha^(d / (d - 2)) with d the rotated dimension, so the lowest
    frequency is divided by exactly alpha and the highest (theta_0 = 1) is unchanged."""
    torch.manual_seed(0)
    head_dim = 8
    rotated = round(fraction * head_dim)
    enc = rope(d_model=16, heads=2, rotary_fraction=fraction, ntk_alpha=alpha)
    new_base = 10000.0 * alpha ** (rotated / (rotated - 2))
    assert enc.base == pytest.approx(new_base, rel=1e-12)
    new_thetas = thetas(rotated, new_base)
    old_thetas = thetas(rotated)
    assert new_thetas[0] == old_thetas[0] == 1.0
    assert new_thetas[-1] == pytest.approx(old_thetas[-1] / alpha, rel=1e-12)
    q, k = torch.randn(1, 2, 5, head_dim), torch.randn(1, 2, 5, head_dim)
    pos = torch.tensor([[0, 7, 40, 300, 2000]])
    rq, rk = enc.rotate(q, k, pos, pos)
    torch.testing.assert_close(rq.double(), reference_rope(q, pos, new_thetas), atol=1e-4, rtol=0)
    torch.testing.assert_close(rk.double(), reference_rope(k, pos, new_thetas), atol=1e-4, rtol=0)


def test_ntk_hand_computed_base():
    """d_rot = 4, alpha = 2: b' = 10000 * 2^(4/2) = 40000, theta_1 = 40000^(-1/2) = 0.005 (was 0.01)."""
    enc = rope(d_model=4, heads=1, ntk_alpha=2.0)
    assert enc.base == pytest.approx(40000.0, rel=1e-12)
    x = torch.tensor([0.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 4)  # only pair (1, 3) is non-zero
    q, _ = enc.rotate(x, x, torch.tensor([[10]]), torch.tensor([[10]]))
    torch.testing.assert_close(q.view(4), torch.tensor([0.0, math.cos(0.05), 0.0, math.sin(0.05)]), atol=1e-6, rtol=0)


VARIANTS = [
    {},
    {"rotary_fraction": 0.5},
    {"rotary_fraction": 0.25},
    {"scale": 8.0},
    {"ntk_alpha": 4.0},
    {"rotary_fraction": 0.5, "scale": 2.0, "ntk_alpha": 2.0},
    {"base": 500.0, "rotary_fraction": 0.75, "ntk_alpha": 1.5},
    {"p": 0.5},
    {"p": 0.75, "rotary_fraction": 0.5},
    {"scaling": "llama3", "factor": 8.0, "original_max_len": 32},
    {"scaling": "yarn", "factor": 4.0, "original_max_len": 32, "attention_factor": 1.0},
    {"scaling": "dynamic_ntk", "factor": 4.0, "original_max_len": 8},  # 12 keys > L: one base per forward
    {"name": "hope", "train_len": 20},
]


@pytest.mark.parametrize("options", VARIANTS)
def test_rope_variants_preserve_norms_and_offsets(options):
    """Every variant is a rotation: norms are preserved, logits depend only on the position offset."""
    torch.manual_seed(0)
    enc = rope(d_model=32, heads=4, **options)
    q, k = torch.randn(2, 4, 12, 8), torch.randn(2, 4, 12, 8)
    pos = torch.randint(0, 5000, (2, 12))
    rq, rk = enc.rotate(q, k, pos, pos)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rk.norm(dim=-1), k.norm(dim=-1), atol=1e-4, rtol=1e-5)
    assert not torch.allclose(rq, q, atol=1e-3), "nothing was rotated"
    pos = torch.randint(0, 100, (2, 12))  # float32 angles: keep p * theta_0 small enough to compare
    rq, rk = enc.rotate(q, k, pos, pos)
    for shift in (1, 13, 1000):
        torch.testing.assert_close(logits(*enc.rotate(q, k, pos + shift, pos + shift)), logits(rq, rk), atol=2e-4, rtol=0)


# ---- xPos -------------------------------------------------------------------------------------------
def paper_xpos(x: list[float], n: int, scale_base: float, sign: int, base: float = 10000.0) -> list[float]:
    """Sun et al. 2022: zeta^(sign * n / scale_base) * R(n) x for one vector (half-split pairs),
    sign = +1 for a query, -1 for a key; no centre (the paper's own form)."""
    d = len(x)
    out = [0.0] * d
    for i, (theta, zeta) in enumerate(zip(thetas(d, base), zetas(d))):
        a, b, f = x[i], x[i + d // 2], zeta ** (sign * n / scale_base)
        out[i] = f * (a * math.cos(n * theta) - b * math.sin(n * theta))
        out[i + d // 2] = f * (a * math.sin(n * theta) + b * math.cos(n * theta))
    return out


def test_xpos_hand_computed():
    """d = 4, scale_base = 2: zeta = (2/7, 9/14); the logit of query n = 3 and key m = 1 is the paper's
    zeta_i^((n - m)/2) per pair, and each vector carries the documented centre c = (0 + 3 + 1) // 2 = 2."""
    enc = xpos(d_model=4, heads=1, scale_base=2.0)
    qv, kv = [1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 1.0]
    pos = torch.tensor([[0, 1, 2, 3]])
    q = torch.tensor(qv).expand(1, 1, 4, 4)
    k = torch.tensor(kv).expand(1, 1, 4, 4)
    rq, rk = enc.rotate(q, k, pos, pos)
    n, m = 3, 1
    # pair (0, 2): theta 1, zeta 2/7; pair (1, 3): theta 1/100, zeta 9/14; written out by hand
    phi0, phi1 = (m - n) * 1.0, (m - n) / 100.0
    pair0 = (1 * 0.5 + 3 * 2) * math.cos(phi0) + (3 * 0.5 - 1 * 2) * math.sin(phi0)
    pair1 = (2 * -1 + 4 * 1) * math.cos(phi1) + (4 * -1 - 2 * 1) * math.sin(phi1)
    expected = (2 / 7) ** ((n - m) / 2) * pair0 + (9 / 14) ** ((n - m) / 2) * pair1
    assert logits(rq, rk)[0, 0, n, m].item() == pytest.approx(expected, abs=1e-5)
    # the same from the paper's uncentred vectors
    paper = sum(a * b for a, b in zip(paper_xpos(qv, n, 2.0, +1), paper_xpos(kv, m, 2.0, -1)))
    assert paper == pytest.approx(expected, abs=1e-12)
    # the vectors themselves: zeta^((n - 2) / 2) R(n) q and zeta^((2 - m) / 2) R(m) k
    c = 2
    for p in range(4):
        rot_q = paper_xpos(qv, p, 2.0, +1)  # zeta^(p/2) R(p) q ...
        rot_k = paper_xpos(kv, p, 2.0, -1)
        unc = [z ** (-c / 2) for z in zetas(4)] * 2  # ... times zeta^(-c/2) per pair
        torch.testing.assert_close(rq[0, 0, p], torch.tensor([u * v for u, v in zip(unc, rot_q)]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rk[0, 0, p], torch.tensor([v / u for u, v in zip(unc, rot_k)]), atol=1e-5, rtol=1e-5)


def test_xpos_separate_query_and_key_positions():
    """The hook may receive different query and key positions: every logit is still the paper's
    <zeta^(n/s) R(n) q, zeta^(-m/s) R(m) k> (the centre, common to both, cancels)."""
    torch.manual_seed(0)
    enc = xpos(d_model=8, heads=1, scale_base=4.0)
    q, k = torch.randn(1, 1, 3, 8), torch.randn(1, 1, 3, 8)
    q_pos, k_pos = torch.tensor([[10, 11, 12]]), torch.tensor([[0, 4, 8]])
    got = logits(*enc.rotate(q, k, q_pos, k_pos))[0, 0]
    for i, n in enumerate(q_pos[0].tolist()):
        for j, m in enumerate(k_pos[0].tolist()):
            qn, km = paper_xpos(q[0, 0, i].tolist(), n, 4.0, +1), paper_xpos(k[0, 0, j].tolist(), m, 4.0, -1)
            assert got[i, j].item() == pytest.approx(sum(a * b for a, b in zip(qn, km)), rel=1e-5, abs=1e-5), (n, m)


def test_xpos_logits_depend_only_on_offset():
    """Sun et al.: <f_q(q, n), f_k(k, m)> depends on n - m only; shifting all positions changes nothing."""
    torch.manual_seed(0)
    enc = xpos(d_model=32, heads=4, scale_base=16.0)
    length = 12
    q = torch.randn(1, 4, 1, 8).expand(1, 4, length, 8)
    k = torch.randn(1, 4, 1, 8).expand(1, 4, length, 8)
    pos = torch.arange(length)[None]
    a = logits(*enc.rotate(q, k, pos, pos))
    for offset in range(-length + 1, length):  # Toeplitz: constant along every diagonal
        diag = a.diagonal(offset, dim1=-2, dim2=-1)
        torch.testing.assert_close(diag, diag[..., :1].expand_as(diag), atol=1e-4, rtol=1e-5)
    # random q, k and positions; compared where key position <= query position (causal attention:
    # beyond it the factor grows like 3.5^((m - n)/16) and so do float32 rounding errors)
    q, k = torch.randn(2, 4, length, 8), torch.randn(2, 4, length, 8)
    pos = torch.randint(0, 100, (2, length))
    visible = (pos[:, :, None] >= pos[:, None, :])[:, None].expand(2, 4, length, length)
    a = logits(*enc.rotate(q, k, pos, pos))[visible]
    for shift in (1, 7, 1000):
        torch.testing.assert_close(logits(*enc.rotate(q, k, pos + shift, pos + shift))[visible], a, atol=1e-4, rtol=1e-5)
    assert not torch.allclose(logits(*enc.rotate(q, k, pos, pos + 3))[visible], a, atol=1e-3)


def pair_norms(x: Tensor) -> Tensor:
    """|(x_i, x_(i + d/2))| for every half-split pair: unaffected by the rotation, scaled by zeta_i^(...)."""
    x1, x2 = x.double().chunk(2, dim=-1)
    return (x1**2 + x2**2).sqrt()


def test_xpos_factors_are_relative_to_the_centre():
    """The documented centre c = (min + max + 1) // 2 makes each vector's factor depend on n - c
    only, so far-away absolute positions neither overflow nor change any factor (an uncentred
    zeta^(10^6 / 16) would be 0 or inf in float32)."""
    torch.manual_seed(0)
    scale_base = 16.0
    enc = xpos(d_model=8, heads=1, scale_base=scale_base)
    q, k = torch.randn(2, 1, 9, 8), torch.randn(2, 1, 9, 8)
    pos = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8], [3, 9, 4, 20, 11, 5, 6, 7, 8]])
    rq, rk = enc.rotate(q, k, pos, pos)
    for row, c in ((0, 4), (1, 12)):  # (0 + 8 + 1) // 2 and (3 + 20 + 1) // 2
        for j, n in enumerate(pos[row].tolist()):
            up = torch.tensor([z ** ((n - c) / scale_base) for z in zetas(8)], dtype=torch.float64)
            torch.testing.assert_close(pair_norms(rq[row, 0, j]), up * pair_norms(q[row, 0, j]), rtol=1e-5, atol=0)
            torch.testing.assert_close(pair_norms(rk[row, 0, j]), pair_norms(k[row, 0, j]) / up, rtol=1e-5, atol=0)
    for shift in (10**6, -(10**6)):
        sq, sk = enc.rotate(q, k, pos + shift, pos + shift)
        torch.testing.assert_close(pair_norms(sq), pair_norms(rq), rtol=1e-5, atol=0)
        torch.testing.assert_close(pair_norms(sk), pair_norms(rk), rtol=1e-5, atol=0)


def test_xpos_decays_with_distance():
    """Every zeta_i < 1, so for q = k (q.k > 0) the logit at distance n - m >= 0 is
    zeta^((n - m)/scale_base) * q.k: strictly decreasing. A huge base makes the rotation of the
    chosen pair negligible, so the decay is xPos's alone (plain RoPE stays at q.k)."""
    enc = xpos(d_model=4, heads=1, base=1e30, scale_base=4.0)  # theta_1 = 1e-15
    plain = rope(d_model=4, heads=1, causal=True, base=1e30)
    v = torch.tensor([0.0, 1.5, 0.0, -2.0]).expand(1, 1, 30, 4)  # pair (1, 3) only, q.k = 6.25
    pos = torch.arange(30)[None]
    row = logits(*enc.rotate(v, v, pos, pos))[0, 0, -1]  # query 29, keys 0..29: distance 29 - m
    dist = 29 - torch.arange(30)
    expected = (9 / 14) ** (dist.double() / 4) * 6.25
    torch.testing.assert_close(row.double(), expected, rtol=1e-5, atol=0)
    assert (row[1:] > row[:-1]).all(), "logits must grow towards the query (decay with distance)"
    torch.testing.assert_close(logits(*plain.rotate(v, v, pos, pos))[0, 0, -1], torch.full((30,), 6.25))


def test_xpos_is_causal_only():
    with pytest.raises(ConfigError, match="encoding=xpos is defined only for causal attention"):
        ENCODINGS.build({"name": "xpos"}, shape(causal=False))
    assert not ENCODINGS.get("xpos").supports_bidirectional
    with pytest.raises(ConfigError, match="encoding.scale_base=0.0 must be > 0"):
        xpos(scale_base=0.0)


def test_xpos_refuses_runs_beyond_float32_range():
    """With positions 0..N-1 a query factor times a key factor reaches zeta_0^(-+(N - 1) / scale_base)
    (query 0 and key N-1, a masked pair), zeta_0 = 0.4 / 1.4 = 2/7: for scale_base 4 the products stay
    within 2^+-100 while (N - 1) / 4 * log2(3.5) <= 100, i.e. N - 1 <= 221.3, N <= 222."""
    enc = xpos(d_model=4, heads=1, scale_base=4.0)
    assert enc.max_positions() == 222
    enc.check_fits(222)
    with pytest.raises(ConfigError, match="encoding=xpos .* at most 222 positions with scale_base=4 .* needs 223"):
        enc.check_fits(223)
    ones = torch.ones(1, 1, 222, 4)
    pos = torch.arange(222)[None]
    rq, rk = enc.rotate(ones, ones, pos, pos)
    assert rq.isfinite().all() and rk.isfinite().all()
    assert logits(rq, rk).isfinite().all() and logits(rq, rk).abs().max() < 2.0**101
    # far beyond the limit the factors genuinely overflow: the refusal is needed
    pos = torch.arange(4000)[None]
    rq, rk = enc.rotate(torch.ones(1, 1, 4000, 4), torch.ones(1, 1, 4000, 4), pos, pos)
    assert not (rq.isfinite().all() and rk.isfinite().all())


def test_xpos_with_a_bias_part_is_refused_where_masked_logits_overflow():
    """A bias part turns the causal mask into a float ``attn_mask``, so a masked logit that overflows
    gives inf + (-inf) = NaN. [xpos (scale_base 8), alibi] in a decoder: the masked pair (query 0,
    key N-1) has factor zeta_0^(-(N - 1)/8) = 2^((N - 1)/8 * log2 3.5), beyond float32 for N = 700
    (2^157.9); the limit is N - 1 <= 800 / log2(3.5) = 442.6, N = 443 (2^99.9)."""
    section = {"name": "combo", "parts": [{"name": "xpos", "scale_base": 8.0}, "alibi"]}
    torch.manual_seed(0)
    net = MODELS.get("decoder")(11, section, d_model=32, layers=2, heads=4).eval()
    assert net.encoding.max_positions() == 443
    net.encoding.check_fits(443)
    with pytest.raises(ConfigError, match="encoding=xpos .* at most 443 positions with scale_base=8 .* needs 700"):
        net.encoding.check_fits(700)
    with torch.no_grad():
        admitted = net.net(torch.randint(0, 11, (2, 443)))
        refused = net.net(torch.randint(0, 11, (2, 700)))
    assert admitted.isfinite().all()
    assert refused.isnan().any(), "700 positions do not overflow: the refusal is not needed"


# ---- cross-checks with x-transformers and rotary-embedding-torch -------------------------------------
ROPE_CASES = [(1.0, 1.0, 1.0), (0.5, 1.0, 1.0), (1.0, 4.0, 1.0), (1.0, 1.0, 3.0), (0.5, 2.0, 2.0)]


@pytest.mark.parametrize("fraction, scale, alpha", ROPE_CASES)
def test_rope_options_match_x_transformers(fraction, scale, alpha):
    """x-transformers' RotaryEmbedding(dim=d_rot, interpolation_factor, base_rescale_factor) with
    apply_rotary_pos_emb rotates the first d_rot features in adjacent pairs (2i, 2i+1) and passes
    the rest through: equal to posbench after permuting the rotated features (``to_interleaved``)."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    head_dim = 16
    rotated = round(fraction * head_dim)
    enc = rope(d_model=32, heads=2, rotary_fraction=fraction, scale=scale, ntk_alpha=alpha)
    theirs = xt.RotaryEmbedding(rotated, base=10000, interpolation_factor=scale, base_rescale_factor=alpha)
    q, k = torch.randn(2, 2, 10, head_dim), torch.randn(2, 2, 10, head_dim)
    pos = torch.arange(10)[None] + 37
    freqs, xpos_scale = theirs(pos)
    perm = to_interleaved(rotated, head_dim)
    rq, rk = enc.rotate(q, k, pos, pos)
    torch.testing.assert_close(rq[..., perm], xt.apply_rotary_pos_emb(q[..., perm], freqs, xpos_scale), atol=1e-5, rtol=0)
    torch.testing.assert_close(rk[..., perm], xt.apply_rotary_pos_emb(k[..., perm], freqs, xpos_scale), atol=1e-5, rtol=0)


def test_xpos_matches_x_transformers():
    """x-transformers' RotaryEmbedding(use_xpos=True) returns the factor zeta^((t - max_pos // 2) /
    scale_base) for queries, and Attention uses its inverse for keys; for positions 0..L-1 its centre
    equals posbench's, so the vectors agree after ``to_interleaved``; at an offset the centres
    differ, and only the logits (where the centre cancels) must agree."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    d, length, scale_base = 8, 21, 8.0
    enc = xpos(d_model=16, heads=2, scale_base=scale_base)
    theirs = xt.RotaryEmbedding(d, use_xpos=True, scale_base=scale_base)
    q, k = torch.randn(1, 2, length, d), torch.randn(1, 2, length, d)
    perm = to_interleaved(d, d)
    for start in (0, 45):
        pos = torch.arange(length)[None] + start
        freqs, factor = theirs(pos)
        tq = xt.apply_rotary_pos_emb(q[..., perm], freqs, factor)
        tk = xt.apply_rotary_pos_emb(k[..., perm], freqs, factor**-1.0)
        rq, rk = enc.rotate(q, k, pos, pos)
        if start == 0:
            torch.testing.assert_close(rq[..., perm], tq, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(rk[..., perm], tk, atol=1e-5, rtol=1e-5)
        else:
            assert not torch.allclose(rq[..., perm], tq, atol=1e-3), "the centres should differ at an offset"
        torch.testing.assert_close(logits(rq, rk), logits(tq, tk), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("fraction, scale, alpha", ROPE_CASES)
def test_rope_options_match_rotary_embedding_torch(fraction, scale, alpha):
    """rotary-embedding-torch's RotaryEmbedding(dim=d_rot, interpolate_factor, theta_rescale_factor)
    .rotate_queries_or_keys(t, offset) rotates positions offset..offset+L-1 of the first d_rot
    features in adjacent pairs: equal to posbench after ``to_interleaved``."""
    ret = pytest.importorskip("rotary_embedding_torch")
    torch.manual_seed(0)
    head_dim = 16
    rotated = round(fraction * head_dim)
    enc = rope(d_model=32, heads=2, rotary_fraction=fraction, scale=scale, ntk_alpha=alpha)
    theirs = ret.RotaryEmbedding(rotated, theta=10000, interpolate_factor=scale, theta_rescale_factor=alpha)
    q = torch.randn(2, 2, 10, head_dim)
    perm = to_interleaved(rotated, head_dim)
    pos = torch.arange(10)[None] + 37
    rq, _ = enc.rotate(q, q, pos, pos)
    torch.testing.assert_close(rq[..., perm], theirs.rotate_queries_or_keys(q[..., perm], offset=37), atol=1e-5, rtol=0)


def test_xpos_matches_rotary_embedding_torch():
    """rotary-embedding-torch's rotate_queries_and_keys (use_xpos) scales by zeta^((t - L // 2) /
    xpos_scale_base) for positions t = 0..L-1: the same centre as posbench there."""
    ret = pytest.importorskip("rotary_embedding_torch")
    torch.manual_seed(0)
    d, length, scale_base = 8, 20, 8.0
    enc = xpos(d_model=16, heads=2, scale_base=scale_base)
    theirs = ret.RotaryEmbedding(d, use_xpos=True, xpos_scale_base=scale_base)
    q, k = torch.randn(1, 2, length, d), torch.randn(1, 2, length, d)
    perm = to_interleaved(d, d)
    tq, tk = theirs.rotate_queries_and_keys(q[..., perm], k[..., perm])
    pos = torch.arange(length)[None]
    rq, rk = enc.rotate(q, k, pos, pos)
    torch.testing.assert_close(rq[..., perm], tq, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rk[..., perm], tk, atol=1e-5, rtol=1e-5)
