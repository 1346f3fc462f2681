"""M-RoPE (``encoding=mrope``, Wang et al. 2024, Qwen2-VL §2.1): rotary frequency pairs split into
contiguous (t, h, w) sections, pair j rotated by its section's coordinate times theta_j.

Checked against timm's ``RotaryEmbeddingMRope`` (a test-only oracle; its own pair-to-axis
assignment is the interleaved one of Qwen3-VL / GenLIP, so it is compared with that assignment set to
Qwen2-VL's contiguous sections, see ``test_matches_timm_with_contiguous_sections``), against 1D
``rope`` on text, against hand-computed rotations, and for the relative property; and its
refusals. Expected values are written out here from the paper's formula, independently of posbench.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import compose
from posbench import config
from posbench.encodings import ENCODINGS, AttentionShape
from posbench.encodings.base import multimodal_coordinates
from posbench.errors import ConfigError
from posbench.models import MODELS


def shape(d_model: int = 32, heads: int = 2, causal: bool = False, grid: int | None = None) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=2, causal=causal, grid=grid)


def mrope(attn: AttentionShape | None = None, **options):
    """Built the way a run builds it (options checked by the schema)."""
    return ENCODINGS.build({"name": "mrope", **options}, attn or shape())


def random_coordinates(batch: int, length: int, high: int = 60, seed: int = 0) -> torch.Tensor:
    """``[batch, length, 3]`` integer (t, h, w), every axis drawn independently."""
    return torch.randint(0, high, (batch, length, 3), generator=torch.Generator().manual_seed(seed))


def logits(enc, q, k, q_pos, k_pos) -> torch.Tensor:
    rq, rk = enc.rotate(q, k, q_pos, k_pos)
    return rq @ rk.transpose(-2, -1)


# ---- declaration ---------------------------------------------------------------------------------
def test_declares_a_3_axis_shift_invariant_fractional_rotary_encoding():
    cls = ENCODINGS.get("mrope")
    assert cls.axes == 3 and cls.family == "rotary" and cls.shift_invariant is True and cls.fractional is True
    assert "Qwen2-VL" in cls.description
    enc = mrope()
    assert enc.rotates and not enc.explicit_attention


@pytest.mark.parametrize(
    "head_dim, expected",
    [(6, (1, 1, 1)), (8, (2, 1, 1)), (12, (2, 2, 2)), (16, (2, 3, 3)), (24, (4, 4, 4)), (32, (4, 6, 6)),
     (64, (8, 12, 12)), (128, (16, 24, 24))],
)
def test_default_sections_are_qwen2_vl_ratio_scaled_to_the_head(head_dim, expected):
    """h = w = round(3/8 of the pairs), halves down; t the rest: 16:24:24 exactly at head_dim 128."""
    enc = mrope(shape(d_model=head_dim, heads=1))
    assert enc.sections == expected and sum(expected) == head_dim // 2
    assert enc.axis.tolist() == [0] * expected[0] + [1] * expected[1] + [2] * expected[2]


# ---- 1. timm's RotaryEmbeddingMRope ----------------------------------------------------------------
def timm_embed(module, coords: torch.Tensor) -> torch.Tensor:
    """The body of timm's ``RotaryEmbeddingMRope.get_embed`` for arbitrary (t, h, w) ``[N, 3]``
    instead of an image grid with t = 0 (get_embed builds only that): each frequency channel takes
    the coordinate of ``module.axis``, times ``module.inv_freq``, laid out by timm's own
    ``_rope_layout(rotate_half=True)`` as the ``[N, 2 * dim]`` sin|cos tensor of apply_rot_embed_cat."""
    from timm.layers.pos_embed_sincos import _rope_layout

    angles = coords.float().index_select(-1, module.axis) * module.inv_freq
    return torch.cat([_rope_layout(angles.sin(), rotate_half=True), _rope_layout(angles.cos(), rotate_half=True)], -1)


@pytest.mark.parametrize("head_dim, sections", [(16, (2, 3, 3)), (24, (3, 5, 4)), (32, (4, 6, 6))])
def test_matches_timm_with_contiguous_sections(head_dim, sections):
    """timm's RotaryEmbeddingMRope uses posbench's half-split pairing (``rotate_half=True``: pair j on
    features j and j + d/2, applied by ``apply_rot_embed_cat(half=True)``) and the same frequencies
    ``temperature^(-2j/d)``, but assigns pairs to axes *interleaved* (Qwen3-VL / GenLIP:
    pairs 1, 4, 7, ... to h, 2, 5, 8, ... to w, the rest to t) where Qwen2-VL's M-RoPE uses contiguous
    sections. No feature permutation maps one to the other (each axis gets other frequencies), so
    the only change made to timm's module is its per-pair ``axis`` buffer, set to the contiguous
    sections [t]*n_t + [h]*n_h + [w]*n_w; everything else (frequencies, grid, layout, rotation) is timm's."""
    pytest.importorskip("timm")
    from timm.layers.pos_embed_sincos import RotaryEmbeddingMRope, apply_rot_embed_cat

    base = 500.0
    theirs = RotaryEmbeddingMRope(dim=head_dim, mrope_section=sections, temperature=base)
    ours = mrope(shape(d_model=2 * head_dim, heads=2), base=base, sections=list(sections))
    torch.testing.assert_close(theirs.inv_freq, ours.inv_freq)
    contiguous = torch.tensor([0] * sections[0] + [1] * sections[1] + [2] * sections[2])
    assert not torch.equal(theirs.axis, contiguous), "timm's own assignment is the interleaved one"
    theirs.axis.copy_(contiguous)
    torch.manual_seed(0)

    # an image alone: timm's public get_embed((side, side)), row-major (h, w) = (row, col), t = 0,
    # which is multimodal_coordinates' image part
    side = 5
    q, k = torch.randn(2, 2, side * side, head_dim), torch.randn(2, 2, side * side, head_dim)
    emb = theirs.get_embed((side, side))
    rq, rk = ours.rotate(q, k, multimodal_coordinates(side, 0), multimodal_coordinates(side, 0))
    torch.testing.assert_close(rq, apply_rot_embed_cat(q, emb, half=True), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rk, apply_rot_embed_cat(k, emb, half=True), atol=1e-5, rtol=1e-5)

    # an image then text (Qwen2-VL's layout) and arbitrary (t, h, w), e.g. video frames with t > 0
    for coords in (multimodal_coordinates(side, 7), random_coordinates(1, 30, seed=3)):
        length = coords.shape[1]
        q, k = torch.randn(2, 2, length, head_dim), torch.randn(2, 2, length, head_dim)
        emb = timm_embed(theirs, coords[0])
        rq, rk = ours.rotate(q, k, coords, coords)
        torch.testing.assert_close(rq, apply_rot_embed_cat(q, emb, half=True), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(rk, apply_rot_embed_cat(k, emb, half=True), atol=1e-5, rtol=1e-5)


def test_timm_interleaved_assignment_agrees_only_where_t_h_w_coincide():
    """With timm's own (interleaved) assignment: on text (t = h = w) every assignment is 1D RoPE, so
    timm and posbench agree; on an image grid they differ (the conventions genuinely differ)."""
    pytest.importorskip("timm")
    from timm.layers.pos_embed_sincos import RotaryEmbeddingMRope, apply_rot_embed_cat

    theirs = RotaryEmbeddingMRope(dim=16, mrope_section=(2, 3, 3))
    ours = mrope(shape(d_model=32, heads=2))
    torch.manual_seed(0)
    text = multimodal_coordinates(0, 20)
    q = torch.randn(1, 2, 20, 16)
    rq, _ = ours.rotate(q, q, text, text)
    torch.testing.assert_close(rq, apply_rot_embed_cat(q, timm_embed(theirs, text[0]), half=True), atol=1e-5, rtol=1e-5)
    q = torch.randn(1, 2, 16, 16)
    rq, _ = ours.rotate(q, q, multimodal_coordinates(4, 0), multimodal_coordinates(4, 0))
    assert not torch.allclose(rq, apply_rot_embed_cat(q, theirs.get_embed((4, 4)), half=True), atol=1e-3)


# ---- 2. text alone is 1D RoPE ----------------------------------------------------------------------
@pytest.mark.parametrize("base", [10000.0, 37.0])
def test_text_positions_give_exactly_1d_rope(base):
    """t = h = w = index (text, or a model without coordinates): bit-identical to rope, same base."""
    attn = shape(d_model=48, heads=3)
    ours = mrope(attn, base=base, sections=[3, 2, 3])
    rope = ENCODINGS.build({"name": "rope", "base": base, "rotary_fraction": 1.0}, attn)
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 40, 16), torch.randn(2, 3, 40, 16)
    index = torch.arange(40)[None] + torch.tensor([[0], [123]])  # [2, L]: two batch rows, shifted
    expected = rope.rotate(q, k, index, index)
    for pos in (index[..., None].expand(2, 40, 3), index):  # (t, h, w) = (i, i, i), and 1D indices
        got = ours.rotate(q, k, pos, pos)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    text = multimodal_coordinates(0, 40)  # the text part of Qwen2-VL's layout
    assert torch.equal(ours.rotate(q, k, text, text)[0], rope.rotate(q, k, index[:1], index[:1])[0])


