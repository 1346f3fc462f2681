"""Bias-family encodings: ALiBi with learned slopes, KERPLE, FIRE, dynamic position bias.

Expected values are computed here from the papers' formulas (written out with ``math``) or by
hand, with parameters fixed by the test; nothing is copied from a run of the code. Where
x-transformers implements the same formula, it is the oracle (conventions aligned in comments);
FIRE is also checked against the paper's reference pseudo-code, rewritten here.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError


def shape(heads: int = 2, causal: bool = False, d_model: int | None = None, layers: int = 2) -> AttentionShape:
    return AttentionShape(d_model=d_model or 4 * heads, heads=heads, layers=layers, causal=causal)


def fill(param: Tensor, values) -> None:
    """Overwrite a parameter in place with the given values (same shape)."""
    with torch.no_grad():
        param.copy_(torch.as_tensor(values, dtype=param.dtype).reshape(param.shape))


def paper_slopes(n: int) -> list[float]:
    """Press et al. §3 for a power of two n: 2^(-8/n), 2^(-16/n), ..., 2^(-8)."""
    return [2.0 ** (-8.0 * (k + 1) / n) for k in range(n)]


BIAS_ENCODINGS = [
    ("alibi", {"learned_slopes": True}),
    ("kerple", {"kernel": "log"}),
    ("kerple", {"kernel": "power"}),
    ("fire", {}),
    ("dynamic_bias", {"log_distance": True}),
]


# ---- every encoding of this file ------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("name, options", BIAS_ENCODINGS)
def test_bias_shape_and_differentiable(name, options, causal):
    """[B or 1, heads, Lq, Lk] for unequal query/key lengths and per-row positions; gradients reach
    every parameter that can act on visible logits."""
    torch.manual_seed(0)
    enc = ENCODINGS.build({"name": name, **options}, shape(heads=3, causal=causal))
    q_pos, k_pos = torch.tensor([[4, 5, 9]]), torch.tensor([[0, 1, 2, 3, 4]])
    assert enc.bias(q_pos, k_pos, 1).shape == (1, 3, 3, 5)
    q_pos, k_pos = torch.tensor([[4, 5, 9], [1, 2, 3]]), torch.tensor([[0, 1, 2, 3, 4], [0, 2, 4, 6, 8]])
    bias = enc.bias(q_pos, k_pos, 1)
    assert bias.shape == (2, 3, 3, 5) and torch.isfinite(bias).all()
    # a loss on the logits attention can see (in a decoder: keys at or left of the query)
    visible = (q_pos[:, :, None] >= k_pos[:, None, :])[:, None] if causal else torch.ones_like(bias, dtype=torch.bool)
    (bias * visible).square().sum().backward()
    for n, p in enc.named_parameters():
        if n.startswith("mlps.0."):  # fire, dynamic_bias: layer 0's MLP takes no part in layer 1
            assert p.grad is None, n
        elif n in ("c", "log_threshold"):  # fire: one entry per layer
            assert p.grad[1] != 0 and p.grad[0] == 0, n
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {n}"


# ---- 1. ALiBi with learned slopes ---------------------------------------------------------------
def test_alibi_default_has_fixed_slopes():
    """The default stays the paper's fixed ALiBi: no trainable parameter at all."""
    enc = ENCODINGS.build({"name": "alibi"}, shape(heads=4))
    assert list(enc.parameters()) == []


@pytest.mark.parametrize("causal", [False, True])
def test_alibi_learned_slopes_start_at_paper_values(causal):
    """Learned slopes are log-parameterised and start at the paper's geometric slopes, so the initial
    bias equals fixed ALiBi's everywhere (both halves in bidirectional mode)."""
    heads = 8
    learned = ENCODINGS.get("alibi")(shape(heads=heads, causal=causal), learned_slopes=True)
    fixed = ENCODINGS.get("alibi")(shape(heads=heads, causal=causal))
    torch.testing.assert_close(learned.log_left.exp().flatten(), torch.tensor(paper_slopes(heads)))
    assert [n for n, _ in learned.named_parameters()] == (["log_left"] if causal else ["log_left", "log_right"])
    if not causal:  # the right-hand slopes start as the same slopes in reverse order
        torch.testing.assert_close(learned.log_right.exp().flatten(), torch.tensor(paper_slopes(heads)[::-1]))
    pos = torch.arange(10)[None] + 3
    torch.testing.assert_close(learned.bias(pos, pos, 0), fixed.bias(pos, pos, 0))


