"""Tests for PoPE (Gopalakrishnan et al. 2025, posbench/encodings/pope.py) and LieRE (Ostmeier et al.
2024, posbench/encodings/liere.py).

Expected values come from the papers' formulas written out here in float64 (PoPE's
``sum_c softplus(q_c) softplus(k_c) cos((s - t) theta_c + delta_c)``; LieRE's ``R(p) = expm(p A)``
through an independent Taylor series; RoFormer eq. 34's adjacent-pair rotation), from the reference
package ``pope-pytorch`` (module ``PoPE_pytorch``: ``PoPE``, ``apply_pope_to_qk`` and its attention
``flash_attn_with_pope``, whose softmax scale is 1/sqrt(head_dim)), or by hand; nothing is copied
from a run of posbench. Registry-wide properties (shift invariance as declared, YAML keys, every
model family, pictures) are covered by tests/test_encodings.py, tests/test_zoo.py and tests/test_plot.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.models.attention import attend

VOCAB = 11


def shape(d_model: int = 32, heads: int = 4, layers: int = 2, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=causal)


def build(section: dict, attn: AttentionShape | None = None) -> PositionalEncoding:
    return ENCODINGS.build(section, attn or shape())


def scaled_logits(enc: PositionalEncoding, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> Tensor:
    """What posbench's attention computes from the hook: q' . k' / sqrt(q'.shape[-1])."""
    q2, k2 = enc.rotate(q, k, q_pos, k_pos, layer)
    return (q2 @ k2.transpose(-2, -1)) * q2.shape[-1] ** -0.5


# ==== PoPE ==========================================================================================
def reference_logits(q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, bias: Tensor, rotated: int, base: float) -> Tensor:
    """pope-pytorch's logits for queries at ``q_pos`` and keys at ``k_pos`` (any positions, each
    ``[L]``): its codes (``apply_pope_to_qk``) times its attention's scale, 1/sqrt(head_dim)."""
    ref = pytest.importorskip("PoPE_pytorch")
    pope = ref.PoPE(rotated, heads=bias.shape[0], theta=base)
    with torch.no_grad():
        pope.bias.copy_(bias)
    q_codes, _ = ref.apply_pope_to_qk(pope(q_pos.float()), q, q)
    _, k_codes = ref.apply_pope_to_qk(pope(k_pos.float()), k, k)
    return (q_codes @ k_codes.transpose(-2, -1)) * q.shape[-1] ** -0.5


@pytest.mark.parametrize(
    "heads, head_dim, q_len, k_len, options",
    [
        (4, 8, 10, 10, {}),
        (2, 16, 5, 12, {"bias_init": "uniform"}),
        (3, 4, 7, 7, {"bias_init": "uniform", "base": 500.0}),
        (1, 6, 9, 4, {"rotary_fraction": 0.5, "bias_init": "uniform"}),
        (2, 8, 6, 6, {"learned_bias": False}),
    ],
)
def test_pope_logits_equal_pope_pytorch(heads, head_dim, q_len, k_len, options):
    """Queries and keys at different positions (and lengths): posbench's scaled logits equal the
    reference's codes times its scale 1/sqrt(head_dim); PoPE's partial rotation as the reference's
    ``PoPE(d_rot)`` on d features (the rest pass through)."""
    torch.manual_seed(0)
    enc = build({"name": "pope", **options}, shape(heads * head_dim, heads))
    q, k = torch.randn(2, heads, q_len, head_dim), torch.randn(2, heads, k_len, head_dim)
    q_pos, k_pos = torch.arange(q_len)[None] * 3 + 5, torch.arange(k_len)[None] * 2
    bias = enc.delta() if enc.phase_bias is not None else torch.zeros(heads, enc.rotated)
    if options.get("bias_init") == "uniform":
        assert float(bias.detach().min()) < -0.5, "uniform init draws delta from [-2 pi, 0]"
    ours = scaled_logits(enc, q, k, q_pos, k_pos)
    theirs = reference_logits(q, k, q_pos[0], k_pos[0], bias, enc.rotated, enc.base)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads, head_dim, length", [(4, 8, 12), (2, 32, 5)])
