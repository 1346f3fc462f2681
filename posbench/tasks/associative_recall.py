"""Associative recall (Ba et al. 2016; Zoology, Arora et al. 2023): the source is key,value pairs
followed by a query key; the target is the value paired with the query.

Symbols: keys are the lower half ``0 .. K-1`` with ``K = vocab_size // 2``, values the upper half
``K .. vocab_size-1``. A value is bound to the key immediately before it.
Layout of a source of length L >= 3: ``n = floor((L-1)/2)`` pairs then the query (one of the pair
keys, chosen uniformly); when L is even one extra value symbol, bound to no key, leads the source.
Keys are distinct whenever n <= K; a longer source (n > K) must repeat keys, and then the most
recent binding wins (the target is the value after the last occurrence of the query key).
Degenerate L = 2: a single pair ``key, value`` with the query left implicit (there is one key);
the target is that value. L = 1 is a ConfigError.
Order-sensitive: pairing is by adjacency, so the positions of keys and values matter.
Chance: 1 / (vocab_size - K), a uniform guess among the value symbols."""

import torch
from torch import Tensor

from posbench.tasks.base import TASKS, Batch, Task


@TASKS.register("associative_recall")
class AssociativeRecall(Task):
    description = "output the value paired with the final query key (order-sensitive)"
    min_length = 2

    @property
    def num_keys(self) -> int:
        return self.vocab_size // 2

    @property
    def chance(self) -> float:
        return 1.0 / (self.vocab_size - self.num_keys)

    def target_len(self, length: int) -> int:
        return 1

    def target(self, src: Tensor) -> Tensor:
        length = src.shape[1]
        if length < 3:  # degenerate: one pair, implicit query
            return src[:, -1:].clone()
        n = (length - 1) // 2
        off = (length - 1) - 2 * n
        keys, values = src[:, off : length - 1 : 2], src[:, off + 1 : length - 1 : 2]
        match = keys == src[:, -1:]
        # last matching pair; a query matching no key (not produced by sample) falls back to the last pair
        last = n - 1 - match.flip(1).int().argmax(dim=1, keepdim=True)
        return values.gather(1, last)

    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        device = generator.device
        k, v = self.num_keys, self.vocab_size - self.num_keys
        n = max((length - 1) // 2, 1)
        if n <= k:  # distinct keys: a random permutation of the key symbols, truncated
            keys = torch.rand(batch_size, k, generator=generator, device=device).argsort(dim=1)[:, :n]
        else:
            keys = torch.randint(0, k, (batch_size, n), generator=generator, device=device)
        values = torch.randint(k, k + v, (batch_size, n), generator=generator, device=device)
        pairs = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * n)
        if length < 3:
            src = pairs
        else:
            pick = torch.randint(0, n, (batch_size, 1), generator=generator, device=device)
            parts = [pairs, keys.gather(1, pick)]
            if length % 2 == 0:  # one leading value bound to no key
                parts.insert(0, torch.randint(k, k + v, (batch_size, 1), generator=generator, device=device))
            src = torch.cat(parts, dim=1)
        return src, self.target(src)
