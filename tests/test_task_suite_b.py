"""Suite B tasks: missing_duplicate, summation, index_lookup, associative_recall, bag_equal.
Targets hand-checked on tiny cases, structured sampling, edge lengths and configuration errors."""

from pathlib import Path

import pytest
import torch
import yaml

from posbench.errors import ConfigError
from posbench.tasks import TASKS

NAMES = ("missing_duplicate", "summation", "index_lookup", "associative_recall", "bag_equal")
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "task"


def make(name, **kw):
    kw.setdefault("vocab_size", 7)
    kw.setdefault("train_lengths", (2, 5))
    return TASKS.build({"name": name, **kw})


def tgt(name, rows, **kw):
    return make(name, **kw).target(torch.tensor(rows)).tolist()


# ---- hand-checked targets (vocab_size 7 unless stated) -------------------------------------------
def test_missing_duplicate_hand_cases():
    # marker is 6; L=4: w=[1,2], copy [1,6] hides w[1]=2
    assert tgt("missing_duplicate", [[1, 2, 1, 6], [1, 2, 6, 2]]) == [[2], [1]]
    # L=5: w=[3,0,4], copy = w[:2] = [6,0] hides w[0]=3
    assert tgt("missing_duplicate", [[3, 0, 4, 6, 0]]) == [[3]]
    # L=2: w=[5], copy [6]
    assert tgt("missing_duplicate", [[5, 6]]) == [[5]]


def test_summation_hand_cases():
    assert tgt("summation", [[3, 5, 6], [1, 2, 0]]) == [[0], [3]]  # 14 mod 7 = 0, 3
    assert tgt("summation", [[4]]) == [[4]]  # L=1
    assert tgt("summation", [[9, 9, 3]], vocab_size=10) == [[1]]  # 21 mod 10, the paper's base


def test_index_lookup_hand_cases():
    assert tgt("index_lookup", [[4, 2, 5, 1], [4, 2, 5, 2]]) == [[2], [5]]
    assert tgt("index_lookup", [[3, 0, 6, 2, 0]]) == [[3]]
    assert tgt("index_lookup", [[5, 0]]) == [[5]]  # L=2: one data symbol


def test_associative_recall_hand_cases():
    # keys 0..2, values 3..6
    assert tgt("associative_recall", [[0, 4, 2, 6, 2], [0, 4, 2, 6, 0]]) == [[6], [4]]
    # even L: a leading unbound value 5, then pairs (1,3) (0,6), query 0
    assert tgt("associative_recall", [[5, 1, 3, 0, 6, 0]]) == [[6]]
    # repeated key: the most recent binding of 0 is 5
    assert tgt("associative_recall", [[0, 3, 1, 4, 0, 5, 2, 6, 0]]) == [[5]]
    assert tgt("associative_recall", [[1, 5]]) == [[5]]  # degenerate L=2


def test_bag_equal_hand_cases():
    # K=3: first half 0..2, second half 3..5 (x+3 stands for x), filler 6
    assert tgt("bag_equal", [[0, 1, 4, 3], [0, 1, 3, 3]]) == [[1], [0]]
    assert tgt("bag_equal", [[2, 6, 5], [2, 6, 4]]) == [[1], [0]]
    assert tgt("bag_equal", [[6]], train_lengths=(1, 3)) == [[1]]  # L=1: two empty bags


# ---- order sensitivity and chance -----------------------------------------------------------------
def test_order_flags_and_chance():
    assert not make("summation").order_sensitive and not make("bag_equal").order_sensitive
    for name in ("missing_duplicate", "index_lookup", "associative_recall"):
        assert make(name).order_sensitive
    assert make("missing_duplicate").chance == pytest.approx(1 / 6)
    assert make("summation").chance == pytest.approx(1 / 7)
    assert make("index_lookup").chance == pytest.approx(1 / 7)
    assert make("associative_recall").chance == pytest.approx(1 / 4)  # values 3..6
    assert make("bag_equal").chance == 0.5


@pytest.mark.parametrize("name", ["summation", "bag_equal"])
def test_controls_are_invariant_to_any_permutation(name):
    task = make(name)
    g = torch.Generator().manual_seed(3)
    src, target = task.sample(64, 9, g)
    perm = torch.randperm(9, generator=g)
    assert torch.equal(task.target(src[:, perm]), target)


