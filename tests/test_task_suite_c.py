"""Suite C tasks: addition, binary_addition, stack_manipulation, polynomial_eval (and the
bucket_sort config). Hand-checked targets, targets of sampled batches re-derived by slow Python
references, eos/PAD layout of variable-length answers, sampling structure, configuration errors,
and a tiny end-to-end run per task with every model family."""

import json
import math
import random
from pathlib import Path

import pytest
import torch
import yaml

from posbench import experiment
from posbench.errors import ConfigError
from posbench.tasks import TASKS
from posbench.tasks.base import PAD

NAMES = ("addition", "binary_addition", "stack_manipulation", "polynomial_eval")
VOCAB = {"addition": 11, "binary_addition": 3, "stack_manipulation": 5, "polynomial_eval": 10}
MIN_LENGTH = {"addition": 1, "binary_addition": 3, "stack_manipulation": 1, "polynomial_eval": 2}
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "task"
PLUS10, PLUS2, POP, PUSH0, PUSH1 = 10, 2, 2, 3, 4


def make(name, **kw):
    kw.setdefault("vocab_size", VOCAB[name])
    kw.setdefault("train_lengths", (MIN_LENGTH[name], 6))
    return TASKS.build({"name": name, **kw})


def answers(task, target):
    """The answers of a variable-length target, checking its layout: symbols, one eos, then PAD."""
    out = []
    for row in target.tolist():
        assert task.eos in row, row
        end = row.index(task.eos)
        assert all(v == PAD for v in row[end + 1 :]), row
        assert all(0 <= v < task.vocab_size for v in row[:end]), row
        out.append(row[:end])
    return out


def tgt(name, rows, **kw):
    task = make(name, **kw)
    target = task.target(torch.tensor(rows))
    return answers(task, target) if task.variable_length else target.tolist()


# ---- slow Python references ----------------------------------------------------------------------
def ref_addition(row):
    length = (len(row) - 1) // 2
    assert row[length] == PLUS10
    a = int("".join(map(str, row[:length])))
    b = int("".join(map(str, row[length + 1 :])))
    return [int(c) for c in str(a + b)]


def ref_binary_addition(row):
    n = row.index(PLUS2)
    a = sum(bit << i for i, bit in enumerate(row[:n]))
    b = sum(bit << i for i, bit in enumerate(row[n + 1 :]))
    total = a + b
    return [int(c) for c in reversed(bin(total)[2:])]


def ref_stack(row):
    stack = []
    for symbol in row:
        if symbol in (0, 1):
            stack.append(symbol)
        elif symbol == POP:
            if stack:
                stack.pop()
        else:
            stack.append(symbol - PUSH0)
    return stack[::-1]


def ref_polynomial(row):
    x, coefficients = row[0], row[1:]
    return [sum(c * x**i for i, c in enumerate(coefficients)) % 10]


REFERENCE = {
    "addition": ref_addition,
    "binary_addition": ref_binary_addition,
    "stack_manipulation": ref_stack,
    "polynomial_eval": ref_polynomial,
}


# ---- hand-checked targets ------------------------------------------------------------------------
def test_addition_hand_cases():
    P = PLUS10
    assert tgt("addition", [[9, 5, P, 1, 7], [1, 2, P, 3, 4]]) == [[1, 1, 2], [4, 6]]  # 95+17, 12+34
    assert tgt("addition", [[9, P, 9], [3, P, 4], [0, P, 0]]) == [[1, 8], [7], [0]]  # L=1
    assert tgt("addition", [[9, 9, 9, P, 0, 0, 1]]) == [[1, 0, 0, 0]]  # carry through every digit
    assert tgt("addition", [[5, 0, 0, P, 5, 0, 0]]) == [[1, 0, 0, 0]]
    assert tgt("addition", [[0, 5, P, 0, 3]]) == [[8]]  # leading zeros (never sampled) are stripped
    full = make("addition").target(torch.tensor([[9, 5, P, 1, 7], [1, 2, P, 3, 4]])).tolist()
    assert full == [[1, 1, 2, 11], [4, 6, 11, PAD]]