def test_alibi_learned_slopes_hand_computed_and_positive():
    """With log-slopes set by hand: bias = -m_left (i - j) to the left, -m_right (j - i) to the right;
    any real log-slope gives a positive slope."""
    enc = ENCODINGS.get("alibi")(shape(heads=2), learned_slopes=True)
    fill(enc.log_left, [math.log(0.5), math.log(3.0)])
    fill(enc.log_right, [math.log(2.0), -50.0])
    pos = torch.tensor([[0, 1, 2]])
    bias = enc.bias(pos, pos, 0)[0]
    expected = torch.tensor(
        [
            [[0.0, -2.0, -4.0], [-0.5, 0.0, -2.0], [-1.0, -0.5, 0.0]],  # head 0: 0.5 left, 2 right
            [[0.0, -math.exp(-50), -2 * math.exp(-50)], [-3.0, 0.0, -math.exp(-50)], [-6.0, -3.0, 0.0]],
        ]
    )
    torch.testing.assert_close(bias, expected)
    assert (enc.slopes()[1] > 0).all()


@pytest.mark.parametrize("causal", [False, True])
def test_alibi_learned_slopes_get_gradients(causal):
    """d(sum of visible bias)/d(log m_h) = -m_h * (sum of visible distances) for the left slopes."""
    enc = ENCODINGS.get("alibi")(shape(heads=4, causal=causal), learned_slopes=True)
    length = 5
    pos = torch.arange(length)[None]
    bias = enc.bias(pos, pos, 0)[0]
    lower = torch.ones(length, length).tril()  # keys at or left of the query
    (bias * lower).sum().backward()
    left_distances = sum(i - j for i in range(length) for j in range(i + 1))  # 20
    expected = torch.tensor([-m * left_distances for m in paper_slopes(4)])
    torch.testing.assert_close(enc.log_left.grad.flatten(), expected)
    if not causal:
        assert enc.log_right.grad.abs().sum() == 0  # only the lower triangle entered the loss
        (enc.bias(pos, pos, 0)[0] * (1 - lower)).sum().backward()
        assert (enc.log_right.grad < 0).all()


def test_alibi_learned_slopes_match_x_transformers():
    """x-transformers' AlibiPositionalBias(heads, slopes=...) computes -|j - i| * slope as [h, i, j]:
    with our learned (moved) slopes passed in, it equals posbench's bias on the causal part.
    (x-transformers 2.x no longer ships LearnedAlibiPositionalBias, which in 1.x exponentiated learned
    log-slopes exactly like posbench.)"""
    xt = pytest.importorskip("x_transformers.x_transformers")
    heads, length = 6, 9
    enc = ENCODINGS.get("alibi")(shape(heads=heads, causal=True), learned_slopes=True)
    fill(enc.log_left, enc.log_left.detach() + torch.linspace(-1, 1, heads)[:, None, None])
    slopes = enc.log_left.detach().exp().flatten().tolist()
    theirs = xt.AlibiPositionalBias(heads=heads, slopes=slopes)(length, length)
    pos = torch.arange(length)[None]
    ours = enc.bias(pos, pos, 0)[0].detach()
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[:, lower], theirs[:, lower].to(ours.dtype))


# ---- 2. KERPLE -----------------------------------------------------------------------------------
def kerple_with(kernel: str, r1: list[float], r2: list[float], causal: bool = False):
    enc = ENCODINGS.get("kerple")(shape(heads=len(r1), causal=causal), kernel=kernel)
    fill(enc.log_r1, [math.log(r) for r in r1])
    fill(enc.raw_r2, [math.log(r) if kernel == "log" else math.log((r / 2) / (1 - r / 2)) for r in r2])
    return enc


def test_kerple_log_hand_computed():
    """-r1 log(1 + r2 |i - j|): head 0 (r1=1, r2=1), head 1 (r1=2, r2=0.5), positions 0..2."""
    enc = kerple_with("log", r1=[1.0, 2.0], r2=[1.0, 0.5])
    pos = torch.tensor([[0, 1, 2]])
    bias = enc.bias(pos, pos, 0)[0]
    a1, a2 = -math.log(2), -math.log(3)  # head 0 at distances 1, 2
    b1, b2 = -2 * math.log(1.5), -2 * math.log(2)  # head 1 at distances 1, 2
    expected = torch.tensor(
        [
            [[0, a1, a2], [a1, 0, a1], [a2, a1, 0]],
            [[0, b1, b2], [b1, 0, b1], [b2, b1, 0]],
        ]
    )
    torch.testing.assert_close(bias, expected)


