"""Combinations of encodings: several encodings acting in one model, each through its own hooks.

Published models mix input-level and attention-level encodings: Shaw et al. 2018 (§4) try their
relative terms together with absolute sinusoids, TUPE (Ke et al. 2021) adds T5's relative bias to
its untied absolute term. ``encoding=combo encoding.parts=[learned,alibi]`` builds every part
(a name, or a mapping with a ``name`` and that encoding's options) and composes their hooks:

    positions:       pos <- p_K( ... p_1(pos))                     (every part then sees the result)
    embed:           x <- e_K( ... e_1(x, pos), pos)
    rotate:          (q', k') <- r_K( ... r_1(q, k))
    attention:       logits = q' . k' / sqrt(d_head) + sum_i bias_i + sum_i score_i(q, k)
                     output = softmax(logits) v + sum_i value_i
    between_blocks:  x <- b_K( ... b_1(x))
    ffn:             h <- f_K( ... f_1(h))

A part's ``score`` sees the queries and keys as projected, before any part's rotation (the
contract of ``score``, posbench/encodings/base.py): in ``[rope, shaw]`` Shaw's ``q_i . a_ij``
(Shaw et al. 2018, eq. 5) is computed on the position-free ``q_i``, while RoPE rotates the ``q, k``
of the content logits. The combination is shift-invariant when every part is (sums of
shift-invariant logit terms are; rotary parts rotate each feature pair by an angle linear in the
position, so their composition is again a function of the offset; LieRE's learned rotation does not
commute with theirs, ``commuting_rotation``, so beside another rotating part it is not), it supports a mode when every
part does, and it can represent as many positions as its tightest part. Attention stays on the
fused SDPA path unless some part itself needs the explicit one: ``explicit_attention`` asks the
parts instead of looking at which methods this class overrides.

SPE (Liutkus et al. 2021) replaces the queries and keys by R-dimensional random-feature codes in
its ``rotate``, so it is refused together with any other part that rotates: that rotation would act
on the codes, or SPE would code rotated queries (``[spe, rope]`` would rotate 16 of 64 features).
With parts that add logit terms (``[spe, alibi]``, ``[spe, shaw]``) it composes as above.

Every part reads the same positions, so the parts are all 1D or all 2D (``axes``): on a ViT,
``[sincos2d, rel_bias2d]`` combines, ``[learned, rel_bias2d]`` is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError


def part_section(spec, option: str) -> dict:
    """The config section of an encoding given as a name or as a mapping with a name and its options."""
    if isinstance(spec, str):
        return {"name": spec}
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return dict(spec)
    raise ConfigError(f"{option} must be an encoding name or a mapping with a name (and its options), got {spec!r}")


def remaps_positions(enc: PositionalEncoding) -> bool:
    """True when the encoding's ``positions`` hook changes the positions (e.g. randomized)."""
    return type(enc).positions is not PositionalEncoding.positions


def total(terms: Iterable[Tensor | None]) -> Tensor | None:
    """The sum of the terms that are not None; None when all are."""
    present = [term for term in terms if term is not None]
    return sum(present[1:], present[0]) if present else None


