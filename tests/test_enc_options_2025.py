"""Issue 13, part D: ALiBi on a fraction of the heads, CoPE's soft one-hot lookup, NoPE's SSMax
log-n scaling and BiPE (bilevel positional encoding).

Expected values are written out here from the definitions (``math``, by hand) or taken from
x-transformers where it implements the same thing (conventions aligned in the docstrings); nothing
is copied from a run of posbench.
"""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from conftest import compose
from torch import nn

from posbench import config, labels
from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models import MODELS
from posbench.models.attention import attend


def shape(d_model: int = 32, heads: int = 4, layers: int = 2, causal: bool = True, grid: int | None = None):
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=causal, grid=grid, prefix=int(grid is not None))


def geometric_slopes(n: int) -> list[float]:
    """Press et al. 2022 §3: for a power of two n, 2^(-8/n), 2^(-16/n), ..., 2^(-8); otherwise those
    of the closest smaller power c plus every other slope of the 2c sequence."""
    c = 1
    while 2 * c <= n:
        c *= 2
    own = [2.0 ** (-8.0 * (k + 1) / c) for k in range(c)]
    return own if c == n else own + [2.0 ** (-8.0 * (k + 1) / (2 * c)) for k in range(2 * c)][0::2][: n - c]


# ---- ALiBi on a fraction of the heads ------------------------------------------------------------
@pytest.mark.parametrize("heads, alibi_heads", [(4, 2), (8, 3), (6, 6), (8, 5), (12, 4), (4, 1)])
def test_alibi_heads_fraction_matches_x_transformers_alibi_num_heads(heads, alibi_heads):
    """x-transformers' ``AlibiPositionalBias(heads=n, total_heads=heads)`` (what ``alibi_num_heads=n``
    builds): ``-|j - i| m_h`` with the slopes of an n-head model on the first n heads, zero on the
    others; on the causal (j <= i) part that is posbench's ALiBi exactly."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    length = 9
    enc = ENCODINGS.build({"name": "alibi", "heads_fraction": alibi_heads / heads}, shape(d_model=4 * heads, heads=heads))
    assert enc.alibi_heads == alibi_heads
    pos = torch.arange(length)[None] + 3
    ours = enc.bias(pos, pos, 0)[0]
    theirs = xt.AlibiPositionalBias(heads=alibi_heads, total_heads=heads)(length, length)
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    torch.testing.assert_close(ours[:, lower], theirs[:, lower].to(ours.dtype))
    # by hand: slopes of the n-head model (not of the full head count), then no bias at all
    slopes = geometric_slopes(alibi_heads) + [0.0] * (heads - alibi_heads)
    for h in range(heads):
        assert ours[h, 7, 2].item() == pytest.approx(-slopes[h] * 5, abs=1e-6)
    assert (ours[alibi_heads:] == 0).all()


def test_alibi_heads_fraction_bidirectional_mirrors_the_alibi_heads_and_learns_only_theirs():
    """Bidirectional: head h < n uses m_h to the left and m_(n-1-h) to the right; learned slopes
    are parameters of the n ALiBi heads only and start at the fixed ones."""
    heads, n, length = 8, 3, 7
    slopes = geometric_slopes(n)
    fixed = ENCODINGS.build({"name": "alibi", "heads_fraction": n / heads}, shape(heads=heads, causal=False))
    pos = torch.arange(length)[None]
    bias = fixed.bias(pos, pos, 0)[0]
    for h in range(n):
        assert bias[h, 5, 1].item() == pytest.approx(-slopes[h] * 4, abs=1e-6)
        assert bias[h, 1, 5].item() == pytest.approx(-slopes[n - 1 - h] * 4, abs=1e-6)
    assert (bias[n:] == 0).all()
    learned = ENCODINGS.build(
        {"name": "alibi", "heads_fraction": n / heads, "learned_slopes": True}, shape(heads=heads, causal=False)
    )
    assert learned.log_left.shape == (n, 1, 1) and learned.log_right.shape == (n, 1, 1)
    torch.testing.assert_close(learned.bias(pos, pos, 0), fixed.bias(pos, pos, 0))
    learned.bias(pos, pos, 0).sum().backward()
    assert learned.log_left.grad.abs().min() > 0  # every ALiBi head's slope is trained


@pytest.mark.parametrize("fraction, message", [
    (0.1, r"encoding=alibi: heads_fraction=0.1 gives round\(0.1 \* 4\) = 0 ALiBi heads; raise it to at least 0.25"),
    (0.0, r"encoding.heads_fraction=0.0 must be > 0"),
    (1.5, r"encoding.heads_fraction=1.5 must be <= 1"),
])
def test_alibi_heads_fraction_out_of_range_is_refused_in_one_line(fraction, message):
    with pytest.raises(ConfigError, match=message) as refusal:
        ENCODINGS.build({"name": "alibi", "heads_fraction": fraction}, shape())
    assert "\n" not in str(refusal.value)


# ---- CoPE's soft one-hot lookup ------------------------------------------------------------------
def cope(npos_max: int = 5, **options):
    torch.manual_seed(0)
    enc = ENCODINGS.build({"name": "cope", "npos_max": npos_max, **options}, shape())
    with torch.no_grad():
        enc.table.normal_()
    return enc


@pytest.mark.parametrize("temperature", [0.05, 0.5, 3.0])
def test_cope_soft_onehot_matches_x_transformers(temperature):
    """x-transformers' ``CoPE(soft_onehot=True, soft_onehot_temp=T)``: weights
    ``softmax_n(-|p - n| / T)`` over its ``max_pos`` rows, times the *unscaled* ``q . e[n]``; aligned as
    for the hard lookup (``max_pos = npos_max + 1``, ``pos_emb = table / sqrt(d)``). In this
    environment (einx 0.4.3) its ``einx.subtract('i, j -> i j', pos, positions)`` refuses the 4-D
    ``pos``; the test replaces that one call by the outer difference over the last axis it stands for."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    d, length, npos_max = 8, 9, 5
    enc = cope(npos_max, soft_onehot=True, temperature=temperature)
    q, k = torch.randn(2, 4, length, d) * 2, torch.randn(2, 4, length, d) * 2
    theirs_module = xt.CoPE(dim=d, heads=4, max_pos=npos_max + 1, soft_onehot=True, soft_onehot_temp=temperature)
    with torch.no_grad():
        theirs_module.pos_emb.copy_(enc.table[1] / math.sqrt(d))
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    sim = ((q @ k.transpose(-2, -1)) * d**-0.5).masked_fill(future, -torch.finfo(q.dtype).max)
    with mock.patch.object(xt.einx, "subtract", lambda pattern, a, b: a[..., None] - b):
        theirs = theirs_module(q, sim)
    ours = enc.score(q, k, None, None, 1)
    torch.testing.assert_close(ours[..., ~future], theirs[..., ~future], atol=1e-5, rtol=1e-5)


