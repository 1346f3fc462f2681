"""Tasks of Delétang et al. 2023 (suite A): hand-checked targets, structured sampling, edge lengths."""

import pytest
import torch

from posbench.errors import ConfigError
from posbench.tasks import TASKS

NAMES = ("duplicate", "odds_first", "parity", "even_pairs", "cycle_navigation", "modular_arithmetic")


def make(name, **kw):
    return TASKS.build({"name": name, **kw})


def test_duplicate_hand_cases():
    task = make("duplicate")
    assert task.target(torch.tensor([[3, 1, 2]])).tolist() == [[3, 1, 2, 3, 1, 2]]
    assert task.target(torch.tensor([[4]])).tolist() == [[4, 4]]
    assert task.target_len(3) == 6 and task.target_len(1) == 2 and task.order_sensitive


def test_odds_first_hand_cases():
    task = make("odds_first")
    # 0-indexed odd positions (1, 3) first, then even positions (0, 2, 4)
    assert task.target(torch.tensor([[10, 11, 12, 13, 14]]) - 10).tolist() == [[1, 3, 0, 2, 4]]
    assert task.target(torch.tensor([[5, 6, 7, 8]])).tolist() == [[6, 8, 5, 7]]
    assert task.target(torch.tensor([[1, 1, 0]])).tolist() == [[1, 1, 0]]
    assert task.target(torch.tensor([[4]])).tolist() == [[4]]
    assert task.target_len(5) == 5 and task.order_sensitive


def test_parity_hand_cases():
    task = make("parity")
    src = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 0]])
    assert task.target(src).tolist() == [[0], [1], [0]]
    assert task.target(torch.tensor([[1], [0]])).tolist() == [[1], [0]]
    assert task.chance == 0.5 and not task.order_sensitive and task.target_len(9) == 1


def test_even_pairs_hand_cases():
    task = make("even_pairs")
    # 001110: one 01 and one 10 -> even -> 0; 0101001: 3 01 + 2 10 -> odd -> 1 (the paper's examples)
    assert task.target(torch.tensor([[0, 0, 1, 1, 1, 0]])).tolist() == [[0]]
    assert task.target(torch.tensor([[0, 1, 0, 1, 0, 0, 1]])).tolist() == [[1]]
    assert task.target(torch.tensor([[1], [0]])).tolist() == [[0], [0]]  # no pairs: even
    src = torch.tensor([[1, 0, 0, 0]])
    assert task.target(src).tolist() == [[1]] and task.target(src.flip(1)).tolist() == [[1]]
    assert task.target(torch.tensor([[0, 1, 0, 0]])).tolist() == [[0]]  # same multiset, other answer
    assert task.chance == 0.5 and task.order_sensitive


def test_cycle_navigation_hand_cases():
    task = make("cycle_navigation")
    # moves: 0 stay, 1 +1, 2 -1 on a 5-cycle starting at 0
    assert task.target(torch.tensor([[1, 2, 0, 2, 2]])).tolist() == [[3]]  # +1-1-1-1 = -2 = 3
    assert task.target(torch.tensor([[1, 1, 1, 2]])).tolist() == [[2]]
    assert task.target(torch.tensor([[1, 1, 1, 1, 1, 1]])).tolist() == [[1]]  # wraps around
    assert task.target(torch.tensor([[0], [1], [2]])).tolist() == [[0], [1], [4]]
    assert task.chance == pytest.approx(0.2) and not task.order_sensitive


