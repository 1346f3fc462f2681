"""Randomized positional encodings (Ruoss et al. 2023, "Randomized Positional Encodings Boost
Length Generalization of Transformers", §4): any encoding that takes positions (the ``base``),
applied at random ordered positions drawn from a range wider than the sequences.

A forward pass over ``L`` tokens uses, instead of ``0 .. L-1``,

    pos = sort(I),   I ~ Uniform{ subsets of {0, ..., N-1} with L elements },   N = max_random_len >= L

(a sample without replacement, in increasing order), and every hook of the base (embed, rotate,
bias, score, value, between_blocks) receives these positions. Order is kept and gaps are random, so
training on short sequences already visits every position and distance up to ``N - 1`` that a long
test sequence will use: N must be at least the longest evaluation sequence (checked before training)
and the base must represent N positions (a learned table needs ``max_len >= N``).

Conventions, and why:

* One draw per forward pass, shared by every sequence of the batch (positions ``[1, L]``), as in
  the reference implementation (google-deepmind/randomized_positional_encodings,
  ``models/positional_encodings.py``: ``noisy_fixed_positional_encodings`` draws one index set of
  shape ``(sequence_length,)`` from ``arange(noise_max_length)`` per call). The paper's Fig. 1
  speaks of a random ordered encoding per training example; the ``positions`` hook sees
  ``[1, L]`` positions and not the batch size, so posbench follows the reference code. Positions are
  0-based, ``[0, N)``, as there.
* Evaluation: the paper randomizes at test time too (the reference ``range_evaluation.py`` passes a
  random key to every evaluation batch). ``eval_positions: random`` (default) does so;
  ``sequential`` gives ``0 .. L-1`` at evaluation (training-only randomization, an ablation).
* Randomness: a training draw uses its own generator seeded with ``seed + draws`` (draws made so
  far). ``seed`` comes from torch's global generator when the encoding is built, so
  ``torch.manual_seed`` before building fixes every draw, and ``seed`` and ``draws`` are saved in
  the module's ``state_dict`` (extra state): a run resumed from a checkpoint continues the same
  sequence of draws (the global generator is not checkpointed). The sample (``L`` of ``N`` integers)
  is drawn on the CPU and copied to the positions' device without waiting: CPU and CUDA generators
  give different numbers for one seed, and this way a seed means the same positions on every device
  (a CPU and a GPU run agree). An evaluation draw uses a generator seeded with
  ``eval_seed`` at every forward: evaluation is a deterministic function of its input (repeated
  evaluations agree; the decoder's causality check compares two forwards) and consumes no training
  randomness. The price: every evaluation batch of one length gets the same draw, where the
  reference draws afresh per batch; and greedy decoding draws positions for each prefix length anew
  (with one seed the set for ``L + 1`` contains the set for ``L``, but earlier tokens can move).
* ``max_random_len`` default 256: six times the longest default evaluation sequence (41 positions
  with model=encoder: 20 source + SEP + 20 slots) and no larger than learned's default table, so
  ``encoding.base=learned`` works as is. The reference example script
  (``experiments/example.py``) uses ``noise_max_length`` 2048 with training lengths up to 40; raise
  it with the evaluation lengths.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.wrapper import Wrapper
from posbench.encodings.combo import part_section, refuse_inner_timeline
from posbench.errors import ConfigError
from posbench.schema import PositiveInt, Seed


def sorted_sample(count: int, limit: int, seed: int, device) -> Tensor:
    """``count`` distinct integers from ``[0, limit)``, uniformly chosen, in increasing order: ``[1, count]``
    on ``device``. Drawn on the CPU, so that one seed gives the same positions on every device."""
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(limit, generator=generator)[:count].sort().values
    return chosen[None].to(device, non_blocking=True)


@ENCODINGS.register("randomized")
class Randomized(Wrapper):
    description = "base encoding at sorted random positions from a wider range (Ruoss et al. 2023)"
    family = "composite"
    wraps = ("base",)

    def __init__(
        self,
        shape: AttentionShape,
        base="rope",
        max_random_len: PositiveInt = 256,
        eval_positions: Literal["random", "sequential"] = "random",
        eval_seed: Seed = 0,
    ):
        super().__init__(shape)
        section = part_section(base, "encoding.base")
        if section["name"] == self.name:
            raise ConfigError("encoding=randomized cannot be its own base; name the encoding to randomize, e.g. encoding.base=rope")
        if shape.grid is not None:
            raise ConfigError(
                "encoding=randomized draws random positions along a sequence (Ruoss et al. 2023, for length "
                "generalization); an image's patches have grid positions: use a 2D encoding there"
            )
        self.base = ENCODINGS.build(section, shape)
        refuse_inner_timeline(self.name, self.base)
        if self.base.axes != 1:
            raise ConfigError(
                f"encoding=randomized draws one random index per token, which encoding.base={self.base.name} does not "
                f"read (it reads {self.base.axes} coordinates per token); use a 1D base"
            )
        self.max_random_len = int(max_random_len)
        limit = self.base.max_positions()
        if limit is not None and limit < self.max_random_len:
            raise ConfigError(
                f"encoding=randomized draws positions up to max_random_len - 1 = {self.max_random_len - 1} but its "
                f"base {self.base.name} represents {limit} positions; lower encoding.max_random_len or enlarge the base"
            )
        self.eval_positions = eval_positions
        self.eval_seed = int(eval_seed)
        self.seed = int(torch.randint(2**62, (), device="cpu").item())  # cpu: also when built on the meta device
        self.draws = 0
        self.shift_invariant = self.base.shift_invariant
        self.replaces_queries_keys = self.base.replaces_queries_keys
        self.supports_bidirectional = self.base.supports_bidirectional
        self.supports_causal = self.base.supports_causal

    # ---- the random positions ----------------------------------------------------------------
    def positions(self, pos: Tensor, tokens: Tensor | None = None) -> Tensor:
        if self.training or self.eval_positions == "random":
            length = pos.shape[-1]
            if length > self.max_random_len:
                raise ConfigError(
                    f"encoding=randomized cannot draw {length} distinct positions below "
                    f"max_random_len={self.max_random_len}; raise encoding.max_random_len"
                )
            if self.training:
                seed, self.draws = self.seed + self.draws, self.draws + 1
            else:
                seed = self.eval_seed
            pos = sorted_sample(length, self.max_random_len, seed, pos.device)
        return self.base.positions(pos, tokens)

    def get_extra_state(self) -> dict:
        return {"seed": self.seed, "draws": self.draws}

    def set_extra_state(self, state: dict) -> None:
        self.seed, self.draws = int(state["seed"]), int(state["draws"])

    def max_positions(self) -> int:
        return self.max_random_len

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        if positions_needed > self.max_random_len:
            raise ConfigError(
                f"encoding=randomized draws distinct positions below max_random_len={self.max_random_len} but this "
                f"run needs {positions_needed} (its longest evaluation sequence); raise encoding.max_random_len"
            )