def test_kerple_power_hand_computed():
    """-r1 |i - j|^r2: head 0 (r1=1, r2=1) is ALiBi-like, head 1 (r1=0.5, r2=1.5)."""
    enc = kerple_with("power", r1=[1.0, 0.5], r2=[1.0, 1.5])
    pos = torch.tensor([[5, 6, 7, 8]])  # distances 0..3
    bias = enc.bias(pos, pos, 0)[0]
    for i in range(4):
        for j in range(4):
            d = abs(i - j)
            assert bias[0, i, j].item() == pytest.approx(-d, abs=1e-6)
            assert bias[1, i, j].item() == pytest.approx(-0.5 * d**1.5, abs=1e-5)
    # 0.5 * 3^1.5 = 2.598..., by hand
    assert bias[1, 3, 0].item() == pytest.approx(-2.5981, abs=1e-4)


@pytest.mark.parametrize("kernel", ["log", "power"])
def test_kerple_parameters_stay_in_range(kernel):
    """Any real raw parameters give r1 > 0, r2 > 0 (and r2 < 2 for power): the bias is <= 0, zero on
    the diagonal, non-increasing in |i - j| and finite, even for extreme raw values."""
    enc = ENCODINGS.get("kerple")(shape(heads=6), kernel=kernel)
    fill(enc.log_r1, [-30.0, -3.0, 0.0, 1.0, 3.0, 5.0])
    fill(enc.raw_r2, [-30.0, -3.0, 0.0, 1.0, 3.0, 30.0])
    r1, r2 = enc.params()
    assert (r1 > 0).all() and (r2 > 0).all()
    if kernel == "power":
        assert (r2 <= 2).all()
    pos = torch.arange(40)[None]
    bias = enc.bias(pos, pos, 0)[0]
    assert torch.isfinite(bias).all() and (bias <= 0).all()
    assert (bias.diagonal(dim1=-2, dim2=-1) == 0).all()
    row = bias[:, -1, :].flip(-1)  # distances 0, 1, 2, ... from the last query
    assert (row[:, 1:] <= row[:, :-1]).all()


@pytest.mark.parametrize("kernel, r1_max, r2_max", [("log", 2.0, 1.0), ("power", 1.0, 2.0)])
def test_kerple_initialisation_follows_reference_code(kernel, r1_max, r2_max):
    """Reference code (chijames/KERPLE): log kernel r1 ~ U(0, 2), r2 ~ U(0, 1); power kernel
    r1 ~ U(0, 1), r2 ~ U(0, 2); values below 0.01 are clamped to 0.01."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("kerple")(shape(heads=64), kernel=kernel)
    for r, top in zip(enc.params(), (r1_max, r2_max)):
        assert r.min() >= 0.01 - 1e-6 and r.max() <= top
        assert r.max() > 0.75 * top and r.min() < 0.25 * top  # spread over the interval, not a constant
        assert r.shape == (64, 1, 1)


@pytest.mark.parametrize("kernel", ["log", "power"])
def test_kerple_initial_draws_of_zero_are_clamped(kernel, monkeypatch):
    """A uniform draw of exactly 0 becomes the reference code's clamp value 0.01 (so log/logit stay finite)."""
    monkeypatch.setattr(torch, "rand", lambda *size, **kw: torch.zeros(*size))
    enc = ENCODINGS.get("kerple")(shape(heads=3), kernel=kernel)
    for r in enc.params():
        torch.testing.assert_close(r, torch.full((3, 1, 1), 0.01))


def test_kerple_is_symmetric_and_shared_across_layers():
    """The kernel is a function of |i - j|: bias[i, j] == bias[j, i] (blind to left/right, by the
    paper's definition); one set of parameters serves every layer and both attention modes."""
    torch.manual_seed(0)
    for kernel in ("log", "power"):
        enc = ENCODINGS.get("kerple")(shape(heads=4), kernel=kernel)
        pos = torch.tensor([[0, 2, 3, 7, 20]])
        bias = enc.bias(pos, pos, 0)
        torch.testing.assert_close(bias, bias.transpose(-1, -2))
        torch.testing.assert_close(enc.bias(pos, pos, 1), bias)


def test_kerple_rejects_unknown_kernel():
    with pytest.raises(ConfigError, match="encoding.kernel=gaussian must be one of log, power"):
        ENCODINGS.build({"name": "kerple", "kernel": "gaussian"}, shape())