def test_binary_addition_hand_cases():
    P = PLUS2
    # little-endian: 1 + 1 = 2 = "01"
    assert tgt("binary_addition", [[1, P, 1]]) == [[0, 1]]
    # 3 ("11") + 1 ("1") = 4 = "001"
    assert tgt("binary_addition", [[1, 1, P, 1]]) == [[0, 0, 1]]
    # 1 ("100", 3 bits with high zeros) + 2 ("01") = 3 = "11": no trailing zeros in the answer
    assert tgt("binary_addition", [[1, 0, 0, P, 0, 1]]) == [[1, 1]]
    # 5 ("101") + 6 ("011") = 11 = "1101"
    assert tgt("binary_addition", [[1, 0, 1, P, 0, 1, 1]]) == [[1, 1, 0, 1]]
    # 2 ("01") + 4 ("001") = 6 = "011"
    assert tgt("binary_addition", [[0, 1, P, 0, 0, 1]]) == [[0, 1, 1]]
    full = make("binary_addition").target(torch.tensor([[1, P, 1], [1, 1, P]])).tolist()
    assert full == [[0, 1, 3], [1, 1, 3]]  # a missing second operand counts as 0


def test_stack_manipulation_hand_cases():
    # stack bottom-to-top, then actions; answer top-to-bottom
    assert tgt("stack_manipulation", [[0, 1, PUSH1, PUSH0]]) == [[0, 1, 1, 0]]
    assert tgt("stack_manipulation", [[0, 1, POP, PUSH1]]) == [[1, 0]]
    assert tgt("stack_manipulation", [[1, POP, POP, PUSH0]]) == [[0]]  # POP on empty is ignored
    assert tgt("stack_manipulation", [[1, 0, POP, POP, POP]]) == [[]]  # empty stack: eos alone
    assert tgt("stack_manipulation", [[1], [0]]) == [[1], [0]]  # L=1: the stack itself
    assert tgt("stack_manipulation", [[1, 1, 0]]) == [[0, 1, 1]]  # no actions: the stack reversed
    full = make("stack_manipulation").target(torch.tensor([[1, 0, POP, POP, POP], [0, 1, PUSH1, PUSH0, POP]]))
    assert full.tolist() == [[5, PAD, PAD, PAD, PAD, PAD], [1, 1, 0, 5, PAD, PAD]]


def test_polynomial_eval_hand_cases():
    # x=2: 3 + 1*2 + 4*4 = 21 -> 1
    assert tgt("polynomial_eval", [[2, 3, 1, 4]]) == [[1]]
    # x=0: only c_0 counts (0^0 = 1)
    assert tgt("polynomial_eval", [[0, 7, 9, 9]]) == [[7]]
    # x=9: 1 + 9 + 81 + 729 = 820 -> 0
    assert tgt("polynomial_eval", [[9, 1, 1, 1, 1]]) == [[0]]
    # x=3, L=2: a constant polynomial
    assert tgt("polynomial_eval", [[3, 8]]) == [[8]]
    # x=7, coefficients 9 * 20: 9 * (7^20 - 1) / 6 mod 10, far beyond int64 if computed directly
    row = [7] + [9] * 20
    assert tgt("polynomial_eval", [row]) == [[sum(9 * 7**i for i in range(20)) % 10]]


def test_order_sensitivity():
    assert all(make(name).order_sensitive for name in NAMES)
    P = PLUS10
    assert tgt("addition", [[1, 2, P, 3, 4]]) != tgt("addition", [[2, 1, P, 3, 4]])
    assert tgt("binary_addition", [[1, 0, PLUS2, 1]]) != tgt("binary_addition", [[0, 1, PLUS2, 1]])
    assert tgt("stack_manipulation", [[0, 1, POP]]) != tgt("stack_manipulation", [[1, 0, POP]])
    assert tgt("polynomial_eval", [[2, 1, 0]]) != tgt("polynomial_eval", [[2, 0, 1]])


