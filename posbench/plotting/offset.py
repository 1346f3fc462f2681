"""The linear-offset property of an input code (Vaswani et al. 2017, "Attention Is All You Need",
§3.5: "for any fixed offset k, PE(pos+k) can be represented as a linear function of PE(pos)").

For a fixed k, the matrix ``M_k`` with ``PE(p + k) ≈ M_k PE(p)`` is fit by least squares over the
positions p, and the fit's relative residual ``||PE(p + k) - M_k PE(p)|| / ||PE(p + k)||`` is drawn
per position: about 0 for sinusoids (``M_k`` is then block-diagonal, a rotation of each (sin, cos)
pair), not for a learned table. Drawn for every 1D encoding with an ``embed`` hook: the residual
is the point.

A least-squares fit over no more positions than the code has (independent) dimensions is exact
for *any* code, so the fit uses more positions than ``d_model`` where the encoding has them (the
sequence drawn, lengthened to ``2 d_model + k + 1``); where it cannot (a table of fewer rows, an
image grid), the picture says that the residual is trivially 0.
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.plotting.core import Picture, Subject, figure, picture, suptitle, symmetric

#: Singular values of the codes below this fraction of the largest are left out of the fit and its
#: rank: the codes are float32, whose rounding (about 1e-7) would otherwise be fit as signal.
RCOND = 1e-6
#: The larger offset drawn besides k = 1 (shortened for short sequences).
LARGER_OFFSET = 8


def fit_codes(subject: Subject) -> np.ndarray:
    """Codes ``[n, d]`` of positions 0..n-1 for the fit (float64)."""
    enc = subject.encoding
    count = subject.tokens
    if subject.grid is None:  # a table on a grid is tied to its grid's token count: no lengthening there
        count = max(count, 2 * enc.shape.d_model + LARGER_OFFSET + 1)
        limit = enc.max_positions()
        if limit is not None:
            count = min(count, limit)
    zeros = torch.zeros(1, count, enc.shape.d_model)
    return enc.embed(zeros, torch.arange(count)[None])[0].double().numpy()


def fit(values: np.ndarray, k: int) -> dict:
    """``M_k`` (``[d, d]``, acting on column vectors) fit by least squares over every position
    pair (p, p + k), the relative residual at each p, and whether the fit is trivially exact
    (no more position pairs than the rank of the codes)."""
    before, after = values[:-k], values[k:]
    # directions below float32's precision (codes are computed in float32) are left out of the fit
    solution, *_ = np.linalg.lstsq(before, after, rcond=RCOND)  # before @ solution ≈ after
    error = np.linalg.norm(after - before @ solution, axis=1)
    scale = np.linalg.norm(after, axis=1)
    residual = error / np.where(scale > 0, scale, 1.0)
    singular = np.linalg.svd(before, compute_uv=False)
    rank = int((singular > RCOND * singular.max()).sum()) if singular.size else 0
    return {"k": k, "matrix": solution.T, "residual": residual, "trivial": len(before) <= rank, "rank": rank}


@picture("pe_offset", needs="embed", when=lambda subject: subject.encoding.axes == 1, tensorboard=True)
def offset(subject: Subject) -> Picture:
    values = fit_codes(subject)
    count = len(values)
    larger = max(2, min(LARGER_OFFSET, (count - 1) // 4))
    fits = [fit(values, k) for k in (1, larger)]
    fig = figure(14, 4.8)
    axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.5])
    for ax, result in zip(axes, fits):
        image = ax.imshow(result["matrix"], interpolation="nearest", **symmetric(result["matrix"]))
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set(title=f"M_{result['k']}: PE(p+{result['k']}) ≈ M_{result['k']} PE(p)", xlabel="input dimension",
               ylabel="output dimension")
    ax = axes[2]
    for result in fits:
        shown = np.clip(result["residual"], 1e-16, None)
        ax.semilogy(np.arange(len(shown)), shown, marker=".", markersize=3, label=f"k = {result['k']}")
    if count > subject.tokens:
        ax.axvline(subject.tokens - 1, color="grey", linestyle="--", linewidth=1,
                   label=f"positions beyond {subject.tokens - 1}: not used by this task")
    ax.set(xlabel="position p", ylabel="||PE(p+k) − M_k PE(p)|| / ||PE(p+k)|| (log; 1e-16 = 0)",
           title="relative residual of the fit per position\n(≈ 0: PE(p+k) is one linear map of PE(p))", ylim=(1e-17, 10))
    ax.legend(fontsize="small")
    trivial = any(result["trivial"] for result in fits)
    note = (
        f"\nonly {count} positions for {values.shape[1]} dimensions: ANY code fits exactly, a residual of 0 says nothing"
        if trivial
        else ""
    )
    rank = min(result["rank"] for result in fits)
    if rank < values.shape[1]:
        note += (
            f"\nthe codes span {rank} of {values.shape[1]} dimensions over these positions (to float32 precision): "
            "M_k is determined only on those (the least-norm fit elsewhere)"
        )
    suptitle(
        fig,
        subject.title(
            f"linear-offset property (Vaswani et al. 2017 §3.5): M_k fit by least squares over positions 0..{count - 1}{note}"
        )
    )
    return Picture("pe_offset", fig, {"fits": fits, "positions": count})
