"""Fractional positional encoding, FPE (Harzig, Einfalt and Lienhart 2021, "Synchronized
Audio-Visual Frames with Fractional Positional Encoding for Transformers in Video-to-Text
Translation", arXiv:2112.14088): streams sampled at different rates (there: the video and audio
features of one clip) are placed on one timeline, so that what happens at the same moment gets the
same position, and a base encoding is evaluated at those real-valued positions: one stream's
frames keep their integer positions and the other's get fractional positions on that scale, so
that both span the same range (its example: a clip of 32 video and 11 audio features); its base is
the sinusoidal code of Vaswani et al. 2017.

The timeline (``posbench.encodings.base.stream_times``, the times the model hands an encoding that
``reads_time``): a source of ``S`` tokens made of streams with rates ``r_1 .. r_K`` (tokens per
time unit), one after another, covers the span ``T = S / (r_1 + ... + r_K)`` time units, and

    t(token i of stream k)          =  i / r_k               (i = 0 .. T r_k - 1)
    t(n-th token after the source)  =  T + n                 (n = 0, 1, ...: SEP, answer slots)

so simultaneous events of two streams have equal times and the tokens after the source (which
belong to no stream) follow one time unit apart from the end of the span. fpe's ``positions`` hook
turns the times into the positions every other hook of its base (``embed``, ``rotate``, ``bias``,
``score``, ``value``, ``between_blocks``, ``ffn``) receives:

    position = t * R,   R = max(r_1 .. r_K)   (``unit: frame``, the default: a frame scale, as the paper's)
    position = t                              (``unit: time``)

In frames, the densest stream's tokens sit at consecutive integers as they would alone, and the
resolution of the base (RoPE's fastest angle, one radian per unit; a sinusoid's shortest period) is
the one it was designed for; in time units neighbouring events of a dense stream are only ``1/R``
apart, which such a base separates poorly (measured on ``task=sync``, rates 2 and 3, RoPE, 1000
steps: ``model=encoder`` reaches 0.85 test accuracy in time units, 1.00 in frames). Time units keep
positions small, which can help beyond the training lengths (``model=decoder`` at 2x the longest
training span: 1.00 in time units, 0.63 in frames). The base's own ``positions`` hook is never
called: a base that chooses positions cannot read a timeline and is refused.

Bases (``base``, default ``sinusoidal``, the paper's): the encodings whose formulas take a real
position, which declare ``fractional = True``: ``sinusoidal``, ``scaled_sinusoidal`` and
``compressed`` (codes of ``p``, resp. ``floor(p / k)``), ``rope`` and ``xpos`` (angle ``p theta_i``;
xPos's decay ``zeta^(p / scale_base)``), ``alibi``, ``kerple``, ``fire`` and ``dynamic_bias``
(functions of ``p_i - p_j``), ``xl`` (sinusoids of ``p_i - p_j``) and ``spe`` (sines of ``p``).
Refused: the encodings that look a position up in a table by its integer index (``learned``,
``learned_scaled``, ``tupe``, ``t5``'s buckets, ``shaw``'s clipped distances), ``adaptive`` (its
``p / seq_len`` divides by the token count, which is not the timeline's length), ``cope`` and
``none`` (they read no positions), the composites, and the encodings that read several
coordinates per token (the 2D ones, M-RoPE's (t, h, w)): the timeline is one coordinate.

Where the timeline applies: only for a task whose source is made of streams (``Task.streams``,
``task=sync``); on any other task fpe is refused. In ``model=seq2seq`` the encoder reads the
source's timeline, while the decoder's stack (``decoder_encoding``, by default the same encoding)
has no streams in its input: it is handed integer indices, which fpe passes on unchanged (neither
timed nor scaled), so it acts as its base alone. Inside another composite (``combo``,
``randomized``) fpe would likewise be handed integer indices, since only the outermost encoding of
a stack is asked whether it reads time: they refuse it (use fpe as the outer encoding). Like ``randomized`` it
forwards every hook, so ``model.cross_encoding=fpe`` is refused (cross-attention pairs target and
source indices, with no timeline).

On the timeline a key later in the sequence can be earlier in time (stream B's first events come
after all of stream A's): a causal mask still hides later *tokens*, so a bias base such as ALiBi
penalises ``|t_i - t_j|`` between a query and earlier tokens that may lie ahead of it in time,
which the paper's causal ALiBi never sees.

Declarations follow the base: shift invariance (every time moved by the same amount), attention
modes, and the positions it can represent: a time never exceeds its token's index, so a position
never exceeds ``R`` times it, and the base checks ``R`` times the token count. PE off is the base's
position-free version (NoPE for every fractional base).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape
from posbench.encodings.wrapper import Wrapper
from posbench.encodings.combo import part_section, remaps_positions
from posbench.errors import ConfigError


def fractional_encodings() -> list[str]:
    """The registered encodings whose formulas accept one real-valued position per token (fpe's bases)."""
    return [name for name, cls in ENCODINGS.items() if cls.fractional and cls.axes == 1]


def stream_tasks() -> list[str]:
    """The registered tasks whose source is made of streams (a class-level ``Task.streams``)."""
    # imported here: the encodings are imported without posbench.tasks
    from posbench.tasks import TASKS

    return [name for name, cls in TASKS.items() if cls.streams is not None]


@ENCODINGS.register("fpe")
class FPE(Wrapper):
    description = "base encoding at each token's time on the streams' shared timeline (Harzig et al. 2021, FPE)"
    family = "composite"
    reads_time = True
    wraps = ("base",)

    def __init__(self, shape: AttentionShape, base="sinusoidal", unit: Literal["frame", "time"] = "frame"):
        super().__init__(shape)
        section = part_section(base, "encoding.base")
        if shape.streams is None:
            raise ConfigError(
                f"encoding={self.name} places the tokens of streams sampled at different rates on one timeline; "
                f"the task has a single stream (tasks with streams: {', '.join(stream_tasks())})"
            )
        self.base = ENCODINGS.build(section, shape)
        if not self.base.fractional or self.base.axes != 1 or remaps_positions(self.base):
            raise ConfigError(
                f"encoding={self.name} evaluates its base at one fractional time per token, which "
                f"encoding.base={section['name']} does not accept; these do: {', '.join(fractional_encodings())}"
            )
        self.unit = unit
        #: Positions per time unit: the densest stream's rate (frames) or 1 (time units).
        self.scale = max(shape.streams) if unit == "frame" else 1
        self.shift_invariant = self.base.shift_invariant
        self.replaces_queries_keys = self.base.replaces_queries_keys
        self.supports_bidirectional = self.base.supports_bidirectional
        self.supports_causal = self.base.supports_causal

    # ---- the times -----------------------------------------------------------------------------
    def positions(self, pos: Tensor, tokens: Tensor | None = None) -> Tensor:
        """Float times ``[B or 1, L]`` -> positions in ``unit``; integer indices (a stack that the
        model gives no times, seq2seq's decoder) pass unchanged."""
        return pos * self.scale if pos.is_floating_point() else pos

    def max_positions(self) -> int | None:
        """Tokens whose positions the base can represent (each at most ``scale`` times its index)."""
        limit = self.base.max_positions()
        return None if limit is None else limit // self.scale

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        """The base checks ``scale`` times the token count, a bound on every position fpe gives it."""
        self.base.check_fits(positions_needed * self.scale, shorten)
