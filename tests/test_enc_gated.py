"""Encodings that gate or renormalise attention instead of adding a position term: FoX's forget gates
(``fox``, Lin et al. 2025), stick-breaking attention (``stickbreaking``, Tan et al. 2025) and DAPE's
MLP over logits and bias (``dape``, Zheng et al. 2024).

Expected values are computed here from the papers' formulas (written out with ``math``, or as naive
loops in float64) or by hand, with parameters fixed by the test; nothing is copied from a run of the
code. FoX is also checked against x-transformers' ``DataDependentAlibi`` with the same weights.
Registry-wide properties (YAML keys, declared shift invariance, every model family, pictures) are
covered by tests/test_encodings.py, tests/test_models.py, tests/test_zoo.py and tests/test_plot.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.models.attention import attention_weights, causal_mask

VOCAB = 11


def shape(d_model: int = 16, heads: int = 2, layers: int = 2, causal: bool = True) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=causal)


def fill(param: Tensor, values) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(values, dtype=param.dtype).reshape(param.shape))


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def model(encoding: dict, family: str = "decoder", seed: int = 0):
    torch.manual_seed(seed)
    net = MODELS.get(family)(VOCAB, encoding, d_model=32, layers=2, heads=4)
    return net.eval()


def causal_logits(q_len: int, k_len: int, generator: torch.Generator, scale: float = 2.0) -> Tensor:
    """Random logits ``[2, 3, Lq, Lk]`` with the causal mask's -inf, as ``normalize`` receives them."""
    z = torch.randn(2, 3, q_len, k_len, generator=generator) * scale
    return z + causal_mask(q_len, k_len, z.device, z.dtype)


# ---- 1. FoX ------------------------------------------------------------------------------------------
def test_fox_hand_computed_causal():
    """Lin et al. 2025: D[i, j] = sum_{l=j+1}^{i} log f_l with f_t = sigmoid(w . x_t + b); one head,
    w = (1, 0), b = 0.5: the second feature of x is ignored."""
    enc = ENCODINGS.get("fox")(shape(d_model=2, heads=1, layers=1))
    fill(enc.gates[0].weight, [[1.0, 0.0]])
    fill(enc.gates[0].bias, [0.5])
    a = [0.3, -1.2, 2.0, 0.0]
    x = torch.tensor([[[v, 7.0] for v in a]])
    bias = enc.data_bias(x, None, None, 0)[0, 0]
    log_f = [math.log(sigmoid(v + 0.5)) for v in a]
    for i in range(4):
        for j in range(4):
            expected = sum(log_f[j + 1 : i + 1]) if j <= i else 0.0  # above the diagonal: masked, returned 0
            assert bias[i, j].item() == pytest.approx(expected, abs=1e-6), (i, j)
    # D[2, 0] written out: log sigmoid(-0.7) + log sigmoid(2.5)
    assert bias[2, 0].item() == pytest.approx(math.log(sigmoid(-0.7)) + math.log(sigmoid(2.5)), abs=1e-6)


def test_fox_hand_computed_bidirectional():
    """x-transformers' bidirectional extension: the right-hand gates g (second half of the
    projection) give D[i, j] = sum_{l=i+1}^{j} log g_l for keys to the right."""
    enc = ENCODINGS.get("fox")(shape(d_model=2, heads=1, layers=1, causal=False))
    assert enc.gates[0].out_features == 2
    fill(enc.gates[0].weight, [[1.0, 0.0], [0.0, 1.0]])
    fill(enc.gates[0].bias, [0.0, -1.0])
    left, right = [0.5, -0.5, 1.5], [2.0, 0.0, -3.0]
    x = torch.tensor([list(zip(left, right))])
    bias = enc.data_bias(x, None, None, 0)[0, 0]
    log_f = [math.log(sigmoid(v)) for v in left]
    log_g = [math.log(sigmoid(v - 1.0)) for v in right]
    for i in range(3):
        for j in range(3):
            expected = sum(log_f[j + 1 : i + 1]) if j <= i else sum(log_g[i + 1 : j + 1])
            assert bias[i, j].item() == pytest.approx(expected, abs=1e-6), (i, j)


