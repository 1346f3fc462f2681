"""The Transformer stack shared by the model families: tokens in, per-position logits (or, for an
encoder-decoder's encoder, hidden states) out.

Position enters only through the encoding's hooks: ``positions`` once per forward, ``embed`` on
the input, ``rotate``/``bias``/``score``/``value`` inside every attention layer, ``ffn`` inside every
feed-forward, ``between_blocks`` after each block. A stack built with ``cross_encoding`` has
cross-attention in every block and must be given the encoder's output as ``memory``. A stack built
with ``n_tokens=None`` reads vectors instead of token ids (the ViT's patch embeddings).

The hooks receive the positions the encoding reads (``PositionalEncoding.axes``): sequence indices,
or for a 2D (3D) encoding the ``coords`` of an image grid (a multimodal sequence) that the model
passes in, or for an encoding that ``reads_time`` the float ``times`` of a task's streams.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings import PositionalEncoding
from posbench.models.block import Block, Memory


class Transformer(nn.Module):
    def __init__(
        self,
        n_tokens: int | None,
        n_outputs: int | None,
        encoding: PositionalEncoding,
        d_model: int,
        layers: int,
        heads: int,
        ffn_mult: int,
        dropout: float,
        cross_encoding: PositionalEncoding | None = None,
    ):
        super().__init__()
        self.causal = encoding.shape.causal
        self.encoding = encoding
        self.cross_encoding = cross_encoding
        self.embed = nn.Identity() if n_tokens is None else nn.Embedding(n_tokens, d_model)
        self.drop = nn.Dropout(dropout)
        cross = cross_encoding is not None
        self.blocks = nn.ModuleList(Block(d_model, heads, ffn_mult, dropout, cross) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Identity() if n_outputs is None else nn.Linear(d_model, n_outputs)

    def forward(
        self,
        tokens: Tensor,
        pos: Tensor | None = None,
        memory: Tensor | None = None,
        coords: Tensor | None = None,
        times: Tensor | None = None,
    ) -> Tensor:
        """``tokens [B, L]`` (``[B, L, d_model]`` vectors without an embedding) and integer
        positions ``[B or 1, L]`` (default 0..L-1) -> ``[B, L, n_outputs]`` (``[B, L, d_model]``
        without a head). ``memory [B, S, d_model]``: the encoder output to cross-attend to (its
        positions are 0..S-1). ``coords [1, L, axes]``: what a 2D encoding reads (the (row, col) of
        each token on an image grid, ``grid_coordinates``) or M-RoPE's (t, h, w)
        (``multimodal_coordinates``); without them every axis reads the index. ``times [1, L]``:
        each token's time on the shared timeline of the task's streams (``stream_times``), what an
        encoding that ``reads_time`` reads (without them, the index)."""
        index = self.default_positions(tokens, pos)
        pos = self.encoding.positions(self.read_positions(index, coords, times), None if tokens.is_floating_point() else tokens)
        context = None
        if self.cross_encoding is not None:
            context = Memory(memory, self.cross_encoding, index, self.default_positions(memory, None))
        x = self.drop(self.encoding.embed(self.embed(tokens), pos))
        for layer, block in enumerate(self.blocks):
            x = block(x, self.encoding, pos, self.causal, layer, context)
            x = self.encoding.between_blocks(x, pos, layer)
        return self.head(self.norm(x))

    def read_positions(self, index: Tensor, coords: Tensor | None, times: Tensor | None) -> Tensor:
        """The positions this stack's encoding reads (see ``forward``)."""
        axes = self.encoding.axes
        if axes > 1:
            return coords if coords is not None else index[..., None].expand(*index.shape, axes)
        if self.encoding.reads_time and times is not None:
            return times
        return index

    @staticmethod
    def default_positions(sequence: Tensor, pos: Tensor | None) -> Tensor:
        return torch.arange(sequence.shape[1], device=sequence.device)[None] if pos is None else pos