def test_modular_arithmetic_hand_cases_modulus_5():
    task = make("modular_arithmetic", vocab_size=8, modulus=5)
    P, M, T = 5, 6, 7
    cases = [
        ([1, P, 2, T, 3], 2),  # 1 + 2*3 = 7 = 2 (precedence, the paper's example)
        ([1, M, 1, M, 1], 4),  # 1 - 1 - 1 = -1 = 4
        ([0, T, 1, P, 4, T, 3, M, 2], 0),  # 0*1 + 4*3 - 2 = 10 = 0
        ([1, M, 2, T, 3], 0),  # 1 - 6 = -5 = 0: the minus applies to the whole product
        ([4, T, 4, T, 4], 4),  # 64 = 4
        ([3], 3),
        ([3, P], 3),  # trailing operator ignored
        ([2, T, 4, M], 3),
    ]
    for src, value in cases:
        assert task.target(torch.tensor([src])).tolist() == [[value]], src
    assert task.chance == pytest.approx(0.2) and task.order_sensitive


def test_modular_arithmetic_default_fits_seven_symbols():
    task = make("modular_arithmetic", vocab_size=7)  # default modulus 3: operators 3, 4, 5
    assert task.modulus == 3 and task.chance == pytest.approx(1 / 3)
    assert task.target(torch.tensor([[2, 3, 2, 5, 2]])).tolist() == [[0]]  # 2 + 4 = 6 = 0
    assert task.target(torch.tensor([[1, 4, 2]])).tolist() == [[2]]  # 1 - 2 = -1 = 2


def test_modular_arithmetic_sample_is_structured_and_matches_python_eval():
    task = make("modular_arithmetic", vocab_size=8, modulus=5)
    g = torch.Generator().manual_seed(3)
    for length in (1, 2, 7, 8):
        src, tgt = task.sample(64, length, g)
        assert src.shape == (64, length) and tgt.shape == (64, 1)
        assert (src[:, 0::2] < 5).all() and (src[:, 1::2] >= 5).all() and (src < 8).all()
        for row, value in zip(src.tolist(), tgt[:, 0].tolist()):
            expr = row if length % 2 else row[:-1]
            text = "".join(str(s) if i % 2 == 0 else "+-*"[s - 5] for i, s in enumerate(expr))
            assert eval(text) % 5 == value, text


@pytest.mark.parametrize("name", ("parity", "even_pairs"))
def test_binary_tasks_sample_binary_sources(name):
    g = torch.Generator().manual_seed(0)
    src, tgt = make(name, vocab_size=16).sample(256, 6, g)
    assert set(src.unique().tolist()) == {0, 1} and set(tgt.unique().tolist()) == {0, 1}


def test_cycle_navigation_samples_moves_only_and_is_order_free():
    task = make("cycle_navigation", vocab_size=16)
    src, tgt = task.sample(256, 9, torch.Generator().manual_seed(0))
    assert src.max() <= 2 and tgt.max() <= 4 and set(tgt.unique().tolist()) == set(range(5))
    assert torch.equal(task.target(src.flip(1)), tgt)


def test_parity_is_order_free():
    task = make("parity")
    src, tgt = task.sample(64, 7, torch.Generator().manual_seed(1))
    assert torch.equal(task.target(src[:, torch.randperm(7)]), tgt)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", (1, 2, 3))
def test_edge_lengths_and_reproducibility(name, length):
    task = make(name, vocab_size=8)
    draws = [task.sample(5, length, torch.Generator().manual_seed(7)) for _ in range(2)]
    (src, tgt), (src2, tgt2) = draws
    assert torch.equal(src, src2) and torch.equal(tgt, tgt2)
    assert src.shape == (5, length) and tgt.shape == (5, task.target_len(length))
    assert tgt.min() >= 0 and tgt.max() < task.vocab_size
    assert torch.equal(task.target(src), tgt)


@pytest.mark.parametrize(
    "name, kw, message",
    [
        ("cycle_navigation", dict(vocab_size=4), "vocab_size"),
        ("cycle_navigation", dict(cycle_length=1), "cycle_length"),
        ("modular_arithmetic", dict(vocab_size=7, modulus=5), "at least 8"),
        ("modular_arithmetic", dict(modulus=1), "modulus"),
    ],
)
def test_invalid_options_are_config_errors(name, kw, message):
    with pytest.raises(ConfigError, match=message):
        make(name, **kw)
