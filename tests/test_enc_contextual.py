"""Contextual and stochastic encodings: CoPE (Golovneva et al. 2024) and sineSPE (Liutkus et al. 2021).

Expected values are written out here from the papers' equations (Python ``math`` loops, float64)
or by hand, never copied from a run of posbench.
"""

from __future__ import annotations

import math

import pytest
import torch

from posbench.encodings import ENCODINGS, AttentionShape
from posbench.errors import ConfigError
from posbench.models import MODELS


def shape(d_model: int = 32, heads: int = 4, layers: int = 2, causal: bool = True) -> AttentionShape:
    return AttentionShape(d_model=d_model, heads=heads, layers=layers, causal=causal)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


# ---- CoPE -----------------------------------------------------------------------------------------
def paper_cope_score(q, k, table, npos_max: int):
    """Golovneva et al. eqs. 3-6 for one head, element by element: ``score[i][j] = q_i . e[p_ij] / sqrt(d)``
    (``None`` for masked j > i), with the vectors e[p] interpolated (eq. 5), not the logits."""
    d = len(q[0])
    out = []
    for i, qi in enumerate(q):
        row = []
        for j in range(len(k)):
            if j > i:
                row.append(None)
                continue
            p = min(sum(sigmoid(dot(qi, k[t]) / math.sqrt(d)) for t in range(j, i + 1)), npos_max)
            lo, hi = math.floor(p), math.ceil(p)
            e = [(p - lo) * table[hi][c] + (1 - p + lo) * table[lo][c] for c in range(d)]
            row.append(dot(qi, e) / math.sqrt(d))
        out.append(row)
    return out


def cope_with_table(table: list[list[float]], layers: int = 1, **kw):
    enc = ENCODINGS.get("cope")(shape(d_model=len(table[0]), heads=1, layers=layers), npos_max=len(table) - 1, **kw)
    with torch.no_grad():
        enc.table.copy_(torch.tensor(table).expand_as(enc.table))
    return enc


def test_cope_hand_computed_gates_one_half():
    """q_i = (a_i, 0) is orthogonal to every k_t = (0, b_t): every gate is sigmoid(0) = 1/2, so
    p_ij = (i - j + 1)/2 (eq. 4). With e[n] = (n^2, 7) only e's first coordinate meets q, and the
    interpolated first coordinate (eq. 5) at p = 0.5, 1, 1.5 is 0.5, 1 and 0.5*1 + 0.5*4 = 2.5."""
    enc = cope_with_table([[0.0, 7.0], [1.0, 7.0], [4.0, 7.0], [9.0, 7.0]])
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])[None, None]
    k = torch.tensor([[0.0, 5.0], [0.0, -1.0], [0.0, 2.0]])[None, None]
    score = enc.score(q, k, None, None, 0)[0, 0]
    r = 1 / math.sqrt(2)
    expected = {(0, 0): 1 * 0.5 * r, (1, 0): 2 * 1.0 * r, (1, 1): 2 * 0.5 * r,
                (2, 0): 3 * 2.5 * r, (2, 1): 3 * 1.0 * r, (2, 2): 3 * 0.5 * r}  # fmt: skip
    for (i, j), value in expected.items():
        assert score[i, j].item() == pytest.approx(value, abs=1e-6), (i, j)


def test_cope_matches_paper_equations_on_random_inputs():
    """Eqs. 3-6 written out (vector interpolation) against posbench's logit interpolation."""
    torch.manual_seed(0)
    npos_max, length, d = 3, 6, 4
    table = (torch.randn(npos_max + 1, d) * 2).tolist()
    enc = cope_with_table(table)
    q, k = torch.randn(1, 1, length, d) * 2, torch.randn(1, 1, length, d) * 2
    score = enc.score(q, k, None, None, 0)[0, 0]
    expected = paper_cope_score(q[0, 0].tolist(), k[0, 0].tolist(), table, npos_max)
    for i in range(length):
        for j in range(i + 1):
            assert score[i, j].item() == pytest.approx(expected[i][j], abs=1e-5), (i, j)


