"""Tests for RoPE's p-RoPE and context-extension options (``p``, ``scaling=yarn|llama3|dynamic_ntk``)
and for HoPE (posbench/encodings/{rope,hope}.py).

Expected values come from the papers' formulas, written out here with ``math`` in float64 or by
hand (Barbero et al. 2025 for p-RoPE; Peng et al. 2023, YaRN, for YaRN and dynamic NTK; Llama 3.1's
reference scaling; Chen et al. 2025 for HoPE), and from Hugging Face transformers' RoPE init
functions (``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS``, a test-only oracle, skipped
where transformers is not installed); nothing is copied from a run of posbench's code.
Registry-wide properties (YAML keys, declared shift invariance, every model) are covered by
tests/test_encodings.py, tests/test_zoo.py and tests/test_plot.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.encodings.rope import kept_pairs, llama3_frequencies, yarn_frequencies
from posbench.errors import ConfigError


def shape(d_model: int = 16, heads: int = 2, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=1, causal=causal)


def rope(d_model: int = 16, heads: int = 2, **options):
    return ENCODINGS.build({"name": "rope", **options}, shape(d_model, heads))


def hope(d_model: int = 16, heads: int = 2, **options):
    return ENCODINGS.build({"name": "hope", **options}, shape(d_model, heads))


def logits(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1)


def reference_rope(x: Tensor, pos: Tensor, thetas: list[float], factor: float = 1.0) -> Tensor:
    """Half-split RoPE written element by element in float64: pair (i, i + r/2) of the first
    r = 2 * len(thetas) features is rotated by pos * thetas[i] and multiplied by ``factor``;
    features r.. are copied. ``x`` is ``[B, H, L, d]``, ``pos`` ``[B or 1, L]``."""
    half = len(thetas)
    out = x.double().clone()
    xd = x.double()
    for i, theta in enumerate(thetas):
        angle = (pos.double() * theta)[:, None, :]
        c, s = angle.cos() * factor, angle.sin() * factor
        a, b = xd[..., i], xd[..., i + half]
        out[..., i] = a * c - b * s
        out[..., i + half] = a * s + b * c
    return out


# ---- Hugging Face's RoPE init functions as the oracle ----------------------------------------------
class HFConfig:
    """The few attributes Hugging Face's RoPE init functions read from a model config (transformers
    5.x: ``rope_parameters`` holds ``rope_type``, ``rope_theta``, ``partial_rotary_factor``,
    ``factor``, ... ; ``standardize_rope_params`` normalises older configs and has nothing to do here)."""

    def __init__(self, head_dim: int, max_position_embeddings: int, **rope_parameters):
        self.head_dim = head_dim
        self.hidden_size = head_dim * 2
        self.num_attention_heads = 2
        self.max_position_embeddings = max_position_embeddings
        self.rope_parameters = rope_parameters

    def standardize_rope_params(self) -> None:
        pass


def hf_init(rope_type: str, config: HFConfig, seq_len: int | None = None) -> tuple[Tensor, float]:
    rope_utils = pytest.importorskip("transformers.modeling_rope_utils")
    if rope_type not in rope_utils.ROPE_INIT_FUNCTIONS:  # "proportional" (Gemma 4's p-RoPE) is recent
        pytest.skip(f"this transformers has no {rope_type} RoPE")
    return rope_utils.ROPE_INIT_FUNCTIONS[rope_type](config, "cpu", seq_len=seq_len)


# (head_dim, rotary_fraction, base, factor, L, beta_fast, beta_slow, attention_factor)
YARN_CASES = [
    (16, 1.0, 10000.0, 4.0, 64, 32.0, 1.0, None),
    (32, 0.5, 10000.0, 8.0, 128, 32.0, 1.0, None),
    (128, 1.0, 10000.0, 16.0, 4096, 32.0, 1.0, None),  # LLaMA 2 7B at 64K (YaRN's own setting)
    (64, 1.0, 500000.0, 2.0, 256, 16.0, 2.0, None),
    (16, 1.0, 10000.0, 4.0, 32, 32.0, 1.0, 1.0),  # explicit attention factor
    (16, 1.0, 10000.0, 1.0, 64, 32.0, 1.0, None),  # s = 1: plain RoPE, factor 1
]


@pytest.mark.parametrize("head_dim, fraction, base, factor, length, fast, slow, att", YARN_CASES)
def test_yarn_matches_huggingface(head_dim, fraction, base, factor, length, fast, slow, att):
    rotated = round(fraction * head_dim)
    options = {"rope_type": "yarn", "rope_theta": base, "factor": factor, "original_max_position_embeddings": length,
               "beta_fast": fast, "beta_slow": slow, "partial_rotary_factor": fraction}
    if att is not None:
        options["attention_factor"] = att
    theirs, their_factor = hf_init("yarn", HFConfig(head_dim, length * int(factor), **options))
    enc = rope(d_model=2 * head_dim, heads=2, base=base, rotary_fraction=fraction, scaling="yarn", factor=factor,
               original_max_len=length, beta_fast=fast, beta_slow=slow, attention_factor=att)
    assert theirs.shape == enc.inv_freq.shape == (rotated // 2,)
    torch.testing.assert_close(enc.inv_freq, theirs, rtol=2e-6, atol=0)
    torch.testing.assert_close(
        yarn_frequencies(rotated, base, factor, length, fast, slow), theirs.double(), rtol=2e-6, atol=0
    )
    assert enc.attention_factor == pytest.approx(their_factor, rel=1e-12)
    if factor > 1:  # the extremes: the highest frequency is kept, the lowest interpolated
        assert enc.inv_freq[0] == 1.0
        assert enc.inv_freq[-1].item() == pytest.approx(base ** (-(rotated - 2) / rotated) / factor, rel=1e-6)


# (head_dim, base, factor, L, low_freq_factor, high_freq_factor)
LLAMA3_CASES = [
    (128, 500000.0, 8.0, 8192, 1.0, 4.0),  # Llama 3.1's own settings
    (16, 10000.0, 8.0, 64, 1.0, 4.0),
    (32, 10000.0, 4.0, 100, 2.0, 8.0),
    (64, 10000.0, 32.0, 2048, 0.5, 3.0),
]


@pytest.mark.parametrize("head_dim, base, factor, length, low, high", LLAMA3_CASES)
def test_llama3_matches_huggingface(head_dim, base, factor, length, low, high):
    config = HFConfig(head_dim, 4 * length, rope_type="llama3", rope_theta=base, factor=factor,
                      original_max_position_embeddings=length, low_freq_factor=low, high_freq_factor=high)
    theirs, their_factor = hf_init("llama3", config)
    enc = rope(d_model=2 * head_dim, heads=2, base=base, scaling="llama3", factor=factor, original_max_len=length,
               low_freq_factor=low, high_freq_factor=high)
    torch.testing.assert_close(enc.inv_freq, theirs, rtol=2e-6, atol=0)
    torch.testing.assert_close(llama3_frequencies(head_dim, base, factor, length, low, high), theirs.double(),
                               rtol=2e-6, atol=0)
    assert enc.attention_factor == their_factor == 1.0


@pytest.mark.parametrize("head_dim, fraction, factor, length", [(16, 1.0, 2.0, 64), (32, 0.5, 4.0, 100), (64, 1.0, 8.0, 512)])
def test_dynamic_ntk_matches_huggingface(head_dim, fraction, factor, length):
    """Hugging Face's dynamic NTK with max_position_embeddings = L, at the current length n."""
    config = HFConfig(head_dim, length, rope_type="dynamic", rope_theta=10000.0, factor=factor,
                      partial_rotary_factor=fraction)
    enc = rope(d_model=2 * head_dim, heads=2, rotary_fraction=fraction, scaling="dynamic_ntk", factor=factor,
               original_max_len=length)
    for n in (1, length // 2, length, length + 1, 3 * length, 10 * length):
        theirs, their_factor = hf_init("dynamic", config, seq_len=n)
        ours, our_factor = enc.frequencies(n) or (enc.inv_freq, enc.attention_factor)
        torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=0)
        assert their_factor == our_factor == 1.0
        assert (enc.frequencies(n) is None) == (n <= length)


