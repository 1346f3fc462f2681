"""The image-task contract (``model=vit``): seeded generators or datasets of (image, label) pairs.

An image task is a classification task whose "length" is the image side in pixels: it trains at
``image_size`` and is scored at every size of ``eval_sizes``, the image twin of length
generalization (a model with patch size p sees a ``(size / p)^2`` grid; sizes must be multiples of p).

* ``sample(batch, size, generator)`` gives ``images [B, channels, size, size]`` (float, roughly
  zero-mean and unit-scale, on the generator's device) and ``labels [B, 1]``: the label is a
  one-token target, so scoring, the loop and results are those of the sequence tasks (``acc`` is
  classification accuracy). results.json holds the per-size scores under ``sizes``.
* The in-distribution test set is ``eval_size`` images at ``image_size``; each evaluation size
  gets its own ``eval_size`` images, drawn from ``eval_seed`` (the same for every run).
* ``chance``: the accuracy of the best constant guess (1 / classes for balanced labels); each task
  documents it.

This module registers no task; the synthetic ones draw their images on the training device from
the run's generator, so data never bottlenecks training and a resumed run draws the same images.
"""

from __future__ import annotations

import torch
from torch import Tensor

from posbench.errors import ConfigError
from posbench.schema import Lengths, PositiveInt, Seed
from posbench.tasks.base import Batch, Task


class ImageTask(Task):
    inputs = "images"
    axis = "size"
    #: Image channels (1: grey, 3: colour) and the number of labels.
    channels: int = 1
    classes: int = 2
    #: The smallest image side the task is defined for.
    min_size: int = 8

    def __init__(
        self,
        image_size: PositiveInt = 16,
        eval_sizes: Lengths = (16, 24, 32),
        eval_size: PositiveInt = 512,
        eval_seed: Seed = 1234,
    ):
        """``image_size``: the side of the training images in pixels; ``eval_sizes``: the sides
        scored after training (others than ``image_size`` measure resolution generalization)."""
        small = [size for size in (image_size, *eval_sizes) if size < self.min_size]
        if small:
            key = "task.image_size" if image_size < self.min_size else "task.eval_sizes"
            raise ConfigError(f"{key} has {small[0]}, below the smallest image task={self.name} draws ({self.min_size})")
        super().__init__(
            vocab_size=self.classes, train_lengths=(image_size, image_size), eval_lengths=eval_sizes,
            eval_size=eval_size, eval_seed=eval_seed,
        )
        self.image_size = int(image_size)

    # ---- what each image task defines --------------------------------------------------------
    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``batch_size`` images ``[B, channels, size, size]`` and their labels ``[B]``."""
        raise NotImplementedError

    def check_patch_size(self, patch: int) -> None:
        """Raise ``ConfigError`` when patches of ``patch`` pixels could show what gives the label
        away (a patch holding both shapes of ``relation``): the no-PE twin would then beat chance
        for a reason that is not position. Called by the ViT before training; by default nothing."""

    # ---- the task contract -------------------------------------------------------------------
    def sample(self, batch_size: int, length: int, generator: torch.Generator) -> Batch:
        images, labels = self.draw(batch_size, length, generator)
        return images, labels[:, None]

    def target_len(self, length: int) -> int:
        return 1

    def model_inputs(self) -> dict:
        return {"channels": self.channels, "image_size": self.image_size}

    def example_bytes(self, length: int) -> int:
        return 4 * self.channels * length * length + 8

    @property
    def eval_sizes(self) -> list[int]:
        return self.eval_lengths


def pixel_grid(size: int, device) -> tuple[Tensor, Tensor]:
    """Row and column index of every pixel, each ``[1, size, size]``."""
    index = torch.arange(size, device=device)
    return index[None, :, None], index[None, None, :]


def uniform_int(low: Tensor | int, high: Tensor | int, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive; tensors broadcast to ``shape``) on the generator's device."""
    u = torch.rand(shape, generator=generator, device=generator.device)
    return (low + (u * (torch.as_tensor(high, device=u.device) - low + 1)).floor()).long()