@pytest.mark.parametrize("causal", [True, False])
def test_fox_matches_x_transformers_data_dependent_alibi(causal):
    """x-transformers 2.31 ``DataDependentAlibi(dim, heads, causal, bias_init, post_log_scale)`` with
    our gate weights copied in: the same bias (causal: on the visible keys; it leaves c_i - c_j above
    the diagonal, posbench 0; both are masked)."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    dim, heads, length = 12, 3, 9
    enc = ENCODINGS.get("fox")(shape(d_model=dim, heads=heads, causal=causal), bias_init=5.0, post_log_scale=0.7)
    theirs = xt.DataDependentAlibi(dim, heads, causal=causal, bias_init=5.0, post_log_scale=0.7)
    linear = theirs.to_forget_gates[0]
    assert torch.equal(linear.bias, enc.gates[1].bias.detach())  # same initial bias
    with torch.no_grad():
        enc.gates[1].weight.normal_()  # weights large enough that the gates vary along the sequence
        enc.gates[1].bias.normal_(std=0.5)
        linear.weight.copy_(enc.gates[1].weight)
        linear.bias.copy_(enc.gates[1].bias)
    x = torch.randn(2, length, dim)
    ours = enc.data_bias(x, None, None, 1).detach()
    expected = theirs(x).detach()
    assert ours.shape == expected.shape == (2, heads, length, length)
    if causal:
        lower = torch.ones(length, length, dtype=torch.bool).tril()
        torch.testing.assert_close(ours[..., lower], expected[..., lower], atol=1e-5, rtol=1e-5)
        assert (ours[..., ~lower] == 0).all()
    else:
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    assert ours.abs().max() > 1  # not a trivially small bias


def test_fox_has_a_gate_per_layer_with_its_bias_init_and_keeps_the_fused_path():
    enc = ENCODINGS.get("fox")(shape(d_model=16, heads=4, layers=3), bias_init=2.5)
    assert len(enc.gates) == 3 and all(gate.out_features == 4 for gate in enc.gates)
    assert all(torch.equal(gate.bias, torch.full((4,), 2.5)) for gate in enc.gates)
    assert not enc.explicit_attention and not enc.replaces_softmax
    x = torch.randn(1, 6, 16)
    a, b = enc.data_bias(x, None, None, 0), enc.data_bias(x, None, None, 2)
    assert not torch.allclose(a, b)  # each layer its own gates
    # gradients reach the gates of the layer used, and only those
    a.sum().backward()
    assert enc.gates[0].weight.grad.abs().sum() > 0 and enc.gates[1].weight.grad is None
    # the default is the authors' initial bias: 0, a forget gate of 1/2
    default = ENCODINGS.build({"name": "fox"}, shape(layers=1))
    assert default.gates[0].bias.abs().max() == 0


def test_fox_decoder_never_sees_the_future_and_ignores_positions():
    """A later token changes no earlier output; the gates read tokens, not positions: shifting every
    position leaves the outputs unchanged, in a decoder and in an encoder."""
    net = model({"name": "fox", "bias_init": 1.0})
    tokens = torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(1))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % VOCAB
    with torch.no_grad():
        a, b = net.net(tokens), net.net(changed)
        assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5) and not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-4)
        shifted = net.net(tokens, pos=torch.arange(10)[None] + 37)
        assert torch.allclose(shifted, a, atol=1e-6)
    encoder = model({"name": "fox"}, "encoder")
    with torch.no_grad():
        plain = encoder.net(tokens)
        assert torch.allclose(encoder.net(tokens, pos=torch.arange(10)[None] + 5), plain, atol=1e-6)
        with encoder.encoding_off():  # PE off: every gate open, NoPE
            assert encoder.encoding.name == "none"
            assert not torch.allclose(encoder.net(tokens), plain, atol=1e-4)


def test_fox_is_the_attention_bias():
    """Through the model's attention: the recorded weights are softmax(q k / sqrt(d) + D) with D
    recomputed from the layer's input."""
    from posbench.models.attention import recording_attention

    net = model({"name": "fox"}, "decoder")
    tokens = torch.randint(0, VOCAB, (2, 7))
    captured = {}
    block = net.net.blocks[1]
    hook = block.attn.register_forward_pre_hook(lambda module, args: captured.update(x=args[0]))
    with torch.no_grad(), recording_attention(net) as records:
        net.net(tokens)
    hook.remove()
    x = captured["x"]
    q, k, _ = block.attn.qkv(x).view(2, 7, 3, 4, -1).permute(2, 0, 3, 1, 4).unbind(0)
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + net.encoding.data_bias(x, None, None, 1)
    expected = torch.softmax(logits + causal_mask(7, 7, x.device, x.dtype), dim=-1)
    torch.testing.assert_close(records["net.blocks.1.attn"][0], expected, atol=1e-5, rtol=1e-5)


