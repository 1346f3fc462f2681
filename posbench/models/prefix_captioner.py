"""Prefix captioner: a decoder-only multimodal model. The image's tokens (``model.image_encoder``'s
stem, ``posbench.models.image_encoder``) are a prefix of one causal sequence, followed by SEP and
the caption, as in Qwen2-VL (Wang et al. 2024) and the other decoder-only vision-language models;
the loss is on the caption, which is written greedily from SEP to ``eos`` at evaluation.

Where position enters: only ``encoding``, over the whole sequence (one stack, no cross-attention):

* a 1D encoding reads the flattened sequence's index: the patches in raster order 0 .. N-1, then
  SEP at N and the caption after it;
* ``mrope`` (axes 3) reads Qwen2-VL's (t, h, w) (``posbench.encodings.base.multimodal_coordinates``):
  the patches share t = 0 and carry their (row, col), the text starts at the grid's side and
  advances all three;
* 2D encodings have no position to give the text and are refused (``model=captioner`` takes them on
  its image side).

Attention is causal over the whole sequence, the image prefix included (as Qwen2-VL's): a patch
attends to the patches before it in raster order, every caption token to all of them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import grid_side, multimodal_coordinates
from posbench.models.base import MODELS, SequenceModel
from posbench.models.image_encoder import ImageStem, Stemmed, build_stem
from posbench.models.vit import check_image_task, check_tiled
from posbench.schema import PositiveInt


@MODELS.register("prefix_captioner")
class PrefixCaptioner(Stemmed, SequenceModel):
    description = "decoder-only captioner: image patches as a prefix of the caption's causal sequence (Qwen2-VL-style)"
    inputs = "captioned images"
    causal = True

    def __init__(
        self,
        vocab_size: int,
        encoding: dict,
        image_encoder: ImageStem = "vit",
        patch_size: PositiveInt = 4,
        cnn_width: PositiveInt = 32,
        *,
        channels: int,
        image_size: int,
        **options,
    ):
        """``image_encoder``: ``vit`` (patches) or ``cnn``; ``patch_size``: pixels per image token
        side; ``cnn_width``: channels of the CNN's first stage. ``channels`` and ``image_size``
        come from the task."""
        check_tiled(image_size, patch_size)
        stacks = {
            "image_encoder": image_encoder, "patch_size": int(patch_size), "cnn_width": int(cnn_width),
            "channels": channels,
        }
        super().__init__(vocab_size, encoding, stacks=stacks, **options)

    def build_stacks(self, encoding: dict, image_encoder: str, patch_size: int, cnn_width: int, channels: int) -> None:
        d_model = self.sizes["d_model"]
        self.patch_size = patch_size
        self.stem = build_stem(image_encoder, channels, d_model, patch_size, cnn_width)
        self.words = nn.Embedding(self.vocab_size + 2, d_model)  # the symbols, SEP and BLANK
        self.net = self.stack(encoding, True, self.vocab_size, vectors=True)

    def run(self, image: Tensor, text: Tensor) -> Tensor:
        """Logits at the text positions for image tokens ``[B, N, d]`` followed by ``text [B, T]``."""
        x = torch.cat((image, self.words(text)), dim=1)
        coords = multimodal_coordinates(grid_side(image.shape[1], 0), text.shape[1], text.device)
        return self.net(x, coords=coords)[:, image.shape[1] :]

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.run(self.image_tokens(src), self.teacher_inputs(tgt))

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        image = self.image_tokens(src)
        start = torch.full((src.shape[0], 1), self.sep, dtype=torch.long, device=src.device)
        return self.greedy(lambda text: self.run(image, text)[:, -1], start, tgt_len)

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        return (src_len // self.patch_size) ** 2 + tgt_len

    def check_task(self, task) -> None:
        """Image sizes tiled by the tokens; the encoding must represent the longest sequence."""
        check_image_task(task, self.patch_size, self.encoding, others=task.target_len(task.longest()))

    @classmethod
    def stacks_of(cls, section: dict, src_len: int, tgt_len: int) -> list[tuple[int, int]]:
        """One stack over the image's tokens, SEP and the caption but its last word."""
        return [((src_len // section["patch_size"]) ** 2 + tgt_len, section["layers"])]
