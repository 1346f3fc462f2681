"""HoPE, High-frequency rotary Position Encoding (Chen et al. 2025, "HoPE: A Novel Positional
Encoding Without Long-Term Decay for Enhanced Context Awareness and Extrapolation", ACL 2025,
arXiv:2410.21216).

The paper finds that a RoPE model's U-shaped attention comes from the low-frequency components of
RoPE (the "activated" ones, and the top low-frequency ones that settle into near-constant,
semantic channels), and that these components are what limits extrapolation. HoPE "replaces the
specific components in RoPE with position-independent ones, retaining only high-frequency
signals" (abstract): a RoPE pair keeps rotating only if its frequency completes at least one
full period within the training length ``L``,

    theta_i * L >= 2 pi        (wavelength 2 pi / theta_i <= L),

and every other pair gets ``theta = 0``: its features pass unrotated, position-independent, as in
NoPE. With RoFormer's ``theta_i = base^(-2i / d)`` these are the lowest frequencies, so HoPE is
RoPE with a frequency cut-off set by the training length (p-RoPE, ``encoding=rope encoding.p``,
cuts at a fraction of the pairs instead). The kept pairs rotate exactly as in RoPE (same
``theta_i``, the half-split pairing of ``posbench.encodings.rope``), so HoPE is a rotation: shift
invariant and norm preserving, and it has no long-term decay in theory (a position-free pair adds
a constant to every logit).

``train_len`` is the training length ``L`` in positions (the longest training sequence, e.g. 21
for the default ``task=copy`` with ``model=encoder``: source, separator, target). The encoding
cannot read it from the task, so it is an option; a value below ``2 pi`` would leave no pair
rotating (NoPE) and is refused.

Not verified against the paper's own text (only its abstract and summaries were reachable): the
exact threshold's boundary (``>=`` vs ``>``, ``L`` vs ``L - 1`` offsets), and whether HoPE also
changes the kept frequencies or offers a shifted variant; no reference code was found.
"""

from __future__ import annotations

import math

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.rope import RoPE, rope_thetas
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, PositiveInt


@ENCODINGS.register("hope")
class HoPE(RoPE):
    description = (
        "RoPE keeping only the frequencies with a full period within the training length, the rest "
        "position-independent (Chen et al. 2025, HoPE)"
    )

    def __init__(self, shape: AttentionShape, base: FrequencyBase = 10000.0, train_len: PositiveInt = 64):
        if train_len < 2 * math.pi:
            raise ConfigError(
                f"encoding={self.name}: train_len={train_len} leaves no frequency pair rotating (even theta_0 = 1 "
                "needs 2 pi = 6.3 positions for a full period): that is NoPE; give the training length in positions"
            )
        super().__init__(shape, base=base)
        self.train_len = train_len
        self.keep_rotating(rope_thetas(self.rotated, base) * train_len >= 2 * math.pi)