# ---- 3. FIRE -------------------------------------------------------------------------------------
def fire_with(c: float, threshold: float, causal: bool = False, **options):
    enc = ENCODINGS.get("fire")(shape(heads=2, causal=causal), **options)
    fill(enc.c, [c] * enc.c.numel())
    fill(enc.log_threshold, [math.log(threshold)] * enc.log_threshold.numel())
    return enc


def test_fire_paper_initialisation():
    """Paper / reference code: c = 0.1, L = 512, MLP 1 -> 32 -> heads with ReLU, one per layer."""
    enc = ENCODINGS.build({"name": "fire"}, shape(heads=3, layers=4))
    torch.testing.assert_close(enc.c.detach(), torch.full((4,), 0.1))
    torch.testing.assert_close(enc.log_threshold.detach().exp(), torch.full((4,), 512.0))
    assert len(enc.mlps) == 4
    first, act, last = enc.mlps[0]
    assert (first.in_features, first.out_features, last.out_features) == (1, 32, 3)
    assert isinstance(act, nn.ReLU)


def test_fire_normalised_distance_hand_computed():
    """c = 1, L = 2: psi(x) = log(1 + x); the normaliser is psi(max(2, i)), i.e. log 3 for queries
    0, 1, 2, then log 4 and log 5 for queries 3 and 4 (the threshold behaviour)."""
    enc = fire_with(c=1.0, threshold=2.0)
    pos = torch.arange(5)[None]
    x = enc.normalised_distance(pos, pos, 0)[0]
    log = math.log
    assert x[1, 0].item() == pytest.approx(log(2) / log(3), rel=1e-5)  # 0.6309
    assert x[2, 0].item() == pytest.approx(log(3) / log(3), rel=1e-5)  # 1
    assert x[3, 1].item() == pytest.approx(log(3) / log(4), rel=1e-5)  # 0.7925
    assert x[4, 0].item() == pytest.approx(log(5) / log(5), rel=1e-5)  # 1
    assert x[4, 3].item() == pytest.approx(log(2) / log(5), rel=1e-5)  # 0.4307
    assert (x.diagonal() == 0).all()
    # bidirectional convention: keys to the right get the negated psi, same normaliser
    assert x[0, 2].item() == pytest.approx(-log(3) / log(3), rel=1e-5)
    assert x[3, 4].item() == pytest.approx(-log(2) / log(4), rel=1e-5)
    # a threshold above every query position: one normaliser psi(L) = log 11 for all rows
    x = fire_with(c=1.0, threshold=10.0).normalised_distance(pos, pos, 0)[0]
    assert x[4, 0].item() == pytest.approx(log(5) / log(11), rel=1e-5)
    assert x[1, 0].item() == pytest.approx(log(2) / log(11), rel=1e-5)
    # c scales inside the log: c = 0.5, L = 4, query 4, key 0: log(1 + 2) / log(1 + 2) = 1; key 2: log 2 / log 3
    x = fire_with(c=0.5, threshold=4.0).normalised_distance(pos, pos, 0)[0]
    assert x[4, 0].item() == pytest.approx(1.0, rel=1e-5)
    assert x[4, 2].item() == pytest.approx(log(2) / log(3), rel=1e-5)


def test_fire_bias_is_the_mlp_of_the_normalised_distance():
    """A hand-set MLP with hidden width 2: f(x) = [relu(x) + 0.5, 2 relu(-x)]."""
    enc = fire_with(c=1.0, threshold=2.0, hidden=2)
    first, _, last = enc.mlps[0]
    fill(first.weight, [[1.0], [-1.0]])
    fill(first.bias, [0.0, 0.0])
    fill(last.weight, [[1.0, 0.0], [0.0, 2.0]])
    fill(last.bias, [0.5, 0.0])
    pos = torch.arange(5)[None]
    bias = enc.bias(pos, pos, 0)[0]
    log = math.log
    assert bias[0, 3, 1].item() == pytest.approx(log(3) / log(4) + 0.5, rel=1e-5)
    assert bias[1, 3, 1].item() == pytest.approx(0.0, abs=1e-6)
    assert bias[0, 1, 3].item() == pytest.approx(0.5, rel=1e-5)  # key to the right: relu(negative) = 0
    assert bias[1, 1, 3].item() == pytest.approx(2 * log(3) / log(3), rel=1e-5)


