"""DAPE, data-adaptive positional encoding (Zheng et al. 2024, "DAPE: Data-Adaptive Positional
Encoding for Length Extrapolation", NeurIPS 2024): the bias of a relative bias encoding ``B``
(ALiBi, KERPLE, FIRE: the option ``base``) is adapted to the content of each query-key pair by a
small MLP across heads:

    logits = A + B + f(A, B),       A = Q K^T / sqrt(d),   f: R^(2H) -> R^H applied to every (i, j)

``f`` reads the ``2H`` numbers of one pair, the content logits of all ``H`` heads followed by the
bias of all heads, and returns one number per head: ``Linear(2H, hidden) -> LeakyReLU ->
Linear(hidden, H)``, ``hidden`` = 32, PyTorch's default Linear initialisation and LeakyReLU slope
(0.01). This is the authors' reference code (chuanyang-Zheng/DAPE: ``AliBi_C``, ``ParallelKerpleLog_C``,
``FIRE_C`` in ``megatron/model/positional_embeddings.py``, width ``mlp_width: 32`` in its configs;
the standalone ``DAPE.py``), where the module returns ``x + bias + mlp(cat(x, bias))`` from the
already ``1/sqrt(d)``-scaled scores ``x``. Each layer has its own MLP (the reference builds one per
attention layer); ``B`` is the base encoding's, shared across layers or not as that encoding is.

The causal mask: the reference applies the MLP to the unmasked scores and the mask afterwards
(``scale_mask_softmax``); posbench's attention adds the mask after this term too. ``f`` acts on each
(i, j) pair alone, across heads only, so a future key's logits never reach a visible pair: no causal
leak. For the same reason DAPE is shift-invariant exactly when its base is (``A`` holds no position).

Implementation: the ``score`` hook, which receives the projected (unrotated) queries and keys:
DAPE computes ``A`` itself, asks the base for ``B`` (its ``bias`` hook, at the positions this
encoding is given) and returns ``B + f(A, B)``; attention adds its own ``q . k / sqrt(d)``. Alone,
or with parts that do not rotate, that is the formula above. In ``encoding=combo`` with a rotary part,
attention's content logits are rotated while the MLP reads the unrotated ones (the ``score`` contract).
The base must act through ``bias`` alone (``alibi``, ``kerple``, ``fire``, also ``t5``,
``dynamic_bias``; a 2D bias on a ViT): an encoding without a ``bias`` hook, or with other hooks that
DAPE would silently drop (``tupe``'s rotation, a ``combo``), is refused in one line.

"PE off" (``without_position``) sets the bias input to 0 and keeps the MLP: ``f(A, 0)`` is
position-free (a function of each pair's content logits across heads), what the reference code's
``Nope_C`` (an MLP on the scores of a model without position encoding) computes; the base's bias
itself is gone, as NoPE.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posbench.encodings.base import ENCODINGS, HOOKS, AttentionShape, PositionalEncoding, overrides
from posbench.encodings.combo import part_section, refuse_inner_timeline
from posbench.errors import ConfigError
from posbench.schema import PositiveInt

#: Hooks a base would need besides ``bias``: DAPE hands on only the bias, so a base using any is refused.
OTHER_HOOKS = tuple(hook for hook in HOOKS if hook != "bias")


def adaptive_term(mlp: nn.Module, content: Tensor, bias: Tensor | None) -> Tensor:
    """``bias + mlp(cat(content, bias))`` over the heads of every (i, j) pair, ``[B, H, Lq, Lk]``;
    ``bias`` None stands for 0 (position off)."""
    zero = bias is None
    bias = torch.zeros_like(content) if zero else bias.to(content.dtype).expand_as(content)
    features = torch.cat((content, bias), dim=1).permute(0, 2, 3, 1)  # [B, Lq, Lk, 2H]
    adapted = mlp(features).permute(0, 3, 1, 2)
    return adapted if zero else bias + adapted


def content_logits(q: Tensor, k: Tensor) -> Tensor:
    return (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5


class AdaptiveContent(PositionalEncoding):
    """DAPE with its bias input at 0: ``f(A, 0)`` from the same MLPs (shared, not copied). DAPE with
    its position switched off. Not a registered encoding."""

    name = "dape (position off)"
    description = "DAPE's MLP over the content logits of every pair, bias input 0 (Zheng et al. 2024)"

    def __init__(self, shape: AttentionShape, mlps: nn.ModuleList):
        super().__init__(shape)
        self.mlps = mlps

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        return adaptive_term(self.mlps[layer], content_logits(q, k), None)


@ENCODINGS.register("dape")
class DAPE(PositionalEncoding):
    description = "base bias + MLP across heads of (content logits, bias) per pair (Zheng et al. 2024, DAPE)"
    family = "bias"
    wraps = ("base",)

    def __init__(self, shape: AttentionShape, base="alibi", hidden: PositiveInt = 32):
        super().__init__(shape)
        section = part_section(base, "encoding.base")
        if section["name"] == self.name:
            raise ConfigError("encoding=dape cannot be its own base; name a bias encoding, e.g. encoding.base=alibi")
        self.base = ENCODINGS.build(section, shape)
        refuse_inner_timeline(self.name, self.base)
        if not overrides(self.base, "bias"):
            raise ConfigError(
                f"encoding=dape adapts the bias of its base encoding, and encoding.base={self.base.name} adds no bias "
                "to the logits; use a bias encoding (alibi, kerple, fire, t5, ...)"
            )
        others = [hook for hook in OTHER_HOOKS if overrides(self.base, hook)]
        if others:
            raise ConfigError(
                f"encoding=dape hands on only the bias of its base, and encoding.base={self.base.name} also acts through "
                f"{'/'.join(others)}; use an encoding that acts through bias alone (alibi, kerple, fire, t5, ...)"
            )
        heads = shape.heads
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * heads, hidden), nn.LeakyReLU(), nn.Linear(hidden, heads)) for _ in range(shape.layers)
        )
        self.axes = self.base.axes
        self.fractional = self.base.fractional
        self.shift_invariant = self.base.shift_invariant
        self.supports_bidirectional = self.base.supports_bidirectional
        self.supports_causal = self.base.supports_causal

    def score(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int) -> Tensor:
        return adaptive_term(self.mlps[layer], content_logits(q, k), self.base.bias(q_pos, k_pos, layer))

    def without_position(self) -> PositionalEncoding:
        return AdaptiveContent(self.shape, self.mlps)

    def pair_bytes(self) -> int:
        """The explicit path's, plus the MLP's float32 activations per pair kept for the backward
        pass (its 2H inputs, 2 x hidden before and after the activation, H outputs), per head."""
        hidden = self.mlps[0][0].out_features
        return super().pair_bytes() + 4 * (3 * self.shape.heads + 2 * hidden) // self.shape.heads

    def max_positions(self) -> int | None:
        return self.base.max_positions()

    def check_grid(self, side: int) -> None:
        self.base.check_grid(side)

    def check_fits(self, positions_needed: int, shorten: str = "task.eval_lengths") -> None:
        self.base.check_fits(positions_needed, shorten)
