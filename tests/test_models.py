"""Model families: no causal leak for any encoding, NoPE permutation equivariance, the explicit
attention path equal to SDPA, greedy decoding consistent with teacher forcing."""

import pytest
import torch
from conftest import sequence_encodings, skip_unsupported
from torch import nn

from posbench.encodings.base import AttentionShape, PositionalEncoding
from posbench.errors import ConfigError
from posbench.models import MODELS

VOCAB = 11


def make(model="encoder", encoding="none", **kw):
    skip_unsupported(encoding, causal=model == "decoder")
    torch.manual_seed(0)
    net = MODELS.get(model)(VOCAB, {"name": encoding}, **{"d_model": 32, "layers": 2, "heads": 4, **kw})
    with torch.no_grad():  # give zero-initialised tables (t5) real values so the checks have teeth
        for p in net.encoding.parameters():
            nn.init.normal_(p)
    return net.eval()


@pytest.mark.parametrize("encoding", sequence_encodings())
def test_decoder_never_sees_the_future(encoding):
    net = make("decoder", encoding)
    tokens = torch.randint(0, VOCAB, (3, 12))
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % VOCAB
    a, b = net.net(tokens), net.net(changed)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5), "a later token changed an earlier output"
    assert not torch.allclose(a[:, 7:], b[:, 7:], atol=1e-5)


def test_encoder_without_pe_is_permutation_equivariant():
    net = make("encoder", "none")
    tokens = torch.randint(0, VOCAB, (2, 9))
    perm = torch.randperm(9)
    assert torch.allclose(net.net(tokens[:, perm]), net.net(tokens)[:, perm], atol=1e-5)


@pytest.mark.parametrize("encoding", [n for n in sequence_encodings() if n != "none"])
def test_encoder_with_pe_is_not_permutation_equivariant(encoding):
    net = make("encoder", encoding)
    tokens = torch.randint(0, VOCAB, (2, 9))
    perm = torch.roll(torch.arange(9), 1)
    assert not torch.allclose(net.net(tokens[:, perm]), net.net(tokens)[:, perm], atol=1e-4)


def test_encoder_without_pe_gives_every_empty_slot_the_same_output():
    net = make("encoder", "none")
    logits = net.target_logits(torch.randint(0, VOCAB, (4, 6)), torch.zeros(4, 6, dtype=torch.long))
    assert torch.allclose(logits, logits[:, :1].expand_as(logits), atol=1e-5)


class WithZeroTerms(PositionalEncoding):
    """Delegates every hook to ``inner`` and adds zero ``score`` and ``value`` terms, which force
    attention onto its explicit (non-fused) path without changing the maths."""

    def __init__(self, inner):
        super().__init__(inner.shape)
        self.inner = inner

    def embed(self, x, pos):
        return self.inner.embed(x, pos)

    def rotate(self, q, k, q_pos, k_pos, layer=0):
        return self.inner.rotate(q, k, q_pos, k_pos, layer)

    def bias(self, q_pos, k_pos, layer):
        return self.inner.bias(q_pos, k_pos, layer)

    def score(self, q, k, q_pos, k_pos, layer):
        return q.new_zeros(q.shape[0], q.shape[1], q.shape[2], k.shape[2])

    def value(self, weights, q_pos, k_pos, layer):
        return weights.new_zeros(*weights.shape[:3], self.shape.head_dim)


@pytest.mark.parametrize("model", ["encoder", "decoder"])
@pytest.mark.parametrize("encoding", ["none", "rope", "alibi"])
def test_explicit_attention_path_matches_fused_sdpa(model, encoding):
    net = make(model, encoding)
    tokens = torch.randint(0, VOCAB, (2, 10))
    fused = net.net(tokens)
    net.net.encoding = WithZeroTerms(net.net.encoding)
    assert net.net.encoding.explicit_attention
    assert torch.allclose(net.net(tokens), fused, atol=1e-5)


def test_encoding_off_swaps_in_nope_and_restores():
    net = make("encoder", "rope")
    tokens = torch.randint(0, VOCAB, (2, 8))
    with net.encoding_off():
        assert net.encoding.name == "none"
        off = net.net(tokens)
    assert net.encoding.name == "rope"
    torch.manual_seed(0)
    nope = make("encoder", "none")
    nope.load_state_dict(net.state_dict())
    assert torch.allclose(off, nope.net(tokens), atol=1e-6)


def test_decoder_greedy_prediction_agrees_with_teacher_forcing():
    net = make("decoder", "rope")
    src = torch.randint(0, VOCAB, (5, 6))
    pred = net.predict(src, 6)
    assert pred.shape == (5, 6)
    assert torch.equal(net.target_logits(src, pred).argmax(-1), pred)


