"""Sync: two event streams sampled at different rates, one after the other in the source; the
target is the event of the second stream that happens at the same time as the marked event of the
first (a synthetic stand-in for aligning audio and video features, Harzig et al. 2021, which
``encoding=fpe`` addresses).

Layout. The task length L is the time span in time units. Stream A has ``a = rates[0]`` events per
unit and stream B ``b = rates[1]``: the source is A's ``L a`` events followed by B's ``L b``
events, ``source_len(L) = L (a + b)`` tokens. A's event i happens at time ``i / a``, B's event j at
``j / b`` (``Task.streams = (a, b)``: the models lay the tokens on this timeline for an encoding that
reads it, ``posbench.encodings.base.stream_times``).

Symbols (``vocab_size`` V, ``K = V // 4``): A's events are ``0 .. K-1``, their marked variants
``K .. 2K-1`` (A's event symbol + K), B's events ``2K .. V-1``: the streams use disjoint symbols,
so a model can tell them apart by content. Exactly one A event is marked. Its time is one where
both streams have an event: A's event i and B's event j coincide when ``i / a = j / b``, i.e. at
the multiples of ``1 / g``, ``g = gcd(a, b)`` (the integer times for the default rates 2 and 3);
there are ``L g`` such moments and the marked one is drawn uniformly among them, so the answer is
exact. The target is one token: B's event at that time, ``src[L a + i b / a]``.

``target`` accepts any source of width ``L (a + b)``: a mark at a time where B has no event reads
the B event just before it (``j = floor(i b / a)``), a source without a mark reads as marked at
time 0 (``sample`` produces neither). L = 1 has one coincidence, time 0 (always B's first event).

Rates: two positive integers that differ (equal rates are two streams of the same rate, whose
synchronous events are already a fixed ``L a`` tokens apart); they need not be coprime (2 and 4
give a coincidence every half unit). The sequence grows as ``L (a + b)``.

Why positions matter, and how: on integer positions over the concatenation the marked event sits
at index ``i`` and its answer at ``L a + i b / a``; a model must find where B starts (which moves
with L) and rescale A's index by ``b / a`` to read it, a computation relative encodings do not
offer (the offset ``L a + i (b - a) / a`` depends on both L and i). On the shared timeline the two
events have the same time: the answer is the B token at relative time 0 from the marked one, a
lookup that is the same for every L and i (and for lengths beyond training, with a relative base).
Without position the answer is not identifiable from content (every B event is equally likely).
Order-sensitive. Chance: 1 / (V - 2K), a uniform guess among B's symbols (1/8 for the default
vocab_size 16).

Families: every sequence family (encoder, decoder, seq2seq). The bidirectional encoder (the
default) is where position is needed: measured with the defaults (1000 steps, seed 0), its no-PE
twin reaches 0.28, RoPE on integer positions 0.60 and ``fpe`` over RoPE 1.00. A causal decoder can
count its way along each stream without any encoding (its no-PE twin reaches 0.96 in distribution,
0.48 at L = 16), so there the encodings differ beyond the training lengths (L = 16: RoPE 0.28,
``fpe`` over RoPE 0.63, or 1.00 with ``encoding.unit=time``)."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import EachAtLeast, show
from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("sync")
class Sync(Task):
    description = "streams A, B at two rates, one after the other: output B's event at A's marked one (order-sensitive)"
    min_vocab = 4
    #: The default rates (an instance holds its own ``rates``): the source is made of two streams.
    streams = (2, 3)

    def __init__(self, rates: Annotated[list[int], EachAtLeast(1)] = (2, 3), **options):
        super().__init__(**options)
        if len(rates) != 2 or rates[0] == rates[1]:
            raise ConfigError(
                f"task.rates={show(rates)} must be two different rates [a, b] (events per time unit of "
                "streams A and B), e.g. [2,3]"
            )
        self.rates = (int(rates[0]), int(rates[1]))
        self.streams = self.rates

    # ---- symbols -------------------------------------------------------------------------------
    @property
    def a_symbols(self) -> int:
        """K: A's event symbols are 0 .. K-1, their marked variants K .. 2K-1."""
        return self.vocab_size // 4

    @property
    def b_offset(self) -> int:
        """B's first symbol, 2K; B's events are 2K .. vocab_size-1 (the answer alphabet)."""
        return 2 * self.a_symbols

    @property
    def chance(self) -> float:
        """A uniform guess among B's symbols."""
        return 1.0 / (self.vocab_size - self.b_offset)

    # ---- the contract --------------------------------------------------------------------------
    def source_len(self, length: int) -> int:
        return length * sum(self.rates)

    def target_len(self, length: int) -> int:
        return 1

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        a, b = self.rates
        k, g = self.a_symbols, math.gcd(a, b)
        events_a = torch.randint(0, k, (batch_size, length * a), generator=generator, device=device)
        events_b = torch.randint(
            self.b_offset, self.vocab_size, (batch_size, length * b), generator=generator, device=device
        )
        moment = torch.randint(0, length * g, (batch_size, 1), generator=generator, device=device)
        marked = moment * (a // g)  # A's event at time moment / g, where B has its event moment * b / g
        events_a.scatter_(1, marked, events_a.gather(1, marked) + k)
        src = torch.cat((events_a, events_b), dim=1)
        return src, self.target(src)

    def target(self, src: Tensor) -> Tensor:
        a, b = self.rates
        width = src.shape[1]
        if width % (a + b):
            raise ValueError(f"sync sources have L * {a + b} symbols (rates {a}, {b}); got a source of width {width}")
        length = width // (a + b)
        stream_a = src[:, : length * a]
        k = self.a_symbols
        marks = (stream_a >= k) & (stream_a < 2 * k)
        i = marks.int().argmax(dim=1, keepdim=True)  # the first mark (0 when there is none)
        j = torch.div(i * b, a, rounding_mode="floor")
        return src[:, length * a :].gather(1, j)
