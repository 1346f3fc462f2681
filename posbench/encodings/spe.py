"""Stochastic positional encoding, sineSPE with gating (Liutkus et al. 2021, "Relative Positional
Encoding for Transformers with Linear Complexity", §3: SPE, its sinusoidal variant, gating).

Relative attention ``A_ij = sum_d q_id k_jd P_d(i - j)`` (one stationary kernel per head and
feature d) is obtained *in expectation* from modified queries and keys of a new size R (the number
of realisations): ``Qbar_d``/``Kbar_d`` are random processes with cross-covariance
``E[Qbar_d(i) Kbar_d(j)] = P_d(i - j)``, and ``qhat_i = sum_d q_id Qbar_d(i)``,
``khat_j = sum_d k_jd Kbar_d(j)``. sineSPE takes K sinusoidal components per (head, d):

    P_d(tau)   = (1/K) sum_k lambda_kd^2 cos(2 pi f_kd tau + theta_kd)
    Qbar_d(i)  = c sum_k lambda_kd/sqrt(K) [cos(2 pi f_kd i + theta_kd) z_kd + sin(2 pi f_kd i + theta_kd) z'_kd]
    Kbar_d(j)  = c sum_k lambda_kd/sqrt(K) [cos(2 pi f_kd j)            z_kd + sin(2 pi f_kd j)            z'_kd]

with learned frequencies ``f = sigmoid(.)/2`` in (0, 1/2) cycles per position, phases theta and
gains ``lambda = softplus(.)``, and z, z' i.i.d. N(0, 1) row vectors of R realisations, shared by
all positions (cos a cos b + sin a sin b = cos(a - b) makes the expectation stationary).
Gating mixes in a position-free part with a learned ``gamma_d = sigmoid(.)`` per (head, d) and one
more noise vector ``n_d`` shared by queries and keys:
``Qbar_d <- sqrt(1 - gamma_d) Qbar_d + c sqrt(gamma_d) n_d`` (same for Kbar_d), so that

    E[qhat_i . khat_j] / sqrt(R) = sum_d q_id k_jd [(1 - gamma_d) P_d(i - j) + gamma_d] / sqrt(d_head)

with ``c = (R d_head)^(-1/4)``: the scale posbench's attention applies, ``1/sqrt(R)`` for queries
and keys of size R, then gives the usual ``1/sqrt(d_head)`` temperature. gamma = 1 (gate closed on
position) leaves ``q^T (N N^T / R) k``, plain content attention in expectation; gamma = 0 is pure SPE.

posbench's choices (documented):

* The paper pairs SPE with linear attention; here the SPE queries/keys go through ordinary softmax
  attention (fused SDPA, via the ``rotate`` hook, with R-dimensional queries/keys and values of size
  d_head). Only the logits' *expectation* is relative.
* Noise: in training mode every ``rotate`` call (every layer, every forward) draws fresh z, z', n
  from torch's global RNG, as the reference code does (deterministic under ``torch.manual_seed``), shared by
  the batch; in eval mode a fixed draw made at construction (a persistent buffer, saved with the
  model) is used, so evaluation is deterministic and reproducible from a checkpoint.
* Combinations: the codes replace the queries and keys (size R instead of d_head), so
  ``encoding=combo`` refuses SPE together with any other part that uses ``rotate`` (RoPE, xPos,
  TUPE's query scaling), in either order. Parts that add logit terms combine: a ``score`` part
  (Shaw, Transformer-XL, CoPE) receives the projected d_head queries and keys, not the codes.
* One set of sineSPE and gate parameters serves every layer (the paper's "shared" variant): the
  ``rotate`` hook does not receive the layer index, so per-layer SPE (the default of the authors'
  Long-Range Arena configurations) cannot be expressed in the contract.
* Initialisation: frequency logits ~ N(-4, 1) (low frequencies, long range, as in the reference
  code), phases ~ N(0, 1), gains lambda = 1, gate logits 0 (gamma = 1/2). Defaults R = 64 and
  K = 10 are the paper's sineSPE settings for the Long-Range Arena.

For a fixed draw of the noise the logits are not exactly a function of ``i - j`` (shifting every
position rotates each (z_kd, z'_kd) pair, which leaves the finite-R sample covariance unchanged only
in expectation), so SPE is declared not shift-invariant; it is relative in expectation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveInt


@ENCODINGS.register("spe")
class SineSPE(PositionalEncoding):
    description = "stochastic sinusoidal q/k codes whose expected q.k is relative, gated (Liutkus et al. 2021)"
    family = "relative"
    shift_invariant = False
    fractional = True
    replaces_queries_keys = True

    def __init__(
        self, shape: AttentionShape, num_realizations: PositiveInt = 64, num_sines: PositiveInt = 10, gated: bool = True
    ):
        super().__init__(shape)
        self.num_realizations = num_realizations
        self.num_sines = num_sines
        self.gated = bool(gated)
        heads, dim, sines = shape.heads, shape.head_dim, self.num_sines
        self.freq_logits = nn.Parameter(torch.randn(heads, dim, sines) - 4.0)
        self.phases = nn.Parameter(torch.randn(heads, dim, sines))
        self.gain_logits = nn.Parameter(torch.full((heads, dim, sines), math.log(math.e - 1.0)))  # softplus = 1
        if self.gated:
            self.gate_logits = nn.Parameter(torch.zeros(heads, dim))
        self.register_buffer("eval_noise", self.draw_noise(torch.device("cpu")))

    def draw_noise(self, device) -> Tensor:
        """N(0, 1) of shape ``[heads, head_dim, 2K (+ 1 gate), R]``: z_k, z'_k (and n) per (head, d)."""
        features = 2 * self.num_sines + int(self.gated)
        return torch.randn(self.shape.heads, self.shape.head_dim, features, self.num_realizations, device=device)

    def code(self, pos: Tensor, noise: Tensor, queries: bool) -> Tensor:
        """``Qbar`` (queries) or ``Kbar`` (keys) from a noise draw: ``[B or 1, heads, L, head_dim, R]``."""
        freq = torch.sigmoid(self.freq_logits) / 2  # f in (0, 1/2) cycles per position, [heads, d, K]
        omega = 2 * math.pi * freq
        angle = pos.to(torch.float32)[:, None, :, None, None] * omega[:, None]  # [B or 1, heads, L, d, K]
        if queries:
            angle = angle + self.phases[:, None]
        weight = F.softplus(self.gain_logits) / math.sqrt(self.num_sines)  # [heads, d, K]
        if self.gated:
            gamma = torch.sigmoid(self.gate_logits)  # [heads, d]
            weight = weight * torch.sqrt(1 - gamma)[..., None]
        coeffs = torch.cat((angle.cos(), angle.sin()), dim=-1) * torch.cat((weight, weight), dim=-1)[:, None]
        if self.gated:
            position_free = torch.sqrt(gamma)[:, None, :, None].expand(*coeffs.shape[:-1], 1)
            coeffs = torch.cat((coeffs, position_free), dim=-1)
        return torch.einsum("bhlde,hder->bhldr", coeffs, noise)

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        noise = self.draw_noise(q.device) if self.training else self.eval_noise.float()
        noise = noise * (self.num_realizations * self.shape.head_dim) ** -0.25  # c
        q_hat = apply_code(q, self.code(q_pos, noise, queries=True))
        k_hat = apply_code(k, self.code(k_pos, noise, queries=False))
        return q_hat, k_hat


def apply_code(x: Tensor, code: Tensor) -> Tensor:
    """``xhat_i = sum_d x_id code_d(i)``: ``x [B, heads, L, d]`` and ``code [B or 1, heads, L, d, R]``
    give ``[B, heads, L, R]``; a code shared by the batch is contracted once per (head, position)."""
    if code.shape[0] == 1:
        return torch.einsum("bhld,hldr->bhlr", x.float(), code[0]).to(x.dtype)
    return torch.einsum("bhld,bhldr->bhlr", x.float(), code).to(x.dtype)