def reference_fire(mlp: nn.Module, c: float, init_L: float, L_multiplier: float, seq_length: int, eps: float = 1e-6):
    """The FIRE paper's reference pseudo-code (appendix), rewritten: causal positions 0..n-1, shape
    [1, heads, n, n]; psi on |i - j|, normaliser psi(max(i, |L_multiplier * init_L|)) + eps."""
    positions = torch.arange(seq_length, dtype=torch.float)
    rel_distance = positions[:, None] - positions[None, :]
    threshold = abs(L_multiplier * init_L)
    pos_normalizer = torch.max(positions, torch.tensor(threshold))[:, None]
    rel_distance = torch.log(torch.abs(c * rel_distance) + 1)
    pos_normalizer = torch.log(torch.abs(c * pos_normalizer) + 1) + eps
    return mlp((rel_distance / pos_normalizer).unsqueeze(-1)).unsqueeze(0).permute(0, 3, 1, 2)


@pytest.mark.parametrize("threshold", [512.0, 6.0])
def test_fire_matches_paper_reference_code_on_causal_pairs(threshold):
    """Same MLP weights, c = 0.3 and L = threshold (reference: init_L = 512 times a multiplier):
    equal on every j <= i, for a threshold above and below the sequence length."""
    torch.manual_seed(0)
    enc = fire_with(c=0.3, threshold=threshold, causal=True)
    length = 20
    pos = torch.arange(length)[None]
    ours = enc.bias(pos, pos, 1)
    theirs = reference_fire(enc.mlps[1], c=0.3, init_L=512.0, L_multiplier=threshold / 512.0, seq_length=length)
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[..., lower], theirs[..., lower], rtol=1e-5, atol=1e-6)


def test_fire_shift_invariant_only_below_threshold():
    """Below the threshold the normaliser is constant, so the bias depends on i - j only; once query
    positions pass L a common shift changes it (FIRE declares shift_invariant = False)."""
    torch.manual_seed(0)
    enc = fire_with(c=0.5, threshold=100.0)
    pos = torch.arange(12)[None]
    with torch.no_grad():
        torch.testing.assert_close(enc.bias(pos + 30, pos + 30, 0), enc.bias(pos, pos, 0))
        assert not torch.allclose(enc.bias(pos + 300, pos + 300, 0), enc.bias(pos, pos, 0), atol=1e-3)
    assert ENCODINGS.get("fire").shift_invariant is False


def test_fire_per_layer_or_shared():
    """One FIRE per layer by default (different biases per layer); shared: true uses one for all."""
    torch.manual_seed(0)
    pos = torch.arange(6)[None]
    enc = ENCODINGS.get("fire")(shape(heads=2, layers=3))
    assert len(enc.mlps) == 3 and enc.c.shape == (3,)
    assert not torch.allclose(enc.bias(pos, pos, 0), enc.bias(pos, pos, 2))
    enc = ENCODINGS.get("fire")(shape(heads=2, layers=3), shared=True)
    assert len(enc.mlps) == 1 and enc.c.shape == (1,)
    torch.testing.assert_close(enc.bias(pos, pos, 0), enc.bias(pos, pos, 2))


def test_fire_threshold_stays_positive_and_config_errors():
    """L = exp(log L) > 0 for any real parameter; invalid options are ConfigErrors."""
    enc = fire_with(c=0.1, threshold=1e-30)
    pos = torch.arange(5)[None]
    assert torch.isfinite(enc.bias(pos, pos, 0)).all()
    with pytest.raises(ConfigError, match="encoding.hidden=0 must be >= 1"):
        ENCODINGS.build({"name": "fire", "hidden": 0}, shape())
    with pytest.raises(ConfigError, match="encoding.init_L=-1.0 must be > 0"):
        ENCODINGS.build({"name": "fire", "init_L": -1.0}, shape())


# ---- 4. dynamic position bias --------------------------------------------------------------------
def test_dynamic_bias_hand_computed_tiny_mlp():
    """depth 1, hidden 1, one head: MLP(d) = 2 * silu(d) + 1 with silu(d) = d / (1 + e^-d)."""
    enc = ENCODINGS.get("dynamic_bias")(shape(heads=1, d_model=4), depth=1, hidden=1)
    first, _, last = enc.mlps[0]
    fill(first.weight, [[1.0]])
    fill(first.bias, [0.0])
    fill(last.weight, [[2.0]])
    fill(last.bias, [1.0])
    pos = torch.tensor([[0, 1, 3]])
    bias = enc.bias(pos, pos, 0)[0, 0]

    def expected(d: float) -> float:
        return 2 * d / (1 + math.exp(-d)) + 1

    for i, pi in enumerate([0, 1, 3]):
        for j, pj in enumerate([0, 1, 3]):
            assert bias[i, j].item() == pytest.approx(expected(pi - pj), rel=1e-5), (i, j)
    assert bias[2, 0].item() == pytest.approx(2 * 3 / (1 + math.exp(-3)) + 1, rel=1e-5)  # 6.715


