"""Content-position encodings: Shaw et al. 2018 (``shaw``), Transformer-XL (``xl``) and TUPE-A
(``tupe``), each against its paper's formula written out here with explicit loops in float64
(or worked by hand), independently of the implementation's vectorised gather/scatter tricks.

No oracle library implements these three (x-transformers has none of them; Hugging Face
``transformers`` is not installed), so every expected value is hand-computed or a loop reference.
"""

from __future__ import annotations

import math

import pytest
import torch

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models import attention as attention_module
from posbench.models.attention import SelfAttention


def shape(d_model: int = 8, heads: int = 2, layers: int = 2, causal: bool = False) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=causal)


def randomise(module: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def clip(x: int, k: int) -> int:
    return max(-k, min(k, x))


def paper_sinusoid(n: float, d: int, base: float = 10000.0) -> list[float]:
    """Sinusoid of (a possibly negative) distance n in posbench's interleaved layout:
    [sin(n w_0), cos(n w_0), sin(n w_1), ...] with w_f = base^(-2f/d)."""
    out = []
    for f in range(d // 2):
        out += [math.sin(n / base ** (2 * f / d)), math.cos(n / base ** (2 * f / d))]
    return out


def split_qkv(attn: SelfAttention, x: torch.Tensor, heads: int) -> tuple[torch.Tensor, ...]:
    """q, k, v ``[B, H, L, d]`` in float64 from the layer's own projection, as eq. 1-2 define them."""
    b, length, d_model = x.shape
    qkv = x.double() @ attn.qkv.weight.double().T
    return tuple(qkv.view(b, length, 3, heads, -1).permute(2, 0, 3, 1, 4))


def merge_heads(attn: SelfAttention, z: torch.Tensor) -> torch.Tensor:
    b, _, length, _ = z.shape
    return z.transpose(1, 2).reshape(b, length, -1) @ attn.out.weight.double().T


def softmax_rows(logits: torch.Tensor, causal: bool) -> torch.Tensor:
    if causal:
        length = logits.shape[-1]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
    return torch.softmax(logits, dim=-1)


# ---- attention path: explicit for shaw/xl, fused for tupe -----------------------------------------
@pytest.mark.parametrize("name, explicit", [("shaw", True), ("xl", True), ("tupe", False)])
def test_attention_path(name, explicit, monkeypatch):
    """shaw/xl need q and k for their terms (explicit path); tupe uses only rotate + bias (fused SDPA)."""
    enc = ENCODINGS.build({"name": name}, shape())
    assert enc.explicit_attention is explicit

    def refuse(*args, **kwargs):
        raise AssertionError("wrong attention path")

    # the path not expected must never be called
    if explicit:
        monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", refuse)
    else:
        monkeypatch.setattr(attention_module, "attention_weights", refuse)
    attn = SelfAttention(8, 2)
    attn(torch.randn(2, 5, 8), enc, torch.arange(5)[None], False, 0)


# ---- 1. Shaw et al. 2018 --------------------------------------------------------------------------
def test_shaw_key_term_hand_computed():
    """Eq. 5 key term q_i . w^K[clip(j - i, 1)] / sqrt(2), one head of size 2, worked by hand."""
    enc = ENCODINGS.get("shaw")(shape(d_model=2, heads=1, layers=1), clip=1, values=False)
    with torch.no_grad():  # rows: j - i = -1, 0, +1
        enc.w_key[0] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    q = torch.tensor([[2.0, 3.0], [5.0, 7.0], [-1.0, 4.0], [0.0, 0.0]]).view(1, 1, 4, 2)
    pos = torch.arange(4)[None]
    got = enc.score(q, q, pos, pos, 0)[0, 0]
    # q_0 = [2, 3]: j - i = 0 -> 3, j - i >= 1 -> 2 + 3 = 5
    # q_1 = [5, 7]: j - i = -1 -> 5, 0 -> 7, >= 1 -> 12
    # q_2 = [-1, 4]: j - i <= -1 -> -1, 0 -> 4, 1 -> 3
    expected = torch.tensor([[3.0, 5, 5, 5], [5, 7, 12, 12], [-1, -1, 4, 3], [0, 0, 0, 0]]) / math.sqrt(2)
    torch.testing.assert_close(got, expected)


def test_shaw_clipping_shares_embeddings_beyond_k():
    """§3.2: every distance beyond +-k uses the embedding of +-k; within +-k they differ."""
    k = 3
    enc = ENCODINGS.get("shaw")(shape(), clip=k)
    randomise(enc)
    length = 12
    q = torch.randn(1, 2, 1, 4).expand(1, 2, length, 4)  # the same query everywhere
    pos = torch.arange(length)[None] + 40
    score = enc.score(q, q, pos, pos, 0)
    for i in range(length):
        for j in range(length):
            n = clip(j - i, k)
            i0 = max(0, -n)  # a pair (i0, i0 + n) at the clipped distance itself
            torch.testing.assert_close(score[0, :, i, j], score[0, :, i0, i0 + n])
    # distinct inside the window: 2k + 1 different values on row i = k + 2 (keys at distance -k..k)
    row = score[0, 0, k + 2, 2 : 2 * k + 3]
    assert len(set(row.tolist())) == 2 * k + 1
    # the value term clips too: a single key at distance 7 or 9 (> k) gives w^V[+k]
    for dist in (7, 9):
        w = torch.zeros(1, 2, length, length)
        w[0, :, 0, dist] = 1.0
        torch.testing.assert_close(enc.value(w, pos, pos, 1)[0, :, 0], enc.w_value[1, 2 * k].expand(2, 4))


@pytest.mark.parametrize("layer", [0, 1])
def test_shaw_value_term_equals_reference_loop(layer):
    """Eq. 3 position part: sum_j alpha_ij a^V_ij with a^V_ij = w^V[clip(j - i, k)], per layer."""
    k = 2
    enc = ENCODINGS.get("shaw")(shape(), clip=k)
    randomise(enc)
    torch.manual_seed(1)
    length = 7
    weights = torch.softmax(torch.randn(2, 2, length, length), dim=-1)
    pos = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [3, 4, 9, 10, 11, 30, 31]])  # second row: gaps
    got = enc.value(weights, pos, pos, layer)
    table = enc.w_value[layer].double()
    expected = torch.zeros(2, 2, length, 4, dtype=torch.float64)
    for b in range(2):
        for h in range(2):
            for i in range(length):
                for j in range(length):
                    n = clip(pos[b, j].item() - pos[b, i].item(), k)
                    expected[b, h, i] += weights[b, h, i, j].double() * table[n + k]
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=0)
    # the tables are per layer: the other layer's term differs
    assert not torch.allclose(enc.value(weights, pos, pos, 1 - layer), got)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("values", [True, False])