def test_pope_attention_equals_the_reference_attention(heads, head_dim, length, causal):
    """posbench's ``attend`` (fused SDPA at 1/sqrt(2d) on the codes) gives the output of the
    reference's attention (``flash_attn_with_pope``, non-fused, scale 1/sqrt(d)), causal and not."""
    ref = pytest.importorskip("PoPE_pytorch")
    torch.manual_seed(1)
    enc = build({"name": "pope", "bias_init": "uniform"}, shape(heads * head_dim, heads, causal=causal))
    pope = ref.PoPE(head_dim, heads=heads)
    with torch.no_grad():
        pope.bias.copy_(enc.phase_bias)
    q, k, v = (torch.randn(2, heads, length, head_dim) for _ in range(3))
    pos = torch.arange(length)[None]
    with torch.no_grad():
        ours = attend(q, k, v, enc, pos, pos, causal, 0, 0.0)
        theirs = ref.flash_attn_with_pope(q, k, v, pos_emb=pope(length), causal=causal, fused=False)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_pope_one_feature_hand_computed():
    """Head dimension 1 (theta_0 = base^0 = 1), two heads: logit = softplus(a) softplus(b)
    cos((s - t) + delta) / sqrt(1), delta clamped to [-2 pi, 0] (head 1's +0.5 acts as 0)."""
    enc = build({"name": "pope"}, shape(d_model=2, heads=2))
    with torch.no_grad():
        enc.phase_bias.copy_(torch.tensor([[-1.3], [0.5]]))
    a, b = [0.7, -1.2], [-0.4, 2.0]
    q = torch.tensor(a).view(1, 2, 1, 1)
    k = torch.tensor(b).view(1, 2, 1, 1)
    t, s = 3.0, 7.5
    got = scaled_logits(enc, q, k, torch.tensor([[t]]), torch.tensor([[s]]))

    def softplus(x):
        return math.log1p(math.exp(x))

    expected = [softplus(a[0]) * softplus(b[0]) * math.cos((s - t) - 1.3), softplus(a[1]) * softplus(b[1]) * math.cos(s - t)]
    torch.testing.assert_close(got.flatten(), torch.tensor(expected), atol=1e-6, rtol=0)
    codes_q, codes_k = enc.rotate(q, k, torch.tensor([[t]]), torch.tensor([[s]]))
    assert codes_q.shape[-1] == codes_k.shape[-1] == 2, "one complex feature = two real ones"


def test_pope_phase_bias_is_clamped_and_learns_from_its_bound():
    """delta = clamp(bias, -2 pi, 0); its gradient passes inside the interval, and at or beyond a
    bound only when a descent step (bias - lr * grad) moves back inside, so that a zero start learns."""
    enc = build({"name": "pope"}, shape(d_model=6, heads=1))
    with torch.no_grad():
        enc.phase_bias.copy_(torch.tensor([[0.0, 0.0, -7.0, -7.0, -3.0, 0.4]]))
    delta = enc.delta()
    torch.testing.assert_close(delta.detach(), torch.tensor([[0.0, 0.0, -2 * math.pi, -2 * math.pi, -3.0, 0.0]]))
    delta.backward(torch.tensor([[1.0, -1.0, 1.0, -1.0, 1.0, 2.0]]))
    assert enc.phase_bias.grad.tolist() == [[1.0, 0.0, 0.0, -1.0, 1.0, 2.0]]


def test_pope_frequencies_one_per_feature():
    """theta_c = base^(-c / d) for c = 0 .. d-1: d frequencies for a d-dimensional head (RoPE has d/2)."""
    enc = build({"name": "pope", "base": 100.0}, shape(d_model=16, heads=4))
    torch.testing.assert_close(enc.inv_freq, torch.tensor([100.0 ** (-c / 4) for c in range(4)]))


