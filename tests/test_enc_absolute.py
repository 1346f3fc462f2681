"""Tests for the absolute, input-level encodings learned_scaled, scaled_sinusoidal, compressed and
adaptive (posbench/encodings/{learned,sinusoidal,compressed,adaptive}.py).

Expected values are written out here from each formula with ``math`` (or by hand); nothing is copied
from a run of the code. Registry-wide properties (shift invariance as declared, YAML keys, causal
leaks, permutation equivariance) are covered by tests/test_encodings.py and tests/test_models.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError

NAMES = ["learned_scaled", "scaled_sinusoidal", "compressed", "adaptive"]


def shape(d_model: int = 8, heads: int = 1, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=1, causal=causal)


def code(enc, pos: list[list[int]], length: int | None = None) -> torch.Tensor:
    """What ``embed`` adds to zero token embeddings: ``[B or 1, L, d_model]``."""
    pos = torch.tensor(pos)
    d = enc.shape.d_model
    return enc.embed(torch.zeros(pos.shape[0], pos.shape[1] if length is None else length, d), pos)


def vaswani(q: float, d: int, base: float = 10000.0) -> list[float]:
    """Vaswani et al. 2017 §3.5, interleaved: [sin(q / base^(2i/d)), cos(q / base^(2i/d))] for each i."""
    out = []
    for i in range(d // 2):
        out += [math.sin(q / base ** (2 * i / d)), math.cos(q / base ** (2 * i / d))]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_declared_as_absolute_and_not_shift_invariant(name):
    cls = ENCODINGS.get(name)
    assert cls.family == "absolute" and cls.shift_invariant is False
    assert cls.supports_bidirectional and cls.supports_causal
    enc = ENCODINGS.build({"name": name}, shape())
    assert not enc.explicit_attention, f"{name} must keep the fused SDPA path"


# ---- learned_scaled -------------------------------------------------------------------------------
def test_learned_scaled_is_sqrt_d_times_table_row():
    """x + sqrt(d) * E[p]; d = 9 so the multiplier is exactly 3."""
    enc = ENCODINGS.get("learned_scaled")(shape(d_model=9), max_len=5)
    with torch.no_grad():  # row p = [p, p + 0.5, ..., p + 4] / 10
        enc.table.weight.copy_(torch.tensor([[(p + j / 2) / 10 for j in range(9)] for p in range(5)]))
    x = torch.ones(1, 3, 9)
    got = enc.embed(x, torch.tensor([[4, 0, 2]]))
    expected = torch.tensor([[[1 + 3 * (p + j / 2) / 10 for j in range(9)] for p in (4, 0, 2)]])
    torch.testing.assert_close(got, expected)
    # the same table in `learned` gives the unscaled rows
    plain = ENCODINGS.get("learned")(shape(d_model=9), max_len=5)
    plain.load_state_dict(enc.state_dict())
    pos = torch.tensor([[0, 1, 2, 3, 4]])
    torch.testing.assert_close(code(enc, pos.tolist()), 3 * code(plain, pos.tolist()))
    assert enc.table.weight.requires_grad


def test_learned_scaled_check_fits():
    enc = ENCODINGS.build({"name": "learned_scaled", "max_len": 10}, shape())
    assert enc.max_positions() == 10
    for needed in (1, 10):
        enc.check_fits(needed)
    for needed in (11, 500):
        with pytest.raises(ConfigError, match="encoding=learned_scaled represents 10 positions"):
            enc.check_fits(needed)
    with pytest.raises(ConfigError, match="max_len"):
        ENCODINGS.build({"name": "learned_scaled", "max_len": 0}, shape())


# ---- scaled_sinusoidal ----------------------------------------------------------------------------
def test_scaled_sinusoidal_hand_computed():
    """s * [sin p, cos p, sin(p/100), cos(p/100)] for d = 4 (theta_1 = 10000^(-2/4) = 1/100)."""
    enc = ENCODINGS.get("scaled_sinusoidal")(shape(d_model=4), init_scale=0.5)
    expected = torch.tensor([[[0.5 * f(p / r) for r in (1, 100) for f in (math.sin, math.cos)] for p in (0, 1, 7)]])
    torch.testing.assert_close(code(enc, [[0, 1, 7]]), expected, atol=1e-6, rtol=0)
    with torch.no_grad():
        enc.scale.fill_(-3.0)
    torch.testing.assert_close(code(enc, [[0, 1, 7]]), -6 * expected, atol=1e-5, rtol=0)


def test_scaled_sinusoidal_scalar_is_learned_and_starts_as_sinusoidal():
    enc = ENCODINGS.build({"name": "scaled_sinusoidal"}, shape(d_model=6))
    assert [n for n, _ in enc.named_parameters()] == ["scale"] and enc.scale.numel() == 1
    pos = [[0, 2, 5, 40]]
    # default init_scale = 1: identical to `sinusoidal` at step 0
    plain = ENCODINGS.build({"name": "sinusoidal"}, shape(d_model=6))
    torch.testing.assert_close(code(enc, pos), code(plain, pos))
    # d(sum of the code)/ds = sum of the unscaled codes
    code(enc, pos).sum().backward()
    expected = sum(sum(vaswani(p, 6)) for p in pos[0])
    assert enc.scale.grad.item() == pytest.approx(expected, abs=1e-4)


def test_scaled_sinusoidal_matches_x_transformers():
    """x-transformers' ScaledSinusoidalEmbedding(dim): [sin | cos] concatenated (feature i and
    i + d/2 share frequency theta^(-2i/d), as posbench's 2i and 2i+1), times a scalar initialised to
    dim ** -0.5. Aligned by setting posbench's init_scale to dim ** -0.5 and reordering posbench's
    interleaved features as [0, 2, 4, ..., 1, 3, 5, ...]."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    d = 16
    theirs_module = xt.ScaledSinusoidalEmbedding(d)
    assert theirs_module.scale.item() == pytest.approx(d**-0.5)
    pos = torch.tensor([0, 1, 2, 5, 17, 100, 333])
    theirs = theirs_module(torch.zeros(1, len(pos), d), pos=pos.float())
    enc = ENCODINGS.get("scaled_sinusoidal")(shape(d_model=d), init_scale=d**-0.5)
    ours = code(enc, [pos.tolist()])[0]
    interleaved_to_concatenated = list(range(0, d, 2)) + list(range(1, d, 2))
    torch.testing.assert_close(ours[:, interleaved_to_concatenated], theirs, atol=1e-5, rtol=0)
    assert not torch.allclose(ours, theirs, atol=1e-3), "the layouts differ without the permutation"