@pytest.mark.parametrize("head_dim, length", [(16, 41), (64, 256)])
def test_dynamic_yarn_is_rope_up_to_original_max_len_and_yarn_with_the_length_ratio_beyond(head_dim, length):
    """YaRN §3.3: s = max(1, n / L) per forward; beyond L it is Hugging Face's YaRN at factor n / L."""
    enc = rope(d_model=2 * head_dim, heads=2, scaling="yarn", dynamic=True, original_max_len=length)
    torch.testing.assert_close(enc.inv_freq, rope(d_model=2 * head_dim, heads=2).inv_freq, rtol=0, atol=0)
    assert enc.attention_factor == 1.0 and enc.frequencies(length) is None
    for n in (length + 1, 2 * length, 5 * length):
        config = HFConfig(head_dim, n, rope_type="yarn", rope_theta=10000.0, factor=n / length,
                          original_max_position_embeddings=length)
        theirs, their_factor = hf_init("yarn", config)
        ours, our_factor = enc.frequencies(n)
        torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=0)
        assert our_factor == pytest.approx(their_factor, rel=1e-12) and our_factor == pytest.approx(0.1 * math.log(n / length) + 1)
    # a forward beyond L rotates with those frequencies and scales cos and sin by the attention factor
    x, pos = torch.randn(1, 2, 3 * length, head_dim), torch.arange(3 * length)[None]
    thetas, factor = enc.frequencies(3 * length)
    torch.testing.assert_close(enc.rotate(x, x, pos, pos)[0].double(), factor * reference_rope(x, pos, thetas.tolist()), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("head_dim", [8, 16, 64])
def test_p_rope_matches_huggingface_proportional_rope(p, head_dim):
    """Gemma 4's "proportional" RoPE (Hugging Face) is p-RoPE: the first int(p * d // 2) frequencies
    of full RoPE, then zeros."""
    theirs, _ = hf_init("proportional", HFConfig(head_dim, 64, rope_type="proportional", rope_theta=10000.0,
                                                 partial_rotary_factor=p))
    enc = rope(d_model=2 * head_dim, heads=2, p=p)
    torch.testing.assert_close(enc.inv_freq, theirs, rtol=2e-6, atol=0)
    assert torch.equal(enc.inv_freq == 0, theirs == 0)
    assert int(enc.rotating.sum()) == int(p * head_dim // 2)


# ---- hand-computed values ----------------------------------------------------------------------------
X = torch.arange(1.0, 9.0).view(1, 1, 1, 8)


def expected_two_pairs(p: int) -> Tensor:
    """head_dim 8 (theta = 1, 0.1, 0.01, 0.001), only the pairs (0, 4) and (1, 5) rotating, at position p."""
    a, b = p * 1.0, p * 0.1
    return torch.tensor(
        [
            1 * math.cos(a) - 5 * math.sin(a),
            2 * math.cos(b) - 6 * math.sin(b),
            3.0, 4.0,
            1 * math.sin(a) + 5 * math.cos(a),
            2 * math.sin(b) + 6 * math.cos(b),
            7.0, 8.0,
        ]
    ).view(1, 1, 1, 8)


def test_p_rope_hand_computed():
    """Barbero et al. §6: p = 0.5 of head_dim 8 keeps floor(0.5 * 4) = 2 pairs, the highest
    frequencies theta_0 = 1 and theta_1 = 10000^(-2/8) = 0.1; (2, 6) and (3, 7) do not move."""
    enc = rope(d_model=8, heads=1, p=0.5)
    torch.testing.assert_close(enc.inv_freq, torch.tensor([1.0, 0.1, 0.0, 0.0]), rtol=1e-6, atol=0)
    q, k = enc.rotate(X, X, torch.tensor([[3]]), torch.tensor([[3]]))
    torch.testing.assert_close(q, expected_two_pairs(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(k, expected_two_pairs(3), atol=1e-6, rtol=0)
    assert torch.equal(q[..., [2, 3, 6, 7]], X[..., [2, 3, 6, 7]]), "dropped pairs must pass bit for bit"


@pytest.mark.parametrize("p, pairs, kept", [(0.5, 4, 2), (0.75, 4, 3), (0.3, 8, 2), (0.99, 4, 3), (0.58, 50, 29), (1.0, 7, 7), (0.0, 9, 0)])
def test_p_rope_keeps_the_floor_of_p_times_the_pairs(p, pairs, kept):
    assert kept_pairs(p, pairs) == kept


def test_yarn_hand_computed():
    """head_dim 8, base 10000, L = 64, s = 4, beta 32 / 1. Pair i makes L / (2 pi 10000^(i/4)) turns
    over L; 32 turns at i = 8 ln(64 / (64 pi)) / (2 ln 10000) = -0.497 (floor, then >= 0: 0) and one
    turn at i = 8 ln(64 / 2 pi) / (2 ln 10000) = 1.008 (ceil: 2). Ramp r_i = i / 2, clipped to [0, 1]:
    theta_i' = theta_i (1 - r_i) + theta_i / 4 r_i = 1, 0.1 (1/2 + 1/8), 0.01 / 4, 0.001 / 4.
    Attention factor 0.1 ln 4 + 1."""
    low = 8 * math.log(64 / (2 * math.pi * 32)) / (2 * math.log(10000))
    high = 8 * math.log(64 / (2 * math.pi)) / (2 * math.log(10000))
    assert (math.floor(low), math.ceil(high)) == (-1, 2)
    enc = rope(d_model=8, heads=1, scaling="yarn", factor=4.0, original_max_len=64)
    expected = torch.tensor([1.0, 0.1 * (0.5 + 0.125), 0.0025, 0.00025])
    torch.testing.assert_close(enc.inv_freq, expected, rtol=1e-6, atol=0)
    assert enc.attention_factor == pytest.approx(0.1 * math.log(4) + 1, rel=1e-15)
    q, _ = enc.rotate(X, X, torch.tensor([[5]]), torch.tensor([[5]]))
    torch.testing.assert_close(q.double(), reference_rope(X, torch.tensor([[5]]), expected.tolist(), 0.1 * math.log(4) + 1),
                               atol=1e-5, rtol=0)


def test_llama3_hand_computed():
    """head_dim 8, L = 64, s = 8, low 1, high 4. Turns over L, 64 theta_i / (2 pi): 10.19 (> 4: kept),
    1.019 (between: g = (1.019 - 1) / 3), 0.1019 and 0.0102 (< 1: divided by 8)."""
    enc = rope(d_model=8, heads=1, scaling="llama3", factor=8.0, original_max_len=64)
    g = (64 * 0.1 / (2 * math.pi) - 1) / 3
    expected = torch.tensor([1.0, (1 - g) * 0.1 / 8 + g * 0.1, 0.01 / 8, 0.001 / 8])
    torch.testing.assert_close(enc.inv_freq, expected, rtol=1e-6, atol=0)


def test_dynamic_ntk_hand_computed():
    """head_dim 8, L = 16, s = 2, n = 32 keys: base' = 10000 (2 * 32 / 16 - 1)^(8/6) = 10000 * 3^(4/3)."""
    enc = rope(d_model=8, heads=1, scaling="dynamic_ntk", factor=2.0, original_max_len=16)
    base = 10000 * 3 ** (4 / 3)
    torch.testing.assert_close(enc.frequencies(32)[0], torch.tensor([base ** (-i / 4) for i in range(4)]), rtol=1e-6, atol=0)
    x = X.expand(1, 1, 32, 8)
    pos = torch.arange(32)[None]
    q, _ = enc.rotate(x, x, pos, pos)
    torch.testing.assert_close(q.double(), reference_rope(x, pos, [base ** (-i / 4) for i in range(4)]), atol=1e-5, rtol=0)


def test_hope_hand_computed():
    """Chen et al. 2025: a pair rotates iff theta_i * L >= 2 pi. head_dim 8: wavelengths 2 pi / theta_i =
    6.28, 62.8, 628, 6283; L = 64 keeps pairs 0 and 1 (the p = 0.5 result above), L = 62 only pair 0."""
    enc = hope(d_model=8, heads=1, train_len=64)
    assert enc.rotating.tolist() == [True, True, False, False]
    q, k = enc.rotate(X, X, torch.tensor([[3]]), torch.tensor([[3]]))
    torch.testing.assert_close(q, expected_two_pairs(3), atol=1e-6, rtol=0)
    assert enc.rotate(X, X, torch.tensor([[9]]), torch.tensor([[9]]))[0][..., [2, 3, 6, 7]].equal(X[..., [2, 3, 6, 7]])
    assert hope(d_model=8, heads=1, train_len=62).rotating.tolist() == [True, False, False, False]
    assert hope(d_model=8, heads=1, train_len=7).rotating.tolist() == [True, False, False, False]
    assert hope(d_model=8, heads=1, train_len=10**5).rotating.all()
    # the kept pairs rotate exactly as in RoPE
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 9, 8), torch.randn(2, 2, 9, 8)
    pos = torch.randint(0, 300, (2, 9))
    for ours, theirs in zip(hope(train_len=64).rotate(q, k, pos, pos), rope(p=0.5).rotate(q, k, pos, pos)):
        assert torch.equal(ours, theirs)


# ---- properties --------------------------------------------------------------------------------------
def test_p_zero_is_nope_and_p_one_is_rope_exactly():
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 7, 8), torch.randn(2, 2, 7, 8)
    pos = torch.randint(0, 1000, (2, 7))
    none = ENCODINGS.build({"name": "none"}, shape())
    for ours, theirs, given in zip(rope(p=0.0).rotate(q, k, pos, pos), none.rotate(q, k, pos, pos), (q, k)):
        assert torch.equal(ours, theirs) and torch.equal(ours, given)
    for options in ({}, {"rotary_fraction": 0.5}, {"scale": 4.0}, {"ntk_alpha": 2.0}):
        for ours, theirs in zip(rope(p=1.0, **options).rotate(q, k, pos, pos), rope(**options).rotate(q, k, pos, pos)):
            assert torch.equal(ours, theirs), options
    assert not torch.allclose(rope(p=0.5).rotate(q, k, pos, pos)[0], rope().rotate(q, k, pos, pos)[0], atol=1e-3)


def test_yarn_scales_logits_by_the_square_of_its_attention_factor():
    """Hugging Face multiplies cos and sin by the attention factor m: rotated q and k each carry m,
    logits m^2 (YaRN §3.4's 1/t); the features beyond d_rot are not scaled."""
    torch.manual_seed(0)
    m = 0.1 * math.log(8) + 1
    yarn = rope(scaling="yarn", factor=8.0, original_max_len=16)
    unit = rope(scaling="yarn", factor=8.0, original_max_len=16, attention_factor=1.0)
    assert yarn.attention_factor == pytest.approx(m)
    assert torch.equal(yarn.inv_freq, unit.inv_freq)
    q, k = torch.randn(2, 2, 10, 8), torch.randn(2, 2, 10, 8)
    pos = torch.arange(10)[None] + 3
    torch.testing.assert_close(logits(*yarn.rotate(q, k, pos, pos)), m**2 * logits(*unit.rotate(q, k, pos, pos)),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(yarn.rotate(q, k, pos, pos)[0].norm(dim=-1), m * q.norm(dim=-1), rtol=1e-5, atol=1e-5)
    half = rope(rotary_fraction=0.5, scaling="yarn", factor=8.0, original_max_len=16)
    rq, _ = half.rotate(q, k, pos, pos)
    assert torch.equal(rq[..., 4:], q[..., 4:])
    torch.testing.assert_close(rq[..., :4].norm(dim=-1), m * q[..., :4].norm(dim=-1), rtol=1e-5, atol=1e-5)


def test_yarn_and_llama3_with_factor_one_are_rope():
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    pos = torch.randint(0, 100, (1, 6))
    plain = rope().rotate(q, k, pos, pos)
    for scaling in ("yarn", "llama3"):
        for ours, theirs in zip(rope(scaling=scaling, original_max_len=32).rotate(q, k, pos, pos), plain):
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_dynamic_ntk_is_rope_up_to_original_max_len_and_depends_on_the_length_beyond():
    torch.manual_seed(0)
    enc = rope(scaling="dynamic_ntk", factor=4.0, original_max_len=10)
    plain = rope()
    q, k = torch.randn(2, 2, 14, 8), torch.randn(2, 2, 14, 8)
    for n in (1, 5, 10):
        pos = torch.arange(n)[None] + 7
        for ours, theirs in zip(enc.rotate(q[:, :, :n], k[:, :, :n], pos, pos), plain.rotate(q[:, :, :n], k[:, :, :n], pos, pos)):
            assert torch.equal(ours, theirs), n
    # beyond L the base grows with the key count: the logit of offset 3 between the same vectors changes
    v = torch.randn(1, 1, 1, 8)
    scores = []
    for n in (10, 11, 14):
        x = v.expand(1, 1, n, 8)
        pos = torch.arange(n)[None]
        scores.append(logits(*enc.rotate(x, x, pos, pos))[0, 0, 3, 0].item())
    assert scores[0] != pytest.approx(scores[1], abs=1e-6) and scores[1] != pytest.approx(scores[2], abs=1e-6)
    # and queries and keys of different counts (cross-attention) read the key count
    q_pos, k_pos = torch.arange(4)[None], torch.arange(14)[None]
    ours = enc.rotate(q[:, :, :4], k, q_pos, k_pos)
    thetas = enc.frequencies(14)[0].tolist()
    torch.testing.assert_close(ours[0].double(), reference_rope(q[:, :, :4], q_pos, thetas), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[1].double(), reference_rope(k, k_pos, thetas), atol=1e-5, rtol=0)


def test_p_rope_applies_after_scaling():
    """A dropped pair stays at frequency 0 whatever the scaling (also dynamic_ntk beyond L)."""
    for options in ({"scaling": "yarn"}, {"scaling": "llama3"}, {"scaling": "dynamic_ntk"}):
        enc = rope(p=0.5, factor=4.0, original_max_len=8, **options)
        assert enc.inv_freq[2:].eq(0).all() and enc.inv_freq[:2].gt(0).all()
        beyond = enc.frequencies(40)
        beyond = enc.inv_freq if beyond is None else beyond[0]
        assert beyond[2:].eq(0).all() and beyond[:2].gt(0).all()
    assert torch.equal(rope(p=0.5, scale=2.0).inv_freq, rope(scale=2.0).inv_freq * torch.tensor([1.0, 1.0, 0.0, 0.0]))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"scaling": "bogus"}, "encoding.scaling=bogus must be one of none, yarn, llama3, dynamic_ntk"),
        ({"p": 1.5}, "encoding.p=1.5 must be <= 1"),
        ({"p": -0.1}, "encoding.p=-0.1 must be >= 0"),
        ({"p": 0.1}, r"encoding=rope: p=0.1 keeps floor\(0.1 \* 4\) = 0 of the 4 frequency pairs .* NoPE"),
        ({"factor": 0.5, "scaling": "yarn"}, "encoding.factor=0.5 must be >= 1"),
        ({"original_max_len": 0, "scaling": "yarn"}, "encoding.original_max_len=0 must be >= 1"),
        ({"attention_factor": 0.0, "scaling": "yarn"}, "encoding.attention_factor=0.0 must be > 0"),
        ({"scaling": "yarn"}, "encoding=rope: scaling=yarn needs original_max_len, the pretraining context length"),
        ({"scaling": "dynamic_ntk", "factor": 2.0}, "scaling=dynamic_ntk needs original_max_len"),
        ({"scaling": "yarn", "original_max_len": 16, "scale": 2.0}, "scaling=yarn sets the frequencies itself; it cannot be combined with scale=2.0"),
        ({"scaling": "llama3", "original_max_len": 16, "ntk_alpha": 2.0}, "cannot be combined with scale=1.0 or ntk_alpha=2.0"),
        ({"factor": 4.0}, "encoding=rope: factor=4.0 is read only with scaling=yarn or llama3 or dynamic_ntk, not scaling=none"),
        ({"original_max_len": 64}, "original_max_len=64 is read only with scaling=yarn or llama3 or dynamic_ntk"),
        ({"scaling": "llama3", "original_max_len": 16, "beta_fast": 16.0}, "beta_fast=16.0 is read only with scaling=yarn, not scaling=llama3"),
        ({"scaling": "yarn", "original_max_len": 16, "low_freq_factor": 2.0}, "low_freq_factor=2.0 is read only with scaling=llama3"),
        ({"scaling": "dynamic_ntk", "original_max_len": 16, "attention_factor": 2.0}, "attention_factor=2.0 is read only with scaling=yarn"),
        ({"scaling": "yarn", "original_max_len": 16, "beta_fast": 1.0}, "beta_fast=1.0 must be > beta_slow=1.0"),
        ({"scaling": "llama3", "original_max_len": 16, "high_freq_factor": 1.0}, "high_freq_factor=1.0 must be > low_freq_factor=1.0"),
        ({"scaling": "dynamic_ntk", "original_max_len": 16, "rotary_fraction": 0.25}, "dynamic_ntk needs at least 4 rotated features"),
        ({"scaling": "yarn", "original_max_len": 16, "dynamic": True, "factor": 2.0}, "dynamic YaRN computes its factor"),
        ({"scaling": "llama3", "original_max_len": 16, "dynamic": True}, "dynamic=true is read only with scaling=yarn"),
    ],
)
def test_invalid_options_are_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as refused:
        rope(d_model=8, heads=1, **options)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"train_len": 6}, "encoding=hope: train_len=6 leaves no frequency pair rotating"),
        ({"train_len": 0}, "encoding.train_len=0 must be >= 1"),
        ({"base": 1.0}, "encoding.base=1.0 must be > 1"),
        ({"p": 0.5}, "encoding=hope has no option p; its options: base, train_len"),
    ],
)
def test_hope_invalid_options(options, message):
    with pytest.raises(ConfigError, match=message):
        hope(d_model=8, heads=1, **options)


# ---- the command line: one line, exit code 2, before anything runs ------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (["encoding=rope", "encoding.scaling=bogus"], "encoding.scaling=bogus must be one of none, yarn, llama3, dynamic_ntk"),
        (["encoding.p=2"], "encoding.p=2 must be <= 1"),
        (["encoding.p=abc"], "encoding.p=abc is not a number"),
        (["encoding.scaling=yarn"], "scaling=yarn needs original_max_len"),
        (["encoding=hope", "encoding.train_len=3"], "encoding=hope: train_len=3 leaves no frequency pair rotating"),
    ],
)
def test_bad_values_on_the_command_line(args, expected, refusal):
    assert expected in refusal(args)
