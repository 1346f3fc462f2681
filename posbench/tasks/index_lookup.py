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

from posbench.errors import ConfigError
from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("index_lookup")
class IndexLookup(Task):
    description = "output the source symbol at the index given by the final query symbol (order-sensitive)"

    def __init__(
        self,
        vocab_size: int = 16,
        train_lengths: tuple[int, int] = (2, 16),
        eval_lengths: tuple[int, ...] = (8, 16, 32),
        eval_size: int = 256,
        eval_seed: int = 1234,
    ):
        super().__init__(vocab_size, train_lengths, eval_lengths, eval_size, eval_seed)
        if min(self.train_lengths[0], self.eval_lengths[0]) < 2:
            raise ConfigError(
                "index_lookup needs every length (task.train_lengths, task.eval_lengths) "
                "to be at least 2: a data symbol and the query"
            )

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