def test_cope_soft_onehot_hand_computed():
    """Gates all 1/2 (q = (a, 0) orthogonal to every k = (0, b)): p_00 = 1/2. With e[n] = (n^2, 7),
    npos_max 2 and T = 1 the score is a * sum_n w_n n^2 / sqrt(2), w_n = softmax_n(-|1/2 - n|)."""
    enc = ENCODINGS.get("cope")(shape(d_model=2, heads=1, layers=1), npos_max=2, soft_onehot=True, temperature=1.0)
    with torch.no_grad():
        enc.table.copy_(torch.tensor([[[0.0, 7.0], [1.0, 7.0], [4.0, 7.0]]]))
    a = 3.0
    q = torch.tensor([a, 0.0]).expand(1, 1, 1, 2)
    k = torch.tensor([0.0, 5.0]).expand(1, 1, 1, 2)
    raw = [math.exp(-abs(0.5 - n)) for n in range(3)]
    expected = a * sum(r / sum(raw) * n * n for n, r in enumerate(raw)) / math.sqrt(2)
    assert enc.score(q, k, None, None, 0)[0, 0, 0, 0].item() == pytest.approx(expected, rel=1e-6)


def test_cope_soft_onehot_cold_limit_is_the_nearest_row_not_the_interpolation():
    """T -> 0: the weights become one-hot at round(p), so the score tends to q . e[round(p)] / sqrt(d)
    (a rounding lookup); eq. 5's interpolation agrees only where p is an integer."""
    d, length = 8, 9
    cold = cope(soft_onehot=True, temperature=1e-3)
    hard = cope()  # the same table (same seed): eq. 5's interpolation
    q, k = torch.randn(1, 4, length, d) * 2, torch.randn(1, 4, length, d) * 2
    pos = cold.contextual_positions(q, k)
    rows = q @ cold.table[0].T  # q . e[n]
    nearest = rows.gather(-1, pos.round().long()) * d**-0.5
    visible = torch.ones(length, length, dtype=torch.bool).tril()
    clear = visible & ((pos - pos.floor() - 0.5).abs() > 0.05)  # away from the half-integer ties
    ours = cold.score(q, k, None, None, 0)
    torch.testing.assert_close(ours[..., clear], nearest[..., clear], atol=1e-4, rtol=1e-4)
    assert (ours - hard.score(q, k, None, None, 0))[..., clear].abs().max() > 1e-2