@pytest.mark.parametrize("family", ["encoder", "decoder"])
def test_a_model_without_coordinates_computes_what_rope_does(family):
    """A sequence model gives every axis the index (``Transformer.read_positions``): the whole
    network's output equals the same network with encoding=rope."""
    outputs = []
    for name in ("mrope", "rope"):
        torch.manual_seed(0)
        net = MODELS.get(family)(11, {"name": name}, d_model=32, layers=2, heads=4).eval()
        outputs.append(net.net(torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(1))))
    assert torch.equal(outputs[0], outputs[1])


def test_cross_attention_indices_are_read_as_t_h_w():
    """seq2seq's cross-attention passes 1D query/key indices: mrope there equals rope there."""
    outputs = []
    for name in ("mrope", "rope"):
        torch.manual_seed(0)
        net = MODELS.get("seq2seq")(11, {"name": "none"}, d_model=32, layers=1, heads=4, cross_encoding={"name": name})
        src = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(1))
        tgt = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(2))
        outputs.append(net.eval().target_logits(src, tgt))
    assert torch.equal(outputs[0], outputs[1])


# ---- 3. hand-computed rotations --------------------------------------------------------------------
def test_hand_computed_one_pair_per_section():
    """head_dim 6, sections [1, 1, 1], base 100: theta = 1, 100^(-1/3), 100^(-2/3); pair j = features
    (j, j + 3) rotated by t * theta_0, h * theta_1, w * theta_2 for (t, h, w) = (2, 5, 7)."""
    enc = mrope(shape(d_model=6, heads=1), base=100.0, sections=[1, 1, 1])
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).view(1, 1, 1, 6)
    pos = torch.tensor([[[2, 5, 7]]])
    q, _ = enc.rotate(x, x, pos, pos)
    a, b, c = 2 * 1.0, 5 * 100 ** (-1 / 3), 7 * 100 ** (-2 / 3)
    expected = [
        1 * math.cos(a) - 4 * math.sin(a),
        2 * math.cos(b) - 5 * math.sin(b),
        3 * math.cos(c) - 6 * math.sin(c),
        1 * math.sin(a) + 4 * math.cos(a),
        2 * math.sin(b) + 5 * math.cos(b),
        3 * math.sin(c) + 6 * math.cos(c),
    ]
    torch.testing.assert_close(q[0, 0, 0], torch.tensor(expected), atol=1e-6, rtol=0)
    # the origin is the identity
    torch.testing.assert_close(enc.rotate(x, x, torch.zeros(1, 1, 3), torch.zeros(1, 1, 3))[0], x)