def test_order_sensitive_tasks_change_under_reordering():
    # index_lookup: same data multiset, different order -> different answer
    assert tgt("index_lookup", [[4, 2, 5, 1]]) != tgt("index_lookup", [[2, 4, 5, 1]])
    # associative_recall: re-pairing by moving a value changes the answer
    assert tgt("associative_recall", [[0, 4, 2, 6, 2]]) != tgt("associative_recall", [[0, 6, 2, 4, 2]])
    # missing_duplicate (odd L): moving the marker changes the answer
    assert tgt("missing_duplicate", [[3, 0, 4, 6, 0]]) != tgt("missing_duplicate", [[3, 0, 4, 3, 6]])


# ---- structured sampling --------------------------------------------------------------------------
def draw(name, length, n=512, seed=0, **kw):
    task = make(name, **kw)
    src, target = task.sample(n, length, torch.Generator().manual_seed(seed))
    assert src.shape == (n, length) and target.shape == (n, task.target_len(length))
    assert src.min() >= 0 and src.max() < task.vocab_size
    assert torch.equal(target, task.target(src))
    return task, src, target


@pytest.mark.parametrize("length", [2, 3, 4, 7, 10, 33])
def test_missing_duplicate_sampling_structure(length):
    task, src, target = draw("missing_duplicate", length)
    n, m = -(-length // 2), length // 2
    marker = src == task.marker
    assert (marker.sum(1) == 1).all() and not marker[:, :n].any()
    pos = marker[:, n:].int().argmax(1)
    restored = src[:, n:].clone()
    restored[torch.arange(len(src)), pos] = target[:, 0]
    assert torch.equal(restored, src[:, :m])
    assert target.max() < task.marker


@pytest.mark.parametrize("length", [2, 3, 7, 8, 20, 33])
def test_index_lookup_sampling_structure(length):
    task, src, target = draw("index_lookup", length)
    query = src[:, -1]
    assert (query < min(length - 1, task.vocab_size)).all()
    assert torch.equal(target[:, 0], src[torch.arange(len(src)), query])
    if length - 1 >= task.vocab_size:  # the cap: every addressable index is used
        assert set(query.tolist()) == set(range(task.vocab_size))


@pytest.mark.parametrize("length", [2, 3, 4, 5, 6, 7, 8, 21, 32])
def test_associative_recall_sampling_structure(length):
    task, src, target = draw("associative_recall", length)
    k = task.num_keys
    assert (target >= k).all()  # answers are values
    if length < 3:
        assert (src[:, 0] < k).all() and (src[:, 1] >= k).all()
        return
    n = (length - 1) // 2
    off = (length - 1) - 2 * n
    keys, values = src[:, off:-1:2], src[:, off + 1 : -1 : 2]
    assert (keys < k).all() and (values >= k).all() and (src[:, :off] >= k).all()
    assert (keys == src[:, -1:]).any(1).all()  # the query is one of the keys
    if n <= k:
        assert all(len(set(row)) == n for row in keys.tolist())  # distinct keys


@pytest.mark.parametrize("length", [1, 2, 3, 6, 9, 32])
def test_bag_equal_sampling_balance(length):
    task, src, target = draw("bag_equal", length, n=2000, train_lengths=(1, 5))
    frac = target.float().mean().item()
    if length == 1:
        assert frac == 1.0
    else:
        assert 0.4 < frac < 0.6
        m, k = length // 2, task.half
        assert (src[:, :m] < k).all() and (src[:, length - m :] >= k).all()
        if length % 2:
            assert (src[:, m] == task.vocab_size - 1).all()


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_and_seed_dependent(name):
    a = draw(name, 9, seed=5)
    b = draw(name, 9, seed=5)
    c = draw(name, 9, seed=6)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[1], c[1])


def test_summation_length_one():
    _, src, target = draw("summation", 1, train_lengths=(1, 3))
    assert torch.equal(target, src)


# ---- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["missing_duplicate", "index_lookup", "associative_recall"])
def test_length_one_is_a_config_error(name):
    with pytest.raises(ConfigError, match="at least 2"):
        make(name, train_lengths=(1, 5))
    with pytest.raises(ConfigError, match="at least 2"):
        make(name, eval_lengths=(1, 8))


@pytest.mark.parametrize("name, minimum", [("missing_duplicate", 3), ("bag_equal", 5)])
def test_small_vocab_is_a_config_error(name, minimum):
    with pytest.raises(ConfigError, match=f"at least {minimum}"):
        make(name, vocab_size=minimum - 1)
    make(name, vocab_size=minimum)


@pytest.mark.parametrize("name", NAMES)
def test_config_file_builds_and_defaults_work(name):
    cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert cfg["name"] == name
    task = TASKS.build(cfg)
    for length in task.eval_lengths + list(task.train_lengths):
        src, target = task.sample(4, length, torch.Generator().manual_seed(0))
        assert target.shape == (4, task.target_len(length))
    TASKS.get(name)()  # class defaults are valid