# ---- flags, symbols, chance ----------------------------------------------------------------------
def test_symbols_eos_and_chance():
    expected = {
        # name: (variable_length, eos, n_symbols, chance)
        "addition": (True, 11, 12, 0.1),
        "binary_addition": (True, 3, 4, 0.5),
        "stack_manipulation": (True, 5, 6, 0.5),
        "polynomial_eval": (False, None, 10, 0.1),
    }
    for name, (variable, eos, n_symbols, chance) in expected.items():
        task = make(name)
        assert (task.variable_length, task.eos, task.n_symbols) == (variable, eos, n_symbols), name
        assert task.chance == pytest.approx(chance), name
        module = TASKS.get(name).__module__
        doc = __import__(module, fromlist=["_"]).__doc__
        assert "et al. 2023" in doc and "Chance" in doc and "Order-sensitive" in doc, name
        assert TASKS.get(name).description and "\n" not in TASKS.get(name).description


def test_widths():
    addition, binary, stack, poly = (make(name) for name in NAMES)
    assert [addition.source_len(n) for n in (1, 4)] == [3, 9]
    assert [addition.target_len(n) for n in (1, 4)] == [3, 6]
    assert [binary.source_len(n) for n in (3, 8)] == [3, 8]
    assert [binary.target_len(n) for n in (3, 8)] == [3, 8]
    assert [stack.source_len(n) for n in (1, 8)] == [1, 8]
    assert [stack.target_len(n) for n in (1, 8)] == [2, 9]
    assert [poly.source_len(n) for n in (2, 8)] == [2, 8]
    assert [poly.target_len(n) for n in (2, 8)] == [1, 1]


# ---- sampled batches against the references ------------------------------------------------------
def draw(name, length, n=256, seed=0, **kw):
    task = make(name, **kw)
    src, target = task.sample(n, length, torch.Generator().manual_seed(seed))
    assert src.shape == (n, task.source_len(length)) and src.dtype == torch.long
    assert target.shape == (n, task.target_len(length)) and target.dtype == torch.long
    assert src.min() >= 0 and src.max() < task.vocab_size
    assert torch.equal(target, task.target(src))
    return task, src, target


LENGTHS = {
    "addition": (1, 2, 3, 7, 19, 25),  # 19+ digits: beyond int64
    "binary_addition": (3, 4, 5, 9, 40, 70),  # 70 bits: beyond int64
    "stack_manipulation": (1, 2, 3, 8, 20, 41),
    "polynomial_eval": (2, 3, 4, 9, 20, 41),
}


@pytest.mark.parametrize("name, length", [(name, n) for name in NAMES for n in LENGTHS[name]])
def test_sampled_targets_match_a_python_reference(name, length):
    task, src, target = draw(name, length, n=300, seed=length)
    got = answers(task, target) if task.variable_length else target.tolist()
    for row, answer in zip(src.tolist(), got):
        assert answer == REFERENCE[name](row), row


def test_references_on_random_rows():
    """target() on many random well-formed rows that sample() would rarely produce."""
    rng = random.Random(0)
    for _ in range(200):
        length = rng.randint(1, 12)
        a = [rng.randint(0, 9) for _ in range(length)]
        b = [rng.randint(0, 9) for _ in range(length)]
        row = a + [PLUS10] + b
        assert tgt("addition", [row]) == [ref_addition(row)], row
        n, m = rng.randint(1, 8), rng.randint(1, 8)
        row = [rng.randint(0, 1) for _ in range(n)] + [PLUS2] + [rng.randint(0, 1) for _ in range(m)]
        assert tgt("binary_addition", [row]) == [ref_binary_addition(row)], row
        row = [rng.randint(0, 1) for _ in range(rng.randint(0, 5))]
        row += [rng.choice([POP, PUSH0, PUSH1]) for _ in range(rng.randint(0, 12))] or [0]
        assert tgt("stack_manipulation", [row]) == [ref_stack(row)], row