def test_sections_keep_the_global_frequency_index():
    """head_dim 8, sections [2, 1, 1], base 10000: theta_j = 10000^(-j/4). The t section's second
    pair (j = 1) turns by t * theta_1 (not t * theta_0: frequencies do not restart per section); moving
    only h turns only pair 2 (features 2 and 6), only w only pair 3 (features 3 and 7)."""
    enc = mrope(shape(d_model=8, heads=1), sections=[2, 1, 1])
    x = torch.randn(1, 1, 1, 8, generator=torch.Generator().manual_seed(0))
    t, h, w = 3, 11, 17
    q, _ = enc.rotate(x, x, torch.tensor([[[t, h, w]]]), torch.tensor([[[t, h, w]]]))
    angles = [t * 1.0, t * 10000 ** (-1 / 4), h * 10000 ** (-2 / 4), w * 10000 ** (-3 / 4)]
    for j, angle in enumerate(angles):
        x1, x2 = x[0, 0, 0, j].item(), x[0, 0, 0, j + 4].item()
        assert q[0, 0, 0, j].item() == pytest.approx(x1 * math.cos(angle) - x2 * math.sin(angle), abs=1e-5)
        assert q[0, 0, 0, j + 4].item() == pytest.approx(x1 * math.sin(angle) + x2 * math.cos(angle), abs=1e-5)
    for axis, pair in ((1, 2), (2, 3)):
        moved = torch.tensor([[[t, h, w]]])
        moved[..., axis] += 5
        changed = (enc.rotate(x, x, moved, moved)[0] - q).abs()[0, 0, 0] > 1e-6
        assert changed.nonzero().flatten().tolist() == [pair, pair + 4]


