"""Index lookup: the source is L-1 symbols followed by a query symbol read as an index i; the
target is the symbol at position i (a retrieval-by-absolute-position probe, cf. the "index" and
"select" tasks of the length-generalization literature).

Symbols serve as indices: the query is drawn uniformly from ``0 .. min(L-1, vocab_size)-1``, so it
always addresses one of the L-1 data symbols. Cap: only the first ``vocab_size`` positions can be
addressed, so for L-1 > vocab_size the later data symbols are never queried (they are
distractors); this is documented rather than refused so that any eval length works. L = 1 has no
data symbol and is a ConfigError. ``target`` clamps an out-of-range query to the last data symbol
(sample never produces one).
Order-sensitive: the answer needs the absolute position of each data symbol.
Chance: 1 / vocab_size (uniform guess among the symbols)."""

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("index_lookup")
class IndexLookup(Task):
    description = "output the source symbol at the index given by the final query symbol (order-sensitive)"
    min_length = 2

    def target_len(self, length: int) -> int:
        return 1

    def target(self, src: Tensor) -> Tensor:
        index = src[:, -1:].clamp(max=src.shape[1] - 2)
        return src.gather(1, index)

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        data = torch.randint(0, self.vocab_size, (batch_size, length - 1), generator=generator, device=device)
        top = min(length - 1, self.vocab_size)
        query = torch.randint(0, top, (batch_size, 1), generator=generator, device=device)
        src = torch.cat([data, query], dim=1)
        return src, self.target(src)
