"""Position probes: can a linear map read a token's absolute position off each layer's hidden states?

A causal Transformer without positional encoding still learns absolute position: the causal
mask lets token i count the i + 1 tokens it sees (Haviv et al. 2022, "Transformer Language Models
without Positional Encodings Still Learn Positional Information", probes of every layer;
Kazemnejad et al. 2023, "The Impact of Positional Encoding on Length Generalization in
Transformers", §5 and Theorem 1: the first layer of a NoPE decoder can recover absolute position).
A bidirectional encoder without one cannot: it is permutation-equivariant, the hidden state of a
token is a function of the token and of the multiset of the whole input, so on inputs whose
symbols are drawn independently of their position (copy, reverse, sort...) no probe can beat the
mean, R² = 0 up to sampling noise (tests/test_analyze.py checks the equivariance exactly).

What is probed, per Transformer stack of the model (``layer 0``: the embedding output, i.e. the
input of the first block with the encoding's ``embed`` applied; ``layer l``: after block l and its
``between_blocks`` hook), read with forward pre-hooks (the model's forward is untouched):

* the stack that reads the source (encoder, decoder, seq2seq's encoder): the source tokens, at
  their index 0..S-1, on sources of one length (by default the longest training length), so that
  every position is equally frequent and the mean position is (S - 1) / 2;
* a stack whose input does not start with the source (seq2seq's decoder: SEP and the
  teacher-forced target): every token of its input, at its index; SEP is always at 0, so there the
  token identity alone tells position 0 apart.

The probes, fitted on ``examples`` sequences from the task's generator and scored on as many others:

* regression: ridge regression (closed form, features standardised with the training
  statistics, penalty ``RIDGE`` times the number of training tokens) of the position; held-out
  ``R² = 1 - SSE / SST`` (SST around the held-out mean, as sklearn's ``r2_score``); below 0
  means worse than the mean;
* classification: a linear softmax classifier (multinomial logistic regression) over the S
  positions, on the same standardised features, L2 penalty ``PENALTY``, fitted from zero by
  full-batch L-BFGS (at most ``STEPS`` iterations, float64); held-out accuracy, chance ``1 / S``.
  Not ridge one-vs-rest: when position is coded along one direction (as the causal mask's
  counting gives it), a least-squares fit of a middle position's indicator is nearly flat and
  its argmax never picks it, while a softmax carves the direction into intervals
  (tests/test_analyze.py checks both on a one-dimensional code).

Both are deterministic (a linear solve; L-BFGS from zero, no sampling) and cheap (about half a
second per layer on one CPU thread for 2 x 2560 tokens of width 64).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from posbench.models.transformer import Transformer

#: Ridge penalty per training token, on standardised features.
RIDGE = 1e-3
#: The softmax probe's L2 penalty on its weights (added to the mean cross-entropy), and its
#: L-BFGS iterations at most.
PENALTY = 1e-4
STEPS = 200
#: Sequences run through the model at once.
CHUNK = 128


def named_stacks(model: nn.Module) -> dict[str, Transformer]:
    """Every Transformer stack of ``model`` by module name (``net``; seq2seq: ``encoder``, ``net``)."""
    return {name: module for name, module in model.named_modules() if isinstance(module, Transformer)}


@contextmanager
def capturing_states(model: nn.Module) -> Iterator[dict[str, dict]]:
    """Within the block, each forward of each stack of ``model`` leaves, under its name,
    ``{"input": the tokens it read [B, L], "states": [layer 0, after block 1, ...]}`` (each
    ``[B, L, d_model]``, detached). Forward pre-hooks only: the model computes as always."""
    captured: dict[str, dict] = {}
    handles = []

    def stack_input(entry: dict):
        def hook(module, args, kwargs):
            entry["input"] = (args[0] if args else kwargs["tokens"]).detach()
            entry["states"] = []
        return hook

    def state(entry: dict):
        def hook(module, args):
            entry["states"].append(args[0].detach())
        return hook

    try:
        for name, stack in named_stacks(model).items():
            entry = captured[name] = {"input": None, "states": []}
            handles.append(stack.register_forward_pre_hook(stack_input(entry), with_kwargs=True))
            for block in stack.blocks:  # the input of block l: the state after block l - 1
                handles.append(block.register_forward_pre_hook(state(entry)))
            handles.append(stack.norm.register_forward_pre_hook(state(entry)))  # after the last block
        yield captured
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def hidden_states(model, src: Tensor, tgt: Tensor) -> dict[str, dict]:
    """Each stack's input tokens and per-layer hidden states for one teacher-forced forward of
    ``(src, tgt)`` (``model.target_logits``: the training forward), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with capturing_states(model) as captured:
            model.target_logits(src, tgt)
    finally:
        model.train(was_training)
    return captured


def probed_tokens(tokens: Tensor, src: Tensor) -> tuple[str, int]:
    """What a stack's probe reads: (``source``, S) when its input starts with the source, else
    (``input``, its whole length)."""
    width = src.shape[1]
    if tokens.shape[1] >= width and torch.equal(tokens[:, :width], src):
        return "source", width
    return "input", tokens.shape[1]