def test_real_valued_positions():
    """``fractional``: float positions are the same formula (integral floats = integers; a float
    shift leaves logits unchanged)."""
    enc = mrope()
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 6, 16), torch.randn(1, 2, 6, 16)
    pos = random_coordinates(1, 6)
    torch.testing.assert_close(enc.rotate(q, k, pos.float(), pos.float())[0], enc.rotate(q, k, pos, pos)[0])
    half = pos.float() + torch.tensor([0.5, 0.25, 0.75])
    base = logits(enc, q, k, half, half)
    torch.testing.assert_close(logits(enc, q, k, half + 2.25, half + 2.25), base, atol=1e-4, rtol=0)
    assert not torch.allclose(base, logits(enc, q, k, half, pos), atol=1e-3), "a fractional offset must enter"
    # rotations compose additively: R(p / 2) R(p / 2) = R(p), for a fractional p / 2
    once, _ = enc.rotate(q, k, pos.float() / 2, pos.float() / 2)
    twice, _ = enc.rotate(once, once, pos.float() / 2, pos.float() / 2)
    torch.testing.assert_close(twice, enc.rotate(q, k, pos, pos)[0], atol=1e-4, rtol=0)


# ---- 4. relative property ---------------------------------------------------------------------------
@pytest.mark.parametrize("shift", [(7, 7, 7), (0, 9, 0), (0, 0, -4), (3, -2, 11), (1000, 1000, 1000)])
def test_logits_depend_only_on_coordinate_differences(shift):
    """<R(t, h, w) q, R(t', h', w') k> = g(q, k, t - t', h - h', w - w'): shifting every token by the
    same (a, b, c) (all three together, or one axis alone) leaves every logit unchanged."""
    enc = mrope(shape(d_model=32, heads=2))
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 24, 16), torch.randn(2, 2, 24, 16)
    pos = torch.cat((multimodal_coordinates(4, 8), random_coordinates(1, 24)))  # Qwen2-VL's layout; random
    base = logits(enc, q, k, pos, pos)
    moved = pos + torch.tensor(shift)
    torch.testing.assert_close(logits(enc, q, k, moved, moved), base, atol=2e-4, rtol=0)
    # a shift of the keys alone changes them: position does enter, on each axis
    for axis in range(3):
        keys = pos.clone()
        keys[..., axis] += 3
        assert not torch.allclose(logits(enc, q, k, pos, keys), base, atol=1e-3), axis