# ---- 2. stick-breaking -----------------------------------------------------------------------------
def naive_stick_breaking(z: Tensor, remainder: bool = True, attend_current: bool = False) -> Tensor:
    """Tan et al. 2025 as a loop in float64: A_ij = beta_ij prod_{j<k<i} (1 - beta_ik) over the keys
    before the query (and the query's own key first with ``attend_current``); the leftover
    prod (1 - beta) on the query's own key with ``remainder``."""
    z = z.double()
    q_len, k_len = z.shape[-2:]
    out = torch.zeros_like(z).reshape(-1, q_len, k_len)
    for block, logits in zip(out, z.reshape(-1, q_len, k_len)):
        for i in range(q_len):
            own = i + k_len - q_len
            stick = 1.0
            for j in range(own if attend_current else own - 1, -1, -1):  # nearest key first
                beta = 1.0 / (1.0 + math.exp(-logits[i, j].item())) if logits[i, j] > -math.inf else 0.0
                block[i, j] = beta * stick
                stick *= 1.0 - beta
            if remainder:
                block[i, own] += stick
    return out.reshape(z.shape)


def test_stickbreaking_hand_computed_3x3():
    """beta = sigmoid(z): z = 0 -> 1/2, log 3 -> 3/4, -log 3 -> 1/4. Row 2: A_21 = 1/4, A_20 = 3/4 * (1 - 1/4)
    = 9/16, leftover (1 - 3/4)(1 - 1/4) = 3/16 on the query's own key."""
    enc = ENCODINGS.get("stickbreaking")(shape())
    inf = float("-inf")
    l3 = math.log(3.0)
    z = torch.tensor([[[[5.0, inf, inf], [0.0, -2.0, inf], [l3, -l3, 9.0]]]])  # diagonal: never a beta
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [9 / 16, 1 / 4, 3 / 16]])
    torch.testing.assert_close(enc.normalize(z, 0)[0, 0], expected)
    dropped = ENCODINGS.get("stickbreaking")(shape(), remainder="none").normalize(z, 0)[0, 0]
    torch.testing.assert_close(dropped, torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [9 / 16, 1 / 4, 0.0]]))
    # attend_current: the own key breaks first (z_22 = 0 -> 1/2), then key 1 (1/4 of the rest), key 0 (3/4 of the rest)
    z[0, 0, 2, 2] = 0.0
    current = ENCODINGS.get("stickbreaking")(shape(), remainder="none", attend_current=True).normalize(z, 0)[0, 0, 2]
    torch.testing.assert_close(current, torch.tensor([0.75 * 0.5 * 0.75, 0.25 * 0.5, 0.5]))


@pytest.mark.parametrize("remainder", ["current", "none"])
@pytest.mark.parametrize("attend_current", [False, True])
def test_stickbreaking_matches_the_naive_product_and_is_a_subprobability(remainder, attend_current):
    gen = torch.Generator().manual_seed(0)
    enc = ENCODINGS.get("stickbreaking")(shape(), remainder=remainder, attend_current=attend_current)
    for q_len, k_len in ((7, 7), (3, 6)):
        z = causal_logits(q_len, k_len, gen)
        weights = enc.normalize(z, 0)
        expected = naive_stick_breaking(z, remainder == "current", attend_current)
        torch.testing.assert_close(weights.double(), expected, atol=1e-6, rtol=1e-5)
        assert (weights >= 0).all() and (weights <= 1).all()
        sums = weights.sum(-1)
        assert (sums <= 1 + 1e-6).all()
        if remainder == "current":
            torch.testing.assert_close(sums, torch.ones_like(sums))
        else:
            assert (sums < 1).all()
        assert (weights[torch.isinf(z)] == 0).all()  # masked keys: exactly 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stickbreaking_is_stable_for_large_logits(dtype):
    """Logits of +-50 (and their gradients) stay finite; z = +50 on the nearest key takes the whole
    stick, z = -50 everywhere leaves it to the query's own token. Through attention's explicit path
    with bf16 queries and keys too."""
    enc = ENCODINGS.get("stickbreaking")(shape())
    length = 6
    for value, nearest in ((50.0, 1.0), (-50.0, 0.0)):
        z = torch.full((1, 1, length, length), value, dtype=dtype) + causal_mask(length, length, "cpu", dtype)
        z.requires_grad_()
        weights = enc.normalize(z, 0)
        assert weights.dtype == dtype and torch.isfinite(weights).all()
        weights.float().pow(2).sum().backward()
        assert torch.isfinite(z.grad).all()
        for i in range(1, length):
            assert weights[0, 0, i, i - 1].item() == pytest.approx(nearest, abs=1e-6)
            assert weights[0, 0, i, i].item() == pytest.approx(1.0 - nearest, abs=1e-6)
    gen = torch.Generator().manual_seed(3)
    q, k = (torch.randn(2, 2, 12, 8, generator=gen).mul(40).to(torch.bfloat16) for _ in range(2))
    weights = attention_weights(q, k, causal_mask(12, 12, "cpu", torch.bfloat16), 0.0, lambda z: enc.normalize(z, 0))
    assert torch.isfinite(weights.float()).all() and (weights.float().sum(-1) - 1).abs().max() < 1e-2


