"""Digits: scikit-learn's bundled handwritten digits, a small real-image task that needs no download.

Data: ``sklearn.datasets.load_digits`` (the UCI optical recognition of handwritten digits test
set: 1797 grey 8x8 images with values 0..16, 10 classes), read from the copy bundled with
scikit-learn, so it works offline. The split is fixed: the first 1437 images train, the last 360
(20%, about 36 per digit) are the test split. Images are held as uint8 tensors on the training
device and resized with torchvision's transforms v2 (``Resize``, antialiased) to ``image_size``
for training and to each of ``eval_sizes`` for scoring (upsampling the 8x8 originals), then
normalised with the training split's mean and standard deviation (``ToDtype``, ``Normalize``).
Training batches are uniform random training images drawn from the run's generator.

Evaluation: the in-distribution test set is the test split at ``image_size`` (``eval_size`` caps
it: a smaller value scores a subset chosen by ``eval_seed``); each evaluation size scores the same
images resized to that size.
What it measures: a quick real-image check (the default ViT with a learned encoding reaches about
0.93 in the default 1000 CPU steps, under two minutes); much of a digit's identity is in its
patches' contents, so the no-PE twin is well above chance (about 0.87), and the gap to it is what
position adds.
Chance: the share of the most frequent label in the test split, 37/360 (about 0.103).
"""

from __future__ import annotations

import numpy as np
import torch

from posbench.data.images import ImageData
from posbench.errors import ConfigError
from posbench.schema import Lengths, PositiveInt, Seed
from posbench.tasks.base import TASKS
from posbench.tasks.image_data import ImageDataTask

#: The test split: the last TEST_SIZE images of ``load_digits`` (20% of 1797).
TEST_SIZE = 360


@TASKS.register("digits")
class Digits(ImageDataTask):
    description = "scikit-learn's 8x8 handwritten digits, resized (10 classes; chance 0.103)"

    def __init__(
        self,
        image_size: PositiveInt = 16,
        eval_sizes: Lengths = (16, 24, 32),
        eval_size: PositiveInt = TEST_SIZE,
        eval_seed: Seed = 1234,
    ):
        """``image_size``: the training images' side (the originals are 8x8); ``eval_size``: test
        images scored (at most the split's 360)."""
        super().__init__(image_size=image_size, eval_sizes=eval_sizes, eval_size=eval_size, eval_seed=eval_seed)

    def data_key(self) -> list:
        return []

    def load(self) -> ImageData:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ConfigError("task=digits needs the 'scikit-learn' package: pip install 'posbench[vision]'") from None
        digits = load_digits()
        pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255
        images = torch.from_numpy(pixels)[:, None]
        labels = torch.from_numpy(digits.target.astype(np.int64))
        train = slice(0, len(labels) - TEST_SIZE)
        test = slice(len(labels) - TEST_SIZE, None)
        return ImageData(
            images[train].contiguous(), labels[train], images[test].contiguous(), labels[test],
            labels=list(range(10)), names=[str(k) for k in range(10)],
        )
