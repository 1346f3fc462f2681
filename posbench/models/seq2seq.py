"""Encoder-decoder family (Vaswani et al. 2017, "Attention Is All You Need", with pre-LN blocks):
a bidirectional encoder reads the source; a causal decoder with cross-attention to the encoder
output writes the target, teacher-forced in training and greedy at evaluation (batched, stopping
once every answer has emitted ``eos``).

Where position enters:

* encoder self-attention: ``encoding`` (source positions 0..S-1);
* decoder self-attention: ``decoder_encoding``, by default the same encoding and options as
  ``encoding`` (a separate instance with its own parameters); target positions 0..T-1, where
  position 0 holds the start token (SEP);
* cross-attention: ``cross_encoding``, NoPE by default, as in the original Transformer, where the
  absolute encodings already placed in both streams are all the position cross-attention sees.
  Setting it to an encoding that acts inside attention (``rope``, ``alibi``, ``t5``, ``shaw``...)
  applies it between query position i (target index) and key position j (source index), both
  counted from 0: a relative encoding then sees ``i - j``, i.e. it treats the two sequences as
  aligned at their starts (a monotone-alignment prior, natural for copy-like tasks and
  questionable for reordering ones). Encodings that act only on the input (``embed``),
  between blocks or by choosing positions have no place in cross-attention and are refused.

``decoder_encoding`` and ``cross_encoding`` take an encoding name (its options come from
``configs/encoding/<name>.yaml``) or a full section ``{name: ..., <option>: ...}``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from torch import Tensor

from posbench.encodings import ENCODINGS, PositionalEncoding
from posbench.encodings.base import overrides as overrides_hook
from posbench.errors import ConfigError
from posbench.models.base import MODELS, SequenceModel

ENCODING_CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "encoding"

#: Hooks with no meaning in cross-attention (it has no input embedding, block stream or own positions).
NOT_IN_CROSS_ATTENTION = ("embed", "positions", "data_bias", "between_blocks", "ffn")


def encoding_section(spec: str | dict | None, default: dict) -> dict:
    """An encoding section from a name (with its YAML's default options), a section, or None."""
    if spec is None:
        return dict(default)
    if isinstance(spec, dict):
        return dict(spec)
    ENCODINGS.get(spec)  # an unknown name lists the valid ones
    path = ENCODING_CONFIGS / f"{spec}.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {"name": spec}


class EncoderDecoder(SequenceModel):
    """What the encoder-decoder families share (``seq2seq``, ``captioner``): ``encode`` turns the
    source into the memory a causal decoder (``self.net``, with cross-attention) reads; teacher
    forcing in training, batched greedy decoding from SEP to ``eos`` at evaluation."""

    causal = True

    def encode(self, src: Tensor) -> Tensor:
        """The memory ``[B, S, d_model]`` the decoder cross-attends to."""
        raise NotImplementedError

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.net(self.teacher_inputs(tgt), memory=self.encode(src))

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        memory = self.encode(src)
        start = torch.full((src.shape[0], 1), self.sep, dtype=torch.long, device=src.device)
        return self.greedy(lambda tokens: self.net(tokens, memory=memory)[:, -1], start, tgt_len)

    def with_role(self, role: str, key: str, build):
        """``build()``, its refusal prefixed with the stack it concerns."""
        try:
            return build()
        except ConfigError as error:
            raise ConfigError(f"model={self.name}, {role} ({key}): {error}") from None

    def check_cross_encoding(self, section: dict) -> None:
        """Refuse a cross-attention encoding that acts through a hook cross-attention does not have."""
        unusable = [hook for hook in NOT_IN_CROSS_ATTENTION if overrides(self.net.cross_encoding, hook)]
        if unusable:
            raise ConfigError(
                f"model.cross_encoding={section['name']} acts through {'/'.join(unusable)}, which "
                "cross-attention does not have; use none or an encoding that acts inside attention "
                "(rotate, bias or score: e.g. rope, alibi, t5, shaw)"
            )


@MODELS.register("seq2seq")
class Seq2Seq(EncoderDecoder):
    description = "encoder-decoder with cross-attention; teacher forcing, greedy decoding to eos"
    encoding_options = ("decoder_encoding", "cross_encoding")

    def __init__(
        self, vocab_size: int, encoding: dict, decoder_encoding: str | dict | None = None,
        cross_encoding: str | dict = "none", **options,
    ):
        super().__init__(
            vocab_size, encoding, stacks={"decoder_encoding": decoder_encoding, "cross_encoding": cross_encoding},
            **options,
        )

    def build_stacks(self, encoding: dict, decoder_encoding: str | dict | None, cross_encoding: str | dict) -> None:
        decoder_section = encoding_section(decoder_encoding, encoding)
        cross_section = encoding_section(cross_encoding, {"name": "none"})
        self.encoder = self.with_role("encoder self-attention", "encoding", lambda: self.stack(encoding, False, None))
        self.net = self.with_role(
            "decoder", "model.decoder_encoding / model.cross_encoding",
            lambda: self.stack(decoder_section, True, self.vocab_size, cross_encoding=cross_section),
        )
        self.check_cross_encoding(cross_section)

    @classmethod
    def without_pe(cls, section: dict) -> dict:
        """Decoder self-attention as ``encoding`` (none in the twin), no cross-attention encoding."""
        return {**section, "decoder_encoding": None, "cross_encoding": "none"}

    @property
    def encoding(self) -> PositionalEncoding:
        """The configured ``encoding``: the encoder's."""
        return self.encoder.encoding

    def encode(self, src: Tensor) -> Tensor:
        return self.encoder(src, times=self.timeline(src.shape[1], src.shape[1], src.device))

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        return max(src_len, tgt_len)

    @classmethod
    def stacks_of(cls, section: dict, src_len: int, tgt_len: int) -> list[tuple[int, int]]:
        """The encoder over the source; the decoder over SEP and the target."""
        return [(src_len, section["layers"]), (tgt_len + 1, section["layers"])]

    def check_fits(self, src_len: int, tgt_len: int) -> None:
        self.encoder.encoding.check_fits(src_len)
        self.net.encoding.check_fits(tgt_len)
        self.net.cross_encoding.check_fits(max(src_len, tgt_len))


def overrides(encoding: PositionalEncoding, hook: str) -> bool:
    """Whether ``encoding`` acts through ``hook`` (a composite of ``parts`` if any part does)."""
    parts = getattr(encoding, "parts", None)
    if parts is not None:
        return any(overrides(part, hook) for part in parts)
    return overrides_hook(encoding, hook)
