"""The encoding contract: the few places where position can enter a Transformer.

An encoding is an ``nn.Module`` that overrides only the hooks it uses; the defaults do nothing.
The models call every hook unconditionally and never branch on an encoding's name:

==================  ===========================================  ===============================
hook                where it acts                                examples
==================  ===========================================  ===============================
``positions``       chooses the positions, once per forward      randomized PE (Ruoss et al.), BiPE
``embed``           added to / mixed into the input embeddings   sinusoidal, learned
``rotate``          a transformation of queries and keys         RoPE, xPos, PoPE, LieRE
``bias``            additive float bias on attention logits      ALiBi, T5, KERPLE, FIRE
``data_bias``       additive logit bias computed from the input  Forgetting Transformer (FoX)
``score``           content-position term from unrotated q, k    Shaw, Transformer-XL, CoPE, DAPE
``normalize``       attention logits -> weights (softmax)        stick-breaking attention
``value``           a position term added to attention output    Shaw (values)
``between_blocks``  a module applied after each block            PEG (conditional encodings)
``ffn``             the feed-forward's hidden activations        Mix-FFN's depthwise convolution
==================  ===========================================  ===============================

Positions are passed explicitly, for queries and keys separately, as integer tensors; randomized,
shifted or 2D positions therefore need no change to a model. What a position is depends on the
encoding's ``axes``:

* ``axes = 1`` (the 1D encodings): ``[B or 1, L]``, the token's index in its sequence. On an image
  (``model=vit``) that is the raster order: the class token, when there is one, is position 0 and
  patch (r, c) of a ``side x side`` grid is ``prefix + r * side + c``; every 1D encoding therefore
  runs on a ViT unchanged (as ViT's own learned table does, Dosovitskiy et al. 2021 eq. 1).
* ``axes = 2`` (the 2D encodings): ``[B or 1, L, 2]``, the (row, col) of each token's patch. Such an
  encoding needs an image grid (``AttentionShape.grid``: ``model=vit``, a captioner's image
  encoder) and is refused on sequences. The first ``shape.prefix`` tokens (the class token) have
  no grid position: their coordinates are ``(-1, -1)`` (``NO_POSITION``) and every 2D encoding
  documents what it does with them (no position, or a vector of their own). Grids are square:
  ``grid_side`` recovers the side from the token count.
* ``axes = 3`` (multimodal rotary, M-RoPE): ``[B or 1, L, 3]``, the (t, h, w) of each token of a
  sequence holding image patches and text (``model=prefix_captioner``, ``multimodal_coordinates``):
  patches share one t and carry their (row, col), text tokens advance all three together. A
  model without such coordinates gives every axis the token's index (text alone).
* Fractional positions: an encoding that reads the shared timeline of streams sampled at different
  rates (``reads_time``: ``fpe``) gets float times ``[B or 1, L]`` instead of indices, for tasks
  whose source is such streams (``AttentionShape.streams``, ``stream_times``); the encodings whose
  formulas take real-valued positions say so with ``fractional = True``.

Tensor shapes: ``x`` is ``[B, L, d_model]``; ``q``/``k`` are ``[B, heads, L, head_dim]``;
``bias`` and ``score`` return logits terms broadcastable to ``[B, heads, Lq, Lk]`` that are added
to the already ``1/sqrt(head_dim)``-scaled content logits.

Order inside attention: ``score`` receives the queries and keys *as projected*, before ``rotate``;
the content logits ``q . k`` use the rotated ones. A content-position term such as Shaw et al.'s
``q_i . a_ij`` (2018, eq. 5) or Transformer-XL's ``q_i . W_R R_(i-j)`` (Dai et al. 2019, §3.3) is
defined on position-free queries; fed RoPE-rotated ones it would depend on the absolute position i
(in ``encoding=combo`` with a rotary part), no longer on ``i - j`` alone.

As long as an encoding uses only ``rotate``, ``bias`` and ``data_bias``, attention runs through the
fused ``scaled_dot_product_attention`` with the biases as a float ``attn_mask``; an encoding that
overrides ``score``, ``normalize`` or ``value`` switches its attention to the explicit path (logits
materialised).

Why the three hooks that see more than positions exist: ``positions`` also receives the token ids,
because BiPE (He et al. 2024) cuts a sequence into segments at a separator symbol; ``data_bias``
receives the self-attention layer's input, because FoX's forget gates (Lin et al. 2025, eq. 3) are
computed from each token (the ``bias`` hook sees positions only, so the fused path stays available
to it); ``normalize`` replaces the softmax, because stick-breaking attention (Tan et al. 2025, eq. 1)
is a different normalisation of the same logits, not an additive term. Cross-attention has no
sequence of its own for ``data_bias`` (``posbench.models.seq2seq`` refuses it there).

"PE off" (``SequenceModel.encoding_off``, the ``pe_off`` metrics) replaces every encoding by its
``without_position()``: NoPE unless the encoding also does something position-free (TUPE).

A new encoding is one module under ``posbench/encodings/`` registered with
``@ENCODINGS.register("name")`` plus ``configs/encoding/<name>.yaml``; the YAML's keys other
than ``name`` are passed to ``__init__`` as keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from posbench.errors import ConfigError
from posbench.registry import Registry
from posbench.schema import options, show


@dataclass(frozen=True)
class AttentionShape:
    """What an encoding may need to know about the model it is placed in."""

    d_model: int
    heads: int
    layers: int
    causal: bool
    #: The feed-forward's hidden width is ``ffn_mult * d_model`` (the ``ffn`` hook acts on it).
    ffn_mult: int = 4
    #: Patches per side of the training images' grid (``model=vit``); None for sequences.
    grid: int | None = None
    #: Tokens before the grid that have no grid position (the class token): 0 or 1.
    prefix: int = 0
    #: The rates (tokens per time unit) of the streams the task's source is made of, one after
    #: another over the same time span (``task=sync``); None: the source is one sequence.
    streams: tuple[int, ...] | None = None

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads


class PositionalEncoding(nn.Module):
    """Base class: every hook is the identity (this *is* NoPE)."""

    name: str = ""  # set by the registry
    #: One line for ``posbench list``: what it is and the paper.
    description: str = ""
    #: ``none`` | ``absolute`` | ``relative`` | ``rotary`` | ``bias`` | ``conditional`` (computed from
    #: the tokens, CPVT) | ``composite`` (built from others).
    family: str = "none"
    #: Coordinates per position that the hooks read: 1 (sequence index), 2 (row, col on an
    #: image grid; such an encoding is refused on sequences) or 3 (t, h, w of a multimodal
    #: sequence). See the module docstring.
    axes: int = 1
    #: The hooks read each token's time on the streams' shared timeline (floats), not its index.
    reads_time: bool = False
    #: The formulas accept real-valued positions (what ``fpe`` can wrap).
    fractional: bool = False
    #: Options that hold other encodings (a name, a mapping, or a list of them): a run's label
    #: always shows them, e.g. ``combo(learned+alibi)`` (``posbench.labels``).
    wraps: tuple[str, ...] = ()
    #: Attention logits are unchanged when every query and key position shifts by the same k
    #: (checked for every registered encoding by tests/test_encodings.py; an instance may override).
    shift_invariant: bool = True
    #: The attention modes the encoding is defined for (checked before training).
    supports_bidirectional: bool = True
    supports_causal: bool = True
    #: ``rotate`` replaces queries and keys by codes of another size (SPE's random features), on
    #: which no other encoding's rotation can act (``encoding=combo`` refuses such a pair).
    replaces_queries_keys: bool = False
    #: ``rotate`` turns each (half-split) feature pair by an angle linear in the position (RoPE and
    #: its variants): two such rotations compose into one that still depends on the offset alone.
    #: False for a rotation that does not commute with them (LieRE's learned dense rotations):
    #: ``encoding=combo`` is then not shift-invariant beside another rotating part.
    commuting_rotation: bool = True
    #: The ``positions`` hook hands the other hooks positions that only this encoding reads, not one
    #: index per token (BiPE's (index within segment, segment index) pairs): ``encoding=combo``
    #: refuses it beside other parts, which would read them.
    private_positions: bool = False

    def __init__(self, shape: AttentionShape):
        super().__init__()
        if shape.causal and not self.supports_causal:
            raise ConfigError(f"encoding={self.name} is defined only for bidirectional attention (e.g. model=encoder)")
        if not shape.causal and not self.supports_bidirectional:
            raise ConfigError(f"encoding={self.name} is defined only for causal attention (e.g. model=decoder)")
        if self.axes == 2 and shape.grid is None:
            raise ConfigError(
                f"encoding={self.name} is a 2D encoding: it reads the (row, col) of image patches and needs "
                "an image grid (model=vit, or model.image_encoding of model=captioner), not a sequence"
            )
        self.shape = shape

    # ---- hooks -------------------------------------------------------------------------------
    def positions(self, pos: Tensor, tokens: Tensor | None = None) -> Tensor:
        """Called once per forward: the positions every other hook of this forward receives.
        ``tokens``: the stack's input token ids ``[B, L]`` (None when it reads vectors, a ViT's patches)."""
        return pos

    def embed(self, x: Tensor, pos: Tensor) -> Tensor:
        """Input level: return the token embeddings ``x`` with position mixed in."""
        return x

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        """Rotate (or otherwise transform) queries and keys of attention layer ``layer`` before
        their dot product (``score`` does not see the result)."""
        return q, k

    def bias(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        """Additive float bias on the (already 1/sqrt(d)-scaled) attention logits, or None."""
        return None

    def data_bias(self, x: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        """Additive float bias on the logits of self-attention layer ``layer`` computed from its
        input ``x [B, L, d_model]`` (after the block's layer norm), broadcastable to ``[B, heads, L, L]``; or None."""
        return None

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        """Content-position logits term computed from queries/keys and positions, or None. ``q``
        and ``k`` are the projected ``[B, heads, L, head_dim]`` queries and keys, before any
        ``rotate`` (see the module docstring)."""
        return None

    def normalize(self, logits: Tensor, layer: int) -> Tensor:
        """Attention weights from the complete logits ``[B, heads, Lq, Lk]`` (every term added, masked
        keys at -inf), in float32: the softmax over keys, unless an encoding replaces it."""
        return torch.softmax(logits, dim=-1)

    def value(self, weights: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor | None:
        """A term ``[B, heads, Lq, head_dim]`` added to the attention output, computed from the
        attention weights ``[B, heads, Lq, Lk]`` (after softmax), or None."""
        return None

    def between_blocks(self, x: Tensor, pos: Tensor, layer: int) -> Tensor:
        """Applied to the residual stream after block ``layer``."""
        return x

    def ffn(self, h: Tensor, pos: Tensor, layer: int) -> Tensor:
        """Applied in block ``layer``'s feed-forward to its hidden activations ``[B, L, ffn_mult *
        d_model]``, between the first linear layer and the nonlinearity."""
        return h

    # ---- declared capabilities ---------------------------------------------------------------
    @property
    def explicit_attention(self) -> bool:
        """True when ``score``, ``normalize`` or ``value`` is overridden: attention must take the explicit path."""
        return any(overrides(self, hook) for hook in ("score", "normalize", "value"))

    @property
    def rotates(self) -> bool:
        """True when ``rotate`` is overridden: this encoding transforms queries and keys."""
        return type(self).rotate is not PositionalEncoding.rotate

    @property
    def replaces_softmax(self) -> bool:
        """True when ``normalize`` is overridden: attention weights are not the softmax of the logits."""
        return overrides(self, "normalize")

    def without_position(self) -> PositionalEncoding:
        """What this encoding becomes with its positional information switched off ("PE off" on a
        trained model): NoPE by default. An encoding whose hooks also do something position-free
        (TUPE's 1/sqrt(2d) content scaling) keeps that part."""
        return ENCODINGS.get("none")(self.shape)

    def max_positions(self) -> int | None:
        """The largest number of positions this encoding can represent (None: unbounded)."""
        return None

    def pair_bytes(self) -> int:
        """Bytes a training forward keeps per head and (query, key) pair of each attention layer for
        the backward pass beyond the fused path (``posbench.validation``'s memory estimate): the
        float32 logits and weights on the explicit path, none on the fused one. An encoding that
        keeps more per pair (an MLP over the pairs, a data-dependent bias) says so."""
        return EXPLICIT_ATTENTION_BYTES if self.explicit_attention else 0

    def refuse_unread(self, option: str, value, reader: str) -> None:
        """Refuse ``option`` set away from the default its class declares, in a configuration that
        does not read it (``reader``: what does, e.g. ``soft_onehot=true``), so that no run silently
        ignores an option."""
        default = next(found[option].default for klass in type(self).__mro__ if option in (found := options(klass)))
        if value != default:
            raise ConfigError(
                f"encoding={self.name}: {option}={show(value)} is read only with {reader}; leave it at {show(default)}"
            )

    def check_grid(self, side: int) -> None:
        """Raise ``ConfigError`` before training when this encoding cannot score a ``side x side``
        grid of patches (a table tied to the training grid with ``resize=refuse``,
        ``posbench.encodings.resize``)."""

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        """Raise ``ConfigError`` before training when this run needs more positions than it has;
        ``shorten`` names what decides the longest sequence (``task.eval_sizes`` on an image, a
        task's captions), which the message suggests shortening."""
        limit = self.max_positions()
        if limit is not None and positions_needed > limit:
            raise ConfigError(
                f"encoding={self.name} represents {limit} positions but this run needs {positions_needed} "
                f"(its longest evaluation sequence); raise encoding.max_len or shorten {shorten}"
            )


ENCODINGS: Registry[PositionalEncoding] = Registry("encoding")

#: Attention logits and weights (float32) per (head, query, key) that the explicit attention path
#: materialises, kept for the backward pass in training; the fused path (SDPA) keeps none.
EXPLICIT_ATTENTION_BYTES = 8


#: The hooks through which position can enter a model, in the order the module docstring lists them.
HOOKS = ("positions", "embed", "rotate", "bias", "data_bias", "score", "normalize", "value", "between_blocks", "ffn")


def overrides(encoding: PositionalEncoding, hook: str) -> bool:
    """Whether ``encoding``'s class overrides ``hook`` (for ``rotate``: ``encoding.rotates``, which a
    wrapper or combination answers for what it holds)."""
    if hook == "rotate":
        return encoding.rotates
    return getattr(type(encoding), hook) is not getattr(PositionalEncoding, hook)




#: The coordinates of a token without a grid position (the class token) for a 2D encoding.
NO_POSITION = -1


def grid_coordinates(side: int, prefix: int = 0, device=None) -> Tensor:
    """``[1, prefix + side * side, 2]`` integer (row, col) of each token of a ``side x side`` grid in
    raster order, after ``prefix`` tokens at ``(NO_POSITION, NO_POSITION)``: what a 2D encoding reads."""
    rows, cols = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
    coords = torch.stack((rows.flatten(), cols.flatten()), dim=-1)
    return torch.cat((coords.new_full((prefix, 2), NO_POSITION), coords))[None]


def multimodal_coordinates(side: int, text: int, device=None) -> Tensor:
    """``[1, side * side + text, 3]`` integer (t, h, w) of a ``side x side`` grid of image patches
    in raster order followed by ``text`` text tokens, as Qwen2-VL lays them out (Wang et al. 2024,
    §2.1, M-RoPE): the patches share t = 0 and carry their (row, col); the text starts one past
    the largest image coordinate, ``side``, and advances t, h and w together."""
    rows, cols = torch.meshgrid(torch.arange(side, device=device), torch.arange(side, device=device), indexing="ij")
    image = torch.stack((torch.zeros_like(rows.flatten()), rows.flatten(), cols.flatten()), dim=-1)
    words = (side + torch.arange(text, device=device))[:, None].expand(text, 3)
    return torch.cat((image, words))[None]


def stream_times(rates: tuple[int, ...], src_len: int, length: int, device=None) -> Tensor:
    """``[1, length]`` float times of a sequence whose first ``src_len`` tokens are streams sampled
    at ``rates`` tokens per time unit, one after another over the same span ``src_len / sum(rates)``
    (stream k's i-th token at time ``i / rates[k]``: Harzig et al. 2021's fractional positions), and
    whose remaining tokens (a separator, answer slots) follow one time unit apart from the span's end."""
    span = src_len / sum(rates)
    parts = [torch.arange(round(span * rate), device=device, dtype=torch.float32) / rate for rate in rates]
    parts.append(span + torch.arange(length - src_len, device=device, dtype=torch.float32))
    return torch.cat(parts)[None]


def grid_side(tokens: int, prefix: int) -> int:
    """The side of the square grid held by ``tokens`` tokens after ``prefix`` non-grid tokens."""
    side = math.isqrt(tokens - prefix)
    if side * side != tokens - prefix:
        raise ValueError(f"{tokens - prefix} grid tokens do not form a square grid")
    return side


def add_to_patches(x: Tensor, code: Tensor, prefix: int, prefix_code: Tensor | None = None) -> Tensor:
    """``x [B, prefix + N, d]`` with ``code [B or 1, N, d]`` added to its last N (grid) tokens and
    ``prefix_code [prefix, d]`` (if given) to its first ``prefix`` tokens, in one pass."""
    head = x[:, :prefix] if prefix_code is None else x[:, :prefix] + prefix_code.to(x.dtype)
    return torch.cat((head, x[:, prefix:] + code.to(x.dtype)), dim=1)


def grid_pairs(q_len: int, k_len: int, prefix: int, device=None) -> Tensor:
    """``[Lq, Lk]`` boolean: True where both the query and the key are grid tokens (neither is one
    of the first ``prefix`` tokens, which have no grid position)."""
    index = torch.arange(max(q_len, k_len), device=device) >= prefix
    return index[:q_len, None] & index[None, :k_len]


def relative_distance(q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """``i - j`` for every query position i and key position j: shape ``[B or 1, Lq, Lk]``."""
    return q_pos[..., :, None] - k_pos[..., None, :]
