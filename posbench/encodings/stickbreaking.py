"""Stick-breaking attention (Tan et al. 2025, "Scaling Stick-Breaking Attention: An Efficient
Implementation and In-depth Study", ICLR 2025): the softmax is replaced by a stick-breaking
process over the keys, from the nearest to the farthest. Each key j before query i breaks off the
fraction ``beta_ij`` of what is left of a stick of length 1:

    beta_ij = sigmoid(z_ij),        A_ij = beta_ij * prod_{j < k < i} (1 - beta_ik)        (j < i)

with ``z_ij`` the attention logits (``q_i . k_j / sqrt(d)`` plus any other encoding's terms). A key
is weighed only by how much the keys *between* it and the query left over: a recency prior with no
positional encoding at all, the paper's point. Index ranges, as in the authors' reference code
(shawntan/stickbreaking-attention, the first author's repository:
``sb_ref.stickbreaking`` with its tests' default mask ``triu(0)``, and the stick-breaking models of
IBM's dolomite-engine built on it): the stick is broken over the keys strictly before
the query (the diagonal ``j = i`` takes no ``beta``), and the product runs over the keys strictly
between key and query.

The leftover ``1 - sum_{j<i} A_ij = prod_{j<i} (1 - beta_ij)``: the reference kernels return it
beside the output and the authors' models add ``leftover * v_i`` to the output, i.e. give it to the
query's own token (dolomite-engine's ``sb_remainder``, true by default). posbench does the same by
putting it on the diagonal, ``A_ii = prod_{j<i} (1 - beta_ij)``, so that each row sums to 1 (option
``remainder: current``, default); ``remainder: none`` drops it (rows sum to less than 1 and the first
token attends to nothing). ``attend_current: true`` (the reference kernel's ``attend_current``)
breaks the stick over the query's own key as well (``j <= i``, the diagonal first); the leftover then
goes to it too under ``remainder: current``.

Causal attention only (``supports_bidirectional = False``): the process needs an order from the query
outwards. It acts through the ``normalize`` hook, in log space for stability: ``log beta =
logsigmoid(z)``, ``log(1 - beta) = logsigmoid(-z) = -softplus(z)``, and the sum over the keys
between comes from a reverse cumulative sum, so ``log A_ij = logsigmoid(z_ij) + sum_{j<k<i}
logsigmoid(-z_ik)``; no product of many small numbers is formed, and logits of +-50 give finite
weights. A masked key (logit -inf: the causal mask, or any encoding's -inf) has ``beta = 0``: weight
exactly 0, and it keeps the whole stick for the keys beyond it. The query's own key is the one aligned
with it at the end (``j = i + Lk - Lq``), as the causal mask aligns them.

Family ``relative``: position enters only through the order of the keys relative to the query (which
keys lie between), never through a position value, so the weights are shift-invariant. Other hooks
do nothing; combined with a bias (``encoding=combo encoding.parts=[stickbreaking,alibi]``) the
``beta`` are those of the biased logits. "PE off" (``without_position``) is NoPE, the softmax of the
same logits: the normalisation *is* this encoding's position signal, and the softmax it replaces
is the order-free normalisation of the same logits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding


@ENCODINGS.register("stickbreaking")
class StickBreaking(PositionalEncoding):
    description = "stick-breaking attention instead of softmax: a recency prior without PE (Tan et al. 2025)"
    family = "relative"
    shift_invariant = True
    supports_bidirectional = False

    def __init__(
        self,
        shape: AttentionShape,
        remainder: Literal["current", "none"] = "current",
        attend_current: bool = False,
    ):
        super().__init__(shape)
        self.remainder = remainder
        self.attend_current = bool(attend_current)

    def pair_bytes(self) -> int:
        """The explicit path's, plus the float32 log-space terms per pair that autograd keeps
        (log(1 - beta), its reverse cumulative sum, log beta, the weights): four more."""
        return super().pair_bytes() + 16

    def normalize(self, logits: Tensor, layer: int) -> Tensor:
        z = logits.float()
        q_len, k_len = z.shape[-2:]
        own = torch.arange(q_len, device=z.device)[:, None] + (k_len - q_len)  # the query's own key
        keys = torch.arange(k_len, device=z.device)[None, :]
        breaking = keys <= own if self.attend_current else keys < own  # the keys the stick is broken over
        log_keep = torch.where(breaking, F.logsigmoid(-z), 0.0)  # log(1 - beta); 0 (keeps all) elsewhere
        kept = log_keep.flip(-1).cumsum(-1).flip(-1)  # sum_{k >= j} log(1 - beta_k)
        between = torch.cat((kept[..., 1:], torch.zeros_like(kept[..., :1])), dim=-1)  # sum_{k > j}
        weights = torch.where(breaking, (F.logsigmoid(z) + between).exp(), 0.0)
        if self.remainder == "current":
            weights = weights + (keys == own) * kept[..., :1].exp()  # prod over every broken key of (1 - beta)
        return weights.to(logits.dtype)