def test_shaw_attention_layer_equals_eqs_3_to_5(causal, values):
    """A whole attention layer with shaw equals eqs. 3-5 written with explicit a^K_ij, a^V_ij."""
    k = 2
    attn_shape = shape(causal=causal)
    enc = ENCODINGS.get("shaw")(attn_shape, clip=k, values=values)
    randomise(enc)
    torch.manual_seed(0)
    attn = SelfAttention(8, 2)
    x = torch.randn(2, 6, 8)
    pos = torch.arange(6)[None] + 3
    got = attn(x, enc, pos, causal, 1)

    q, kk, v = split_qkv(attn, x, 2)
    a_k = torch.zeros(6, 6, 4, dtype=torch.float64)
    a_v = torch.zeros(6, 6, 4, dtype=torch.float64)
    for i in range(6):
        for j in range(6):
            a_k[i, j] = enc.w_key[1, clip(j - i, k) + k].double()
            if values:
                a_v[i, j] = enc.w_value[1, clip(j - i, k) + k].double()
    e = torch.einsum("bhid,bhijd->bhij", q, kk[:, :, None] + a_k) / math.sqrt(4)  # eq. 5
    alpha = softmax_rows(e, causal)
    z = torch.einsum("bhij,bhijd->bhid", alpha, v[:, :, None] + a_v)  # eq. 3
    torch.testing.assert_close(got.double(), merge_heads(attn, z), atol=1e-5, rtol=0)


def test_shaw_options():
    enc = ENCODINGS.build({"name": "shaw", "values": False}, shape())
    pos = torch.arange(3)[None]
    assert enc.w_value is None and enc.value(torch.ones(1, 2, 3, 3), pos, pos, 0) is None
    assert enc.explicit_attention  # the key term still needs the explicit path
    assert ENCODINGS.build({"name": "shaw"}, shape()).w_key.shape == (2, 33, 4)  # layers, 2k + 1, head_dim
    with pytest.raises(ConfigError, match="encoding.clip=-1 must be >= 0"):
        ENCODINGS.build({"name": "shaw", "clip": -1}, shape())


