"""Captioner: an image encoder and a causal text decoder that cross-attends to it (the
encoder-decoder captioners: Vinyals et al. 2015's CNN + decoder, with a Transformer decoder as in
CPTR, Liu et al. 2021, "CPTR: Full Transformer Network for Image Captioning"), pre-LN blocks as
in every family. The caption is teacher-forced in training and written greedily from SEP to
``eos`` at evaluation, as seq2seq does.

The image encoder is a stem (``model.image_encoder``: ``vit`` patches or a ``cnn``,
``posbench.models.image_encoder``) that gives a ``side x side`` grid of tokens, then
``model.image_layers`` bidirectional Transformer blocks over it. ``model.image_tokens`` says what
the decoder reads: ``grid``, every image token; ``pooled``, their mean, one vector.

Where position enters (each through the encoding hooks, as everywhere):

* the image: ``model.image_encoding``, any 1D encoding (raster order over the grid, from 0) or 2D
  encoding (each token's (row, col)), in the image encoder's blocks; default ``sincos2d``;
* the caption: ``encoding``, in the decoder's causal self-attention (positions 0.. from SEP);
* cross-attention: ``model.cross_encoding``, NoPE by default; an encoding acting inside attention
  relates caption index i to image token j in raster order (rarely meaningful).

The no-PE twin switches off all three. Ablating one side is a sweep (``encoding=none,rope
model.image_encoding=none,sincos2d``). With ``image_tokens=pooled``, the decoder reads one vector
and so no image position at all, but what the encoder's attention put into the mean: with
``image_encoding=none`` and the ``vit`` stem the captioner is then a function of the *set* of
patches (attention and the mean are permutation-equivariant and -invariant). The ``cnn`` stem is
never position-free (see ``posbench.models.image_encoder``).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from posbench.encodings import PositionalEncoding
from posbench.encodings.base import grid_coordinates
from posbench.models.base import MODELS
from posbench.models.image_encoder import ImageStem, Stemmed, build_stem
from posbench.models.seq2seq import EncoderDecoder, encoding_section
from posbench.models.vit import check_image_task, check_tiled
from posbench.schema import PositiveInt


@MODELS.register("captioner")
class Captioner(Stemmed, EncoderDecoder):
    description = "image encoder (ViT or CNN) + causal text decoder with cross-attention; a PE on each side"
    inputs = "captioned images"
    labelled = ("image_encoding",)
    encoding_options = ("image_encoding", "cross_encoding")

    def __init__(
        self,
        vocab_size: int,
        encoding: dict,
        image_encoding: str | dict = "sincos2d",
        cross_encoding: str | dict = "none",
        image_encoder: ImageStem = "vit",
        patch_size: PositiveInt = 4,
        image_layers: PositiveInt = 2,
        image_tokens: Literal["grid", "pooled"] = "grid",
        cnn_width: PositiveInt = 32,
        *,
        channels: int,
        image_size: int,
        **options,
    ):
        """``image_encoding``: the image side's encoding (a name, or a section with its options);
        ``cross_encoding``: cross-attention's; ``image_encoder``: ``vit`` or ``cnn``;
        ``patch_size``: pixels per image token side (a power of 2 for ``cnn``); ``image_layers``:
        Transformer blocks over the image tokens; ``image_tokens``: ``grid`` or ``pooled``;
        ``cnn_width``: channels of the CNN's first stage. ``channels`` and ``image_size`` come from
        the task."""
        check_tiled(image_size, patch_size)
        stacks = {
            "image_encoding": image_encoding, "cross_encoding": cross_encoding, "image_encoder": image_encoder,
            "patch_size": int(patch_size), "image_layers": int(image_layers), "image_tokens": image_tokens,
            "cnn_width": int(cnn_width), "channels": channels, "image_size": image_size,
        }
        super().__init__(vocab_size, encoding, stacks=stacks, **options)

    def build_stacks(
        self, encoding: dict, image_encoding, cross_encoding, image_encoder: str, patch_size: int, image_layers: int,
        image_tokens: str, cnn_width: int, channels: int, image_size: int,
    ) -> None:
        self.patch_size, self.pooled = patch_size, image_tokens == "pooled"
        image_section = encoding_section(image_encoding, {"name": "none"})
        cross_section = encoding_section(cross_encoding, {"name": "none"})
        self.stem = build_stem(image_encoder, channels, self.sizes["d_model"], patch_size, cnn_width)
        self.image = self.with_role(
            "image encoder", "model.image_encoding",
            lambda: self.stack(image_section, False, None, vectors=True, grid=image_size // patch_size, layers=image_layers),
        )
        self.net = self.with_role(
            "text decoder", "encoding / model.cross_encoding",
            lambda: self.stack(encoding, True, self.vocab_size, cross_encoding=cross_section),
        )
        self.check_cross_encoding(cross_section)

    @classmethod
    def without_pe(cls, section: dict) -> dict:
        """No encoding on the image side or in cross-attention (the text side's is ``encoding``)."""
        return {**section, "image_encoding": "none", "cross_encoding": "none"}

    @property
    def encoding(self) -> PositionalEncoding:
        """The configured ``encoding``: the text decoder's."""
        return self.net.encoding

    def encode(self, src: Tensor) -> Tensor:
        """Images ``[B, C, S, S]`` -> the memory: ``[B, (S / patch)^2, d_model]``, or ``[B, 1, d_model]`` pooled."""
        out = self.image(self.image_tokens(src), coords=grid_coordinates(src.shape[-1] // self.patch_size, 0, src.device))
        return out.mean(dim=1, keepdim=True) if self.pooled else out

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        """What cross-attention's encoding must represent: caption and image token indices."""
        return max((src_len // self.patch_size) ** 2, tgt_len)

    def check_task(self, task) -> None:
        """Image sizes tiled by the tokens and representable by the image encoding; the caption
        by the text encoding; both by cross-attention's."""
        check_image_task(task, self.patch_size, self.image.encoding)
        longest = task.longest()
        captions = task.target_len(longest)
        self.net.encoding.check_fits(captions, shorten="the task's captions")
        self.net.cross_encoding.check_fits(self.positions_needed(longest, captions), shorten="the task's captions")

    @classmethod
    def stacks_of(cls, section: dict, src_len: int, tgt_len: int) -> list[tuple[int, int]]:
        """The image encoder over the grid of an image of side ``src_len``; the decoder over SEP
        and the caption."""
        grid = (src_len // section["patch_size"]) ** 2
        return [(grid, section["image_layers"]), (tgt_len + 1, section["layers"])]