@ENCODINGS.register("combo")
class Combo(PositionalEncoding):
    description = "several encodings at once, e.g. learned + ALiBi: hooks in order, logit terms summed"
    family = "composite"
    wraps = ("parts",)

    def __init__(self, shape: AttentionShape, parts: Sequence = ("learned", "alibi")):
        super().__init__(shape)
        if isinstance(parts, (str, Mapping)) or not isinstance(parts, Sequence):
            raise ConfigError(f"encoding.parts must be a list of encodings (names or mappings), got {parts!r}")
        sections = [part_section(spec, f"encoding.parts[{i}]") for i, spec in enumerate(parts)]
        names = [section["name"] for section in sections]
        if not names:
            raise ConfigError("encoding=combo needs at least one encoding in encoding.parts, e.g. [learned,alibi]")
        if self.name in names:
            raise ConfigError("encoding=combo cannot contain another combo; list all the parts in one encoding.parts")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"encoding=combo lists {', '.join(repeated)} more than once in encoding.parts")
        self.compose(ENCODINGS.build(section, shape) for section in sections)
        for part in self.parts:
            refuse_inner_timeline(self.name, part)
        first = self.parts[0]
        other = next((part for part in self.parts if part.axes != first.axes), None)
        if other is not None:
            one, two = sorted((first, other), key=lambda part: part.axes)
            raise ConfigError(
                f"encoding=combo cannot combine the {one.axes}D encoding {one.name} with the {two.axes}D encoding "
                f"{two.name}: its parts read the same positions, sequence indices, (row, col) or (t, h, w); use "
                "parts that read the same kind"
            )
        for part in self.parts:
            if part.private_positions and len(self.parts) > 1:
                other = next(other for other in self.parts if other is not part)
                raise ConfigError(
                    f"encoding=combo cannot hold {part.name} beside {other.name}: {part.name}'s positions hook hands "
                    f"every part positions of its own kind, which {other.name} does not read; use {part.name} alone"
                )
            bounded = [other.name for other in self.parts if other is not part and other.max_positions() is not None]
            if remaps_positions(part) and bounded:
                raise ConfigError(
                    f"encoding=combo: {part.name} changes the positions every part sees, which {bounded[0]} "
                    f"cannot check against its table; put the parts inside it instead "
                    f"(e.g. encoding=randomized encoding.base={{name:combo,parts:[...]}})"
                )
            rotating = [other.name for other in self.parts if other is not part and other.rotates]
            if part.replaces_queries_keys and rotating:
                raise ConfigError(
                    f"encoding=combo cannot combine {part.name} with {rotating[0]}: {part.name} replaces queries and "
                    f"keys by codes of another size, so no other rotation can act on the same "
                    f"queries and keys; keep one of the two"
                )

    def compose(self, parts: Iterable[PositionalEncoding]) -> None:
        """Hold ``parts`` (built encodings) and take from them the properties of the combination."""
        self.parts = nn.ModuleList(parts)
        self.axes = max(part.axes for part in self.parts)
        rotating = [part for part in self.parts if part.rotates]
        self.shift_invariant = all(part.shift_invariant for part in self.parts) and (
            len(rotating) < 2 or all(part.commuting_rotation for part in rotating)
        )
        self.supports_bidirectional = all(part.supports_bidirectional for part in self.parts)
        self.supports_causal = all(part.supports_causal for part in self.parts)
        self.replaces_queries_keys = any(part.replaces_queries_keys for part in self.parts)
        normalizers = [index for index, part in enumerate(self.parts) if part.replaces_softmax]
        if len(normalizers) > 1:
            raise ConfigError(
                f"encoding=combo cannot combine {self.parts[normalizers[0]].name} with {self.parts[normalizers[1]].name}: both replace the "
                "softmax that turns attention logits into weights; keep one of the two"
            )
        #: the index of the part whose ``normalize`` the combination uses (None: the softmax)
        self.normalizer = normalizers[0] if normalizers else None

    @property
    def explicit_attention(self) -> bool:
        return any(part.explicit_attention for part in self.parts)

    @property
    def rotates(self) -> bool:
        return any(part.rotates for part in self.parts)

    @property
    def replaces_softmax(self) -> bool:
        return self.normalizer is not None

    def without_position(self) -> PositionalEncoding:
        """The combination of the parts' position-free versions (e.g. [tupe, alibi] keeps TUPE's
        content scaling and drops both position terms)."""
        off = type(self)(self.shape, parts=["none"])
        off.compose(part.without_position() for part in self.parts)
        return off

    def positions(self, pos: Tensor, tokens: Tensor | None = None) -> Tensor:
        for part in self.parts:
            pos = part.positions(pos, tokens)
        return pos

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        for part in self.parts:
            x = part.embed(x, pos)
        return x

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        for part in self.parts:
            q, k = part.rotate(q, k, q_pos, k_pos, layer)
        return q, k

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return total(part.bias(q_pos, k_pos, layer) for part in self.parts)

    def data_bias(self, x: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return total(part.data_bias(x, q_pos, k_pos, layer) for part in self.parts)

    def normalize(self, logits: Tensor, layer: int) -> Tensor:
        """The normalisation of the one part that replaces the softmax (at most one may), else the softmax."""
        if self.normalizer is None:
            return super().normalize(logits, layer)
        return self.parts[self.normalizer].normalize(logits, layer)

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return total(part.score(q, k, q_pos, k_pos, layer) for part in self.parts)

    def value(self, weights: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        return total(part.value(weights, q_pos, k_pos, layer) for part in self.parts)

    def between_blocks(self, x: Tensor, pos: Tensor, layer: int) -> Tensor:
        for part in self.parts:
            x = part.between_blocks(x, pos, layer)
        return x

    def ffn(self, h: Tensor, pos: Tensor, layer: int) -> Tensor:
        for part in self.parts:
            h = part.ffn(h, pos, layer)
        return h

    def max_positions(self) -> int | None:
        limits = [limit for limit in (part.max_positions() for part in self.parts) if limit is not None]
        return min(limits, default=None)

    def pair_bytes(self) -> int:
        return max(part.pair_bytes() for part in self.parts)

    def check_grid(self, side: int) -> None:
        for part in self.parts:
            part.check_grid(side)

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        """Every part checks itself, so the tightest one refuses the run with its own message."""
        for part in self.parts:
            part.check_fits(positions_needed, shorten)


def refuse_inner_timeline(outer: str, inner: PositionalEncoding) -> None:
    """Refuse an encoding that reads the task's timeline (``fpe``) inside another: a model hands
    the times only to the encoding of the stack, so inside it would silently read indices."""
    if inner.reads_time:
        raise ConfigError(
            f"encoding={outer} cannot hold {inner.name}: it reads the timeline of the task's streams, which a model "
            f"hands only to the outermost encoding; use encoding={inner.name} with encoding.base=... instead"
        )