@pytest.mark.parametrize("length", [1, 2, 5, 12])
def test_addition_sampling_structure(length):
    task, src, target = draw("addition", length, n=2000)
    a, plus, b = src[:, :length], src[:, length], src[:, length + 1 :]
    assert (plus == PLUS10).all() and (a < 10).all() and (b < 10).all()
    if length > 1:
        assert (a[:, 0] > 0).all() and (b[:, 0] > 0).all()
        assert set(a[:, 0].tolist()) == set(range(1, 10))
    else:
        assert set(a[:, 0].tolist()) == set(range(10))
    sizes = {len(answer) for answer in answers(task, target)}
    assert sizes == {length, length + 1}  # both with and without a final carry


@pytest.mark.parametrize("length", [3, 4, 7, 16])
def test_binary_addition_sampling_structure(length):
    task, src, target = draw("binary_addition", length, n=2000)
    assert ((src == PLUS2).sum(dim=1) == 1).all()
    n = (src == PLUS2).int().argmax(dim=1)
    assert set(n.tolist()) == set(range(1, length - 1))  # n uniform over [1, L-2]
    for row, k in zip(src.tolist(), n.tolist()):
        assert any(row[:k]) and any(row[k + 1 :])  # both numbers nonzero
    lengths = {len(answer) for answer in answers(task, target)}
    assert max(lengths) <= length - 1  # so target_len(L) = L is enough
    if length <= 7:
        assert max(lengths) == length - 1  # and it is reached


@pytest.mark.parametrize("length", [2, 3, 6, 15])
def test_stack_manipulation_sampling_structure(length):
    task, src, target = draw("stack_manipulation", length, n=2000)
    is_bit = src < 2
    size = is_bit.int().argmin(dim=1).masked_fill(is_bit.all(dim=1), length)
    # a prefix of bits, then actions only
    assert torch.equal(is_bit, torch.arange(length) < size[:, None])
    assert set(size.tolist()) == set(range(1, length))  # s uniform over [1, L-1]
    actions = src[~is_bit]
    assert set(actions.tolist()) == {POP, PUSH0, PUSH1}
    sizes = [len(answer) for answer in answers(task, target)]
    assert max(sizes) <= length and (length < 3 or 0 in sizes)


def test_stack_manipulation_length_one():
    task, src, target = draw("stack_manipulation", 1, n=64)
    assert set(src[:, 0].tolist()) == {0, 1}
    assert torch.equal(target[:, 0], src[:, 0]) and (target[:, 1] == task.eos).all()


def test_polynomial_eval_sampling_is_uniform_digits():
    _, src, target = draw("polynomial_eval", 6, n=4000)
    assert set(src.unique().tolist()) == set(range(10))
    counts = torch.bincount(target[:, 0], minlength=10).float() / 4000
    assert (counts - 0.1).abs().max() < 0.03


@pytest.mark.parametrize("name", NAMES)
def test_reproducible_and_seed_dependent(name):
    length = 9
    a, b, c = (draw(name, length, n=64, seed=seed) for seed in (5, 5, 6))
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("name", NAMES)
def test_eval_sets_use_source_and_target_widths(name):
    task = make(name, train_lengths=(MIN_LENGTH[name], 6), eval_lengths=(4, 9), eval_size=40)
    test_set = task.test_set("cpu")
    assert sum(src.shape[0] for src, _ in test_set) == 40
    widths = {task.source_len(n) for n in range(MIN_LENGTH[name], 7)}
    for src, target in test_set:
        assert src.shape[1] in widths
        assert torch.equal(target, task.target(src))
    sets = task.length_sets("cpu")
    assert sorted(sets) == [4, 9]
    for length, [(src, target)] in sets.items():
        assert src.shape == (40, task.source_len(length)) and target.shape == (40, task.target_len(length))
    again = task.length_sets("cpu")
    assert torch.equal(again[9][0][0], sets[9][0][0]) and torch.equal(again[9][0][1], sets[9][0][1])