def test_pope_logits_depend_only_on_the_offset():
    """Shifting every query and key position by the same amount (integer or fractional) changes no
    logit; a shift of the keys alone does (PoPE is relative, not position-free)."""
    torch.manual_seed(2)
    enc = build({"name": "pope", "bias_init": "uniform"})
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 9, 8)
    q_pos, k_pos = torch.tensor([[0.0, 1.5, 2, 4, 8, 9]]), torch.arange(9.0)[None]
    base = scaled_logits(enc, q, k, q_pos, k_pos)
    for shift in (7, 0.25, 300):
        torch.testing.assert_close(scaled_logits(enc, q, k, q_pos + shift, k_pos + shift), base, atol=1e-4, rtol=0)
    assert (scaled_logits(enc, q, k, q_pos, k_pos + 1) - base).abs().max() > 1e-2


def test_pope_without_position_keeps_the_content_term():
    """PE off: every pair at offset 0, sum_c softplus(q_c) softplus(k_c) cos(delta_c) / sqrt(d);
    the trained phase bias is read live (not copied); not NoPE (whose logit is q . k / sqrt(d))."""
    torch.manual_seed(3)
    enc = build({"name": "pope", "bias_init": "uniform"}, shape(d_model=8, heads=2))
    off = enc.without_position()
    assert off.name != "none" and not any(True for _ in off.parameters())
    q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)
    q_pos, k_pos = torch.tensor([[4, 0, 9]]), torch.arange(5)[None] * 3

    def expected() -> Tensor:
        delta = enc.phase_bias.detach().double().clamp(-2 * math.pi, 0)  # [heads, d]
        mq, mk = F.softplus(q.double()), F.softplus(k.double())
        return torch.einsum("bhic,bhjc,hc->bhij", mq, mk, delta.cos()) / 2.0  # sqrt(4)

    torch.testing.assert_close(scaled_logits(off, q, k, q_pos, k_pos).double(), expected(), atol=1e-5, rtol=0)
    same = torch.zeros(1, 5, dtype=torch.long)
    torch.testing.assert_close(scaled_logits(off, q, k, q_pos, k_pos), scaled_logits(enc, q, k[:, :, :5], same[:, :3], same))
    with torch.no_grad():
        enc.phase_bias.sub_(0.5)
    torch.testing.assert_close(scaled_logits(off, q, k, q_pos, k_pos).double(), expected(), atol=1e-5, rtol=0)
    nope = (q @ k.transpose(-2, -1)) / 2.0
    assert (scaled_logits(off, q, k, q_pos, k_pos) - nope).abs().max() > 0.1


def test_pope_model_trains_and_runs_with_position_off():
    """A decoder with PoPE: a few AdamW steps lower the loss and move the phase bias; with the
    encoding switched off (``encoding_off``) the model runs on PoPE's position-free version."""
    torch.manual_seed(0)
    net = MODELS.get("decoder")(VOCAB, {"name": "pope"}, d_model=32, layers=2, heads=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    src = torch.randint(0, VOCAB - 1, (16, 6))
    losses = []
    for _ in range(6):
        loss, _ = net.loss(src, src.flip(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0], losses
    assert net.encoding.phase_bias.grad.abs().sum() > 0
    with torch.no_grad(), net.encoding_off():
        assert net.encoding.name == "pope (position off)"
        off_loss, _ = net.loss(src, src.flip(1))
    assert math.isfinite(off_loss.item()) and net.encoding.name == "pope"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rotary_fraction": 0.01}, r"encoding=pope: rotary_fraction=0.01 acts on round\(0.01 \* 8\) = 0 features"),
        ({"rotary_fraction": 1.5}, r"encoding.rotary_fraction=1.5 must be <= 1"),
        ({"base": 1.0}, r"encoding.base=1.0 must be > 1"),
        ({"bias_init": "random"}, r"encoding.bias_init=random must be one of zeros, uniform"),
        ({"bias_init": "uniform", "learned_bias": False}, r"encoding=pope: bias_init=uniform is read only with learned_bias=true"),
    ],
)
def test_pope_invalid_options(options, message):
    with pytest.raises(ConfigError, match=message):
        build({"name": "pope", **options}, shape(d_model=16, heads=2))


