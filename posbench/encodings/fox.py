"""FoX, the Forgetting Transformer (Lin et al. 2025, "Forgetting Transformer: Softmax Attention with a
Forget Gate", ICLR 2025, "Forgetting Attention"): every token t computes, in every head h, a
scalar forget gate from its own input, and a key loses the log of every gate between it and the query:

    f_t,h = sigmoid(w_h . x_t + b_h)                                   (the forget gate)
    logits[h, i, j] += D[h, i, j] = sum_{l = j+1}^{i} log f_l,h        (j <= i; D[h, i, i] = 0)

that is ``softmax(Q K^T / sqrt(d) + D) V`` with ``F = exp(D)`` the product of the gates between key
and query. ``x_t`` is the self-attention layer's input (after the block's layer norm), so the bias is
data-dependent, and it is the only position signal: FoX "does not require any positional
embeddings" (the paper's abstract; the reference code's default is ``use_rope=False``). posbench computes ``D`` through the ``data_bias`` hook from cumulative sums
``c_i = sum_{l<=i} log f_l``, ``D[i, j] = c_i - c_j`` (as the authors' reference code,
zhixuan-lin/forgetting-transformer, and x-transformers' ``DataDependentAlibi`` do), so attention
stays on the fused SDPA path with ``D`` as its float mask.

Parameters: each layer has its own gate projection ``Linear(d_model, heads)`` (``w_h, b_h`` per head
and layer, as in the reference code's ``ForgettingAttentionLayer.fgate_proj``, ``fgate_type="full"``).
Initialisation: the weights keep PyTorch's default Linear initialisation (the rest of posbench's
attention does too; the reference code initialises every Linear N(0, 0.02)), and every gate bias
starts at ``bias_init``, default 0 as in the reference code (its full gate has no special bias
initialisation: ``fgate_bias_init`` is refused there for ``"full"``, and ``_init_weights`` zeroes
every bias). With ``b = 0`` a token forgets about half per step at first (``log f ~ -0.69``: a
strong recency prior that training relaxes); x-transformers starts at ``b = 5`` instead
(``log f ~ -0.0067``, almost no forgetting). The reference code's special bias initialisation (from
decay times ``T_min, T_max``) is for its data-independent and fixed gates only, not for this
data-dependent one; ``encoding.bias_init=5`` gives x-transformers' start. ``post_log_scale``
(default 1, the paper's) multiplies every ``log f`` (x-transformers' ``post_log_scale``; 1 leaves the paper's formula).

Bidirectional attention (x-transformers' extension, documented; the paper is causal only): a second
set of gates ``g_t,h`` (the projection has ``2 * heads`` outputs, the second half for them) decays
the keys to the right of the query, ``D[h, i, j] = sum_{l = i+1}^{j} log g_l,h`` for ``j >= i``, as
``DataDependentAlibi(causal=False)`` does (its index range exactly: the gates of the tokens after
the query up to and including the key; to the left, those after the key up to and including the
query). Under a causal mask posbench's bias is the paper's ``D`` and keys to the right are masked; the
entries above the diagonal are returned as 0 (x-transformers leaves ``c_i - c_j`` there; the mask hides
them either way).

Positions are not read at all: the bias follows the order of the tokens in the sequence, so it is
unchanged when every position shifts (``shift_invariant``) and ``randomized``/``combo`` parts that
move positions do not move it. "PE off" (``without_position``) is NoPE: every gate open (``f = 1``,
``D = 0``), the reference code's ``fgate_type="none"`` ("equivalent to forget gates with all ones").
Cross-attention has no sequence of its own to gate (``model.cross_encoding=fox`` is refused).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.schema import PositiveFloat


@ENCODINGS.register("fox")
class ForgettingTransformer(PositionalEncoding):
    description = "data-dependent forget gates: logits += sum of log f_l between key and query, no PE (Lin et al. 2025, FoX)"
    family = "bias"
    shift_invariant = True

    def __init__(self, shape: AttentionShape, bias_init: float = 0.0, post_log_scale: PositiveFloat = 1.0):
        super().__init__(shape)
        self.bias_init = float(bias_init)
        self.post_log_scale = float(post_log_scale)
        gates = shape.heads if shape.causal else 2 * shape.heads  # bidirectional: left gates, then right gates
        self.gates = nn.ModuleList(nn.Linear(shape.d_model, gates) for _ in range(shape.layers))
        with torch.no_grad():
            for gate in self.gates:
                gate.bias.fill_(self.bias_init)

    def pair_bytes(self) -> int:
        """The float32 bias per pair, batch-sized (it depends on each sequence), which SDPA keeps as
        its mask with the causal mask added: about two ``[B, heads, L, L]`` tensors."""
        return 8

    def log_forget(self, x: Tensor, layer: int) -> Tensor:
        """``post_log_scale * log f``, ``[B, gates, L]`` in float32 (``gates``: heads, or 2 * heads
        in bidirectional attention, the gates for keys to the right second)."""
        return F.logsigmoid(self.gates[layer](x).float()).transpose(1, 2) * self.post_log_scale

    def data_bias(self, x: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        heads = self.shape.heads
        cumulative = self.log_forget(x, layer).cumsum(dim=-1)  # c_i = sum_{l <= i} log f_l
        left = cumulative[:, :heads]
        bias = (left[..., :, None] - left[..., None, :]).tril()  # c_i - c_j = sum_{l=j+1}^{i} log f_l, j <= i
        if self.shape.causal:
            return bias
        right = cumulative[:, heads:]
        return bias + (right[..., None, :] - right[..., :, None]).triu()  # sum_{l=i+1}^{j} log g_l, j >= i