# ---- 2. Transformer-XL ----------------------------------------------------------------------------
def test_xl_hand_computed():
    """d_model = head_dim = 2, one head: R_n = [sin n, cos n]; W_R = I, u = [1, 0], v = [0, 1]."""
    enc = ENCODINGS.get("xl")(shape(d_model=2, heads=1, layers=1))
    with torch.no_grad():
        enc.w_r[0].weight.copy_(torch.eye(2))
        enc.u.copy_(torch.tensor([[1.0, 0.0]]))
        enc.v.copy_(torch.tensor([[0.0, 1.0]]))
    q = torch.tensor([[2.0, 3.0], [1.0, -1.0]]).view(1, 1, 2, 2)
    k = torch.tensor([[4.0, 5.0], [-2.0, 1.0]]).view(1, 1, 2, 2)
    pos = torch.tensor([[10, 11]])
    got = enc.score(q, k, pos, pos, 0)[0, 0]
    s1, c1 = math.sin(1.0), math.cos(1.0)
    # (b) + (d) = (q_i + v) . R_{i-j}, (c) = u . k_j = k_j[0]; R_{-1} = [-sin 1, cos 1], R_0 = [0, 1]
    expected = torch.tensor(
        [
            [(2 * 0 + 4 * 1) + 4, (2 * -s1 + 4 * c1) + -2],  # i = 0: q + v = [2, 4]
            [(1 * s1 + 0 * c1) + 4, (1 * 0 + 0 * 1) + -2],  # i = 1: q + v = [1, 0]
        ]
    ) / math.sqrt(2)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("causal", [False, True])
def test_xl_equals_four_term_formula(causal):
    """§3.3: A_ij = q.k + q.W_R R_{i-j} + u.k + v.W_R R_{i-j}, all / sqrt(head_dim), with R_{i-j}
    written out per pair (non-contiguous and per-row positions exercise the distance gather)."""
    heads, d_model = 2, 8
    dh = d_model // heads
    enc = ENCODINGS.get("xl")(shape(d_model=d_model, heads=heads, causal=causal))
    randomise(enc)
    torch.manual_seed(0)
    length = 5
    q, k = torch.randn(2, heads, length, dh), torch.randn(2, heads, length, dh)
    pos = torch.tensor([[0, 1, 2, 3, 4], [7, 9, 10, 20, 21]])
    for layer in (0, 1):
        got = (q @ k.transpose(-2, -1)) / math.sqrt(dh) + enc.score(q, k, pos, pos, layer)  # (a) by attention
        w_r = enc.w_r[layer].weight.double()  # nn.Linear: W_R R = weight @ R
        u, v = enc.u.double(), enc.v.double()
        expected = torch.zeros(2, heads, length, length, dtype=torch.float64)
        for b in range(2):
            for h in range(heads):
                rows = slice(h * dh, (h + 1) * dh)
                for i in range(length):
                    for j in range(length):
                        r_ij = paper_sinusoid(pos[b, i].item() - pos[b, j].item(), d_model)  # R_{i-j}
                        r = w_r[rows] @ torch.tensor(r_ij, dtype=torch.float64)
                        qi, kj = q[b, h, i].double(), k[b, h, j].double()
                        terms = qi @ kj + qi @ r + u[h] @ kj + v[h] @ r  # (a) + (b) + (c) + (d)
                        expected[b, h, i, j] = terms / math.sqrt(dh)
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)


def test_xl_parameter_sharing_and_direction():
    """u, v are shared by all layers (one parameter each), W_R is per layer, and in bidirectional
    attention a key at distance +n and one at -n are told apart (sin is odd)."""
    enc = ENCODINGS.get("xl")(shape())
    randomise(enc)
    assert enc.u.shape == enc.v.shape == (2, 4) and len(enc.w_r) == 2
    torch.manual_seed(0)
    q = torch.randn(1, 2, 1, 4).expand(1, 2, 9, 4)  # the same query and key everywhere
    k = torch.randn(1, 2, 1, 4).expand(1, 2, 9, 4)
    pos = torch.arange(9)[None]
    score = enc.score(q, k, pos, pos, 0)
    assert not torch.allclose(score[0, :, 4, 2], score[0, :, 4, 6], atol=1e-3)
    assert not torch.allclose(enc.score(q, k, pos, pos, 1), score, atol=1e-3)
    # Toeplitz: the score depends only on i - j
    for offset in range(-8, 9):
        diag = score.diagonal(offset, dim1=-2, dim2=-1)
        torch.testing.assert_close(diag, diag[..., :1].expand_as(diag), atol=1e-5, rtol=0)


