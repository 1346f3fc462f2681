"""The encoder-decoder family: a causal decoder (for every encoding), a bidirectional encoder,
cross-attention conventions, greedy decoding that agrees with teacher forcing and stops at eos,
and the refusals for encodings that do not fit a role."""

import re

import pytest
import torch
import yaml
from torch import nn

from conftest import sequence_encodings, skip_unsupported
from posbench.cli import CONFIG_DIR
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.tasks.base import PAD

VOCAB = 9  # symbols 0..8; SEP = 9, BLANK = 10


def make(encoding="none", eos=None, **kw):
    torch.manual_seed(0)
    net = MODELS.get("seq2seq")(VOCAB, {"name": encoding}, d_model=32, layers=2, heads=4, eos=eos, **kw)
    with torch.no_grad():  # give zero-initialised tables (t5) real values so the checks have teeth
        for p in net.encoding_parameters():
            nn.init.normal_(p)
    return net.eval()


@pytest.mark.parametrize("encoding", sequence_encodings())
def test_decoder_never_sees_the_future_and_reads_the_whole_source(encoding):
    skip_unsupported(encoding, causal=True)
    net = make("none", decoder_encoding=encoding)
    src, tgt = torch.randint(0, VOCAB, (3, 7)), torch.randint(0, VOCAB, (3, 8))
    later = tgt.clone()
    later[:, 4:] = (later[:, 4:] + 1) % VOCAB  # decoder inputs 5.. change (input t is tgt[t-1])
    a, b = net.target_logits(src, tgt), net.target_logits(src, later)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-5), "a later target token changed an earlier output"
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-5)
    last_source = src.clone()
    last_source[:, -1] = (last_source[:, -1] + 1) % VOCAB
    assert not torch.allclose(net.target_logits(last_source, tgt)[:, 0], a[:, 0], atol=1e-5)


def test_without_any_encoding_the_encoder_is_order_blind_but_the_decoder_is_not():
    net = make("none")
    src, tgt = torch.randint(0, VOCAB, (2, 6)), torch.randint(0, VOCAB, (2, 5))
    # cross-attention without PE pools the source as a set: permuting it changes nothing
    assert torch.allclose(net.target_logits(src[:, torch.randperm(6)], tgt), net.target_logits(src, tgt), atol=1e-5)
    with_rope = make("rope")
    assert not torch.allclose(
        with_rope.target_logits(src.roll(1, dims=1), tgt), with_rope.target_logits(src, tgt), atol=1e-4
    )


@pytest.mark.parametrize("encoding", ["none", "sinusoidal", "rope", "alibi", "t5", "shaw"])
def test_greedy_decoding_agrees_with_teacher_forcing(encoding):
    net = make(encoding)
    src = torch.randint(0, VOCAB, (5, 6))
    answer = net.predict(src, 7)
    assert answer.shape == (5, 7)
    assert torch.equal(net.target_logits(src, answer).argmax(-1), answer)


def test_decoding_stops_once_every_answer_has_emitted_eos():
    eos = VOCAB - 1
    net = make("rope", eos=eos)
    calls = []
    real_forward = net.net.forward

    def eos_on_second_step(tokens, **kw):
        calls.append(tokens.shape[1])
        logits = real_forward(tokens, **kw)
        if tokens.shape[1] == 2:  # the second generated token is eos for every row
            logits[:, -1, eos] = 1e9
        return logits

    net.net.forward = eos_on_second_step
    answer = net.predict(torch.randint(0, VOCAB, (4, 5)), 6)
    assert calls == [1, 2] and answer.shape == (4, 6)
    assert (answer[:, 1] == eos).all() and (answer[:, 2:] == PAD).all()


def test_cross_attention_has_no_encoding_by_default_and_relates_target_i_to_source_j():
    net = make("rope")
    assert net.net.cross_encoding.name == "none" and net.net.encoding.name == "rope"
    assert net.encoder.encoding.name == "rope" and net.encoding is net.encoder.encoding
    seen = []
    with_alibi = make("rope", cross_encoding="alibi")
    real_bias = with_alibi.net.cross_encoding.bias

    def spy(q_pos, k_pos, layer):
        seen.append((q_pos.flatten().tolist(), k_pos.flatten().tolist()))
        return real_bias(q_pos, k_pos, layer)

    with_alibi.net.cross_encoding.bias = spy
    with_alibi.target_logits(torch.randint(0, VOCAB, (2, 6)), torch.randint(0, VOCAB, (2, 3)))
    assert seen[0] == ([0, 1, 2], [0, 1, 2, 3, 4, 5]) and len(seen) == 2  # one call per layer


def test_decoder_encoding_by_name_takes_its_yaml_options():
    net = make("rope", decoder_encoding="alibi")
    assert net.encoder.encoding.name == "rope" and net.net.encoding.name == "alibi"
    learned = make("none", decoder_encoding="learned")
    yaml_max_len = yaml.safe_load((CONFIG_DIR / "encoding" / "learned.yaml").read_text())["max_len"]
    assert learned.net.encoding.max_positions() == yaml_max_len != 8
    sized = make("none", decoder_encoding={"name": "learned", "max_len": 8})
    assert sized.net.encoding.max_positions() == 8