def test_cope_soft_onehot_options_are_checked():
    assert not ENCODINGS.build({"name": "cope"}, shape()).soft_onehot
    with pytest.raises(ConfigError, match=r"encoding.temperature=0.0 must be > 0"):
        ENCODINGS.build({"name": "cope", "soft_onehot": True, "temperature": 0.0}, shape())
    with pytest.raises(ConfigError, match=r"encoding.soft_onehot=maybe is not true or false"):
        ENCODINGS.build({"name": "cope", "soft_onehot": "maybe"}, shape())
    with pytest.raises(ConfigError, match=r"encoding=cope: temperature=0.5 is read only with soft_onehot=true; leave it at 0.05"):
        ENCODINGS.build({"name": "cope", "temperature": 0.5}, shape())


# ---- NoPE with SSMax's log-n scaling ---------------------------------------------------------------
@pytest.mark.parametrize("causal", [True, False])
def test_logn_scale_multiplies_each_query_row_by_s_log_n(causal):
    """Nakanishi 2025: logits z times s log n, n the keys the query attends to (i + 1 causal, L not)."""
    torch.manual_seed(0)
    s, length, d = 0.7, 6, 8
    enc = ENCODINGS.build({"name": "none", "logn_scale": s}, shape(causal=causal))
    q, k = torch.randn(2, 4, length, d), torch.randn(2, 4, length, d)
    pos = torch.arange(length)[None]
    rq, rk = enc.rotate(q, k, pos, pos)
    assert torch.equal(rk, k)
    logits = (rq @ rk.transpose(-2, -1)) / math.sqrt(d)
    plain = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    for i in range(length):
        n = i + 1 if causal else length
        torch.testing.assert_close(logits[..., i, :], plain[..., i, :] * s * math.log(n), atol=1e-5, rtol=1e-5)
    if causal:
        assert (logits[..., 0, :] == 0).all()  # log 1 = 0: the first query's one key gets weight 1
    # shifting every position changes nothing (n counts keys, not positions)
    torch.testing.assert_close(enc.rotate(q, k, pos + 11, pos + 11)[0], rq)


def test_logn_scale_keeps_the_fused_path_and_gives_ssmax_weights():
    """The attention output equals softmax((s log n) z) v written out, through the fused SDPA path."""
    torch.manual_seed(0)
    s, length, d = 1.3, 5, 8
    enc = ENCODINGS.build({"name": "none", "logn_scale": s}, shape(causal=True))
    assert enc.rotates and not enc.explicit_attention
    plain = ENCODINGS.build({"name": "none"}, shape(causal=True))
    assert not plain.rotates and plain.logn_scale is None
    q, k, v = torch.randn(1, 4, length, d), torch.randn(1, 4, length, d), torch.randn(1, 4, length, d)
    pos = torch.arange(length)[None]
    with mock.patch("posbench.models.attention.attention_weights", side_effect=AssertionError("explicit path")):
        out = attend(q, k, v, enc, pos, pos, True, 0, 0.0)
    z = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    n = torch.arange(1, length + 1, dtype=torch.float32)[:, None]
    z = (z * s * n.log()).masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), float("-inf"))
    torch.testing.assert_close(out, torch.softmax(z, -1) @ v, atol=1e-5, rtol=1e-5)