# ---- 3. TUPE-A ------------------------------------------------------------------------------------
def test_tupe_bias_hand_computed():
    """One head of size 2, U^Q = U^K = I: bias_ij = p_i . p_j / sqrt(2 * 2)."""
    enc = ENCODINGS.get("tupe")(shape(d_model=2, heads=1, layers=1), max_len=3)
    with torch.no_grad():
        enc.table.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        enc.u_q.weight.copy_(torch.eye(2))
        enc.u_k.weight.copy_(torch.eye(2))
    bias = enc.bias(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2]]), 0)[0, 0]
    expected = torch.tensor([[1.0, 0, 1], [0, 4, 2], [1, 2, 2]]) / 2
    torch.testing.assert_close(bias, expected)


def test_tupe_bias_equals_formula_and_is_shared_by_layers():
    """Eq. 7 position term (p_i U^Q_h)(p_j U^K_h)^T / sqrt(2d) per head h, written with loops."""
    heads, d_model = 2, 8
    dh = d_model // heads
    enc = ENCODINGS.get("tupe")(shape(d_model=d_model, heads=heads), max_len=40)
    randomise(enc)
    pos = torch.tensor([[0, 3, 4, 17, 39], [5, 6, 7, 8, 9]])
    bias = enc.bias(pos, pos, 0)
    p = enc.table.weight.double()
    u_q, u_k = enc.u_q.weight.double().T, enc.u_k.weight.double().T  # nn.Linear: p U = p @ weight.T
    for b in range(2):
        for h in range(heads):
            cols = slice(h * dh, (h + 1) * dh)
            for i, pi in enumerate(pos[b].tolist()):
                for j, pj in enumerate(pos[b].tolist()):
                    expected = (p[pi] @ u_q[:, cols]) @ (p[pj] @ u_k[:, cols]) / math.sqrt(2 * dh)
                    assert bias[b, h, i, j].item() == pytest.approx(expected.item(), abs=1e-4), (b, h, i, j)
    torch.testing.assert_close(enc.bias(pos, pos, 1), bias)  # U^Q, U^K shared across layers


@pytest.mark.parametrize("causal", [False, True])
def test_tupe_attention_layer_equals_eq_7(causal):
    """A whole (fused) attention layer with tupe equals eq. 7: content and position correlations,
    each scaled by 1/sqrt(2d), and no position in the input (``embed`` is the identity)."""
    heads, d_model, length = 2, 8, 6
    dh = d_model // heads
    enc = ENCODINGS.get("tupe")(shape(d_model=d_model, heads=heads, causal=causal), max_len=20)
    randomise(enc)
    torch.manual_seed(0)
    attn = SelfAttention(d_model, heads)
    x = torch.randn(2, length, d_model)
    pos = torch.arange(length)[None] + 4
    assert torch.equal(enc.embed(x, pos), x)
    got = attn(x, enc, pos, causal, 0)

    q, k, v = split_qkv(attn, x, heads)
    p = enc.table.weight.double()[pos[0]]
    p_q = (p @ enc.u_q.weight.double().T).view(length, heads, dh).transpose(0, 1)
    p_k = (p @ enc.u_k.weight.double().T).view(length, heads, dh).transpose(0, 1)
    alpha = (q @ k.transpose(-2, -1) + p_q @ p_k.transpose(-2, -1)) / math.sqrt(2 * dh)
    z = softmax_rows(alpha, causal) @ v
    torch.testing.assert_close(got.double(), merge_heads(attn, z), atol=1e-5, rtol=0)
    # the content logits through rotate are q.k / sqrt(2d), not q.k / sqrt(d)
    q32, k32 = torch.randn(1, heads, 3, dh), torch.randn(1, heads, 3, dh)
    rq, rk = enc.rotate(q32, k32, pos[:, :3], pos[:, :3])
    content = (rq @ rk.transpose(-2, -1)) / math.sqrt(dh)
    torch.testing.assert_close(content, (q32 @ k32.transpose(-2, -1)) / math.sqrt(2 * dh))


def test_tupe_check_fits():
    """The learned table bounds the positions: a run needing more than max_len is refused."""
    enc = ENCODINGS.build({"name": "tupe", "max_len": 10}, shape())
    assert enc.max_positions() == 10
    for needed in (1, 10):
        enc.check_fits(needed)
    with pytest.raises(ConfigError, match="encoding=tupe represents 10 positions"):
        enc.check_fits(11)
    assert ENCODINGS.build({"name": "tupe"}, shape()).max_positions() == 256
    # shaw and xl are unbounded (clipping / sinusoid of any distance)
    assert ENCODINGS.build({"name": "shaw"}, shape()).max_positions() is None
    assert ENCODINGS.build({"name": "xl"}, shape()).max_positions() is None
