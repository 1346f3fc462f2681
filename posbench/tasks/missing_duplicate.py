"""Missing duplicate (Delétang et al. 2023): the source is a string followed by its copy in which
exactly one symbol has been replaced by a marker; the target is the hidden symbol.

Symbols: ``0 .. vocab_size-2`` form the string; ``vocab_size-1`` is reserved as the marker (so
``vocab_size >= 3``). A source of length L is a string w of length ``n = ceil(L/2)`` followed by
the first ``L - n = floor(L/2)`` symbols of w (the whole of w when L is even, w without its last
symbol when L is odd), one of which (uniformly chosen) is replaced by the marker. Every L >= 2
works; L = 1 has no room for a copy and is a ConfigError.

Order-sensitive: the hidden symbol is the one at the aligned position of the first copy (marker
position minus n). Caveat: for even L a counting shortcut exists (the hidden symbol is the only
non-marker symbol with an odd count in the source), so a model can in principle solve even lengths
without positions; for odd L the unmatched last symbol of w also has an odd count, which
weakens that shortcut.
Chance: 1 / (vocab_size - 1), a uniform guess among the string symbols."""

import math

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("missing_duplicate")
class MissingDuplicate(Task):
    description = "find the symbol hidden by a marker in the copy of a string (order-sensitive)"
    min_length = 2
    min_vocab = 3

    @property
    def marker(self) -> int:
        return self.vocab_size - 1

    @property
    def chance(self) -> float:
        return 1.0 / (self.vocab_size - 1)

    def target_len(self, length: int) -> int:
        return 1

    def target(self, src: Tensor) -> Tensor:
        n = math.ceil(src.shape[1] / 2)
        copy = src[:, n:]
        # first marker in the copy; a source without one (not produced by sample) falls back to slot 0
        pos = (copy == self.marker).int().argmax(dim=1, keepdim=True)
        return src[:, :n].gather(1, pos)

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        n, m = math.ceil(length / 2), length // 2
        w = torch.randint(0, self.vocab_size - 1, (batch_size, n), generator=generator, device=device)
        copy = w[:, :m].clone()
        hide = torch.randint(0, max(m, 1), (batch_size, 1), generator=generator, device=device)
        copy.scatter_(1, hide, self.marker)
        src = torch.cat([w, copy], dim=1)
        return src, self.target(src)