def test_logn_scale_pe_off_combo_and_bad_values():
    """PE off keeps the scaling (it is not a positional code); rotates is honest per instance, so
    combo refuses SPE beside none only when the scaling is on; a bad value is refused."""
    enc = ENCODINGS.build({"name": "none", "logn_scale": 2.0}, shape())
    off = enc.without_position()
    assert off.name == "none" and off.logn_scale == 2.0
    ENCODINGS.build({"name": "combo", "parts": ["spe", "none"]}, shape(causal=False))
    with pytest.raises(ConfigError, match="encoding=combo cannot combine spe with none"):
        ENCODINGS.build({"name": "combo", "parts": ["spe", {"name": "none", "logn_scale": 1.0}]}, shape(causal=False))
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match=rf"encoding.logn_scale={bad} must be > 0"):
            ENCODINGS.build({"name": "none", "logn_scale": bad}, shape())


def test_plain_none_is_its_own_twin_and_logn_is_measured_against_it(tmp_path):
    """``encoding=none`` stays PE-free and labelled ``none``; with ``logn_scale`` it is a run of its
    own (label ``none(logn_scale=1)``, folder ``none-logn_scale=1``, never ``with_pe``) whose twin is
    plain NoPE, the same twin every other encoding has."""
    plain = config.normalise(compose(["encoding=none"], tmp_path))
    assert config.is_pe_free(plain) and config.no_pe_config(plain) == plain
    assert labels.label(plain) == "none" and config.run_label(plain) == "none"
    scaled = config.normalise(compose(["encoding=none", "encoding.logn_scale=1"], tmp_path))
    assert not config.is_pe_free(scaled)
    assert config.no_pe_config(scaled) == plain
    assert labels.label(scaled) == "none(logn_scale=1)" and config.run_label(scaled) == "none-logn_scale=1"
    rope = config.normalise(compose(["encoding=rope"], tmp_path))
    assert config.no_pe_config(rope) == plain  # one twin for all: the twin cache trains it once
    # none with an encoding elsewhere is still with_pe; with logn as well, it is named by its label
    seq2seq = config.normalise(compose(["model=seq2seq", "encoding=none", "model.cross_encoding=alibi"], tmp_path))
    assert config.run_label(seq2seq) == "with_pe"
    assert config.run_label({**seq2seq, "encoding": scaled["encoding"]}) == "none-logn_scale=1"


# ---- BiPE ---------------------------------------------------------------------------------------
SEP = 9


def bipe(attn: AttentionShape | None = None, **options) -> nn.Module:
    section = {"name": "bipe", **options}
    if "separator" in options:
        section.setdefault("segment_size", None)
    return ENCODINGS.build(section, attn or shape())


def test_bipe_positions_with_separators_hand_computed():
    """He et al. 2024 / the reference ``get_bilevel_ids``: both indices from 0, the separator the last
    token of the segment it ends."""
    enc = bipe(separator=SEP)
    tokens = torch.tensor([
        [1, 2, SEP, 3, 4, SEP, 5, 6],
        [SEP, SEP, 1, 2, 3, 4, 5, SEP],
        [1, 2, 3, 4, 5, 6, 7, 8],
    ])
    pairs = enc.positions(torch.arange(8)[None], tokens)
    assert pairs.shape == (3, 8, 2)
    assert pairs[..., 0].tolist() == [[0, 1, 2, 0, 1, 2, 0, 1], [0, 0, 0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]]
    assert pairs[..., 1].tolist() == [[0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 2, 2, 2, 2, 2, 2], [0] * 8]
    # the intra index is an offset from the segment's first position: shifted positions give the same pairs
    assert torch.equal(enc.positions(torch.arange(8)[None] + 40, tokens), pairs)
    # no token ids (a direct call): one segment
    assert enc.positions(torch.arange(4)[None] + 2).tolist() == [[[0, 0], [1, 0], [2, 0], [3, 0]]]


