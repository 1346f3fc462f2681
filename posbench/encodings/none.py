"""NoPE: no positional information at all (Kazemnejad et al. 2023, "The Impact of Positional
Encoding on Length Generalization in Transformers"). Every hook keeps the base class's identity.
A bidirectional model with NoPE is permutation-equivariant; a causal one still sees order through
its mask."""

from posbench.encodings.base import ENCODINGS, PositionalEncoding


@ENCODINGS.register("none")
class NoPE(PositionalEncoding):
    description = "no positional encoding (NoPE); order only through a causal mask"
    family = "none"
    shift_invariant = True