def test_stickbreaking_decoder_has_no_causal_leak_and_no_position():
    net = model({"name": "stickbreaking"})
    assert net.encoding.explicit_attention and net.encoding.replaces_softmax
    tokens = torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(2))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % VOCAB
    with torch.no_grad():
        a, b = net.net(tokens), net.net(changed)
        assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5) and not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-4)
        assert torch.allclose(net.net(tokens, pos=torch.arange(10)[None] + 11), a, atol=1e-6)
        with net.encoding_off():  # PE off: the softmax of the same logits
            assert net.encoding.name == "none" and not torch.allclose(net.net(tokens), a, atol=1e-4)


def test_stickbreaking_is_refused_in_bidirectional_attention():
    with pytest.raises(ConfigError, match=r"^encoding=stickbreaking is defined only for causal attention"):
        ENCODINGS.build({"name": "stickbreaking"}, shape(causal=False))


# ---- 3. DAPE ------------------------------------------------------------------------------------------
def set_mlp(enc, layer: int, w1, b1, w2, b2) -> None:
    first, _, last = enc.mlps[layer]
    fill(first.weight, w1)
    fill(first.bias, b1)
    fill(last.weight, w2)
    fill(last.bias, b2)


def leaky(v: float) -> float:
    return v if v >= 0 else 0.01 * v


def test_dape_hand_computed_with_fixed_mlp():
    """Zheng et al. 2024 / the reference AliBi_C: score = B + W2 LeakyReLU(W1 [A_0, A_1, B_0, B_1] + b1) + b2
    per pair; two heads, ALiBi slopes 1/16 and 1/256, hidden width 2, written out with math."""
    enc = ENCODINGS.get("dape")(shape(d_model=4, heads=2, layers=1), base="alibi", hidden=2)
    w1 = [[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -1.0, 3.0]]
    b1 = [0.1, -0.2]
    w2 = [[2.0, -1.0], [0.5, 0.25]]
    b2 = [0.0, 1.0]
    set_mlp(enc, 0, w1, b1, w2, b2)
    q = torch.tensor([[[[1.0, 2.0]], [[0.5, -1.0]]]])  # [1, heads, 1 query, 2]
    k = torch.tensor([[[[3.0, -1.0], [0.0, 1.0], [2.0, 2.0]], [[1.0, 1.0], [-2.0, 0.5], [0.0, 0.0]]]])  # 3 keys
    q_pos, k_pos = torch.tensor([[5]]), torch.tensor([[0, 3, 5]])
    score = enc.score(q, k, q_pos, k_pos, 0)[0, :, 0]
    slopes = [1 / 16, 1 / 256]
    for j, kp in enumerate((0, 3, 5)):
        content = [sum(a * b for a, b in zip(q[0, h, 0].tolist(), k[0, h, j].tolist())) / math.sqrt(2) for h in range(2)]
        bias = [-m * (5 - kp) for m in slopes]
        features = content + bias
        hidden = [leaky(sum(w * f for w, f in zip(row, features)) + b) for row, b in zip(w1, b1)]
        out = [sum(w * v for w, v in zip(row, hidden)) + b for row, b in zip(w2, b2)]
        for h in range(2):
            assert score[h, j].item() == pytest.approx(bias[h] + out[h], abs=1e-5), (h, j)