def test_bipe_positions_with_fixed_segments_hand_computed():
    enc = bipe(segment_size=3)
    assert enc.positions(torch.arange(7)[None]).tolist() == [[[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 2]]]
    # the cuts sit at multiples of the size: a shift moves them
    assert enc.positions(torch.arange(4)[None] + 2).tolist() == [[[2, 0], [0, 1], [1, 1], [2, 1]]]
    assert not enc.shift_invariant and bipe(segment_size=1).shift_invariant and bipe(separator=SEP).shift_invariant


def test_bipe_embed_adds_the_intra_code_of_the_index_within_the_segment():
    """x + APE(a_t): learned rows / sinusoids at the intra index; equal intra indices in different
    segments get the same code, the segment index never enters the input."""
    tokens = torch.tensor([[1, 2, SEP, 3, 4, SEP, 5]])
    x = torch.randn(1, 7, 32)
    learned = bipe(separator=SEP, intra={"name": "learned", "max_len": 16})
    with torch.no_grad():
        learned.intra.table.weight.normal_()
    pairs = learned.positions(torch.arange(7)[None], tokens)
    added = learned.embed(x, pairs) - x
    table = learned.intra.table.weight
    torch.testing.assert_close(added[0], table[[0, 1, 2, 0, 1, 2, 0]])
    sinusoidal = bipe(separator=SEP, intra="sinusoidal")
    added = sinusoidal.embed(x, pairs) - x
    expected = [[f(a / 10000 ** (2 * i / 32)) for i in range(16) for f in (math.sin, math.cos)] for a in [0, 1, 2, 0, 1, 2, 0]]
    torch.testing.assert_close(added[0], torch.tensor(expected), atol=1e-5, rtol=0)