@pytest.mark.parametrize("log_distance", [False, True])
def test_dynamic_bias_is_mlp_of_distance_gathered(log_distance):
    """bias[b, h, i, j] = MLP(g(p_i - p_j))[h], element by element, for arbitrary positions per row."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("dynamic_bias")(shape(heads=3, d_model=32, layers=2), log_distance=log_distance, depth=2)
    q_pos = torch.tensor([[0, 3, 4, 10], [7, 8, 9, 10]])
    k_pos = torch.tensor([[0, 1, 4, 9, 10], [0, 2, 4, 6, 8]])
    bias = enc.bias(q_pos, k_pos, 1)
    for b in range(2):
        for i, pi in enumerate(q_pos[b].tolist()):
            for j, pj in enumerate(k_pos[b].tolist()):
                d = float(pi - pj)
                g = math.copysign(math.log(1 + abs(d)), d) if log_distance else d
                torch.testing.assert_close(bias[b, :, i, j], enc.mlps[1](torch.tensor([[g]]))[0])


def test_dynamic_bias_evaluates_only_distinct_distances():
    """The MLP sees each distinct distance once: 2L - 1 inputs for consecutive positions."""
    enc = ENCODINGS.get("dynamic_bias")(shape(heads=2))
    rows = []
    enc.mlps[0][0].register_forward_hook(lambda module, inputs, output: rows.append(inputs[0].shape[0]))
    length = 16
    enc.bias(torch.arange(length)[None], torch.arange(length)[None], 0)
    assert rows == [2 * length - 1]
    pos = torch.tensor([[0, 10, 20, 30], [1, 2, 3, 4]])
    enc.bias(pos, pos, 0)  # distances {0, +-10, +-20, +-30} U {0, +-1, +-2, +-3}
    assert rows[-1] == 13


def test_dynamic_bias_defaults_and_per_layer():
    """hidden defaults to d_model // 4 and depth to 2; each layer has its own MLP."""
    torch.manual_seed(0)
    enc = ENCODINGS.build({"name": "dynamic_bias", "hidden": None}, shape(heads=4, d_model=64, layers=3))
    assert len(enc.mlps) == 3
    linears = [m for m in enc.mlps[0] if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1, 16), (16, 16), (16, 4)]
    pos = torch.arange(5)[None]
    assert not torch.allclose(enc.bias(pos, pos, 0), enc.bias(pos, pos, 2))
    with pytest.raises(ConfigError, match="encoding.depth=0 must be >= 1"):
        ENCODINGS.build({"name": "dynamic_bias", "depth": 0}, shape())


@pytest.mark.parametrize("log_distance", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_dynamic_bias_matches_x_transformers(depth, log_distance):
    """x-transformers' DynamicPositionBias(dim, heads, depth, log_distance) is Linear(1, dim), SiLU,
    (depth - 1) x [Linear(dim, dim), SiLU], Linear(dim, heads) on pos = i - j (query minus key:
    ``arange(j - i, j) - arange(j)``), returned as [h, i, j]. Same layout as posbench: copy the
    weights in order and compare for positions 0..n-1."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    heads, hidden, length = 4, 8, 11
    enc = ENCODINGS.get("dynamic_bias")(
        shape(heads=heads, d_model=32, layers=1), log_distance=log_distance, depth=depth, hidden=hidden
    )
    theirs = xt.DynamicPositionBias(dim=hidden, heads=heads, depth=depth, log_distance=log_distance)
    ours_linear = [m for m in enc.mlps[0] if isinstance(m, nn.Linear)]
    their_linear = [m for m in theirs.modules() if isinstance(m, nn.Linear)]
    assert len(ours_linear) == len(their_linear) == depth + 1
    with torch.no_grad():
        for a, b in zip(ours_linear, their_linear):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
    pos = torch.arange(length)[None]
    torch.testing.assert_close(enc.bias(pos, pos, 0)[0], theirs(length, length), rtol=1e-5, atol=1e-6)