def test_patch_logits_are_a_function_of_the_2d_offset():
    """One query and one key vector at every patch of an image: the logit of patches (r, c) and
    (r', c') depends only on (r - r', c - c')."""
    enc = mrope(shape(d_model=32, heads=2))
    side = 5
    torch.manual_seed(0)
    q = torch.randn(1, 2, 1, 16).expand(1, 2, side * side, 16)
    k = torch.randn(1, 2, 1, 16).expand(1, 2, side * side, 16)
    coords = multimodal_coordinates(side, 0)
    table = logits(enc, q, k, coords, coords)[0]
    seen: dict[tuple[int, int], torch.Tensor] = {}
    for i in range(side * side):
        for j in range(side * side):
            offset = (i // side - j // side, i % side - j % side)
            if offset in seen:
                torch.testing.assert_close(table[:, i, j], seen[offset], atol=1e-4, rtol=0)
            seen.setdefault(offset, table[:, i, j])
    assert len(seen) == (2 * side - 1) ** 2


# ---- 5. refusals ---------------------------------------------------------------------------------
def test_refused_on_an_image_grid():
    with pytest.raises(ConfigError) as refusal:
        mrope(shape(grid=4))
    message = str(refusal.value)
    assert "\n" not in message
    assert message.startswith("encoding=mrope is for a sequence mixing image patches and text (model=prefix_captioner)")
    assert "rope2d_axial" in message and "rope2d_mixed" in message


def test_refused_on_a_vit_by_config_build(tmp_path):
    cfg = compose(["model=vit", "task=quadrant", "encoding=mrope"], tmp_path / "twins")
    with pytest.raises(ConfigError, match=r"^encoding=mrope is for a sequence mixing image patches and text"):
        config.build(cfg)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=vit", "task=quadrant"], "encoding=mrope is for a sequence mixing image patches and text (model=prefix_captioner)"),
        (["encoding.sections=[2,3,4]"], "encoding=mrope: sections=[2,3,4] must be 3 positive numbers of frequency pairs (t, h, w) summing to head_dim / 2 = 8"),
        (["encoding.sections=[4,4]"], "sections=[4,4] must be 3 positive numbers"),
        (["encoding.sections=[2,3,3,0]"], "encoding.sections=[2,3,3,0] must hold numbers >= 1"),
        (["encoding.sections=[0,4,4]"], "encoding.sections=[0,4,4] must hold numbers >= 1"),
        (["encoding.sections=[2,3,3.5]"], "encoding.sections[2]=3.5 is not an integer"),
        (["encoding.sections=abc"], "encoding.sections=abc is not a list of integers"),
        (["encoding.base=1"], "encoding.base=1 must be > 1"),
        (["model.d_model=28"], "encoding=mrope needs an even head dimension (model.d_model / model.heads), got 7"),
        (["model.d_model=16"], "encoding=mrope needs a head dimension (model.d_model / model.heads) of at least 6"),
    ],
)
def test_bad_input_is_one_line(args, expected, refusal):
    assert expected in refusal(["encoding=mrope", *args])


def test_valid_sections_build_also_on_the_meta_device():
    """Runs are validated by building the model on the meta device (shapes without memory)."""
    assert mrope(shape(d_model=32, heads=2), sections=[6, 1, 1]).sections == (6, 1, 1)
    with torch.device("meta"):
        enc = mrope(shape(d_model=32, heads=2), sections=[2, 3, 3])
    assert enc.axis.is_meta and enc.axis.shape == (8,)