def test_bipe_rope_logits_depend_only_on_the_segment_offset():
    """BiPE-RoPE: (R(s_i) q) . (R(s_j) k) depends on s_i - s_j only: one query and one key vector at
    every position give logits that are equal for every pair with the same segment offset, the plain
    q . k inside a segment, and RoPE's own rotation at the segment indices."""
    torch.manual_seed(0)
    enc = bipe(separator=SEP)
    tokens = torch.tensor([[1, SEP, 2, 3, SEP, 4, 5, 6, SEP, 7]])
    pairs = enc.positions(torch.arange(10)[None], tokens)
    segment = pairs[0, :, 1].tolist()
    q = torch.randn(1, 4, 1, 8).expand(1, 4, 10, 8)
    k = torch.randn(1, 4, 1, 8).expand(1, 4, 10, 8)
    rq, rk = enc.rotate(q, k, pairs, pairs)
    logits = rq @ rk.transpose(-2, -1)
    by_offset = {}
    for i in range(10):
        for j in range(10):
            by_offset.setdefault(segment[i] - segment[j], []).append(logits[..., i, j])
    assert len(by_offset) == 7  # offsets -3 .. 3
    for values in by_offset.values():
        for value in values[1:]:
            torch.testing.assert_close(value, values[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(by_offset[0][0], (q[..., 0, :] * k[..., 0, :]).sum(-1), atol=1e-5, rtol=0)
    assert not torch.allclose(by_offset[1][0], by_offset[0][0], atol=1e-3)
    rope = ENCODINGS.build({"name": "rope"}, shape())
    seg = pairs[..., 1]
    for ours, theirs in zip(enc.rotate(q, k, pairs, pairs), rope.rotate(q, k, seg, seg)):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("causal", [True, False])
def test_bipe_alibi_penalises_the_segment_distance(causal):
    """BiPE-ALiBi: -m_h (s_i - s_j) (bidirectional: posbench's mirrored slopes to the right);
    segment_scale multiplies the segment indices (96: the reference code's slopes)."""
    heads = 4
    tokens = torch.tensor([[1, SEP, 2, 3, SEP, 4, SEP]])
    slopes = geometric_slopes(heads)
    for scale in (1.0, 96.0):
        enc = bipe(shape(heads=heads, causal=causal), separator=SEP, inter="alibi", segment_scale=scale)
        assert not enc.rotates
        pairs = enc.positions(torch.arange(7)[None], tokens)
        bias = enc.bias(pairs, pairs, 0)[0]
        segment = pairs[0, :, 1].tolist()
        for h in range(heads):
            for i in range(7):
                for j in range(7):
                    if causal and j > i:
                        continue
                    m = slopes[h] if j <= i else slopes[heads - 1 - h]
                    expected = -m * scale * abs(segment[i] - segment[j])
                    assert bias[h, i, j].item() == pytest.approx(expected, abs=1e-5), (h, i, j)


def test_bipe_shift_invariance_in_a_model_follows_the_segmentation():
    """Through a decoder: shifting every position leaves the output unchanged with separators and
    changes it with fixed segments (the instance's ``shift_invariant`` says which)."""
    tokens = torch.tensor([[1, 2, 3, 3, 5, 3, 6, 7, 8]])
    for section, invariant in (({"separator": 3, "segment_size": None}, True), ({"segment_size": 4}, False)):
        torch.manual_seed(0)
        net = MODELS.get("decoder")(11, {"name": "bipe", **section}, d_model=32, layers=2, heads=4).eval()
        with torch.no_grad():
            for p in net.encoding.parameters():
                nn.init.normal_(p)
            base = net.net(tokens)
            shifted = net.net(tokens, pos=torch.arange(9)[None] + 5)
        assert net.encoding.shift_invariant is invariant
        assert torch.allclose(base, shifted, atol=1e-5) is invariant


def test_bipe_decoder_with_separators_never_sees_the_future():
    torch.manual_seed(0)
    net = MODELS.get("decoder")(11, {"name": "bipe", "separator": 3, "segment_size": None}, d_model=32, layers=2, heads=4).eval()
    tokens = torch.tensor([[1, 3, 2, 4, 3, 5, 6, 7, 8, 9]])
    later = tokens.clone()
    later[0, 6:] = torch.tensor([3, 3, 1, 3])  # new separators after position 5
    with torch.no_grad():
        a, b = net.net(tokens), net.net(later)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-5)


def test_bipe_table_sizes_are_checked_honestly():
    """A learned intra table bounds the index within a segment: with fixed segments that is checked
    when built and any length fits; with separators a segment can be the whole sequence."""
    fixed = bipe(segment_size=8, intra={"name": "learned", "max_len": 8})
    assert fixed.max_positions() is None
    fixed.check_fits(10_000)
    with pytest.raises(ConfigError, match=r"encoding=bipe: segment_size=9 needs indices within a segment up to 8 but "
                                          r"encoding.intra=learned represents 8; raise its max_len"):
        bipe(segment_size=9, intra={"name": "learned", "max_len": 8})
    cut = bipe(separator=SEP, intra={"name": "learned", "max_len": 20})
    assert cut.max_positions() == 20
    cut.check_fits(20)
    with pytest.raises(ConfigError, match=r"a segment can be as long as this run's longest sequence, 21 tokens") as refusal:
        cut.check_fits(21)
    assert "\n" not in str(refusal.value)
    assert bipe(separator=SEP, intra="sinusoidal").max_positions() is None


@pytest.mark.parametrize("section, message", [
    ({"separator": 3, "segment_size": 4}, r"set exactly one and the other to null .* got separator=3, segment_size=4"),
    ({"separator": None, "segment_size": None}, r"got separator=null, segment_size=null"),
    ({"intra": "rope"}, r"encoding=bipe: encoding.intra=rope is not one of sinusoidal, learned"),
    ({"inter": "learned"}, r"encoding=bipe: encoding.inter=learned is not one of rope, alibi"),
    ({"inter": {"name": "rope", "nope": 1}}, r"encoding=rope has no option nope"),
    ({"segment_size": 0}, r"encoding.segment_size=0 must be >= 1"),
    ({"segment_scale": 0}, r"encoding.segment_scale=0 must be > 0"),
])
def test_bipe_bad_options_are_refused_in_one_line(section, message):
    with pytest.raises(ConfigError, match=message) as refusal:
        ENCODINGS.build({"name": "bipe", **section}, shape())
    assert "\n" not in str(refusal.value)


def test_bipe_on_an_image_grid_and_beside_other_encodings():
    """On a ViT's grid only fixed segments (patches in raster order: no token ids); combo refuses
    bipe beside a part that would read its pairs; randomized hands it its positions."""
    with pytest.raises(ConfigError, match=r"encoding=bipe with encoding.separator reads token ids, which an image's patches do not have"):
        bipe(shape(causal=False, grid=4), separator=SEP)
    on_grid = bipe(shape(causal=False, grid=4), segment_size=4)
    index = torch.arange(17)[None]
    assert on_grid.positions(index)[0, 5].tolist() == [1, 1]
    with pytest.raises(ConfigError, match=r"encoding=combo cannot hold bipe beside alibi: bipe's positions hook"):
        ENCODINGS.build({"name": "combo", "parts": ["bipe", "alibi"]}, shape())
    with pytest.raises(ConfigError, match=r"encoding=combo cannot hold randomized beside rope"):
        ENCODINGS.build({"name": "combo", "parts": ["rope", {"name": "randomized", "base": "bipe"}]}, shape())
    ENCODINGS.build({"name": "combo", "parts": ["bipe"]}, shape())
    randomized = ENCODINGS.build({"name": "randomized", "base": "bipe", "max_random_len": 64}, shape()).train()
    tokens = torch.tensor([[1, SEP, 2, 3]])
    assert randomized.positions(torch.arange(4)[None], tokens).shape == (1, 4, 2)


def test_bipe_label_names_its_parts():
    assert labels.encoding(ENCODINGS.check({"name": "bipe"})) == "bipe(intra=learned,inter=rope)"
    section = ENCODINGS.check({"name": "bipe", "separator": 16, "segment_size": None, "inter": "alibi", "segment_scale": 96})
    assert labels.encoding(section) == "bipe(separator=16,segment_size=null,intra=learned,inter=alibi,segment_scale=96)"


# ---- the command line: a bad value is one line and exit 2 ------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["encoding=alibi", "encoding.heads_fraction=0.1"], "encoding=alibi: heads_fraction=0.1 gives round(0.1 * 4) = 0 ALiBi heads"),
    (["encoding=cope", "model=decoder", "encoding.temperature=0"], "encoding.temperature=0 must be > 0"),
    (["encoding=none", "encoding.logn_scale=-2"], "encoding.logn_scale=-2 must be > 0"),
    (["encoding=bipe", "encoding.separator=16"], "encoding=bipe cuts segments at encoding.separator or every encoding.segment_size"),
    (["encoding=bipe", "encoding.inter=t5"], "encoding=bipe: encoding.inter=t5 is not one of rope, alibi"),
])
def test_bad_values_on_the_command_line_are_one_line(args, expected, refusal):
    assert expected in refusal(args)