@pytest.mark.parametrize("base", ["alibi", "kerple", "fire"])
def test_dape_with_zero_output_layer_is_its_base(base):
    """f = 0 (last Linear zeroed): a decoder with dape(base) computes exactly what the base alone does."""
    with_dape = model({"name": "dape", "base": base})
    alone = model({"name": base})
    with torch.no_grad():
        for mlp in with_dape.encoding.mlps:
            mlp[-1].weight.zero_()
            mlp[-1].bias.zero_()
        for p in with_dape.encoding.base.parameters():
            p.add_(0.3 * torch.randn_like(p))  # a trained-looking base
    state = {key.replace("encoding.base.", "encoding."): value for key, value in with_dape.state_dict().items()
             if "encoding.mlps." not in key}  # DAPE's own MLPs (a FIRE base has MLPs of its own)
    alone.load_state_dict(state)
    tokens = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(with_dape.net(tokens), alone.net(tokens), atol=1e-5, rtol=1e-5)
        pos = torch.arange(9)[None]
        q = torch.randn(2, 4, 9, 8)
        torch.testing.assert_close(with_dape.encoding.score(q, q, pos, pos, 1),
                                   alone.encoding.bias(pos, pos, 1).expand(2, 4, 9, 9))


def test_dape_acts_per_pair_so_nothing_leaks():
    """Changing the keys of later positions changes no visible (j <= i) score; through a decoder, a later
    token changes no earlier output."""
    enc = ENCODINGS.build({"name": "dape", "base": "kerple"}, shape(d_model=16, heads=2))
    q, k = torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    pos = torch.arange(8)[None]
    moved = k.clone()
    moved[:, :, 5:] += 3.0
    a, b = enc.score(q, k, pos, pos, 0), enc.score(q, moved, pos, pos, 0)
    visible = torch.ones(8, 8, dtype=torch.bool).tril()
    visible[:, 5:] = False
    assert torch.equal(a[..., visible], b[..., visible]) and not torch.allclose(a, b)
    net = model({"name": "dape", "base": "fire"})
    tokens = torch.randint(0, VOCAB, (3, 10), generator=torch.Generator().manual_seed(4))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % VOCAB
    with torch.no_grad():
        x, y = net.net(tokens), net.net(changed)
    assert torch.allclose(x[:, :6], y[:, :6], atol=1e-5) and not torch.allclose(x[:, 6:], y[:, 6:], atol=1e-4)


@pytest.mark.parametrize("base, invariant", [("alibi", True), ("kerple", True), ("fire", False)])
def test_dape_is_shift_invariant_iff_its_base_is(base, invariant):
    torch.manual_seed(0)
    enc = ENCODINGS.build({"name": "dape", "base": base}, shape(d_model=16, heads=2))
    assert enc.shift_invariant is invariant
    q, k = torch.randn(2, 2, 10, 8), torch.randn(2, 2, 10, 8)
    pos = torch.arange(10)[None]
    with torch.no_grad():
        for p in enc.base.parameters():  # FIRE's threshold L = 512 hides any shift below it
            p.copy_(torch.randn_like(p))
        diff = (enc.score(q, k, pos, pos, 0) - enc.score(q, k, pos + 700, pos + 700, 0)).abs().max().item()
    assert (diff < 1e-4) if invariant else (diff > 1e-3)


def test_dape_without_position_keeps_the_mlp_with_bias_input_zero():
    enc = ENCODINGS.build({"name": "dape", "base": "alibi"}, shape(d_model=16, heads=2))
    off = enc.without_position()
    assert off.mlps is enc.mlps and list(off.parameters())  # the same MLPs, not a copy
    q, k = torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    pos = torch.arange(6)[None]
    content = q @ k.transpose(-2, -1) / math.sqrt(8)
    features = torch.cat((content, torch.zeros_like(content)), dim=1).permute(0, 2, 3, 1)
    expected = enc.mlps[1](features).permute(0, 3, 1, 2)
    torch.testing.assert_close(off.score(q, k, pos, pos, 1), expected)
    torch.testing.assert_close(off.score(q, k, pos + 9, pos * 3, 1), expected)  # no position read