# ---- compressed -----------------------------------------------------------------------------------
def test_compressed_hand_computed():
    """PE(floor(p / 3)) for d = 4: p = 0, 1, 2 -> PE(0); 3, 4, 5 -> PE(1); 6, 7 -> PE(2)."""
    enc = ENCODINGS.get("compressed")(shape(d_model=4), ratio=3)
    blocks = [0, 0, 0, 1, 1, 1, 2, 2]
    expected = torch.tensor([[[f(q / r) for r in (1, 100) for f in (math.sin, math.cos)] for q in blocks]])
    torch.testing.assert_close(code(enc, [list(range(8))]), expected, atol=1e-6, rtol=0)
    # floor, not truncation toward zero: -1 and -3 are in block -1, -4 in block -2
    torch.testing.assert_close(
        code(enc, [[-1, -3, -4]])[0], torch.tensor([vaswani(-1, 4), vaswani(-1, 4), vaswani(-2, 4)]), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("ratio", [2, 4])
def test_compressed_shares_codes_within_blocks_only(ratio):
    enc = ENCODINGS.get("compressed")(shape(d_model=16), ratio=ratio)
    pos = list(range(0, 6 * ratio))
    codes = code(enc, [pos])[0]
    for a in pos:
        for b in pos:
            same = torch.equal(codes[a], codes[b])
            assert same == (a // ratio == b // ratio), (a, b, same)


def test_compressed_ratio_one_is_sinusoidal_and_bad_ratios_refused():
    pos = [[0, 1, 2, 9, 55]]
    one = ENCODINGS.get("compressed")(shape(), ratio=1)
    torch.testing.assert_close(code(one, pos), code(ENCODINGS.get("sinusoidal")(shape()), pos))
    for bad, problem in ((0, "must be >= 1"), (-2, "must be >= 1"), (2.5, "is not an integer"), (True, "is not an integer")):
        with pytest.raises(ConfigError, match=f"encoding.ratio=.* {problem}"):
            ENCODINGS.build({"name": "compressed", "ratio": bad}, shape())
    with pytest.raises(ConfigError, match="encoding=compressed needs an even model.d_model"):
        ENCODINGS.get("compressed")(shape(d_model=7))


# ---- adaptive -------------------------------------------------------------------------------------
def test_adaptive_hand_computed():
    """W [p / max_len, p / L] with W rows [1, 0], [0, 1], [2, -1]; max_len 10, L 4."""
    enc = ENCODINGS.get("adaptive")(shape(d_model=3), max_len=10)
    with torch.no_grad():
        enc.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]]))
    x = torch.full((2, 4, 3), 0.5)
    got = enc.embed(x, torch.tensor([[0, 1, 2, 3]]))
    expected = torch.tensor([[0.5 + p / 10, 0.5 + p / 4, 0.5 + 2 * p / 10 - p / 4] for p in range(4)]).expand(2, 4, 3)
    torch.testing.assert_close(got, expected)


