"""Rotary position embedding, RoPE (Su et al. 2021, "RoFormer", eq. 34), with its variants as options.

Each pair of query/key features is rotated by the angle ``p * theta_i`` with
``theta_i = base^(-2i / d_rot)``, so that ``<R(p) q, R(s) k> = <q, R(s - p) k>``: logits depend
only on the offset between positions, and rotations preserve norms.

Convention: posbench pairs feature ``i`` with feature ``i + d_rot/2`` ("half-split", as GPT-NeoX
and LLaMA do) rather than adjacent features ``(2i, 2i+1)`` as written in the paper. The two differ
only by a fixed permutation of the head's features, which the learned projections absorb;
half-split avoids strided copies. ``inv_freq`` holds the ``d_rot/2`` frequencies ``theta_i``, one
per pair, in Hugging Face's layout.

Options (the defaults give plain, full RoPE with base 10000):

* ``rotary_fraction`` (partial rotary, as in GPT-J / GPT-NeoX): only the first
  ``d_rot = round(rotary_fraction * d_head)`` features of each head are rotated (half-split within
  them, ``theta_i = base^(-2i / d_rot)``); the other ``d_head - d_rot`` pass through unchanged.
  ``d_rot`` must be even and positive.
* ``scale``, position interpolation (Chen et al. 2023, "Extending Context Window of Large Language
  Models via Positional Interpolation", §2.2, ``f'(x, m) = f(x, m L / L')``): position ``p`` is
  rotated as if it were ``p / scale``; implemented as ``theta_i / scale``.
* ``ntk_alpha``, "NTK-aware" base rescaling (bloc97, r/LocalLLaMA, June 2023; written as
  ``b' = b * s^(|D| / (|D| - 2))`` in Peng et al. 2023, "YaRN", arXiv:2309.00071, §3.1,
  Definition 1): ``base' = base * ntk_alpha^(d_rot / (d_rot - 2))``, which divides the lowest
  frequency ``theta_(d_rot/2 - 1)`` by exactly ``ntk_alpha`` (as interpolation by ``ntk_alpha``
  would) and leaves the highest, ``theta_0 = 1``, unchanged.
* ``p``, p-RoPE (Barbero et al. 2025, "Round and Round We Go! What makes Rotary Positional
  Encodings useful?", ICLR 2025, arXiv:2410.06205, the p-RoPE proposal that closes the paper):
  only the ``floor(p * d_rot/2)`` highest frequencies ``theta_0 .. theta_(kept-1)`` keep rotating,
  with their RoPE values; the lowest ``(1 - p)`` fraction of the pairs gets ``theta = 0`` (angle 0:
  position-free, content channels). ``p = 1`` is RoPE, ``p = 0`` NoPE (without YaRN's factor).
  The paper's own text could not be read here (only summaries: "removes the lowest frequencies");
  the count is floored as in Gemma 4's p-RoPE ("proportional" RoPE, Hugging Face's
  ``_compute_proportional_rope_parameters``, ``int(p * d // 2)`` pairs, which
  tests/test_enc_rope_scaling.py compares), with a guard against float rounding (p = 0.58 of 50
  pairs keeps 29, where ``int(0.58 * 100 // 2)`` gives 28). Applied after any scaling below: a
  dropped pair stays at 0.
* ``scaling`` (``none`` | ``yarn`` | ``llama3`` | ``dynamic_ntk``), the context-extension schemes
  of long-context LLMs, each with scaling factor ``factor = s >= 1`` and the pretraining context
  ``original_max_len = L`` (required by all three; ``scale`` and ``ntk_alpha`` must stay at 1 with
  them: they are alternatives to those). Options that the chosen scaling does not read are refused
  when set away from their defaults, so that no run silently ignores them.

  - ``yarn`` (Peng et al. 2023, "YaRN", §3.2 "NTK-by-parts" and §3.4): pairs that make more than
    ``beta_fast`` (32) turns over ``L`` keep ``theta_i``, pairs that make fewer than ``beta_slow``
    (1) get ``theta_i / s``, linearly mixed in between. As in the authors' code and Hugging Face's
    ``_compute_yarn_parameters``, the ramp is linear in the pair index between the pair indices
    where ``L / lambda_i`` equals ``beta_fast`` and ``beta_slow`` (rounded outwards: floor and
    ceil), not linear in ``L / lambda_i`` as the paper's ``gamma(r)`` is written. The attention
    temperature (§3.4, ``sqrt(1/t) = 0.1 ln s + 1``), ``attention_factor`` (null: that default;
    1 when ``s = 1``), multiplies cos and sin as Hugging Face applies it, so rotated logits get
    ``attention_factor^2``; features beyond ``d_rot`` are not scaled (as in Hugging Face).
  - ``llama3`` (Llama 3.1's frequency scaling, the reference code ``apply_scaling`` of
    meta-llama/llama-models, Hugging Face's ``_compute_llama3_parameters``): with ``turns_i = L /
    lambda_i`` (``lambda_i = 2 pi / theta_i``), pairs with ``turns_i > high_freq_factor`` (4) keep
    ``theta_i``, pairs with ``turns_i < low_freq_factor`` (1) get ``theta_i / s``, and in between
    ``(1 - g) theta_i / s + g theta_i`` with ``g = (turns_i - low) / (high - low)``.
  - ``dynamic_ntk`` ("Dynamically Scaled RoPE", emozilla, r/LocalLLaMA, June 2023; YaRN §3.3;
    Hugging Face's ``_compute_dynamic_ntk_parameters``): for a forward whose keys number ``n > L``
    the base becomes ``base * (s n / L - (s - 1))^(d_rot / (d_rot - 2))``; for ``n <= L`` it is
    plain RoPE (bit for bit). The frequencies are therefore computed per forward from the *key
    length* ``n`` (Hugging Face reads ``max(position_ids) + 1``, the same number for positions
    ``0 .. n-1``; posbench reads the count so that shifted or randomized positions do not change
    the base). Within one forward it is still one rotation of every query and key, so logits stay
    a function of the offset for a given length: shift-invariant as declared (shifting every
    position by k keeps n), but the same offset scores differently at two lengths > L.
  - ``dynamic`` (YaRN only; Peng et al. 2023, §3.3 "Dynamic Scaling"): YaRN as a training-free
    extension, with the factor set per forward to ``s = max(1, n / L)`` for ``n`` keys (and the
    attention factor ``0.1 ln s + 1`` with it): plain RoPE up to ``L`` keys, YaRN with ``s = n / L``
    beyond. ``factor`` and ``attention_factor`` stay at their defaults with it.

Interpolation, NTK rescaling, p-RoPE, YaRN's and Llama 3's frequencies only change the
frequencies, so every variant stays a rotation: shift invariant and norm preserving (YaRN's
attention factor scales the rotated features by that factor).
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Literal

import torch
from torch import Tensor

from posbench.encodings.base import ENCODINGS, AttentionShape, PositionalEncoding
from posbench.encodings.sinusoidal import inverse_frequencies
from posbench.errors import ConfigError
from posbench.schema import FrequencyBase, PositiveFloat, Range, show

Scaling = Literal["none", "yarn", "llama3", "dynamic_ntk"]

#: The options only some ``scaling`` reads, with those scalings: set away from their declared
#: default under another scaling, they would do nothing, so they are refused.
SCALING_OPTIONS: dict[str, tuple[str, ...]] = {
    "factor": ("yarn", "llama3", "dynamic_ntk"),
    "original_max_len": ("yarn", "llama3", "dynamic_ntk"),
    "beta_fast": ("yarn",),
    "beta_slow": ("yarn",),
    "attention_factor": ("yarn",),
    "dynamic": ("yarn",),
    "low_freq_factor": ("llama3",),
    "high_freq_factor": ("llama3",),
}


def rotate_half_split(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs ``(x[..., i], x[..., i + d/2])`` by the angle whose cosine and sine are given."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).to(x.dtype)


# ---- frequencies (float64, ``d_rot/2`` per head, the layout of Hugging Face's inv_freq) -----------
def rope_thetas(rotated: int, base: float) -> Tensor:
    """RoFormer's ``theta_i = base^(-2i / d_rot)``, i = 0 .. d_rot/2 - 1, in float64."""
    return base ** (-torch.arange(0, rotated, 2, dtype=torch.float64) / rotated)