@pytest.mark.parametrize(
    "base, message",
    [
        ("rope", "encoding=dape adapts the bias of its base encoding, and encoding.base=rope adds no bias"),
        ("tupe", "encoding.base=tupe also acts through rotate"),
        ({"name": "combo", "parts": ["alibi", "t5"]}, "encoding.base=combo also acts through"),
        ("dape", "encoding=dape cannot be its own base"),
        (3, "encoding.base must be an encoding name or a mapping"),
        ({"name": "kerple", "kernel": "cubic"}, "encoding.kernel=cubic must be one of log, power"),
    ],
)
def test_dape_refuses_a_base_it_cannot_adapt(base, message):
    with pytest.raises(ConfigError, match=message):
        ENCODINGS.build({"name": "dape", "base": base}, shape())


def test_dape_takes_its_modes_and_limits_from_the_base():
    enc = ENCODINGS.build({"name": "dape", "base": {"name": "t5", "num_buckets": 16}}, shape(causal=False))
    assert enc.base.name == "t5" and enc.explicit_attention and enc.shift_invariant
    with pytest.raises(ConfigError, match="encoding=xpos"):
        ENCODINGS.build({"name": "dape", "base": "xpos"}, shape(causal=False))
    assert ENCODINGS.build({"name": "dape", "base": "fire"}, shape()).shift_invariant is False


# ---- 4. inside combo and randomized, every model path ------------------------------------------------
@pytest.mark.parametrize(
    "encoding, family",
    [
        ({"name": "combo", "parts": ["rope", "fox"]}, "decoder"),
        ({"name": "combo", "parts": ["rope", "fox"]}, "encoder"),
        ({"name": "combo", "parts": ["stickbreaking", "alibi"]}, "decoder"),
        ({"name": "combo", "parts": ["learned", "dape"]}, "encoder"),
        ({"name": "randomized", "base": "fox"}, "decoder"),
        ({"name": "randomized", "base": "stickbreaking"}, "decoder"),
        ({"name": "randomized", "base": "dape"}, "encoder"),
    ],
)
def test_wrapped_encodings_train_a_step(encoding, family):
    net = model(encoding, family).train()
    src, tgt = torch.randint(0, VOCAB, (4, 5)), torch.randint(0, VOCAB, (4, 5))
    loss, _ = net.loss(src, tgt)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in net.encoding.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_combo_of_stickbreaking_and_alibi_breaks_the_stick_over_biased_logits():
    combo = ENCODINGS.build({"name": "combo", "parts": ["stickbreaking", "alibi"]}, shape(d_model=16, heads=4))
    assert combo.replaces_softmax and combo.explicit_attention
    pos = torch.arange(6)[None]
    z = causal_logits(6, 6, torch.Generator().manual_seed(5))[:, :1].expand(2, 4, 6, 6)
    biased = z + combo.bias(pos, pos, 0)
    torch.testing.assert_close(combo.normalize(biased, 0), naive_stick_breaking(biased).float(), atol=1e-6, rtol=1e-5)


def test_combo_of_rope_and_fox_stays_fused_and_adds_the_gates():
    combo = ENCODINGS.build({"name": "combo", "parts": ["rope", "fox"]}, shape())
    assert not combo.explicit_attention and combo.rotates
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(combo.data_bias(x, None, None, 1), combo.parts[1].data_bias(x, None, None, 1))


# ---- 5. the command line -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["encoding=fox", "encoding.post_log_scale=0"], "encoding.post_log_scale=0 must be > 0"),
        (["encoding=fox", "encoding.bias_init=abc"], "encoding.bias_init=abc is not a number"),
        (["model=seq2seq", "model.cross_encoding=fox"], "model.cross_encoding=fox acts through data_bias"),
        (["model=decoder", "encoding=stickbreaking", "encoding.remainder=all"], "encoding.remainder=all must be one of current, none"),
        (["encoding=stickbreaking"], "encoding=stickbreaking is defined only for causal attention"),
        (["encoding=dape", "encoding.hidden=0"], "encoding.hidden=0 must be >= 1"),
        (["encoding=dape", "encoding.base=rope"], "encoding.base=rope adds no bias to the logits"),
    ],
)
def test_bad_options_are_one_line_exit_2(args, message, refusal):
    assert message in refusal(args + ["trainer.device=cpu"])