def test_decoder_and_encoder_encodings_are_separate_instances():
    net = make("learned")
    assert net.encoder.encoding is not net.net.encoding
    encoder_params = {id(p) for p in net.encoder.encoding.parameters()}
    assert encoder_params and not encoder_params & {id(p) for p in net.net.encoding.parameters()}
    assert len(list(net.encoding_parameters())) == 2


@pytest.mark.parametrize(
    "options, message",
    [
        ({"encoding": "xpos"}, "model=seq2seq, encoder self-attention (encoding): encoding=xpos is defined only for causal"),
        ({"encoding": "none", "cross_encoding": "sinusoidal"}, "model.cross_encoding=sinusoidal acts through embed"),
        ({"encoding": "none", "cross_encoding": "cope"}, "encoding=cope is defined only for causal attention"),
        ({"encoding": "none", "decoder_encoding": "nope"}, "unknown encoding 'nope'; valid choices: "),
    ],
)
def test_encodings_that_do_not_fit_a_role_are_refused(options, message):
    encoding = options.pop("encoding")
    with pytest.raises(ConfigError, match=re.escape(message)):
        MODELS.get("seq2seq")(VOCAB, {"name": encoding}, d_model=32, layers=1, heads=4, **options)


def test_causal_only_encodings_work_in_the_decoder():
    net = make("rope", decoder_encoding="xpos")
    assert net.net.encoding.name == "xpos" and net.predict(torch.randint(0, VOCAB, (2, 4)), 3).shape == (2, 3)


def test_check_fits_covers_every_stack():
    net = MODELS.get("seq2seq")(VOCAB, {"name": "learned", "max_len": 10}, d_model=16, layers=1, heads=2)
    net.check_fits(10, 10)
    with pytest.raises(ConfigError, match="represents 10 positions but this run needs 12"):
        net.check_fits(12, 4)
    with pytest.raises(ConfigError, match="needs 11"):
        net.check_fits(4, 11)


def test_encoding_off_switches_every_stack_and_restores_them():
    net = make("rope", cross_encoding="alibi")
    src, tgt = torch.randint(0, VOCAB, (2, 6)), torch.randint(0, VOCAB, (2, 4))
    with net.encoding_off():
        names = {net.encoder.encoding.name, net.net.encoding.name, net.net.cross_encoding.name}
        off = net.target_logits(src, tgt)
    assert names == {"none"}
    assert net.net.cross_encoding.name == "alibi" and net.encoder.encoding.name == "rope"
    assert torch.allclose(off, make("none").target_logits(src, tgt), atol=1e-5)


def test_cross_attention_positions_are_indices_even_when_the_decoder_remaps_its_own():
    net = make("randomized", cross_encoding="alibi")
    seen = []
    real_bias = net.net.cross_encoding.bias
    net.net.cross_encoding.bias = lambda q_pos, k_pos, layer: seen.append((q_pos.tolist(), k_pos.tolist())) or real_bias(
        q_pos, k_pos, layer
    )
    net.train()  # randomized draws random positions in training
    net.target_logits(torch.randint(0, VOCAB, (2, 5)), torch.randint(0, VOCAB, (2, 4)))
    assert seen[0] == ([[0, 1, 2, 3]], [[0, 1, 2, 3, 4]])


def test_a_combo_cross_encoding_is_judged_by_its_parts():
    net = make("none", cross_encoding={"name": "combo", "parts": ["alibi", "rope"]})
    assert net.net.cross_encoding.name == "combo"
    with pytest.raises(ConfigError, match="acts through embed"):
        make("none", cross_encoding={"name": "combo", "parts": ["learned", "alibi"]})


def test_the_no_pe_twin_switches_off_every_encoding_of_the_family(tiny_cfg, tmp_path):
    from posbench import config, experiment

    cfg = tiny_cfg("model=seq2seq", "encoding=rope", "model.decoder_encoding=alibi", "model.cross_encoding=t5")
    twin = config.no_pe_config(cfg)
    assert twin["encoding"] == {"name": "none", "logn_scale": None}  # NoPE normalised
    assert twin["model"]["decoder_encoding"] is None and twin["model"]["cross_encoding"] == "none"
    assert config.no_pe_config(twin) == twin
    assert config.no_pe_config(tiny_cfg("model=seq2seq", "encoding=none")) == tiny_cfg("model=seq2seq", "encoding=none")
    # encoding=none with PE elsewhere is not a twin: it trains, is scored with PE off, and has a twin
    results = experiment.run(tiny_cfg("model=seq2seq", "encoding=none", "model.cross_encoding=alibi"), tmp_path / "run")
    assert results["pe_off"] is not None and results["nope"] is not None
    tb = tmp_path / "run" / "tb"
    assert sorted(p.name for p in tb.iterdir()) == ["none", "with_pe"]
    assert results["label"].split()[0] == "none" and "cross_encoding=alibi" in results["label"].split()