def kept_pairs(p: float, pairs: int) -> int:
    """p-RoPE: how many of ``pairs`` frequency pairs keep rotating, ``floor(p * pairs)``."""
    return math.floor(p * pairs + 1e-9)


def yarn_frequencies(rotated: int, base: float, factor: float, original_max_len: int, beta_fast: float,
                     beta_slow: float) -> Tensor:
    """YaRN's "NTK-by-parts" frequencies (module docstring): ``theta_i`` mixed with ``theta_i / s``
    by a ramp over the pair index from ``beta_fast`` to ``beta_slow`` turns over ``L``."""
    thetas = rope_thetas(rotated, base)

    def pair_index(turns: float) -> float:  # solves L / (2 pi base^(2i / d)) = turns for i
        return rotated * math.log(original_max_len / (2 * math.pi * turns)) / (2 * math.log(base))

    start = max(math.floor(pair_index(beta_fast)), 0)
    end = min(math.ceil(pair_index(beta_slow)), rotated - 1)
    width = end - start if end != start else 0.001
    ramp = ((torch.arange(rotated // 2, dtype=torch.float64) - start) / width).clamp(0, 1)
    return thetas * (1 - ramp) + thetas / factor * ramp


def yarn_attention_factor(factor: float) -> float:
    """YaRN §3.4: ``sqrt(1/t) = 0.1 ln s + 1`` (1 for ``s <= 1``)."""
    return 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0


def llama3_frequencies(rotated: int, base: float, factor: float, original_max_len: int, low_freq_factor: float,
                       high_freq_factor: float) -> Tensor:
    """Llama 3.1's frequencies (module docstring): by the turns ``L / lambda_i`` each pair makes
    over the pretraining context, ``theta_i / s`` below ``low_freq_factor``, ``theta_i`` above
    ``high_freq_factor``, linear in the turns between."""
    thetas = rope_thetas(rotated, base)
    turns = original_max_len * thetas / (2 * math.pi)
    mix = ((turns - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0, 1)
    return thetas / factor * (1 - mix) + thetas * mix


def dynamic_ntk_base(base: float, rotated: int, factor: float, original_max_len: int, length: int) -> float:
    """Dynamic NTK: ``base * (s n / L - (s - 1))^(d / (d - 2))`` for ``n > L``, else ``base``."""
    if length <= original_max_len:
        return base
    return base * (factor * length / original_max_len - (factor - 1)) ** (rotated / (rotated - 2))


@ENCODINGS.register("rope")
class RoPE(PositionalEncoding):
    description = (
        "rotary embedding of queries and keys (Su et al. 2021, RoFormer eq. 34); partial, PI, NTK, "
        "p-RoPE (Barbero et al. 2025), YaRN, Llama 3, dynamic NTK options"
    )
    family = "rotary"
    shift_invariant = True
    fractional = True

    def __init__(
        self,
        shape: AttentionShape,
        base: FrequencyBase = 10000.0,
        rotary_fraction: Annotated[float, Range(gt=0, le=1)] = 1.0,
        scale: PositiveFloat = 1.0,
        ntk_alpha: PositiveFloat = 1.0,
        p: Annotated[float, Range(ge=0, le=1)] = 1.0,
        scaling: Scaling = "none",
        factor: Annotated[float, Range(ge=1)] = 1.0,
        original_max_len: Annotated[int | None, Range(ge=1)] = None,
        beta_fast: PositiveFloat = 32.0,
        beta_slow: PositiveFloat = 1.0,
        attention_factor: Annotated[float | None, Range(gt=0)] = None,
        low_freq_factor: PositiveFloat = 1.0,
        high_freq_factor: PositiveFloat = 4.0,
        dynamic: bool = False,
    ):
        super().__init__(shape)
        if shape.head_dim % 2:
            raise ConfigError(
                f"encoding={self.name} needs an even head dimension (model.d_model / model.heads), got {shape.head_dim}"
            )
        rotated = round(rotary_fraction * shape.head_dim)
        if rotated == 0 or rotated % 2:
            raise ConfigError(
                f"encoding={self.name}: rotary_fraction={rotary_fraction} rotates round({rotary_fraction} * "
                f"{shape.head_dim}) = {rotated} features of each head; it must be an even number > 0"
            )
        values = {
            "factor": factor, "original_max_len": original_max_len, "beta_fast": beta_fast, "beta_slow": beta_slow,
            "attention_factor": attention_factor, "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor, "dynamic": bool(dynamic),
        }
        self._check_scaling(scaling, values, scale, ntk_alpha, rotated)
        if ntk_alpha != 1.0:
            if rotated == 2:
                raise ConfigError(
                    f"encoding={self.name}: ntk_alpha needs at least 4 rotated features (the formula divides by d_rot - 2)"
                )
            base *= ntk_alpha ** (rotated / (rotated - 2))
        pairs = rotated // 2
        kept = kept_pairs(p, pairs)
        if p > 0 and kept == 0:
            raise ConfigError(
                f"encoding={self.name}: p={p} keeps floor({p} * {pairs}) = 0 of the {pairs} frequency pairs of "
                f"each head: that is NoPE; write p=0 for it, or raise p to at least {1 / pairs:.3g}"
            )
        #: number of rotated features per head, and the base actually used (after NTK rescaling)
        self.rotated = rotated
        self.base = base
        self.scaling = scaling
        self.factor = float(factor)
        self.original_max_len = original_max_len
        #: YaRN's parameters, read again per forward by dynamic YaRN
        self.betas = (beta_fast, beta_slow)
        self.dynamic = bool(dynamic)
        #: YaRN's factor on cos and sin (1 otherwise)
        self.attention_factor = 1.0
        if scaling == "yarn" and not self.dynamic:
            thetas = yarn_frequencies(rotated, base, factor, original_max_len, beta_fast, beta_slow).float()
            self.attention_factor = yarn_attention_factor(factor) if attention_factor is None else attention_factor
        elif scaling == "llama3":
            thetas = llama3_frequencies(rotated, base, factor, original_max_len, low_freq_factor, high_freq_factor).float()
        else:  # none, and dynamic_ntk / dynamic YaRN up to L keys (they recompute beyond, in ``rotate``)
            thetas = inverse_frequencies(rotated, base) / scale
        self.register_buffer("inv_freq", thetas, persistent=False)
        #: ``[d_rot/2]`` bool: the pairs that rotate; the others have frequency 0 (p-RoPE, HoPE)
        self.register_buffer("rotating", torch.ones(pairs, dtype=torch.bool), persistent=False)
        self.keep_rotating(torch.arange(pairs) < kept)
        self._dynamic: dict[tuple[int, torch.device], tuple[Tensor, float]] = {}

    def _check_scaling(self, scaling: str, values: dict, scale: float, ntk_alpha: float, rotated: int) -> None:
        """Refuse a ``scaling`` without what it needs, with ``scale``/``ntk_alpha``, or with options it ignores."""
        for option, users in SCALING_OPTIONS.items():
            if scaling not in users:
                self.refuse_unread(option, values[option], f"scaling={' or '.join(users)}, not scaling={scaling}")
        if scaling == "none":
            return
        if scale != 1.0 or ntk_alpha != 1.0:
            raise ConfigError(
                f"encoding={self.name}: scaling={scaling} sets the frequencies itself; it cannot be combined with "
                f"scale={show(scale)} or ntk_alpha={show(ntk_alpha)} (leave them at 1)"
            )
        if values["original_max_len"] is None:
            raise ConfigError(
                f"encoding={self.name}: scaling={scaling} needs original_max_len, the pretraining context length L "
                "in positions (e.g. encoding.original_max_len=64)"
            )
        if scaling == "yarn" and values["beta_fast"] <= values["beta_slow"]:
            raise ConfigError(
                f"encoding={self.name}: beta_fast={show(values['beta_fast'])} must be > beta_slow="
                f"{show(values['beta_slow'])} (turns over L where YaRN's ramp starts and ends)"
            )
        if scaling == "llama3" and values["high_freq_factor"] <= values["low_freq_factor"]:
            raise ConfigError(
                f"encoding={self.name}: high_freq_factor={show(values['high_freq_factor'])} must be > "
                f"low_freq_factor={show(values['low_freq_factor'])}"
            )
        if scaling == "yarn" and values["dynamic"] and (values["factor"] != 1.0 or values["attention_factor"] is not None):
            raise ConfigError(
                f"encoding={self.name}: dynamic YaRN computes its factor (keys / original_max_len) and attention "
                "factor per forward; leave factor at 1 and attention_factor at null"
            )
        if scaling == "dynamic_ntk" and rotated == 2:
            raise ConfigError(
                f"encoding={self.name}: scaling=dynamic_ntk needs at least 4 rotated features (its base formula "
                "divides by d_rot - 2)"
            )

    def keep_rotating(self, mask: Tensor) -> None:
        """Only the pairs where ``mask [d_rot/2]`` is True rotate from now on; the others get
        frequency 0, position-free content features (p-RoPE, HoPE)."""
        self.rotating &= mask.to(self.rotating.device)
        self.inv_freq.masked_fill_(~self.rotating, 0.0)

    def frequencies(self, length: int) -> tuple[Tensor, float] | None:
        """The frequencies ``[d_rot/2]`` (float32) and attention factor of a forward whose keys
        number ``length``, for ``scaling=dynamic_ntk`` and dynamic YaRN beyond ``original_max_len``
        keys; None when they are the fixed ``inv_freq`` and ``attention_factor``."""
        if not (self.scaling == "dynamic_ntk" or self.dynamic) or length <= self.original_max_len:
            return None
        key = (length, self.inv_freq.device)
        if key not in self._dynamic:
            if self.scaling == "dynamic_ntk":
                base = dynamic_ntk_base(self.base, self.rotated, self.factor, self.original_max_len, length)
                thetas, attention_factor = rope_thetas(self.rotated, base), 1.0
            else:  # YaRN §3.3, dynamic scaling: s = l' / L for a sequence of l' > L positions
                factor = length / self.original_max_len
                thetas = yarn_frequencies(self.rotated, self.base, factor, self.original_max_len, *self.betas)
                attention_factor = yarn_attention_factor(factor)
            thetas = thetas.masked_fill(~self.rotating.cpu(), 0.0).to(device=self.inv_freq.device, dtype=torch.float32)
            self._dynamic[key] = (thetas, attention_factor)
        return self._dynamic[key]

    def angles_cos_sin(self, pos: Tensor, inv_freq: Tensor, attention_factor: float) -> tuple[Tensor, Tensor]:
        """Cosine and sine of the angles ``p * inv_freq_i`` (times the attention factor), each
        ``[B or 1, 1, L, d_rot/2]`` (float32)."""
        angles = pos.to(torch.float32)[:, None, :, None] * inv_freq
        cos, sin = angles.cos(), angles.sin()
        if attention_factor != 1.0:
            cos, sin = cos * attention_factor, sin * attention_factor
        return cos, sin

    def cos_sin(self, pos: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine and sine of the angles ``p * theta_i``, each ``[B or 1, 1, L, d_rot/2]`` (float32)."""
        return self.angles_cos_sin(pos, self.inv_freq, self.attention_factor)

    def apply_rotation(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Rotate the first ``d_rot`` features of ``x`` (half-split) and pass the rest through."""
        return torch.cat((rotate_half_split(x[..., : self.rotated], cos, sin), x[..., self.rotated :]), dim=-1)

    def rotate(self, q: Tensor, k: Tensor, q_pos: Tensor, k_pos: Tensor, layer: int = 0) -> tuple[Tensor, Tensor]:
        dynamic = self.frequencies(k_pos.shape[1])
        cos_sin = self.cos_sin if dynamic is None else functools.partial(self.angles_cos_sin, inv_freq=dynamic[0], attention_factor=dynamic[1])
        q_cos_sin = cos_sin(q_pos)
        k_cos_sin = q_cos_sin if k_pos is q_pos else cos_sin(k_pos)
        return self.apply_rotation(q, *q_cos_sin), self.apply_rotation(k, *k_cos_sin)
