"""Tests for the composite encodings ``randomized`` (Ruoss et al. 2023) and ``combo``
(posbench/encodings/{randomized,combo}.py).

Expected values are computed here from the definitions (a sorted sample without replacement; hooks
composed in order and logit terms summed) or written out by hand; nothing is copied from a run of
the code. Registry-wide properties (shift invariance as declared, YAML keys, causal leaks,
permutation equivariance) are covered by tests/test_encodings.py and tests/test_models.py.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from torch import nn

import posbench.models.attention as attention
from posbench import config
from posbench.encodings import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.alibi import ALiBi
from posbench.errors import ConfigError
from posbench.models import MODELS

VOCAB = 11


def shape(d_model: int = 32, heads: int = 4, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=2, causal=causal)


def build(section: dict, attn: AttentionShape | None = None) -> PositionalEncoding:
    return ENCODINGS.build(section, attn or shape())


def model(encoding: dict, family: str = "encoder"):
    torch.manual_seed(0)
    net = MODELS.get(family)(VOCAB, encoding, d_model=32, layers=2, heads=4)
    with torch.no_grad():  # give every table real values so that position visibly matters
        for p in net.encoding.parameters():
            nn.init.normal_(p)
    return net


def draw(enc: PositionalEncoding, length: int) -> torch.Tensor:
    return enc.positions(torch.arange(length)[None])


def assert_sorted_distinct_in_range(pos: torch.Tensor, length: int, limit: int) -> None:
    assert pos.shape == (1, length) and pos.dtype == torch.long
    assert bool((pos[0, 1:] > pos[0, :-1]).all()), f"not strictly increasing: {pos.tolist()}"
    assert 0 <= pos.min().item() and pos.max().item() < limit


def logits(enc: PositionalEncoding, x: torch.Tensor, pos: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor):
    """Attention logits of one layer through the hooks, as SelfAttention computes them (``score``
    on the projected q, k; the content logits on the rotated ones)."""
    batch, length, _ = x.shape
    h = enc.embed(x, pos)
    q = (h @ w_q).view(batch, length, enc.shape.heads, -1).transpose(1, 2)
    k = (h @ w_k).view(batch, length, enc.shape.heads, -1).transpose(1, 2)
    score = enc.score(q, k, pos, pos, 0)
    q, k = enc.rotate(q, k, pos, pos)
    out = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    for term in (enc.bias(pos, pos, 0), score):
        if term is not None:
            out = out + term
    return out


class ConstantScore(PositionalEncoding):
    """A part with a genuine ``score`` term (a constant), which needs the explicit attention path."""

    name = "constant_score"

    def __init__(self, attn: AttentionShape, value: float):
        super().__init__(attn)
        self.constant = value

    def score(self, q, k, q_pos, k_pos, layer):
        return q.new_full((q.shape[0], q.shape[1], q.shape[2], k.shape[2]), self.constant)


@pytest.fixture
def path_counter(monkeypatch):
    """Counts calls of the explicit attention path (``attention_weights``); the fused path never calls it."""
    calls = {"explicit": 0}
    real = attention.attention_weights

    def counted(*args, **kwargs):
        calls["explicit"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(attention, "attention_weights", counted)
    return calls


# ---- randomized: the positions ------------------------------------------------------------------
def test_training_positions_are_sorted_distinct_in_range_and_new_every_step():
    torch.manual_seed(0)
    enc = build({"name": "randomized", "base": "none", "max_random_len": 50}).train()
    draws = [draw(enc, 12) for _ in range(20)]
    for pos in draws:
        assert_sorted_distinct_in_range(pos, 12, 50)
        assert not torch.equal(pos, torch.arange(12)[None])
    assert all(not torch.equal(a, b) for a, b in zip(draws, draws[1:])), "two consecutive steps drew the same positions"
    assert max(pos.max().item() for pos in draws) > 40, "the upper part of [0, 50) is never used"
    # L = N leaves exactly one subset: all of 0 .. N-1
    assert torch.equal(draw(enc, 50), torch.arange(50)[None])


def test_training_positions_are_a_uniform_subset():
    """Every 2-subset of {0..5} (15 of them) is equally likely: 200 expected in 3000 draws (sd ~14).
    A random shift of 0..L-1, or a sample with replacement, fails this."""
    torch.manual_seed(0)
    enc = build({"name": "randomized", "base": "none", "max_random_len": 6}).train()
    counts = Counter(tuple(draw(enc, 2)[0].tolist()) for _ in range(3000))
    assert set(counts) == {(i, j) for i in range(6) for j in range(i + 1, 6)}
    assert all(120 < n < 280 for n in counts.values()), counts


def test_evaluation_positions_sequential_or_fixed_random_draw():
    torch.manual_seed(0)
    sequential = build({"name": "randomized", "max_random_len": 64, "eval_positions": "sequential"}).eval()
    assert torch.equal(draw(sequential, 20), torch.arange(20)[None])
    sequential.train()
    assert not torch.equal(draw(sequential, 20), torch.arange(20)[None])

    random_a = build({"name": "randomized", "max_random_len": 64}).eval()  # the default: random, as the paper
    random_b = build({"name": "randomized", "max_random_len": 64}).eval()  # another training seed
    other = build({"name": "randomized", "max_random_len": 64, "eval_seed": 1}).eval()
    rng = torch.get_rng_state()
    first = draw(random_a, 20)
    assert_sorted_distinct_in_range(first, 20, 64)
    assert not torch.equal(first, torch.arange(20)[None])
    assert torch.equal(draw(random_a, 20), first), "two evaluations of the same input disagree"
    assert torch.equal(draw(random_b, 20), first), "evaluation positions depend on the training seed"
    assert not torch.equal(draw(other, 20), first)
    assert torch.equal(torch.get_rng_state(), rng), "evaluation consumed global random numbers"
    random_a.train()
    assert not torch.equal(draw(random_a, 20), first)


def test_draws_are_deterministic_under_a_seed_and_resume_from_the_state_dict():
    def three_draws(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        enc = build({"name": "randomized", "max_random_len": 100}).train()
        return [draw(enc, 10) for _ in range(3)]

    a, b, c = three_draws(5), three_draws(5), three_draws(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not any(torch.equal(x, y) for x, y in zip(a, c))

    torch.manual_seed(5)
    enc = build({"name": "randomized", "max_random_len": 100}).train()
    draw(enc, 10), draw(enc, 10)
    state = enc.state_dict()
    assert set(state) == {"_extra_state"}
    torch.manual_seed(123)
    resumed = build({"name": "randomized", "max_random_len": 100}).train()
    resumed.load_state_dict(state)
    assert torch.equal(draw(resumed, 10), a[2]), "a resumed run does not continue the same draws"


def test_positions_hook_runs_once_per_forward(monkeypatch):
    net = model({"name": "randomized"}).train()
    seen = []
    real = net.encoding.positions
    monkeypatch.setattr(net.encoding, "positions", lambda pos, tokens=None: seen.append(real(pos, tokens)) or seen[-1])
    net.loss(torch.randint(0, VOCAB, (3, 5)), torch.randint(0, VOCAB, (3, 5)))
    assert len(seen) == 1 and seen[0].shape == (1, 11)


# ---- randomized: delegation ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_base_none_behaves_as_none(family):
    rand, nope = model({"name": "randomized", "base": "none"}, family), model({"name": "none"}, family)
    assert rand.load_state_dict(nope.state_dict(), strict=False).missing_keys == ["net.encoding._extra_state"]
    tokens = torch.randint(0, VOCAB, (2, 9))
    for train in (True, False):
        rand.train(train), nope.train(train)
        torch.testing.assert_close(rand.net(tokens), nope.net(tokens), atol=1e-6, rtol=0)
    enc = rand.encoding
    x = torch.randn(2, 9, 32)
    assert torch.equal(enc.embed(x, torch.arange(9)[None]), x)
    assert enc.bias(torch.arange(9)[None], torch.arange(9)[None], 0) is None and not enc.explicit_attention


@pytest.mark.parametrize(
    "base",
    [
        {"name": "learned", "max_len": 64},
        "rope",
        {"name": "combo", "parts": [{"name": "learned", "max_len": 64}, "alibi"]},
    ],
    ids=["learned", "rope", "learned+alibi"],
)
@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_a_forward_is_the_base_at_the_drawn_positions(base, family, monkeypatch):
    """In training, the whole network equals the base encoding run at the drawn positions: every hook
    of the forward (embed, rotate, bias, in every layer) received the same random positions."""
    net = model({"name": "randomized", "base": base, "max_random_len": 64}, family).train()
    enc = net.encoding
    seen = []
    real = enc.positions
    monkeypatch.setattr(enc, "positions", lambda pos, tokens=None: seen.append(real(pos, tokens)) or seen[-1])
    tokens = torch.randint(0, VOCAB, (2, 9))
    out = net.net(tokens)
    (drawn,) = seen
    assert_sorted_distinct_in_range(drawn, 9, 64)
    net.net.encoding = enc.base
    torch.testing.assert_close(out, net.net(tokens, drawn), atol=1e-6, rtol=0)
    assert not torch.allclose(out, net.net(tokens), atol=1e-4), "the drawn positions made no difference"


def test_base_learned_adds_the_table_rows_at_the_drawn_positions():
    torch.manual_seed(0)
    enc = build({"name": "randomized", "base": {"name": "learned", "max_len": 64}, "max_random_len": 64}).train()
    pos = draw(enc, 7)
    x = torch.randn(1, 7, 32)
    table = enc.base.table.weight
    expected = torch.stack([x[0, i] + table[p] for i, p in enumerate(pos[0].tolist())])[None]
    torch.testing.assert_close(enc.embed(x, pos), expected)
    # the base's parameters belong to the encoding: trained with it and saved with it
    assert "base.table.weight" in enc.state_dict()
    assert any(p is table for p in enc.parameters())


@pytest.mark.parametrize(
    "base, invariant", [("rope", True), ("alibi", True), ("none", True), ("learned", False), ("sinusoidal", False)]
)
def test_instance_properties_follow_the_base(base, invariant):
    enc = build({"name": "randomized", "base": base})
    assert enc.family == "composite" and enc.shift_invariant is invariant
    assert enc.supports_bidirectional and enc.supports_causal and not enc.explicit_attention


def test_modes_come_from_the_base_with_its_own_error(monkeypatch):
    monkeypatch.setattr(ALiBi, "supports_bidirectional", False)
    for section in ({"name": "randomized", "base": "alibi"}, {"name": "combo", "parts": ["rope", "alibi"]}):
        with pytest.raises(ConfigError, match="encoding=alibi is defined only for causal attention"):
            build(section, shape(causal=False))
        enc = build(section, shape(causal=True))
        assert enc.supports_causal and not enc.supports_bidirectional


@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_attention_path_follows_the_base(family, path_counter):
    net = model({"name": "randomized", "base": "rope"}, family)
    tokens = torch.randint(0, VOCAB, (2, 6))
    net.net(tokens)
    assert path_counter["explicit"] == 0, "randomized rope left the fused SDPA path"
    net.encoding.base = ConstantScore(net.encoding.shape, 0.0)
    assert net.encoding.explicit_attention
    net.net(tokens)
    assert path_counter["explicit"] == 2  # once per layer


# ---- randomized: configuration errors -----------------------------------------------------------
def test_randomized_check_fits_and_bad_options():
    enc = build({"name": "randomized", "max_random_len": 40})
    enc.check_fits(40)
    with pytest.raises(ConfigError, match="max_random_len=40 but this run needs 41"):
        enc.check_fits(41)
    with pytest.raises(ConfigError, match="cannot draw 41 distinct positions"):
        draw(enc.train(), 41)
    with pytest.raises(ConfigError, match="max_random_len - 1 = 255 but its base learned represents 64"):
        build({"name": "randomized", "base": {"name": "learned", "max_len": 64}})
    build({"name": "randomized", "base": {"name": "learned", "max_len": 64}, "max_random_len": 64})
    with pytest.raises(ConfigError, match="encoding.eval_positions=shuffled must be one of random, sequential"):
        build({"name": "randomized", "eval_positions": "shuffled"})
    with pytest.raises(ConfigError, match="encoding.max_random_len=0 must be >= 1"):
        build({"name": "randomized", "max_random_len": 0})
    with pytest.raises(ConfigError, match="cannot be its own base"):
        build({"name": "randomized", "base": "randomized"})
    with pytest.raises(ConfigError, match="encoding.base must be an encoding name or a mapping"):
        build({"name": "randomized", "base": 3})
    with pytest.raises(ConfigError, match="encoding=rope has no option max_len"):
        build({"name": "randomized", "base": {"name": "rope", "max_len": 64}})


def test_options_reach_the_parts_from_the_command_line(tiny_cfg):
    """Overrides as a user writes them, composed by Hydra and validated by config.build
    (tiny runs evaluate lengths up to 8: 8 + SEP + 8 = 17 positions in the encoder)."""
    _, net, _ = config.build(
        tiny_cfg("encoding=randomized", "encoding.base={name:learned,max_len:128}", "encoding.max_random_len=128")
    )
    assert net.encoding.base.max_positions() == 128
    with pytest.raises(ConfigError, match="max_random_len=16 but this run needs 17"):
        config.build(tiny_cfg("encoding=randomized", "encoding.max_random_len=16"))
    _, net, _ = config.build(tiny_cfg("encoding=combo", "encoding.parts=[{name:rope,base:500},alibi]"))
    assert [part.name for part in net.encoding.parts] == ["rope", "alibi"] and net.encoding.parts[0].base == 500
    with pytest.raises(ConfigError, match="encoding=learned represents 16 positions but this run needs 17"):
        config.build(tiny_cfg("encoding=combo", "encoding.parts=[{name:learned,max_len:16},alibi]"))


# ---- combo ----------------------------------------------------------------------------------------
def test_combo_bias_is_the_hand_computed_sum():
    """[alibi, t5] causal: -m_h (i - j) (4 heads: m = 1/4, 1/16, 1/64, 1/256) + T5's table entry for
    bucket(j - i); buckets worked by hand for 32 causal buckets (16 exact): distance d <= 15 -> d."""
    enc = build({"name": "combo", "parts": ["alibi", "t5"]}, shape(causal=True))
    with torch.no_grad():
        enc.parts[1].table.weight.copy_(torch.arange(32 * 4, dtype=torch.float32).view(32, 4))
    pos = torch.arange(6)[None] + 3
    bias = enc.bias(pos, pos, 0)[0]
    for h in range(4):
        for i in range(6):
            for j in range(i + 1):
                expected = -(4.0 ** -(h + 1)) * (i - j) + (4 * (i - j) + h)
                assert bias[h, i, j].item() == pytest.approx(expected, abs=1e-5), (h, i, j)
    assert enc.explicit_attention is False and enc.score(None, None, pos, pos, 0) is None
    assert enc.value(None, pos, pos, 0) is None


def test_combo_without_any_bias_returns_none():
    enc = build({"name": "combo", "parts": ["learned", "rope"]})
    pos = torch.arange(5)[None]
    assert enc.bias(pos, pos, 0) is None


def test_combo_embed_composes_in_order():
    """[sinusoidal, learned] at d=4: x + [sin p, cos p, sin(p/100), cos(p/100)] + E[p]."""
    enc = build({"name": "combo", "parts": ["sinusoidal", {"name": "learned", "max_len": 16}]}, shape(4, 1))
    pos = torch.tensor([[0, 3, 7]])
    x = torch.randn(1, 3, 4)
    table = enc.parts[1].table.weight
    expected = torch.stack(
        [x[0, n] + torch.tensor([math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)]) + table[p]
         for n, p in enumerate(pos[0].tolist())]
    )[None]
    torch.testing.assert_close(enc.embed(x, pos), expected, atol=1e-6, rtol=0)
    # order matters once an embed does not commute with the others: [sinusoidal, learned, x -> 2x]
    enc.parts.append(Doubling(enc.shape))
    torch.testing.assert_close(enc.embed(x, pos), 2 * expected, atol=1e-6, rtol=0)
    enc.parts.insert(0, enc.parts.pop(2))  # [x -> 2x, sinusoidal, learned]
    torch.testing.assert_close(enc.embed(x, pos), expected + x, atol=1e-6, rtol=0)


class Bounded(PositionalEncoding):
    name = "bounded"

    def max_positions(self):
        return 32


class Doubling(PositionalEncoding):
    def embed(self, x, pos):
        return 2 * x


@pytest.mark.parametrize("causal", [False, True])
def test_combo_logits_are_the_parts_terms_composed(causal):
    """logits = rotate_rope(embed_learned(x) W) . (...) / sqrt(d) + alibi bias, each part applied alone."""
    torch.manual_seed(0)
    attn = shape(causal=causal)
    enc = build({"name": "combo", "parts": [{"name": "learned", "max_len": 32}, "rope", "alibi"]}, attn)
    learned, rope, alibi = enc.parts
    x, pos = torch.randn(2, 10, 32), torch.arange(10)[None] + 4
    w_q, w_k = torch.randn(32, 32) / 32**0.5, torch.randn(32, 32) / 32**0.5
    h = x + learned.table.weight[pos]
    q = (h @ w_q).view(2, 10, 4, 8).transpose(1, 2)
    k = (h @ w_k).view(2, 10, 4, 8).transpose(1, 2)
    q, k = rope.rotate(q, k, pos, pos)
    expected = q @ k.transpose(-2, -1) / math.sqrt(8) + alibi.bias(pos, pos, 0)
    torch.testing.assert_close(logits(enc, x, pos, w_q, w_k), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_combo_stays_fused_unless_a_part_needs_the_explicit_path(family, path_counter):
    net = model({"name": "combo", "parts": ["learned", "alibi"]}, family)
    tokens = torch.randint(0, VOCAB, (2, 6))
    fused = net.net(tokens)
    assert not net.encoding.explicit_attention and path_counter["explicit"] == 0
    # a zero score term forces the explicit path and changes nothing; scores of several parts add up
    net.encoding.parts.append(ConstantScore(net.encoding.shape, 0.0))
    assert net.encoding.explicit_attention
    torch.testing.assert_close(net.net(tokens), fused, atol=1e-5, rtol=0)
    assert path_counter["explicit"] == 2
    net.encoding.parts.extend([ConstantScore(net.encoding.shape, 1.5), ConstantScore(net.encoding.shape, 0.25)])
    q = torch.randn(2, 4, 6, 8)
    pos = torch.arange(6)[None]
    torch.testing.assert_close(net.encoding.score(q, q, pos, pos, 0), torch.full((2, 4, 6, 6), 1.75))


def test_combo_properties_parts_and_limits():
    enc = build({"name": "combo", "parts": [{"name": "learned", "max_len": 64}, "alibi"]})
    assert isinstance(enc.parts, nn.ModuleList) and "parts.0.table.weight" in enc.state_dict()
    assert enc.family == "composite" and enc.shift_invariant is False
    assert enc.max_positions() == 64
    enc.check_fits(64)
    with pytest.raises(ConfigError, match="encoding=learned represents 64 positions but this run needs 65"):
        enc.check_fits(65)
    enc.parts.append(Bounded(enc.shape))  # the tightest part decides
    assert enc.max_positions() == 32
    with pytest.raises(ConfigError, match="encoding=bounded represents 32 positions but this run needs 33"):
        enc.check_fits(33)
    relative = build({"name": "combo", "parts": ["rope", "alibi"]})
    assert relative.shift_invariant is True and relative.max_positions() is None
    relative.check_fits(10**6)


@pytest.mark.parametrize(
    "parts, message",
    [
        ([], "needs at least one encoding"),
        ("learned", "must be a list"),
        ({"name": "learned"}, "must be a list"),
        (["learned", 3], r"encoding.parts\[1\] must be an encoding name or a mapping"),
        (["alibi", {"name": "alibi"}], "lists alibi more than once"),
        (["rope", {"name": "combo", "parts": ["learned"]}], "cannot contain another combo"),
        ([{"name": "randomized", "base": "none"}, "learned"], "randomized changes the positions every part sees"),
        (["rope", {"name": "nope"}], "unknown encoding 'nope'"),
    ],
)
def test_combo_rejects_bad_parts(parts, message):
    with pytest.raises(ConfigError, match=message):
        build({"name": "combo", "parts": parts})


def test_combo_may_randomize_unbounded_parts():
    enc = build({"name": "combo", "parts": [{"name": "randomized", "base": "none", "max_random_len": 30}, "alibi"]})
    assert_sorted_distinct_in_range(draw(enc.train(), 8), 8, 30)


# ---- combo: score parts see the projected queries and keys, before any rotation ----------------------
def randomised(enc: PositionalEncoding) -> PositionalEncoding:
    """``enc`` with N(0, 1) parameters (zero-initialised tables such as CoPE's get real values), in eval mode."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in enc.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return enc.eval()


@pytest.mark.parametrize(
    "parts, causal",
    [
        (["rope", "shaw"], False),
        (["rope", "shaw"], True),
        (["rope", "xl"], False),
        (["rope", "xl"], True),
        (["rope", "cope"], True),
        (["xpos", "shaw"], True),
    ],
)
def test_combo_of_rotary_and_score_parts_is_shift_invariant(parts, causal):
    """The combo declares itself shift-invariant, so one attention call (logits, softmax, Shaw's
    value term) must give the same output at positions p and p + 50. It does only if the score part
    sees position-free q, k: Shaw's q_i . a_ij on RoPE-rotated q_i depends on i itself."""
    torch.manual_seed(0)
    enc = randomised(build({"name": "combo", "parts": parts}, shape(causal=causal)))
    assert enc.shift_invariant and enc.explicit_attention
    q, k, v = (torch.randn(2, 4, 12, 8) for _ in range(3))
    pos = torch.arange(12)[None]
    with torch.no_grad():
        out = attention.attend(q, k, v, enc, pos, pos, causal, 0, 0.0)
        shifted = attention.attend(q, k, v, enc, pos + 50, pos + 50, causal, 0, 0.0)
    assert out.abs().mean() > 0.1
    torch.testing.assert_close(shifted, out, atol=2e-5, rtol=2e-5)


def test_score_hook_receives_the_projected_queries_and_keys(monkeypatch):
    """Through a whole model: every score call of [rope, shaw] sees q, k exactly as projected by the
    layer's qkv matrix (no rotation), while the content logits still use the rotated q, k."""
    net = model({"name": "combo", "parts": ["rope", "shaw"]}).eval()
    seen = []
    shaw = net.encoding.parts[1]
    real = shaw.score
    monkeypatch.setattr(shaw, "score", lambda q, k, *rest: seen.append((q, k)) or real(q, k, *rest))
    captured = []
    for block in net.net.blocks:
        block.attn.qkv.register_forward_hook(lambda module, inputs, output: captured.append(output))
    tokens = torch.randint(0, VOCAB, (2, 7))
    net.net(tokens)
    assert len(seen) == len(captured) == 2
    for (q, k), qkv in zip(seen, captured):
        projected_q, projected_k, _ = qkv.view(2, 7, 3, 4, 8).permute(2, 0, 3, 1, 4)
        assert torch.equal(q, projected_q) and torch.equal(k, projected_k)


# ---- combo: SPE with other parts -----------------------------------------------------------------
def test_combo_spe_then_shaw_is_spe_logits_plus_shaw_terms():
    """[spe, shaw]: logits = qhat . khat / sqrt(R) (SPE's codes, Liutkus et al. 2021) plus Shaw's
    q_i . w^K[clip(j - i)] / sqrt(d_head) on the projected q (eq. 5), and the output gains
    sum_j alpha_ij w^V[clip(j - i)] (eq. 3); Shaw's terms are written out here pair by pair."""
    torch.manual_seed(0)
    enc = randomised(build({"name": "combo", "parts": ["spe", {"name": "shaw", "clip": 3}]}))
    spe, shaw = enc.parts
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    pos = torch.arange(9)[None]
    with torch.no_grad():
        got = attention.attend(q, k, v, enc, pos, pos, False, 1, 0.0)
        q_hat, k_hat = spe.rotate(q, k, pos, pos)
        assert q_hat.shape[-1] == spe.num_realizations == 64
        logits = q_hat @ k_hat.transpose(-2, -1) / 8.0  # sqrt(R) = 8
        w_key, w_value = shaw.w_key[1], shaw.w_value[1]
        row = [[min(max(j - i, -3), 3) + 3 for j in range(9)] for i in range(9)]
        for i in range(9):
            for j in range(9):
                logits[..., i, j] += q[..., i, :] @ w_key[row[i][j]] / math.sqrt(8)
        weights = torch.softmax(logits, dim=-1)
        expected = weights @ v
        for i in range(9):
            for j in range(9):
                expected[..., i, :] += weights[..., i, j, None] * w_value[row[i][j]]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_combo_spe_with_shaw_trains():
    """A few AdamW steps of an encoder with [spe, shaw]: finite losses that go down, and gradients
    reach both parts' parameters."""
    torch.manual_seed(0)
    net = MODELS.get("encoder")(VOCAB, {"name": "combo", "parts": ["spe", "shaw"]}, d_model=32, layers=2, heads=4)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    src = torch.randint(0, VOCAB - 1, (16, 6))
    tgt = src.flip(1)
    losses = []
    for _ in range(8):
        loss, _ = net.loss(src, tgt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    spe, shaw = net.encoding.parts
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0], losses
    assert spe.freq_logits.grad.abs().sum() > 0 and shaw.w_key.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "parts, causal, first, second",
    [
        (["spe", "rope"], False, "spe", "rope"),
        (["rope", "spe"], False, "spe", "rope"),
        (["spe", "xpos"], True, "spe", "xpos"),
        (["spe", "tupe"], False, "spe", "tupe"),
        (["tupe", "spe"], True, "spe", "tupe"),
        ([{"name": "randomized", "base": "spe"}, "rope"], False, "randomized", "rope"),
    ],
)
def test_combo_refuses_spe_with_another_rotation(parts, causal, first, second):
    """SPE's rotate replaces q, k by R-dimensional random-feature codes: another part's rotation
    would act on (or produce) different vectors, e.g. RoPE would rotate 16 of SPE's 64 features."""
    with pytest.raises(ConfigError, match=f"^encoding=combo cannot combine {first} with {second}: ") as refusal:
        build({"name": "combo", "parts": parts}, shape(causal=causal))
    assert "\n" not in str(refusal.value) and "codes" in str(refusal.value)
