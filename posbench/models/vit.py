"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", eq. 1-4), with the
same pre-LN blocks and attention as the sequence families.

An image ``[B, C, S, S]`` is cut into ``(S / patch_size)^2`` patches, each linearly embedded (a
convolution with kernel and stride ``patch_size``), in raster order. ``pool=cls`` prepends a
learned class token and classifies from its output (eq. 4); ``pool=mean`` classifies from the mean
of the patch outputs. The final LayerNorm acts on every token before pooling; the linear head on
the pooled vector only.

Where position enters: only through the encoding's hooks, as in every family. 1D encodings read
the token index (class token 0, patches in raster order after it); 2D encodings read each patch's
(row, col), the class token having none (``posbench.encodings.base``). Evaluated at another image
size (``task.eval_sizes``) the model sees a larger or smaller grid: relative and rotary encodings
extend to it by their formula, tables tied to the training grid are resampled or refused (their
``resize`` option).

Without an encoding the model is a function of the *set* of patches: attention, the MLP and either
pooling are permutation-equivariant or invariant, so a task whose label depends on where things
are (``quadrant``, ``relation``, ``patch_order``) cannot be learned beyond what the patches' contents
reveal.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from posbench.encodings.base import grid_coordinates
from posbench.errors import ConfigError
from posbench.models.base import MODELS, SequenceModel
from posbench.models.image_encoder import grid_tokens
from posbench.schema import PositiveInt


@MODELS.register("vit")
class VisionTransformer(SequenceModel):
    description = "Vision Transformer: image patches as tokens, class token or mean pooling (Dosovitskiy et al. 2021)"
    inputs = "images"

    def __init__(
        self,
        vocab_size: int,
        encoding: dict,
        patch_size: PositiveInt = 4,
        pool: Literal["cls", "mean"] = "cls",
        *,
        channels: int,
        image_size: int,
        **options,
    ):
        """``vocab_size``: the number of classes; ``patch_size``: pixels per patch side; ``pool``:
        ``cls`` (class token) or ``mean`` (mean over patches). ``channels`` and ``image_size`` (the
        training images' side) come from the task."""
        check_tiled(image_size, patch_size)
        stacks = {"patch_size": int(patch_size), "pool": pool, "channels": channels, "image_size": image_size}
        super().__init__(vocab_size, encoding, stacks=stacks, **options)

    def build_stacks(self, encoding: dict, patch_size: int, pool: str, channels: int, image_size: int) -> None:
        d_model = self.sizes["d_model"]
        self.patch_size, self.pool = patch_size, pool
        self.prefix = int(pool == "cls")
        self.patch = nn.Conv2d(channels, d_model, kernel_size=patch_size, stride=patch_size)
        if self.prefix:
            # one vector: 1-D parameters get no weight decay (posbench.training.loop), as timm's class token
            self.cls_token = nn.Parameter(torch.zeros(d_model))
            nn.init.normal_(self.cls_token, std=0.02)
        grid = image_size // patch_size
        self.net = self.stack(encoding, False, None, vectors=True, grid=grid, prefix=self.prefix)
        self.head = nn.Linear(d_model, self.vocab_size)

    def tokens(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Patch embeddings ``[B, prefix + N, d_model]`` (class token first) and their grid coordinates."""
        side = images.shape[-1] // self.patch_size
        x = grid_tokens(self.patch(images))
        if self.prefix:
            x = torch.cat((self.cls_token.to(x.dtype).expand(x.shape[0], 1, -1), x), dim=1)
        return x, grid_coordinates(side, self.prefix, images.device)

    def logits(self, images: Tensor) -> Tensor:
        """Class logits ``[B, classes]``."""
        x, coords = self.tokens(images)
        out = self.net(x, coords=coords)
        return self.head(out[:, 0] if self.prefix else out.mean(dim=1))

    def target_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.logits(src)[:, None]

    @torch.no_grad()
    def predict(self, src: Tensor, tgt_len: int) -> Tensor:
        return self.logits(src).argmax(-1, keepdim=True)

    def positions_needed(self, src_len: int, tgt_len: int) -> int:
        """Tokens of an image of side ``src_len``: its patches and the class token."""
        return (src_len // self.patch_size) ** 2 + self.prefix

    def check_task(self, task) -> None:
        check_image_task(task, self.patch_size, self.encoding, self.prefix)

    @classmethod
    def stacks_of(cls, section: dict, src_len: int, tgt_len: int) -> list[tuple[int, int]]:
        """One stack over the patches of an image of side ``src_len`` and the class token."""
        return [((src_len // section["patch_size"]) ** 2 + int(section["pool"] == "cls"), section["layers"])]


def check_tiled(image_size: int, patch: int) -> None:
    """Refuse training images whose side ``patch``-pixel tokens do not tile."""
    if image_size % patch:
        raise ConfigError(
            f"task.image_size={image_size} is not a multiple of model.patch_size={patch}; choose sizes that patches tile"
        )


def check_image_task(task, patch: int, encoding, others: int = 0) -> None:
    """Refuse (``ConfigError``) what an image encoder with ``patch``-pixel tokens and ``encoding``
    cannot do with ``task``: every image size the task scores must be tiled by patches (and the task
    may refuse the patch size, ``check_patch_size``); the encoding must represent the largest grid,
    with ``others`` tokens besides it (a class token, a caption; a table tied to the training grid
    says here whether it resamples)."""
    untiled = [size for size in task.eval_lengths if size % patch]
    if untiled:
        raise ConfigError(
            f"task.eval_sizes has {', '.join(map(str, untiled))}, not a multiple of model.patch_size={patch}; "
            "choose sizes that patches tile"
        )
    task.check_patch_size(patch)
    for size in task.eval_lengths:
        encoding.check_grid(size // patch)
    encoding.check_fits((task.longest() // patch) ** 2 + others, shorten="task.eval_sizes")
