"""What the benchmarks in ``scripts/`` share: a network stepped with AdamW on a fixed batch, timed
in interleaved repeats whose order alternates (so that a burst of load on the machine hits every
implementation alike), and the paired ratio of two implementations (the median over repeats of
their back-to-back ratio, which cancels load that drifts between repeats, and its interquartile
range, which shows how noisy the machine was)."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: The speed a posbench network should reach relative to its peer at the same shapes.
RATIO_TARGET = 1.10


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """One network with its AdamW optimizer, stepped on a fixed batch: ``forward(inputs)`` gives
    logits ``[..., classes]``, scored by cross-entropy against ``targets [...]``."""

    def __init__(
        self,
        net: nn.Module,
        forward: Callable[[Tensor], Tensor],
        inputs: Tensor,
        targets: Tensor,
        lr: float,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.net = net.to(inputs.device).train()
        self.forward = forward
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
        self.inputs, self.targets = inputs, targets
        self.autocast = autocast

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def step(self) -> None:
        with self.autocast():
            logits = self.forward(self.inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.targets.reshape(-1))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def steps_per_second(self, steps: int) -> float:
        synchronize(self.inputs.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        synchronize(self.inputs.device)
        return steps / (time.perf_counter() - start)


def measure(trainers: dict[str, Trainer], warmup: int, repeats: int, steps: int) -> dict[str, list[float]]:
    """Steps/s of each trainer per repeat; repeats interleaved, order alternating."""
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.step()
        synchronize(trainer.inputs.device)
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    names = list(trainers)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            rates[name].append(trainers[name].steps_per_second(steps))
    return rates


def peer_columns(ours: list[float], theirs: list[float]) -> tuple[list[str], bool]:
    """A table row's columns for the peer: its median steps/s, the paired ratio ``ours / theirs``
    (the median of the per-repeat ratios) and their interquartile range (``-`` with fewer than two
    repeats); and whether the ratio is below ``RATIO_TARGET``."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    ratio, iqr = statistics.median(ratios), "-"
    if len(ratios) >= 2:
        low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
        iqr = f"{low:.3f}-{high:.3f}"
    return [f"{statistics.median(theirs):.2f}", f"{ratio:.3f}x", iqr], ratio < RATIO_TARGET


def below_mark(slow: bool) -> str:
    return f"  <- below {RATIO_TARGET:.2f}x" if slow else ""
