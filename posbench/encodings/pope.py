"""Polar coordinate position embedding, PoPE (Gopalakrishnan, Csordás, Schmidhuber and Mozer 2025,
"Decoupling the 'What' and 'Where' With Polar Coordinate Positional Embeddings", arXiv:2509.10534,
§3; equation numbers of the arXiv version not checked here, the formula is written out below).

RoPE rotates each pair of features by the position, so a query/key pair's own angle (content)
and the rotation (position) add up in one phase: "what" and "where" are entangled. PoPE makes each
query/key *feature* c a complex number whose magnitude is content and whose phase is position:

    q~_t,c = mu_q,c(t) e^(i t theta_c)              mu = softplus(feature c of the projected query/key)
    k~_s,c = mu_k,c(s) e^(i (s theta_c + delta_c))  delta_c: a learned phase bias per head and frequency,
                                                    clamped to [-2 pi, 0]
    a_ts   = Re[ sum_c conj(q~_t,c) k~_s,c ] = sum_c mu_q,c mu_k,c cos((s - t) theta_c + delta_c)

with one frequency per feature, ``theta_c = base^(-c / d)`` for c = 0 .. d-1 (d frequencies for a
d-dimensional head, where RoPE has d/2). The logit depends on the positions only through ``s - t``:
PoPE is shift-invariant, and ``theta_c`` may multiply real-valued positions (``fractional``).

Implementation through the ``rotate`` hook (the reference package ``pope-pytorch``, module
``PoPE_pytorch``, ``apply_pope_to_qk``, does the same): the real and imaginary parts become real
features, so queries and keys of d features become codes of 2d features,

    q' = [mu_q cos(t theta) | mu_q sin(t theta)]      k' = [mu_k cos(s theta + delta) | mu_k sin(s theta + delta)]

and ``q' . k' = a_ts``. ``replaces_queries_keys = True``: no other rotation can act on these codes
(``encoding=combo`` refuses PoPE together with another rotating part; parts that add logit terms,
e.g. ``[pope, alibi]``, combine). posbench lays the parts out ``[cos | sin]``; the reference
interleaves them ``(d two)``. A fixed permutation of both q' and k' leaves every logit unchanged.

Scale: the reference attention (``PoPE_pytorch.attention.flash_attn_with_pope``) uses the softmax
scale ``q.shape[-1] ** -0.5`` taken from the queries *before* PoPE, 1/sqrt(d), and passes it to SDPA
for the 2d-dimensional codes. posbench's attention scales by 1/sqrt(q'.shape[-1]) = 1/sqrt(2d); so
``rotate`` multiplies q' by sqrt(2d / d) = sqrt(2) and the logits are ``a_ts / sqrt(d)``, the
reference's (checked in tests/test_enc_polar_lie.py). With ``rotary_fraction < 1`` the width is
d + d_rot and the factor sqrt((d + d_rot) / d).

Options:

* ``base``: ``theta_c = base^(-c / d_rot)`` (the reference's ``theta``, default 10000).
* ``bias_init``: ``zeros`` (the reference's default) or ``uniform``, delta ~ U(-2 pi, 0) (its
  ``bias_uniform_init=True``, which in pope-pytorch 0.2.1 raises at construction: an in-place
  ``uniform_`` on a parameter outside ``no_grad``). ``learned_bias: false`` fixes delta = 0 (the paper's bias is optional).
  The clamp to [-2 pi, 0] is the reference's, with one difference in its gradient: ``torch.clamp``
  passes none at a bound, so the reference's delta, started at its default 0, never moves;
  posbench's clamp (``InwardClamp``) lets a gradient through at a bound when the step it implies
  points back into the interval (the forward values are the same; checked with pope-pytorch 0.2.1,
  whose zero-initialised bias gets a zero gradient).
* ``rotary_fraction`` (as the reference's partial rotation, ``rotate_dim < dim``): PoPE acts on the
  first ``d_rot = round(rotary_fraction * d)`` features of each head (d_rot frequencies
  ``base^(-c / d_rot)``); the other d - d_rot features pass through as they are (no softplus) and
  add the plain content term ``q_rest . k_rest`` to the logit.

"PE off" (``without_position``): PoPE with every query and key at the same position,
``sum_c mu_q,c mu_k,c cos(delta_c) / sqrt(d)`` (plus the unrotated tail). Not NoPE: in PoPE the
magnitudes are the content, ``softplus`` of the projected features, and the temperature is 1/sqrt(d);
NoPE would score the raw, signed ``q . k`` instead, a different content function the trained model
never used (as for TUPE, posbench/encodings/tupe.py, switching position off keeps what is
position-free). The phase bias delta stays: every pair then sits at offset 0, as RoPE's PE off
(NoPE) is RoPE at offset 0.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, Range


class InwardClamp(torch.autograd.Function):
    """``x.clamp(low, high)`` whose gradient also passes at (or beyond) a bound when a descent step
    moves ``x`` back inside: ``torch.clamp``'s gradient is zero there, so delta initialised at the
    bound 0 (``bias_init: zeros``) would never move."""

    @staticmethod
    def forward(ctx, x: Tensor, low: float, high: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        outward = ((x >= high) & (grad < 0)) | ((x <= low) & (grad > 0))  # a step x - lr * grad leaving [low, high]
        return grad.masked_fill(outward, 0.0), None, None


def pope_frequencies(dim: int, base: float) -> Tensor:
    """``base^(-c / dim)`` for c = 0 .. dim-1: one frequency per feature (float32)."""
    return base ** (-torch.arange(dim, dtype=torch.float32) / dim)


class PolarCodes(PositionalEncoding):
    """What PoPE and its position-free version share: the codes (softplus magnitudes at given
    phases), the phase bias and the scale. Each subclass's ``rotate`` chooses the phases."""

    family = "rotary"
    shift_invariant = True
    fractional = True
    replaces_queries_keys = True

    def __init__(self, shape: AttentionShape, rotated: int):
        super().__init__(shape)
        #: features of each head that PoPE acts on (the rest pass through)
        self.rotated = rotated
        #: sqrt(code width / head_dim): what q' is multiplied by so that attention's 1/sqrt(q'.shape[-1])
        #: becomes the reference's 1/sqrt(head_dim)
        self.rescale = math.sqrt((shape.head_dim + rotated) / shape.head_dim)

    def delta(self) -> Tensor | None:
        """The keys' phase bias ``[heads, d_rot]`` clamped to [-2 pi, 0], or None (delta = 0)."""
        return None

    def codes(self, x: Tensor, angles: Tensor, scale: float = 1.0) -> Tensor:
        """``[softplus(x_rot) cos(angles) | softplus(x_rot) sin(angles) | x_rest]`` (times ``scale``) in
        x's dtype; ``x [B, heads, L, d]``, ``angles`` broadcastable to ``[B, heads, L, d_rot]``."""
        rotated, rest = x[..., : self.rotated].float(), x[..., self.rotated :].float()
        magnitude = F.softplus(rotated)
        out = torch.cat((magnitude * angles.cos(), magnitude * angles.sin(), rest), dim=-1)
        return (out * scale if scale != 1.0 else out).to(x.dtype)