@pytest.mark.parametrize("name", NAMES)
def test_training_lengths_cover_the_range(name):
    task = make(name)
    g = torch.Generator().manual_seed(0)
    lengths = {task.sample_length(g) for _ in range(200)}
    assert lengths == set(range(MIN_LENGTH[name], 7))


# ---- configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_too_small_vocab_is_a_config_error(name):
    with pytest.raises(ConfigError, match=f"vocab_size={VOCAB[name] - 1} must be at least {VOCAB[name]} for task={name}"):
        make(name, vocab_size=VOCAB[name] - 1)


@pytest.mark.parametrize("name", NAMES)
def test_larger_vocab_keeps_the_fixed_alphabet(name):
    """As for parity: extra symbols never occur; eos moves to vocab_size."""
    task, src, target = draw(name, 8, n=200, vocab_size=VOCAB[name] + 4)
    assert src.max() < VOCAB[name]
    if task.variable_length:
        assert task.eos == VOCAB[name] + 4 and task.n_symbols == VOCAB[name] + 5
        assert all(max(answer, default=0) < 10 for answer in answers(task, target))
    else:
        assert target.max() < 10


@pytest.mark.parametrize("name, minimum", [("binary_addition", 3), ("polynomial_eval", 2)])
def test_too_short_lengths_are_config_errors(name, minimum):
    with pytest.raises(ConfigError, match=f"at least {minimum} for task={name}"):
        make(name, train_lengths=(minimum - 1, 6))
    with pytest.raises(ConfigError, match=f"at least {minimum} for task={name}"):
        make(name, eval_lengths=(minimum - 1, 8))
    assert TASKS.get(name)().train_lengths[0] == minimum  # the default range starts at min_length


@pytest.mark.parametrize("name", NAMES)
def test_config_file_builds_and_defaults_work(name):
    cfg = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    assert cfg["name"] == name and cfg["vocab_size"] == VOCAB[name]
    assert cfg["eval_size"] == 256 and cfg["eval_seed"] == 1234
    task = TASKS.build(cfg)
    assert task.train_lengths[0] == MIN_LENGTH[name]
    for length in task.eval_lengths + list(task.train_lengths):
        src, target = task.sample(4, length, torch.Generator().manual_seed(0))
        assert src.shape == (4, task.source_len(length)) and target.shape == (4, task.target_len(length))
    TASKS.get(name)()  # class defaults are valid


def test_bucket_sort_is_sort_on_five_symbols(tiny_cfg):
    cfg = yaml.safe_load((CONFIGS / "bucket_sort.yaml").read_text())
    assert cfg["name"] == "bucket_sort" and cfg["vocab_size"] == 5
    task = TASKS.build(cfg)
    src, target = task.sample(64, 10, torch.Generator().manual_seed(0))
    assert src.max() < 5 and torch.equal(target, src.sort(dim=1).values)
    composed = tiny_cfg("task=bucket_sort")
    assert composed["task"]["name"] == "bucket_sort" and composed["task"]["vocab_size"] == 5


# ---- end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["encoder", "decoder"])
@pytest.mark.parametrize("name", NAMES)
def test_tiny_end_to_end_run(name, model, tiny_cfg, tmp_path):
    lo = max(1, MIN_LENGTH[name])
    cfg = tiny_cfg(
        f"task={name}", f"model={model}", "encoding=rope", "compare_nope=false",
        f"task.train_lengths=[{lo},5]", "trainer.max_steps=6", "trainer.eval_every=3",
    )
    results = experiment.run(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["task"] == name and saved["model"] == model
    assert saved["chance"] == pytest.approx(make(name).chance)
    assert set(saved["lengths"]) == {"3", "5", "8"}
    for metrics in [results["metrics"], results["pe_off"], *results["lengths"].values()]:
        assert 0.0 <= metrics["acc"] <= 1.0 and 0.0 <= metrics["seq_acc"] <= 1.0
        assert all(math.isfinite(v) for v in metrics.values())