def features(model, batch: tuple[Tensor, Tensor], chunk: int = CHUNK) -> dict[str, dict]:
    """Per stack: ``tokens`` (``source``/``input``), ``positions`` (how many) and ``layers``: one
    ``[N, d_model]`` float64 CPU matrix per layer, rows = the probed tokens of every sequence
    (sequence-major), whose positions are ``position_labels``."""
    src_all, tgt_all = batch
    out: dict[str, dict] = {}
    for start in range(0, src_all.shape[0], chunk):
        src, tgt = src_all[start : start + chunk], tgt_all[start : start + chunk]
        for name, entry in hidden_states(model, src, tgt).items():
            kind, count = probed_tokens(entry["input"], src)
            slot = out.setdefault(name, {"tokens": kind, "positions": count, "layers": [[] for _ in entry["states"]]})
            for layer, states in enumerate(entry["states"]):
                slot["layers"][layer].append(states[:, :count].reshape(-1, states.shape[-1]).double().cpu())
    for slot in out.values():
        slot["layers"] = [torch.cat(parts) for parts in slot["layers"]]
    return out


def position_labels(sequences: int, positions: int) -> Tensor:
    """The position of each row of ``features``: 0..positions-1, once per sequence."""
    return torch.arange(positions).repeat(sequences)


def ridge_fit(x: Tensor, y: Tensor, ridge: float = RIDGE) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Closed-form ridge regression of ``y [N, k]`` on ``x [N, d]`` (float64): features centred
    and scaled by their training mean and standard deviation (a constant feature is left
    unscaled), penalty ``ridge * N``. Returns ``(mean, scale, weights [d, k], intercept [k])``."""
    x, y = x.double(), y.double()
    mean, scale = x.mean(0), x.std(0, unbiased=False)
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    z = (x - mean) / scale
    intercept = y.mean(0)
    gram = z.T @ z + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, z.T @ (y - intercept))
    return mean, scale, weights, intercept


def ridge_predict(fit: tuple[Tensor, Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
    mean, scale, weights, intercept = fit
    return ((x.double() - mean) / scale) @ weights + intercept


def r_squared(predicted: Tensor, target: Tensor) -> float:
    """``1 - SSE / SST``, SST around the target's own mean (0 for a constant target: no spread to explain)."""
    target = target.double()
    total = ((target - target.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    return float(1 - ((predicted.double() - target) ** 2).sum() / total)


def softmax_fit(x: Tensor, y: Tensor, classes: int, penalty: float = PENALTY, steps: int = STEPS):
    """A linear softmax classifier of the labels ``y`` on ``x`` (standardised with its own
    statistics, as ``ridge_fit``), fitted from zero by full-batch L-BFGS. Returns ``(mean, scale,
    weights [d + 1, classes])``, the last row the biases."""
    x = x.double()
    mean, scale = x.mean(0), x.std(0, unbiased=False)
    scale = torch.where(scale > 1e-12, scale, torch.ones_like(scale))
    z = torch.cat(((x - mean) / scale, torch.ones(x.shape[0], 1, dtype=torch.float64)), dim=1)
    weights = torch.zeros(z.shape[1], classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weights], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-10, tolerance_change=1e-14,
    )

    def loss() -> Tensor:
        optimizer.zero_grad()
        value = nn.functional.cross_entropy(z @ weights, y) + penalty * (weights[:-1] ** 2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(loss)
    return mean, scale, weights.detach()


def softmax_predict(fit, x: Tensor) -> Tensor:
    mean, scale, weights = fit
    return (((x.double() - mean) / scale) @ weights[:-1] + weights[-1]).argmax(1)


def probe(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, classes: int, ridge: float = RIDGE
) -> dict[str, float]:
    """Held-out ``r2`` of the ridge regression of the integer labels ``train_y`` on ``train_x``
    and ``acc`` of the softmax classifier over ``classes`` classes."""
    fit = ridge_fit(train_x, train_y.double()[:, None], ridge)
    predicted = softmax_predict(softmax_fit(train_x, train_y, classes), test_x)
    return {
        "r2": r_squared(ridge_predict(fit, test_x)[:, 0], test_y),
        "acc": float((predicted == test_y).double().mean()),
    }


def probe_positions(model, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor]) -> dict[str, dict]:
    """Per stack of ``model``: ``{"tokens", "positions", "chance", "r2": [per layer], "acc": [per
    layer]}`` of position probes fitted on the batch ``train`` and scored on ``test`` (both of
    one source length; see the module docstring)."""
    fitted, scored = features(model, train), features(model, test)
    result = {}
    for name, slot in fitted.items():
        count = slot["positions"]
        train_y = position_labels(train[0].shape[0], count)
        test_y = position_labels(test[0].shape[0], count)
        layers = [probe(x, train_y, x_test, test_y, count) for x, x_test in zip(slot["layers"], scored[name]["layers"])]
        result[name] = {
            "tokens": slot["tokens"], "positions": count, "chance": 1 / count,
            "r2": [round(layer["r2"], 4) for layer in layers], "acc": [round(layer["acc"], 4) for layer in layers],
        }
    return result
