"""The attention of a trained model on one example: one panel per layer and head, query down, key
across (weights from ``posbench.analysis.attention.attention_maps``). A run adds this figure to its
TensorBoard events at the end (``posbench.plotting.add_attention_to_tensorboard``), beside the
pictures of its encoding; its no-PE twin adds its own, so the two can be set side by side."""

from __future__ import annotations

from torch import Tensor

from posbench.plotting.core import figure, suptitle


def attention_figure(maps: Tensor, heading: str, stack: str):
    """``maps [layers, heads, Lq, Lk]`` (rows summing to 1) as a grid of heat maps on one colour
    scale from 0 to the largest weight."""
    layers, heads = maps.shape[:2]
    fig = figure(2.4 * heads + 1.2, 2.3 * layers + 1.0)
    axes = fig.subplots(layers, heads, squeeze=False)
    top = float(maps.max()) or 1.0
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            image = ax.imshow(maps[layer, head].numpy(), cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title(f"layer {layer + 1}, head {head}", fontsize="small")
            ax.set(xlabel="key position" if layer == layers - 1 else None, ylabel="query position" if head == 0 else None)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="attention weight", shrink=0.8)
    suptitle(fig, f"{heading}\nattention of the {stack} stack on one test example ({maps.shape[-2]} queries × {maps.shape[-1]} keys)")
    return fig
