"""Lie rotational positional encodings, LieRE (Ostmeier, Axelrod, Moseley, Chaudhari and Langlotz
2024, "LieRE: Lie Rotational Positional Encodings", arXiv:2406.10322, ICML 2025; reference code
StanfordMIMI/LieRE, ``models/rope_vit.py``, ``LierePositionEncoder``).

RoPE's rotation is the exponential of a fixed block-diagonal skew-symmetric matrix; LieRE learns
the skew-symmetric matrices. For a position ``p`` with coordinates ``p_1 .. p_n`` (n = ``axes``):

    R(p) = expm( sum_a p_a A_a ),     A_a = T_a - T_a^T,  T_a = strictly upper triangle of a learned U_a

(skew-symmetric, so R(p) is a rotation: orthogonal, determinant 1, norms preserved), and the
queries and keys are rotated, ``q' = R(p_q) q``, ``k' = R(p_k) k``; the logit is
``q^T R(p_q)^T R(p_k) k``. In 1D (this encoding, ``axes = 1``) the single generator commutes with
itself, so ``R(p)^T R(s) = expm((s - p) A)``: the logits depend on the offset alone (shift-invariant),
and ``p`` may be any real number (``fractional``). With ``A`` block-diagonal with 2x2 blocks
``[[0, -theta_i], [theta_i, 0]]`` LieRE *is* RoPE (RoFormer eq. 34's adjacent pairs): ``init: rope``
starts there exactly (tests/test_enc_polar_lie.py checks it against posbench's RoPE).

What posbench follows, from the reference code (the paper's runs):

* Generators per head and per layer (``per_head``, ``per_layer``, default true): the reference's
  ``rotary_embedding_per_head`` / ``rotary_embedding_per_layer``, both true in its CIFAR-100 run (the
  README's reproduction, ``lightning_cifar100.sh``, ``lightning_conf/cifar100.yaml``) and its UCF101
  configuration; its ImageNet configuration (``imagenet_224.yaml``) and the defaults of its
  ``ModelArgs`` share one set of generators across heads and layers (both false here).
* ``block_size`` (the reference's ``generator_dim``): the head's features are cut into blocks of
  this size, each rotated by its own generator (block-diagonal A). ``null`` (default) is one dense
  ``head_dim x head_dim`` generator, the reference's default (``generator_dim`` 64 = its head size);
  ``block_size: 2`` is a learned RoPE with one frequency per pair (the reference's RoPE-Mixed setting).
  It must divide the head dimension.
* Parameterisation as the reference: a full ``b x b`` matrix U per block of which only the strict
  upper triangle is used, ``A = triu(U, 1) - triu(U, 1)^T``.
* Initialisation ``uniform``: every entry of U drawn from U(0, init_range), as the reference draws
  U(0, 2 pi). The reference's positions are not token indices, though: it places the patches of the
  training grid at ``linspace(0, 1, side)`` on each axis (``PositionEncoderBase``), so its 2 pi is
  per *image width*. posbench's positions are indices, one unit per token, and U(0, 2 pi) per token
  would turn a dense 16 x 16 generator by up to ~37 radians per step (frequencies above pi alias).
  The default ``init_range: null`` is ``pi / block_size``: the largest initial frequency (the
  largest |eigenvalue| of A) is then 1 to 1.6 radians per position for blocks of 2 to 64 features,
  near RoPE's highest, 1 (the mean part of A, r/2 above the diagonal and -r/2 below, has largest
  |eigenvalue| (r/2) cot(pi / 2b) ~ r b / pi). ``init: rope`` starts at
  RoPE's frequencies ``theta_i = base^(-2i / head_dim)`` on adjacent pairs and zero elsewhere.
* ``matrix_exp`` once per layer and forward, on the distinct positions of the queries and keys (not
  once per token); with ``per_layer: false`` the rotations of layer 0 are reused by the later layers
  of the same forward. One deviation: the reference exponentiates in float32 ("we used torch.float32
  in the paper"); posbench builds ``p A`` and exponentiates it in float64 (float32 on MPS, which has
  no float64) and rotates in float32. Scaling and squaring loses about ``eps * |p A|``: in float32,
  positions in the hundreds would make the logits visibly depend on more than the offset
  (``|p A|`` of 100 already gives errors ~1e-4); the generators are tiny, so the cost is small.

In ``encoding=combo`` with another rotating part (``[liere, rope]``, ``[liere, xpos]``) the logits
are *not* a function of the offset alone: LieRE's learned rotation does not commute with RoPE's
(``commuting_rotation = False``), so such a combination declares itself not shift-invariant.

"PE off" (``without_position``) is NoPE: R(p) is position alone (R(0) = I), so every pair at the same
position gives plain ``q . k``.

The code takes ``axes`` coordinates per position (``points``, the generators' ``axes`` dimension):
``liere2d`` (posbench/encodings/liere2d.py) is the 2D LieRE of a ViT's patches, not shift-invariant
(two generators need not commute).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, PositiveFloat, Range


def skew_symmetric(raw: Tensor) -> Tensor:
    """``triu(raw, 1) - triu(raw, 1)^T`` over the last two dimensions."""
    upper = torch.triu(raw, diagonal=1)
    return upper - upper.transpose(-2, -1)


@ENCODINGS.register("liere")
class LieRE(PositionalEncoding):
    description = "learned rotations expm(p A), A skew-symmetric per head/layer (Ostmeier et al. 2024, LieRE)"
    family = "rotary"
    shift_invariant = True
    commuting_rotation = False
    fractional = True
    axes = 1

    def __init__(
        self,
        shape: AttentionShape,
        block_size: Annotated[int, Range(ge=2)] | None = None,
        per_head: bool = True,
        per_layer: bool = True,
        init: Literal["uniform", "rope"] = "uniform",
        init_range: PositiveFloat | None = None,
        base: FrequencyBase = 10000.0,
    ):
        super().__init__(shape)
        if init == "rope":
            self.refuse_unread("init_range", init_range, "init=uniform")
        else:
            self.refuse_unread("base", base, "init=rope")
        head_dim = shape.head_dim
        size = head_dim if block_size is None else block_size
        if head_dim < 2:
            raise ConfigError(
                f"encoding={self.name} rotates pairs of features at least; the head dimension "
                f"(model.d_model / model.heads) is {head_dim}"
            )
        if head_dim % size:
            raise ConfigError(
                f"encoding={self.name}: block_size={size} must divide the head dimension "
                f"(model.d_model / model.heads = {head_dim})"
            )
        if init == "rope" and size % 2:
            raise ConfigError(
                f"encoding={self.name}: init=rope needs blocks of an even size (pairs of features), got {size}"
            )
        self.block_size = size
        self.blocks = head_dim // size
        self.per_head = bool(per_head)
        self.per_layer = bool(per_layer)
        layers, heads = (shape.layers if self.per_layer else 1), (shape.heads if self.per_head else 1)
        shape_of_u = (layers, heads, self.axes, self.blocks, size, size)
        #: U: only its strict upper triangle is used (``skew_symmetric``)
        self.generator_params = nn.Parameter(torch.zeros(shape_of_u))
        with torch.no_grad():
            if init == "uniform":
                self.generator_params.uniform_(0.0, math.pi / size if init_range is None else init_range)
            else:
                self.generator_params.copy_(rope_generators(head_dim, size, base).expand(shape_of_u))
        self._cache: tuple | None = None

    # ---- the rotations ---------------------------------------------------------------------------
    def generators(self, layer: int) -> Tensor:
        """The skew-symmetric ``A`` of attention layer ``layer``: ``[heads or 1, axes, blocks, b, b]``."""
        return skew_symmetric(self.generator_params[layer if self.per_layer else 0])

    def points(self, pos: Tensor) -> Tensor:
        """The coordinates of each position, ``[..., axes]`` (1D: the index itself)."""
        return pos[..., None]

    def rotations(self, points: Tensor, layer: int) -> Tensor:
        """``R(p) = expm(sum_a p_a A_a)`` for ``points [N, axes]``: ``[N, heads or 1, blocks, b, b]``
        (float32; exponentiated in float64, see the module docstring)."""
        exact = torch.float32 if points.device.type == "mps" else torch.float64  # MPS has no float64
        generator = torch.einsum("na,hakij->nhkij", points.to(exact), self.generators(layer).to(exact))
        return torch.linalg.matrix_exp(generator).float()

    def distinct(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        """The rotations of the distinct positions among queries and keys, ``[U, heads or 1, blocks, b, b]``,
        and for each query / key position the index of its rotation (``[Bq, Lq]``, ``[Bk, Lk]``)."""
        q_points = self.points(q_pos).reshape(-1, self.axes)
        if k_pos is q_pos:
            unique, inverse = torch.unique(q_points, dim=0, return_inverse=True)
            q_index = k_index = inverse.view(q_pos.shape[:2])
        else:
            k_points = self.points(k_pos).reshape(-1, self.axes)
            unique, inverse = torch.unique(torch.cat((q_points, k_points)), dim=0, return_inverse=True)
            q_index = inverse[: len(q_points)].view(q_pos.shape[:2])
            k_index = inverse[len(q_points) :].view(k_pos.shape[:2])
        return self.rotations(unique, layer), q_index, k_index

    def cached_distinct(self, q_pos: Tensor, k_pos: Tensor, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        """``distinct``, reused across the layers of one forward when the generators are shared by
        layers (``per_layer: false``), for the same position tensors. A forward starts at layer 0, which
        always recomputes, so no forward reuses another's rotations (nor their autograd graph)."""
        if self.per_layer:
            return self.distinct(q_pos, k_pos, layer)
        key = (q_pos, k_pos, self.generator_params._version, torch.is_grad_enabled())
        cached = self._cache
        if layer > 0 and cached is not None and all(a is b for a, b in zip(cached[0][:2], key[:2])) and cached[0][2:] == key[2:]:
            return cached[1]
        result = self.distinct(q_pos, k_pos, layer)
        # the last layer drops it: no forward's rotations (nor their autograd graph) outlive it
        self._cache = None if layer == self.shape.layers - 1 else (key, result)
        return result

    @staticmethod
    def rotate_by(x: Tensor, rotations: Tensor, index: Tensor) -> Tensor:
        """``R(p) x`` for ``x [B, heads, L, d]``, ``rotations [U, heads or 1, blocks, b, b]`` and the
        index ``[B or 1, L]`` of each token's rotation; computed in float32, returned in x's dtype."""
        batch, heads, length, dim = x.shape
        per_token = rotations[index].transpose(1, 2)  # [B or 1, heads or 1, L, blocks, b, b]
        blocks, size = per_token.shape[-3], per_token.shape[-1]
        split = x.float().reshape(batch, heads, length, blocks, size, 1)
        return (per_token @ split).reshape(batch, heads, length, dim).to(x.dtype)

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        rotations, q_index, k_index = self.cached_distinct(q_pos, k_pos, layer)
        return self.rotate_by(q, rotations, q_index), self.rotate_by(k, rotations, k_index)


def rope_generators(head_dim: int, size: int, base: float) -> Tensor:
    """U for ``init: rope``: ``[blocks, size, size]`` whose skew-symmetric part has the 2x2 blocks
    ``[[0, -theta_i], [theta_i, 0]]`` on features (2i, 2i+1), ``theta_i = base^(-2i / head_dim)``
    (RoFormer eq. 15 and 34, adjacent pairs), zero elsewhere."""
    raw = torch.zeros(head_dim // size, size, size)
    for i in range(head_dim // 2):
        block, first = divmod(2 * i, size)
        raw[block, first, first + 1] = -(base ** (-2 * i / head_dim))
    return raw