# ---- combinations ----------------------------------------------------------------------------------
def test_combo_pope_alibi_is_pope_logits_plus_alibi_bias():
    torch.manual_seed(4)
    enc = build({"name": "combo", "parts": [{"name": "pope", "bias_init": "uniform"}, "alibi"]})
    pope, alibi = enc.parts
    q, k, v = (torch.randn(2, 4, 7, 8) for _ in range(3))
    pos = torch.arange(7)[None]
    with torch.no_grad():
        got = attend(q, k, v, enc, pos, pos, False, 0, 0.0)
        weights = torch.softmax(scaled_logits(pope, q, k, pos, pos) + alibi.bias(pos, pos, 0), dim=-1)
    torch.testing.assert_close(got, weights @ v, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("parts", [["pope", "rope"], ["rope", "pope"], ["liere", "pope"]])
def test_combo_refuses_pope_with_another_rotation(parts):
    with pytest.raises(ConfigError, match=r"^encoding=combo cannot combine pope with (rope|liere): pope replaces") as refusal:
        build({"name": "combo", "parts": parts})
    assert "\n" not in str(refusal.value)


@pytest.mark.parametrize("base", ["pope", "liere"])
def test_randomized_wraps_pope_and_liere(base):
    """``randomized`` hands its sorted random positions to the base's rotate, unchanged."""
    torch.manual_seed(5)
    enc = build({"name": "randomized", "base": base, "max_random_len": 64})
    assert enc.shift_invariant and enc.replaces_queries_keys == (base == "pope")
    q, k = torch.randn(1, 4, 5, 8), torch.randn(1, 4, 5, 8)
    pos = enc.positions(torch.arange(5)[None])
    torch.testing.assert_close(scaled_logits(enc, q, k, pos, pos), scaled_logits(enc.base, q, k, pos, pos))


# ==== LieRE =========================================================================================
def expm_taylor(a: Tensor, terms: int = 60) -> Tensor:
    """The matrix exponential as its power series, in float64 (accurate for |a| up to ~10)."""
    a = a.double()
    out = torch.eye(a.shape[-1], dtype=torch.float64).expand_as(a).clone()
    term = out.clone()
    for n in range(1, terms):
        term = term @ a / n
        out = out + term
    return out


def interleaved_rope(x: Tensor, pos: Tensor, base: float = 10000.0) -> Tensor:
    """RoFormer eq. 34: pair (x_2i, x_2i+1) rotated by p * base^(-2i / d), element by element in
    float64; ``x [B, H, L, d]``, ``pos [1, L]`` (any real numbers)."""
    d = x.shape[-1]
    out = x.double().clone()
    for i in range(d // 2):
        angle = (pos.double() * base ** (-2 * i / d))[:, None, :]
        c, s = angle.cos(), angle.sin()
        a, b = x[..., 2 * i].double(), x[..., 2 * i + 1].double()
        out[..., 2 * i], out[..., 2 * i + 1] = a * c - b * s, a * s + b * c
    return out


def randomise(enc: nn.Module, std: float = 0.3, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)


@pytest.mark.parametrize("block_size", [None, 2, 4])
def test_liere_with_rope_generators_is_rope(block_size):
    """init=rope: block-diagonal 2x2 generators [[0, -theta_i], [theta_i, 0]] on adjacent pairs give
    RoFormer's interleaved rotation exactly, and posbench's half-split RoPE after permuting features
    (2i <- i, 2i+1 <- i + d/2), at integer and fractional positions, in every layer and head."""
    torch.manual_seed(6)
    enc = build({"name": "liere", "init": "rope", "block_size": block_size})
    rope = build({"name": "rope"})
    d = 8
    perm = [f for i in range(d // 2) for f in (i, i + d // 2)]
    q, k = torch.randn(2, 4, 9, d), torch.randn(2, 4, 9, d)
    for pos in (torch.arange(9)[None] + 3, torch.linspace(0, 20, 9)[None]):
        for layer in (0, 1):
            lq, lk = enc.rotate(q, k, pos, pos, layer)
            torch.testing.assert_close(lq.double(), interleaved_rope(q, pos), atol=1e-5, rtol=0)
            torch.testing.assert_close(lk.double(), interleaved_rope(k, pos), atol=1e-5, rtol=0)
            rq, _ = rope.rotate(q[..., [perm.index(f) for f in range(d)]], k, pos, pos)
            torch.testing.assert_close(lq, rq[..., perm], atol=1e-5, rtol=0)


@pytest.mark.parametrize("block_size", [None, 2, 4])
def test_liere_rotations_are_orthogonal_and_match_the_exponential(block_size):
    """R(p) = expm(p A) with A = triu(U, 1) - triu(U, 1)^T: skew-symmetric A, orthogonal R with
    determinant 1 (norms preserved), equal to the power series of p A; R(0) = I."""
    enc = build({"name": "liere", "block_size": block_size})
    randomise(enc)
    generators = enc.generators(1)
    torch.testing.assert_close(generators, -generators.transpose(-2, -1))
    points = torch.tensor([[0.0], [1.0], [2.5], [-4.0], [9.0]])
    rotations = enc.rotations(points, 1).double()  # [N, heads, blocks, b, b]
    eye = torch.eye(rotations.shape[-1], dtype=torch.float64)
    torch.testing.assert_close(rotations @ rotations.transpose(-2, -1), eye.expand_as(rotations), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(rotations.shape[:-2], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotations[0], eye.expand_as(rotations[0]))
    expected = expm_taylor(points.double().view(-1, 1, 1, 1, 1) * generators[:, 0].double())
    torch.testing.assert_close(rotations, expected, atol=1e-6, rtol=0)
    x = torch.randn(2, 4, 5, 8)
    rotated, _ = enc.rotate(x, x, torch.arange(5)[None] * 7, torch.arange(5)[None] * 7, 1)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_head, per_layer", [(True, True), (False, False), (True, False)])
def test_liere_logits_are_q_expm_offset_a_k(per_head, per_layer):
    """Queries and keys at different, fractional positions and lengths: logit_ij =
    q_i^T expm((s_j - p_i) A) k_j / sqrt(d) per head and block (one generator commutes with itself),
    so shifting every position changes nothing."""
    torch.manual_seed(7)
    enc = build({"name": "liere", "per_head": per_head, "per_layer": per_layer})
    randomise(enc, seed=1)
    q, k = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 4, 8)
    q_pos, k_pos = torch.tensor([[0.5, 3.0, 7.0]]), torch.tensor([[2.0, 4.25, 5.0, 9.0]])
    layer = 1
    got = scaled_logits(enc, q, k, q_pos, k_pos, layer)
    generator = enc.generators(layer)[:, 0, 0].double()  # [heads or 1, d, d] (one dense block, 1D)
    offsets = (k_pos[0][None, :] - q_pos[0][:, None]).double()  # [Lq, Lk]
    rotation = expm_taylor(offsets[..., None, None, None] * generator)  # [Lq, Lk, heads or 1, d, d]
    expected = torch.einsum("bhic,ijhce,bhje->bhij", q.double(), rotation.expand(-1, -1, 4, -1, -1), k.double()) / math.sqrt(8)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    for shift in (11, 0.75, 500):
        torch.testing.assert_close(scaled_logits(enc, q, k, q_pos + shift, k_pos + shift, layer), got, atol=1e-4, rtol=0)
    heads_differ = (enc.generators(layer) - enc.generators(layer)[:1]).abs().max().item() > 0
    layers_differ = (enc.generators(0) - enc.generators(1)).abs().max().item() > 0
    assert heads_differ == per_head and layers_differ == per_layer


def test_liere_parameters_follow_the_options():
    """Generators per layer and per head (the reference's rotary_embedding_per_layer / _per_head),
    blocks of ``block_size``; uniform init in [0, pi / block_size) by default, [0, init_range) when given."""
    attn = shape(d_model=32, heads=4, layers=3)
    assert build({"name": "liere"}, attn).generator_params.shape == (3, 4, 1, 1, 8, 8)
    assert build({"name": "liere", "per_layer": False, "block_size": 2}, attn).generator_params.shape == (1, 4, 1, 4, 2, 2)
    assert build({"name": "liere", "per_head": False, "block_size": 4}, attn).generator_params.shape == (3, 1, 1, 2, 4, 4)
    for options, bound in (({}, math.pi / 8), ({"block_size": 2}, math.pi / 2), ({"init_range": 0.05}, 0.05)):
        values = build({"name": "liere", **options}, attn).generator_params
        values = values.detach()
        assert float(values.min()) >= 0 and bound * 0.8 < float(values.max()) < bound, (options, float(values.max()))


@pytest.mark.parametrize("per_layer, expected_calls", [(True, 3), (False, 1)])
def test_liere_exponentiates_once_per_layer_or_once_per_forward(per_layer, expected_calls, monkeypatch):
    """One matrix_exp per layer and forward on the distinct positions (per-layer generators), one
    per forward when the layers share them; two training steps in a row (backward after each) work
    and reach the generators."""
    calls = []
    real = torch.linalg.matrix_exp

    def counted(a):
        calls.append(tuple(a.shape))
        return real(a)

    monkeypatch.setattr(torch.linalg, "matrix_exp", counted)
    torch.manual_seed(0)
    net = MODELS.get("decoder")(VOCAB, {"name": "liere", "per_layer": per_layer}, d_model=32, layers=3, heads=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    src = torch.randint(0, VOCAB - 1, (8, 6))
    for _ in range(2):
        calls.clear()
        loss, _ = net.loss(src, src.flip(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert len(calls) == expected_calls, calls
        assert calls[0][0] == 12, "one rotation per distinct position (decoder: 6 source + 6 target tokens)"
        assert net.encoding.generator_params.grad.abs().sum() > 0


def test_liere_shared_rotations_are_not_reused_by_the_next_forward():
    """per_layer false: layer 1 reuses layer 0's rotations of the same forward; a new forward (layer
    0 again, same position tensor, unchanged generators) computes them anew, so two forwards with a
    backward each (gradient accumulation) work and accumulate twice the gradient."""
    torch.manual_seed(8)
    enc = build({"name": "liere", "per_layer": False})
    q, k = torch.randn(1, 4, 5, 8), torch.randn(1, 4, 5, 8)
    pos = torch.arange(5)[None]
    grads = []
    for _ in range(2):
        loss = sum(scaled_logits(enc, q, k, pos, pos, layer).square().sum() for layer in (0, 1))
        loss.backward()
        grads.append(enc.generator_params.grad.clone())
    torch.testing.assert_close(grads[1], 2 * grads[0])


def test_liere_without_position_is_nope():
    enc = build({"name": "liere"})
    assert enc.without_position().name == "none"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"block_size": 3}, r"encoding=liere: block_size=3 must divide the head dimension \(model.d_model / model.heads = 8\)"),
        ({"block_size": 1}, r"encoding.block_size=1 must be >= 2"),
        ({"init": "rope", "block_size": 8}, None),
        ({"init": "identity"}, r"encoding.init=identity must be one of uniform, rope"),
        ({"init_range": 0.0}, r"encoding.init_range=0.0 must be > 0"),
        ({"init": "rope", "init_range": 0.5}, r"encoding=liere: init_range=0.5 is read only with init=uniform; leave it at null"),
        ({"base": 500.0}, r"encoding=liere: base=500.0 is read only with init=rope; leave it at 10000.0"),
    ],
)
def test_liere_invalid_options(options, message):
    with pytest.raises(ConfigError, match=r"encoding=liere rotates pairs of features at least; the head dimension .* is 1"):
        build({"name": "liere"}, shape(d_model=4, heads=4))
    if message is None:
        build({"name": "liere", **options})
        with pytest.raises(ConfigError, match=r"encoding=liere: init=rope needs blocks of an even size .* got 3"):
            build({"name": "liere", **options, "block_size": 3}, shape(d_model=12, heads=2))
        return
    with pytest.raises(ConfigError, match=message):
        build({"name": "liere", **options})


# ==== the command line ==============================================================================
@pytest.mark.parametrize(
    "args, expected",
    [
        (["encoding=pope", "encoding.bias_init=random"], "encoding.bias_init=random must be one of zeros, uniform"),
        (["encoding=pope", "encoding.learned_bias=maybe"], "encoding.learned_bias=maybe is not true or false"),
        (["encoding=liere", "encoding.block_size=3"], "encoding=liere: block_size=3 must divide the head dimension"),
        (["encoding=liere", "encoding.init_range=-1"], "encoding.init_range=-1 must be > 0"),
    ],
)
def test_bad_option_is_one_line_from_the_command_line(args, expected, refusal):
    assert expected in refusal(args)


def test_liere_beside_another_rotation_is_declared_and_is_not_shift_invariant():
    """LieRE's learned rotation does not commute with RoPE's: [liere, rope] logits change under a
    shift, and the combination says so; [liere, alibi] stays shift-invariant."""
    attn = AttentionShape(d_model=16, heads=2, layers=1, causal=False)
    torch.manual_seed(0)
    both = ENCODINGS.build({"name": "combo", "parts": ["liere", "rope"]}, attn)
    assert not both.shift_invariant
    assert ENCODINGS.build({"name": "combo", "parts": ["liere", "alibi"]}, attn).shift_invariant
    assert ENCODINGS.build({"name": "combo", "parts": ["rope", "alibi"]}, attn).shift_invariant
    wrapped = {"name": "randomized", "base": "liere", "max_random_len": 64}
    assert not ENCODINGS.build({"name": "combo", "parts": [wrapped, "rope"]}, attn).shift_invariant  # through the wrapper
    q, k = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    pos = torch.arange(6)[None]
    logits = [(lambda r: r[0] @ r[1].transpose(-2, -1))(both.rotate(q, k, pos + shift, pos + shift)) for shift in (0, 5)]
    assert (logits[0] - logits[1]).abs().max() > 1e-3


def test_liere2d_rotates_each_patch_by_the_exponential_of_its_row_and_column_generators():
    """R(r, c) = expm(r A_1 + c A_2) per head, computed here with a float64 matrix_exp of
    the skew-symmetric parts; the class token (NO_POSITION) is not rotated; the two generators do
    not commute, so moving every patch by the same (a, b) changes the logits."""
    from posbench.encodings.base import grid_coordinates

    torch.manual_seed(0)
    attn = AttentionShape(d_model=16, heads=2, layers=1, causal=False, grid=3, prefix=1)
    enc = ENCODINGS.build({"name": "liere2d"}, attn)
    coords = grid_coordinates(3, prefix=1)  # [1, 10, 2], the class token at (-1, -1)
    q = torch.randn(1, 2, 10, 8)
    rotated, _ = enc.rotate(q, q, coords, coords)
    upper = enc.generator_params[0].double().triu(1)  # [heads, axes, blocks, b, b]
    generators = upper - upper.transpose(-2, -1)
    for token in range(10):
        r, c = coords[0, token].tolist()
        if token == 0:
            torch.testing.assert_close(rotated[:, :, 0], q[:, :, 0])  # the class token keeps its query
            continue
        rotation = torch.linalg.matrix_exp(r * generators[:, 0, 0] + c * generators[:, 1, 0])  # [heads, 8, 8]
        expected = torch.einsum("hij,bhj->bhi", rotation, q[:, :, token].double())
        torch.testing.assert_close(rotated[:, :, token].double(), expected, atol=1e-5, rtol=1e-5)
    a1, a2 = generators[0, 0, 0], generators[0, 1, 0]
    assert (a1 @ a2 - a2 @ a1).abs().max() > 1e-3  # they do not commute
    assert not enc.shift_invariant and enc.axes == 2