def test_positions_needed_per_family():
    assert MODELS.get("encoder").positions_needed(None, 10, 10) == 21
    assert MODELS.get("decoder").positions_needed(None, 10, 10) == 20


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(d_model=30, heads=4), "model.d_model=30 is not divisible by model.heads=4"),
        (dict(layers=0), "model.layers=0 must be >= 1"),
        (dict(dropout=1.0), "model.dropout=1.0 must be < 1"),
        (dict(ffn_mult=2.5), "model.ffn_mult=2.5 is not an integer"),
    ],
)
def test_invalid_model_values_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        MODELS.build({"name": "encoder", "d_model": 32, "heads": 4, **kw}, VOCAB, {"name": "none"})


class Shifted(PositionalEncoding):
    """Moves every position by 5 through the ``positions`` hook, then acts as ``inner``."""

    def __init__(self, inner):
        super().__init__(inner.shape)
        self.inner = inner

    def positions(self, pos, tokens=None):
        return pos + 5

    def embed(self, x, pos):
        return self.inner.embed(x, pos)


def test_positions_hook_feeds_every_other_hook():
    net = make("encoder", "sinusoidal")
    tokens = torch.randint(0, VOCAB, (2, 7))
    expected = net.net(tokens, torch.arange(7)[None] + 5)
    net.net.encoding = Shifted(net.net.encoding)
    assert torch.allclose(net.net(tokens), expected, atol=1e-6)
    assert not torch.allclose(net.net(tokens), net.net(tokens, torch.arange(7)[None] - 5), atol=1e-3)


def test_value_hook_term_reaches_the_output():
    net = make("encoder", "none")
    tokens = torch.randint(0, VOCAB, (2, 7))
    before = net.net(tokens)

    class ConstantValue(PositionalEncoding):
        def value(self, weights, q_pos, k_pos, layer):
            return weights.new_ones(*weights.shape[:3], self.shape.head_dim)

    net.net.encoding = ConstantValue(net.net.encoding.shape)
    assert not torch.allclose(net.net(tokens), before, atol=1e-3)


def test_an_encoding_refuses_a_mode_it_does_not_support():
    class CausalOnly(PositionalEncoding):
        name = "causal_only"
        supports_bidirectional = False

    with pytest.raises(ConfigError, match="encoding=causal_only is defined only for causal attention"):
        CausalOnly(AttentionShape(d_model=32, heads=4, layers=1, causal=False))
    CausalOnly(AttentionShape(d_model=32, heads=4, layers=1, causal=True))


@pytest.mark.parametrize(
    "model, encoding",
    [
        ("encoder", {"name": "tupe"}),
        ("decoder", {"name": "tupe"}),
        ("encoder", {"name": "combo", "parts": ["tupe", "alibi"]}),
        ("decoder", {"name": "randomized", "base": "tupe"}),
    ],
    ids=["encoder-tupe", "decoder-tupe", "encoder-tupe+alibi", "decoder-randomized-tupe"],
)
def test_encoding_off_removes_only_the_position_terms(model, encoding, monkeypatch):
    """TUPE (Ke et al. 2021, eq. 7) scales the content logits by 1/sqrt(2d); PE off must keep that
    scaling and drop only the position term: the model with its encoding off equals the same model
    whose position biases (TUPE's p U^Q (p U^K)^T, ALiBi's) are zeroed."""
    torch.manual_seed(0)
    net = MODELS.get(model)(VOCAB, encoding, d_model=32, layers=2, heads=4).eval()
    tokens = torch.randint(0, VOCAB, (2, 9))
    with torch.no_grad():
        with_pe = net.net(tokens)
        with net.encoding_off():
            off = net.net(tokens)
        for module in net.modules():
            if isinstance(module, PositionalEncoding):
                monkeypatch.setattr(module, "bias", lambda q_pos, k_pos, layer: None)
        zeroed = net.net(tokens)
        nope_scale = MODELS.get(model)(VOCAB, {"name": "none"}, d_model=32, layers=2, heads=4).eval()
        nope_scale.load_state_dict(net.state_dict(), strict=False)
        unscaled = nope_scale.net(tokens)
    torch.testing.assert_close(off, zeroed, atol=1e-5, rtol=1e-5)
    assert (off - with_pe).abs().max() > 1e-3, "the position term made no difference"
    assert (off - unscaled).abs().max() > 1e-3, "the content scaling made no difference"


def test_encoding_off_keeps_tupe_scaling_in_every_stack_of_seq2seq(monkeypatch):
    """The same for the encoder, decoder and cross-attention encodings of model=seq2seq."""
    torch.manual_seed(0)
    net = MODELS.get("seq2seq")(VOCAB, {"name": "tupe"}, cross_encoding="tupe", d_model=32, layers=1, heads=4).eval()
    src, tgt = torch.randint(0, VOCAB, (2, 6)), torch.randint(0, VOCAB, (2, 4))
    with torch.no_grad():
        with net.encoding_off():
            off = net.target_logits(src, tgt)
        for module in net.modules():
            if isinstance(module, PositionalEncoding):
                monkeypatch.setattr(module, "bias", lambda q_pos, k_pos, layer: None)
        zeroed = net.target_logits(src, tgt)
    torch.testing.assert_close(off, zeroed, atol=1e-5, rtol=1e-5)
