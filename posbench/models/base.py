"""The model-family contract: how a family consumes a task's (source, target) sequences.

Tasks produce integer symbols ``0 .. vocab_size-1`` (``vocab_size`` here is the task's
``n_symbols``, its ``eos`` included). A family appends its own special tokens (``SEP`` between
source and target, ``BLANK`` for empty target slots), decides the layout and the attention mask,
and implements:

* ``target_logits(src, tgt)``: logits at the target positions (teacher-forced where it generates);
* ``predict(src, tgt_len)``: the model's answer at evaluation (greedy where it generates; a
  generating family stops once every answer has emitted ``eos``);
* ``positions_needed(src_len, tgt_len)``: how many positions one example occupies, so that an
  encoding with a bounded table can be refused before training (``check_fits``).

Targets may end with ``eos`` and be right-padded with ``PAD``; the loss ignores PAD.

A family reads what its ``inputs`` says (``sequences`` of symbols, or ``images``: ``model=vit``);
a task gives one of the two (``Task.inputs``), and a mismatch is refused before anything is built.
The task wires in what the family must know about its data (``Task.model_inputs``: ``eos`` for
sequences, and the ``streams`` its source is made of, if any; channels and image size for images).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.base import stream_times
from posbench.errors import ConfigError
from posbench.models.transformer import Transformer
from posbench.registry import Registry
from posbench.schema import PositiveInt, Range
from posbench.tasks.base import PAD


class SequenceModel(nn.Module):
    name: str = ""
    description: str = ""
    #: True for causal (decoder-style) self-attention in ``self.net``.
    causal: bool = False
    #: What the family reads: ``sequences`` (of symbols), ``images`` or ``captioned images``;
    #: tasks say what they give.
    inputs: str = "sequences"
    #: Options a run's label always shows, default or not (``posbench.labels``): the encodings the
    #: family holds besides ``encoding`` when they are half of what a run is (a captioner's image side).
    labelled: tuple[str, ...] = ()
    #: Options that hold an encoding (a name, or a section with its options) besides ``encoding``.
    encoding_options: tuple[str, ...] = ()

    def __init__(
        self,
        vocab_size: int,
        encoding: dict,
        d_model: PositiveInt = 64,
        layers: PositiveInt = 2,
        heads: PositiveInt = 4,
        ffn_mult: PositiveInt = 4,
        dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0,
        *,
        eos: int | None = None,
        streams: tuple[int, ...] | None = None,
        stacks: dict | None = None,
    ):
        """``eos`` is the task's end-of-sequence symbol (None: answers have a known length);
        ``streams`` the rates of the streams its source is made of (None: one sequence; see
        ``timeline``); ``stacks`` holds a subclass's extra ``build_stacks`` arguments. All are
        wired by code."""
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"model.d_model={d_model} is not divisible by model.heads={heads}")
        self.vocab_size = vocab_size
        self.eos = eos
        self.streams = None if streams is None else tuple(int(rate) for rate in streams)
        self.sep, self.blank = vocab_size, vocab_size + 1
        self.sizes = {"d_model": d_model, "layers": layers, "heads": heads, "ffn_mult": ffn_mult, "dropout": dropout}
        self.build_stacks(encoding, **(stacks or {}))

    def build_stacks(self, encoding: dict) -> None:
        """Create the network: one stack, ``self.net``, for the single-stack families."""
        self.net = self.stack(encoding, self.causal, self.vocab_size)

    def stack(
        self,
        encoding: dict,
        causal: bool,
        outputs: int | None,
        cross_encoding: dict | None = None,
        *,
        vectors: bool = False,
        grid: int | None = None,
        prefix: int = 0,
        layers: int | None = None,
    ) -> Transformer:
        """A Transformer with ``encoding`` in its self-attention, ``outputs`` logits (None: hidden
        states), and cross-attention if given. It reads this model's tokens (symbols, SEP, BLANK),
        or ``vectors`` (an image's patch embeddings laid out on a ``grid`` after ``prefix`` tokens).
        ``layers``: its depth, if not ``model.layers`` (a captioner's image encoder)."""
        sizes = self.sizes if layers is None else {**self.sizes, "layers": layers}
        shape = AttentionShape(
            sizes["d_model"], sizes["heads"], sizes["layers"], causal, sizes["ffn_mult"], grid=grid, prefix=prefix,
            streams=self.streams,
        )
        cross = None
        if cross_encoding is not None:
            cross = ENCODINGS.build(cross_encoding, replace(shape, causal=False))
        tokens = None if vectors else self.vocab_size + 2
        return Transformer(tokens, outputs, ENCODINGS.build(encoding, shape), cross_encoding=cross, **sizes)

    def timeline(self, src_len: int, length: int, device) -> Tensor | None:
        """The time of each of ``length`` tokens that start with a source of ``src_len`` tokens,
        when the task's source is streams at different rates (``stream_times``), else None: what an
        encoding that ``reads_time`` (``fpe``) reads instead of the index."""
        return None if self.streams is None else stream_times(self.streams, src_len, length, device)

    # ---- encodings ---------------------------------------------------------------------------
    @classmethod
    def without_pe(cls, section: dict) -> dict:
        """This family's config ``section`` with any encoding it holds itself switched off (the
        no-PE twin keeps everything else); the single-stack families hold none."""
        return section

    @property
    def encoding(self) -> PositionalEncoding:
        """The configured encoding (the decoder's for the decoder family)."""
        return self.net.encoding

    def stacks(self) -> list[Transformer]:
        return [module for module in self.modules() if isinstance(module, Transformer)]

    def encoding_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters of every encoding in every stack (no weight decay on them)."""
        for stack in self.stacks():
            yield from stack.encoding.parameters()
            if stack.cross_encoding is not None:
                yield from stack.cross_encoding.parameters()

    @contextmanager
    def encoding_off(self):
        """Temporarily replace every encoding (self- and cross-attention) by its position-free
        version, ``without_position()``: the trained model with its PE switched off. That is NoPE
        for most encodings; TUPE keeps its 1/sqrt(2d) content scaling and loses only its position term."""
        saved = [(stack, stack.encoding, stack.cross_encoding) for stack in self.stacks()]
        for stack, encoding, cross in saved:
            stack.encoding = encoding.without_position()
            stack.cross_encoding = None if cross is None else cross.without_position()
        try:
            yield self
        finally:
            for stack, encoding, cross in saved:
                stack.encoding, stack.cross_encoding = encoding, cross

    def check_task(self, task) -> None:
        """Refuse (``ConfigError``) what this model cannot do with ``task``'s examples: here, an
        encoding that cannot represent the longest one."""
        longest = task.longest()
        self.check_fits(task.source_len(longest), task.target_len(longest))

    def check_fits(self, src_len: int, tgt_len: int) -> None:
        """Refuse (``ConfigError``) an encoding that cannot represent the longest example."""
        self.encoding.check_fits(self.positions_needed(src_len, tgt_len))

    # ---- sizes from the configuration alone (the memory estimate, before anything is built) ----
    @classmethod
    def stacks_of(cls, section: dict, src_len: int, tgt_len: int) -> list[tuple[int, int]]:
        """``(tokens, layers)`` of each Transformer stack one example runs through, from the
        model's config ``section``: here one stack over source, SEP and target."""
        return [(src_len + tgt_len + 1, section["layers"])]

    @classmethod
    def stem_cost(cls, section: dict, channels: int, size: int) -> tuple[int, int, int]:
        """``(saved, peak, parameters)`` of the family's image stem for one image of side ``size``:
        the values it leaves for the backward pass, the largest map alive at once at evaluation,
        and its weights (zeros without a stem; ``posbench.models.image_encoder.stem_cost``)."""
        return 0, 0, 0

    # ---- the family contract -----------------------------------------------------------------
    def loss(self, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.target_logits(src, tgt)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=PAD)
        return loss, logits.argmax(-1)

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Logits ``[B, T, vocab]`` at the target positions (teacher-forced where relevant)."""
        raise NotImplementedError

    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        raise NotImplementedError

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        raise NotImplementedError

    # ---- helpers for the generating families -------------------------------------------------
    def teacher_inputs(self, tgt: Tensor) -> Tensor:
        """``SEP, tgt[:-1]``: the decoder input under teacher forcing (PAD read as BLANK; PAD only
        follows ``eos``, so a causal decoder never conditions a scored position on it)."""
        start = tgt.new_full((tgt.shape[0], 1), self.sep)
        return torch.cat((start, tgt[:, :-1].masked_fill(tgt[:, :-1] == PAD, self.blank)), dim=1)

    def greedy(self, next_logits: Callable[[Tensor], Tensor], tokens: Tensor, steps: int) -> Tensor:
        """Append ``steps`` argmax tokens to ``tokens`` (``next_logits(tokens)`` gives ``[B, vocab]``);
        stop early once every row has emitted ``eos`` and return ``[B, steps]``, PAD after the stop."""
        start = tokens.shape[1]
        for _ in range(steps):
            tokens = torch.cat((tokens, next_logits(tokens).argmax(-1, keepdim=True)), dim=1)
            if self.eos is not None and (tokens[:, start:] == self.eos).any(dim=1).all():
                break
        answer = tokens[:, start:]
        return F.pad(answer, (0, steps - answer.shape[1]), value=PAD)


MODELS: Registry[SequenceModel] = Registry("model")
