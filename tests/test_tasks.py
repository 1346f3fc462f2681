"""Task generators: hand-checked targets, length ranges, seeded reproducibility, fixed eval sets."""

import pytest
import torch

from posbench.errors import ConfigError
from posbench.tasks import TASKS
from posbench.training.evaluate import constant_output_ceiling


def make(name, **kw):
    return TASKS.build({"name": name, **kw})


SRC = torch.tensor([[3, 1, 2, 1], [0, 5, 5, 0]])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("copy", [[3, 1, 2, 1], [0, 5, 5, 0]]),
        ("reverse", [[1, 2, 1, 3], [0, 5, 5, 0]]),
        ("sort", [[1, 1, 2, 3], [0, 0, 5, 5]]),
        ("majority", [[1], [0]]),  # second row ties 0 and 5: the smaller symbol wins
    ],
)
def test_targets_on_hand_checked_cases(name, expected):
    assert make(name).target(SRC).tolist() == expected


def test_majority_is_order_free_and_others_are_not():
    flipped = SRC.flip(1)
    assert torch.equal(make("majority").target(SRC), make("majority").target(flipped))
    for name in ("copy", "reverse"):
        assert not torch.equal(make(name).target(SRC), make(name).target(flipped))
    assert not make("majority").order_sensitive and make("copy").order_sensitive


#: The synthetic sequence tasks (image tasks are checked in tests/test_image_tasks.py, dataset-backed
#: text tasks in tests/test_text_tasks.py).
SEQUENCE_TASKS = [name for name, cls in TASKS.items() if cls.inputs == "sequences" and not cls.dataset_backed]


@pytest.mark.parametrize("name", SEQUENCE_TASKS)
def test_sampling_respects_ranges_and_is_reproducible(name):
    cls = TASKS.get(name)
    lo = max(2, cls.min_length)
    vocab = max(7, cls.min_vocab)
    task = make(name, vocab_size=vocab, train_lengths=(lo, lo + 3))
    draws = []
    for _ in range(2):
        g = torch.Generator().manual_seed(11)
        draws.append([task.sample(4, task.sample_length(g), g) for _ in range(20)])
    for (src_a, tgt_a), (src_b, tgt_b) in zip(*draws):
        assert torch.equal(src_a, src_b) and torch.equal(tgt_a, tgt_b)
        widths = {task.source_len(n): n for n in range(lo, lo + 4)}
        assert src_a.shape[1] in widths and src_a.min() >= 0 and src_a.max() < vocab
        assert tgt_a.shape == (4, task.target_len(widths[src_a.shape[1]]))
        assert torch.equal(tgt_a, task.target(src_a))
    assert {src.shape[1] for src, _ in draws[0]} == set(widths)


def test_eval_sets_are_fixed_by_eval_seed_and_sized():
    task = make("copy", train_lengths=(1, 6), eval_lengths=(4, 9), eval_size=50)
    first, second = task.test_set("cpu"), task.test_set("cpu")
    assert sum(src.shape[0] for src, _ in first) == 50
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    assert all(1 <= src.shape[1] <= 6 for src, _ in first)
    sets = task.length_sets("cpu")
    assert sorted(sets) == [4, 9] and sets[9][0][0].shape == (50, 9)
    other = make("copy", train_lengths=(1, 6), eval_lengths=(4, 9), eval_size=50, eval_seed=99)
    assert not torch.equal(other.length_sets("cpu")[9][0][0], sets[9][0][0])


def test_constant_output_ceiling_hand_case():
    # [1,1,2] -> best constant 1 gets 2 of 3; [4,5,6] -> 1 of 3
    tgt = torch.tensor([[1, 1, 2], [4, 5, 6]])
    assert constant_output_ceiling([(tgt, tgt)]) == pytest.approx(3 / 6)
    single = torch.tensor([[3], [4]])
    assert constant_output_ceiling([(single, single)]) is None  # vacuous for one-token targets


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(vocab_size=1), "vocab_size"),
        (dict(train_lengths=(5, 2)), "train_lengths"),
        (dict(train_lengths=(0, 2)), "train_lengths"),
        (dict(eval_lengths=()), "eval_lengths"),
        (dict(eval_size=0), "eval_size"),
    ],
)
def test_invalid_task_values_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        make("copy", **kw)


def test_build_follows_options_passed_on_to_the_base_task():
    task = TASKS.build({"name": "modular_arithmetic", "modulus": 5, "vocab_size": 8, "eval_size": 3})
    assert (task.modulus, task.vocab_size, task.eval_size) == (5, 8, 3)
    with pytest.raises(ConfigError, match="has no option modulo; its options: modulus, vocab_size, train_lengths"):
        TASKS.build({"name": "modular_arithmetic", "modulo": 5})


def test_declared_minimums_are_checked_by_the_base():
    with pytest.raises(ConfigError, match="at least 2 for task=index_lookup"):
        TASKS.build({"name": "index_lookup", "train_lengths": [1, 4]})
    assert make("index_lookup").train_lengths == (2, 16)  # the default range starts at min_length