def test_cope_integer_positions_pick_table_rows_and_clip():
    """Gates saturated at 1 make p_ij = i - j + 1, an integer: e[p] is exactly a table row (eq. 5
    with no fractional part), and p is clipped at npos_max."""
    table = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]  # e[n] = (n, 0), npos_max = 3
    enc = cope_with_table(table)
    length = 6
    q = torch.tensor([50.0, 0.0]).expand(1, 1, length, 2)
    score = enc.score(q, q, None, None, 0)[0, 0]  # q . k / sqrt(2) = 1768: sigmoid == 1
    for i in range(length):
        for j in range(i + 1):
            p = min(i - j + 1, 3)
            assert score[i, j].item() == pytest.approx(50.0 * p / math.sqrt(2), abs=1e-4), (i, j)
    # gates 1/2 (as in the hand case) and npos_max = 1: p_20 = 1.5 is clipped to 1 -> e[1]
    enc = cope_with_table([[0.0, 0.0], [1.0, 0.0]])
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])[None, None]
    k = torch.tensor([[0.0, 1.0]] * 3)[None, None]
    score = enc.score(q, k, None, None, 0)[0, 0]
    assert score[2, 0].item() == pytest.approx(3 * 1.0 / math.sqrt(2), abs=1e-6)
    assert score[2, 2].item() == pytest.approx(3 * 0.5 / math.sqrt(2), abs=1e-6)  # p = 0.5 < 1: not clipped