def test_adaptive_uses_both_features():
    enc = ENCODINGS.get("adaptive")(shape(d_model=8), max_len=16)
    pos = [[0, 1, 2, 3]]
    # same positions, different sequence lengths (x.shape[1]): p / L changes, so the code changes
    short = code(enc, pos, length=4)
    longer = code(enc, [[0, 1, 2, 3, 4, 5, 6, 7]], length=8)[:, :4]
    assert not torch.allclose(short[:, 1:], longer[:, 1:], atol=1e-4)
    torch.testing.assert_close(short[:, 0], torch.zeros(1, 8))  # p = 0 is the zero code (no bias)
    with torch.no_grad():
        weight = enc.proj.weight.clone()
        enc.proj.weight[:, 0] = 0.0  # only p / L left: position 2 of 4 == position 4 of 8
    half = code(enc, [[0, 1, 2, 3, 4, 5, 6, 7]], length=8)[0, 4]
    torch.testing.assert_close(code(enc, pos)[0, 2], half)
    assert not torch.allclose(code(enc, pos)[0, 2], code(enc, pos)[0, 3])
    with torch.no_grad():
        enc.proj.weight.copy_(weight)
        enc.proj.weight[:, 1] = 0.0  # only p / max_len left: the length no longer matters
    torch.testing.assert_close(code(enc, pos, length=4)[:, 1:], code(enc, [[0, 1, 2, 3, 4, 5, 6, 7]], length=8)[:, 1:4])
    assert not torch.allclose(code(enc, pos)[0, 1], code(enc, pos)[0, 2])


def test_adaptive_has_no_position_limit():
    """p / max_len exceeds 1 past max_len: the code keeps growing linearly, nothing is refused."""
    enc = ENCODINGS.build({"name": "adaptive", "max_len": 8}, shape(d_model=4))
    assert enc.max_positions() is None
    enc.check_fits(10**6)
    far = code(enc, [[8, 16, 32]], length=3)  # features [1, 8/3], [2, 16/3], [4, 32/3]: proportional to p
    torch.testing.assert_close(far[0, 1], 2 * far[0, 0])
    torch.testing.assert_close(far[0, 2], 4 * far[0, 0])
    w = enc.proj.weight.detach()
    torch.testing.assert_close(far[0, 2], w[:, 0] * 4 + w[:, 1] * 32 / 3)
    for bad in (0, -5):
        with pytest.raises(ConfigError, match=f"encoding.max_len={bad} must be > 0"):
            ENCODINGS.build({"name": "adaptive", "max_len": bad}, shape())