@pytest.mark.parametrize("temperature", [1e-3, 0.05, 0.5, 10.0])
def test_soft_onehot_running_sums_equal_the_materialised_softmax_weights(temperature):
    """The factorised lookup equals sum_n softmax_n(-|p - n| / T) s_n computed with the weights
    materialised in float64, in value (also at p = 0, the table's end and half-integers) and in its
    gradient with respect to p (away from integers, where |p - n| has a kink)."""
    from posbench.encodings.cope import soft_onehot_lookup

    torch.manual_seed(0)
    scores, pos = torch.randn(2, 3, 5, 17), torch.rand(2, 3, 5, 7) * 16
    pos[0, 0, 0, :3] = torch.tensor([0.0, 16.0, 7.5])
    rows = torch.arange(17, dtype=torch.float64)

    def materialised(p):
        weights = torch.softmax(-(p[..., None] - rows).abs() / temperature, dim=-1)
        return torch.einsum("bhijn,bhin->bhij", weights, scores.double())

    torch.testing.assert_close(soft_onehot_lookup(scores, pos, temperature).double(), materialised(pos.double()), atol=1e-6, rtol=1e-5)
    smooth = (pos.floor() + 0.05 + 0.9 * torch.rand_like(pos)).clamp(max=15.9)
    ours = smooth.clone().requires_grad_()
    theirs = smooth.double().requires_grad_()
    (grad_ours,) = torch.autograd.grad(soft_onehot_lookup(scores, ours, temperature).sum(), ours)
    (grad_theirs,) = torch.autograd.grad(materialised(theirs).sum(), theirs)
    torch.testing.assert_close(grad_ours.double(), grad_theirs, atol=1e-4, rtol=1e-4)