@ENCODINGS.register("pope")
class PoPE(PolarCodes):
    description = "polar q/k: softplus magnitude = content, phase = position (Gopalakrishnan et al. 2025, PoPE)"

    def __init__(
        self,
        shape: AttentionShape,
        base: FrequencyBase = 10000.0,
        bias_init: Literal["zeros", "uniform"] = "zeros",
        learned_bias: bool = True,
        rotary_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0,
    ):
        rotated = round(rotary_fraction * shape.head_dim)
        if rotated == 0:
            raise ConfigError(
                f"encoding=pope: rotary_fraction={rotary_fraction} acts on round({rotary_fraction} * "
                f"{shape.head_dim}) = 0 features of each head; it must act on at least one"
            )
        super().__init__(shape, rotated)
        if not learned_bias:
            self.refuse_unread("bias_init", bias_init, "learned_bias=true")
        self.base = base
        self.register_buffer("inv_freq", pope_frequencies(rotated, base), persistent=False)
        self.register_parameter("phase_bias", None)
        if learned_bias:
            self.phase_bias = nn.Parameter(torch.zeros(shape.heads, rotated))
            if bias_init == "uniform":
                with torch.no_grad():
                    self.phase_bias.uniform_(-2 * math.pi, 0.0)

    def delta(self) -> Tensor | None:
        return None if self.phase_bias is None else InwardClamp.apply(self.phase_bias, -2 * math.pi, 0.0)

    def angles(self, pos: Tensor) -> Tensor:
        """``p * theta_c``: ``[B or 1, 1, L, d_rot]`` (float32)."""
        return pos.to(torch.float32)[:, None, :, None] * self.inv_freq

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        q_angles = self.angles(q_pos)
        k_angles = q_angles if k_pos is q_pos else self.angles(k_pos)
        delta = self.delta()
        if delta is not None:
            k_angles = k_angles + delta[:, None, :]
        return self.codes(q, q_angles, self.rescale), self.codes(k, k_angles)

    def without_position(self) -> PositionalEncoding:
        return PoPEWithoutPosition(self)


class PoPEWithoutPosition(PolarCodes):
    """PoPE with its position switched off (see the module docstring): every query and key at one
    position, ``sum_c mu_q,c mu_k,c cos(delta_c) / sqrt(d)``. It reads the trained encoding's phase
    bias at every call (no copy). Not a registered encoding."""

    name = "pope (position off)"
    description = "PoPE's content term only: softplus magnitudes, phase bias, no position (Gopalakrishnan et al. 2025)"

    def __init__(self, trained: PoPE):
        super().__init__(trained.shape, trained.rotated)
        self._trained = (trained,)  # a tuple, so that the trained module is not registered as a submodule

    def delta(self) -> Tensor | None:
        return self._trained[0].delta()

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        zero = q.new_zeros((), dtype=torch.float32)
        delta = self.delta()
        k_angles = zero if delta is None else delta[:, None, :]
        return self.codes(q, zero, self.rescale), self.codes(k, k_angles)