def test_cope_counts_only_visible_keys_and_uses_its_layer_table():
    """Keys after i never enter p_ij (causal count); each layer has its own table."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("cope")(shape(), npos_max=4)
    with torch.no_grad():
        enc.table.normal_()
    q, k = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8)
    base = enc.score(q, k, None, None, 0)
    changed = k.clone()
    changed[:, :, 4:] = torch.randn_like(changed[:, :, 4:])
    lower = torch.ones(7, 7, dtype=torch.bool).tril()
    rows = torch.arange(7)[:, None] < 4  # queries 0..3 see only keys 0..3
    after = enc.score(q, changed, None, None, 0)
    torch.testing.assert_close(after[..., lower & rows], base[..., lower & rows])
    assert not torch.allclose(after[..., lower & ~rows], base[..., lower & ~rows], atol=1e-3)
    # layer 1 reads table[1]: equal to layer 0 after copying table[0] into it
    assert not torch.allclose(enc.score(q, k, None, None, 1), base, atol=1e-3)
    with torch.no_grad():
        enc.table[1] = enc.table[0]
    torch.testing.assert_close(enc.score(q, k, None, None, 1), base)


def test_cope_gradients_reach_table_and_gates():
    """The table is trained, and the gates (hence keys) receive gradient through the fractional part."""
    torch.manual_seed(0)
    enc = ENCODINGS.get("cope")(shape(), npos_max=4)
    with torch.no_grad():
        enc.table.normal_()
    q = torch.randn(1, 4, 5, 8, requires_grad=True)
    k = torch.randn(1, 4, 5, 8, requires_grad=True)
    enc.score(q, k, None, None, 0).tril().sum().backward()
    assert enc.table.grad[0].abs().sum() > 0 and enc.table.grad[1].abs().sum() == 0
    assert k.grad.abs().sum() > 0  # the score is q . e[p]: k acts only through the gates


def test_cope_is_causal_only_and_takes_the_explicit_path():
    with pytest.raises(ConfigError, match="encoding=cope is defined only for causal attention"):
        ENCODINGS.build({"name": "cope"}, shape(causal=False))
    with pytest.raises(ConfigError, match="npos_max"):
        ENCODINGS.build({"name": "cope", "npos_max": 0}, shape())
    enc = ENCODINGS.build({"name": "cope"}, shape())
    assert enc.explicit_attention and enc.npos_max == 64 and enc.table.shape == (2, 65, 8)
    assert enc.max_positions() is None  # positions beyond npos_max are clipped, never refused


def test_cope_matches_x_transformers():
    """x-transformers' CoPE(query, attn_logits) takes the scaled logits with future keys filled with
    -finfo.max (gates 0) and returns the *unscaled* q . e[p] from ``max_pos`` rows, clipping at
    max_pos - 1: aligned with max_pos = npos_max + 1 and pos_emb = table / sqrt(d)."""
    xt = pytest.importorskip("x_transformers.x_transformers")
    torch.manual_seed(0)
    d, length, npos_max = 8, 9, 5
    enc = ENCODINGS.get("cope")(shape(), npos_max=npos_max)
    with torch.no_grad():
        enc.table.normal_()
    q, k = torch.randn(2, 4, length, d) * 2, torch.randn(2, 4, length, d) * 2
    theirs_module = xt.CoPE(dim=d, heads=4, max_pos=npos_max + 1)
    with torch.no_grad():
        theirs_module.pos_emb.copy_(enc.table[1] / math.sqrt(d))
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    sim = ((q @ k.transpose(-2, -1)) * d**-0.5).masked_fill(future, -torch.finfo(q.dtype).max)
    theirs = theirs_module(q, sim)
    ours = enc.score(q, k, None, None, 1)
    torch.testing.assert_close(ours[..., ~future], theirs[..., ~future], atol=1e-5, rtol=1e-5)


# ---- sineSPE --------------------------------------------------------------------------------------
def spe(heads=2, head_dim=4, realizations=64, sines=3, gated=True, causal=False, seed=0):
    torch.manual_seed(seed)
    attn = shape(d_model=heads * head_dim, heads=heads, layers=1, causal=causal)
    return ENCODINGS.get("spe")(attn, num_realizations=realizations, num_sines=sines, gated=gated)


def logits(enc, q, k, q_pos, k_pos):
    """What attention computes from the SPE queries/keys: q_hat . k_hat / sqrt(R)."""
    qh, kh = enc.rotate(q, k, q_pos, k_pos)
    return (qh @ kh.transpose(-2, -1)) / qh.shape[-1] ** 0.5


def paper_spe_kernel(enc, h: int, d: int, tau: int) -> float:
    """Liutkus et al. sineSPE + gating: (1 - gamma) (1/K) sum_k lambda^2 cos(2 pi f tau + theta) + gamma."""
    f = [1 / (1 + math.exp(-x)) / 2 for x in enc.freq_logits[h, d].tolist()]
    lam = [math.log1p(math.exp(x)) for x in enc.gain_logits[h, d].tolist()]
    theta = enc.phases[h, d].tolist()
    p = sum(lk**2 * math.cos(2 * math.pi * fk * tau + tk) for fk, lk, tk in zip(f, lam, theta)) / len(f)
    gamma = 1 / (1 + math.exp(-enc.gate_logits[h, d].item())) if enc.gated else 0.0
    return (1 - gamma) * p + gamma


def test_spe_shapes_and_forward():
    """SPE queries/keys have R features; attention (fused SDPA) runs with values of size d_head."""
    enc = spe(realizations=24).eval()
    q, k = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    qh, kh = enc.rotate(q, k, torch.arange(5)[None], torch.arange(5)[None])
    assert qh.shape == kh.shape == (3, 2, 5, 24)
    assert not enc.explicit_attention
    for model in ("encoder", "decoder"):
        torch.manual_seed(0)
        net = MODELS.get(model)(11, {"name": "spe"}, d_model=32, layers=2, heads=4)
        assert net.net(torch.randint(0, 11, (2, 7))).shape[:2] == (2, 7)
    # positions per example [B, L] give each example what its own positions [1, L] give it
    pos = torch.tensor([[0, 1, 2, 3, 4], [7, 3, 9, 9, 20], [5, 6, 7, 8, 9]])
    qh, kh = enc.rotate(q, k, pos, pos)
    for b in range(3):
        qb, kb = enc.rotate(q[b : b + 1], k[b : b + 1], pos[b : b + 1], pos[b : b + 1])
        torch.testing.assert_close(qh[b : b + 1], qb)
        torch.testing.assert_close(kh[b : b + 1], kb)
    ungated = spe(gated=False)
    assert not hasattr(ungated, "gate_logits") and ungated.eval_noise.shape == (2, 4, 6, 64)


def test_spe_eval_is_deterministic_and_training_resamples():
    enc = spe()
    q, k, pos = torch.randn(2, 2, 6, 4), torch.randn(2, 2, 6, 4), torch.arange(6)[None]
    enc.eval()
    a = logits(enc, q, k, pos, pos)
    torch.testing.assert_close(logits(enc, q, k, pos, pos), a, rtol=0, atol=0)
    # the fixed draw is part of the state: another instance loading it evaluates identically
    other = spe(seed=1).eval()
    assert not torch.allclose(logits(other, q, k, pos, pos), a)
    other.load_state_dict(enc.state_dict())
    torch.testing.assert_close(logits(other, q, k, pos, pos), a, rtol=0, atol=0)
    # training: fresh noise per call, reproducible under torch.manual_seed
    enc.train()
    torch.manual_seed(5)
    b = logits(enc, q, k, pos, pos)
    c = logits(enc, q, k, pos, pos)
    assert not torch.allclose(b, c, atol=1e-3) and not torch.allclose(b, a, atol=1e-3)
    torch.manual_seed(5)
    torch.testing.assert_close(logits(enc, q, k, pos, pos), b, rtol=0, atol=0)


def test_spe_expected_logits_are_the_relative_kernel():
    """Averaged over R realisations (the 1/R sum inside q_hat . k_hat / sqrt(R)), the logits are
    sum_d q_d k_d [(1 - gamma_d) P_d(i - j) + gamma_d] / sqrt(d_head): a function of i - j only,
    whatever the absolute positions. A single small draw is not (SPE is relative in expectation)."""
    enc = spe(realizations=60000, sines=3).eval()
    with torch.no_grad():  # frequencies around 1/4 cycle per position: a kernel that varies fast
        enc.freq_logits.normal_()
        enc.gate_logits.normal_()
    length, d = 7, 4
    q = torch.randn(1, 2, 1, d).expand(1, 2, length, d)  # same q and k at every position
    k = torch.randn(1, 2, 1, d).expand(1, 2, length, d)
    pos = torch.arange(length)[None] + 11
    got = logits(enc, q, k, pos, pos)[0]
    for h in range(2):
        for i in range(length):
            for j in range(length):
                qk = [q[0, h, 0, c].item() * k[0, h, 0, c].item() for c in range(d)]
                expected = sum(qk[c] * paper_spe_kernel(enc, h, c, i - j) for c in range(d)) / math.sqrt(d)
                assert got[h, i, j].item() == pytest.approx(expected, abs=0.05), (h, i, j)
    # Toeplitz within the Monte-Carlo tolerance; position does enter (not constant across diagonals)
    diagonals = [got.diagonal(o, dim1=-2, dim2=-1) for o in range(-length + 1, length)]
    assert max((x - x.mean(-1, keepdim=True)).abs().max().item() for x in diagonals) < 0.05
    assert (got[:, 3, 0] - got[:, 0, 3]).abs().max() > 0.1  # phases: left and right differ
    small = spe(realizations=4, sines=3).eval()
    few = logits(small, q, k, pos, pos)[0]
    assert (few.diagonal(1, dim1=-2, dim2=-1) - few[:, 0, 1, None]).abs().max() > 1e-3


def test_spe_gate_extremes():
    """gamma = 1: no position at all (exactly), content attention q.k/sqrt(d) in expectation.
    gamma = 0: exactly the ungated (pure) SPE with the same parameters and noise."""
    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 6, 4), torch.randn(2, 2, 6, 4)
    pos = torch.arange(6)[None]
    closed = spe(realizations=60000).eval()
    with torch.no_grad():
        closed.gate_logits.fill_(float("inf"))
    a = logits(closed, q, k, pos, pos)
    shuffled = torch.tensor([[40, 3, 17, 0, 9, 100]])
    torch.testing.assert_close(logits(closed, q, k, shuffled, shuffled), a, rtol=0, atol=1e-6)
    torch.testing.assert_close(a, (q @ k.transpose(-2, -1)) / 2, rtol=0, atol=0.05)

    opened = spe(realizations=32)
    with torch.no_grad():
        opened.gate_logits.fill_(float("-inf"))
    pure = spe(realizations=32, gated=False, seed=1)
    state = {n: t for n, t in opened.state_dict().items() if n != "gate_logits"}
    state["eval_noise"] = state["eval_noise"][:, :, :-1]  # drop the position-free noise vector
    pure.load_state_dict(state)
    opened.eval(), pure.eval()
    torch.testing.assert_close(logits(opened, q, k, pos, pos), logits(pure, q, k, pos, pos), rtol=0, atol=1e-6)
    assert not torch.allclose(logits(pure, q, k, pos, pos), logits(pure, q, k, pos + 3, pos), atol=1e-3)


def test_spe_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="num_realizations"):
        ENCODINGS.build({"name": "spe", "num_realizations": 0}, shape())
    enc = ENCODINGS.build({"name": "spe"}, shape(causal=False))
    assert enc.num_realizations == 64 and enc.num_sines == 10 and enc.gated
