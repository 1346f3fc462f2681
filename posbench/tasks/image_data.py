"""``ImageDataTask``: the base of the dataset-backed image tasks (``digits``, ``image_classification``).

A subclass says what decides its data (``data_key``) and how to read it (``load``: an
``posbench.data.images.ImageData``); this class caches the decoded data per process (the no-PE
twin rebuilds the same task), samples training images from the run's generator (augmented by
``augment``), normalises them with the training split's statistics, and builds the scored test
sets: ``eval_size`` test images (the whole split if it has no more; otherwise a subset chosen by
``eval_seed``) at ``image_size`` and at each of ``eval_sizes``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from posbench.data.cache import ProcessCache
from posbench.data.images import ImageData, crop_flip, transforms
from posbench.errors import ConfigError
from posbench.tasks.base import Batch
from posbench.tasks.image import ImageTask
from posbench.training.files import write_json

#: Decoded datasets by configuration (per process): the twin rebuilds the same task.
_PREPARED = ProcessCache(2)


class ImageDataTask(ImageTask):
    """An image task read from a dataset: subclasses define ``data_key`` and ``load``; this class
    resizes, normalises, samples training images from the run's generator and builds the test sets."""

    dataset_backed = True
    augment: str = "none"
    #: Columns looked for, in order, when ``task.image_column`` is not set.
    image_columns: tuple[str, ...] = ("image", "img")
    image_column: str | None = None

    def __init__(self, **options):
        super().__init__(**options)
        self.data = self._prepared()
        self.channels = self.data.channels
        self.classes = self.vocab_size = len(self.data.labels)
        self.mean, self.std = self.data.stats()
        v2 = transforms()
        self._normalise = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(self.mean, self.std)])
        tests = self.data.test_labels.shape[0]
        if self.eval_size >= tests:
            self._scored = torch.arange(tests)
        else:
            generator = torch.Generator().manual_seed(self.eval_seed)
            self._scored = torch.randperm(tests, generator=generator)[: self.eval_size].sort().values

    # ---- what subclasses define --------------------------------------------------------------
    def data_key(self) -> list:
        """What decides the loaded data (a cache key): the source and the options that shape it."""
        raise NotImplementedError

    def load(self) -> ImageData:
        """Read and decode the data."""
        raise NotImplementedError

    def find_image_column(self, table) -> str:
        """``task.image_column``, or the first of ``image_columns`` the table has (``ConfigError``
        listing the available columns otherwise)."""
        if self.image_column is not None:
            return self.image_column
        for name in self.image_columns:
            if name in table.column_names:
                return name
        raise ConfigError(
            f"{self.where} has no image column named {' or '.join(self.image_columns)}; set task.image_column; "
            f"available columns: {', '.join(table.column_names)}"
        )

    def stored_size(self, sizes: set[tuple[int, int]]) -> int | None:
        """The side the decoded images are stored at, from the set of their (height, width) or
        (width, height): as they are (None) when they all share one square size, else each resized to
        the largest size the task scores."""
        square = len(sizes) == 1 and len(set(next(iter(sizes)))) == 1
        return None if square else max(self.image_size, *self.eval_sizes)

    def _prepared(self) -> ImageData:
        return _PREPARED.get([type(self).__qualname__, *self.data_key()], self.load)

    # ---- the task contract -------------------------------------------------------------------
    def normalise(self, images: Tensor) -> Tensor:
        """uint8 images -> float, scaled to [0, 1] and normalised by the training split's statistics."""
        return self._normalise(images)

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random training images (uniform indices from ``generator``), augmented if configured."""
        device = generator.device
        images = self.data.images("train", size, device)
        labels = self.data.labels_on("train", device)
        index = torch.randint(0, images.shape[0], (batch_size,), generator=generator, device=device)
        batch = self.normalise(images[index])
        if self.augment == "crop_flip":
            batch = crop_flip(batch, generator)
        return batch, labels[index]

    def scored(self, size: int, device) -> Batch:
        """The scored test images at ``size``, normalised, and their labels ``[n, 1]``."""
        index = self._scored.to(device)
        images = self.data.images("test", size, device)[index]
        return self.normalise(images), self.data.labels_on("test", device)[index][:, None]

    def test_set(self, device: torch.device | str) -> list[Batch]:
        return [self.scored(self.image_size, device)]

    def length_sets(self, device: torch.device | str) -> dict[int, list[Batch]]:
        return {size: [self.scored(size, device)] for size in self.eval_sizes}

    @property
    def chance(self) -> float:
        """The share of the most frequent label among the scored test images."""
        labels = self.data.test_labels[self._scored]
        return float(torch.bincount(labels).max()) / labels.shape[0]

    def data_fingerprint(self) -> str:
        return self.data.fingerprint()

    def held_bytes(self) -> int:
        """The uint8 images held on the device: the training split as decoded and at ``image_size``,
        the test split at every scored size."""
        train, test = self.data.train_images, self.data.test_images
        pixels = train.shape[0] * (train.shape[-1] ** 2 + self.image_size**2)
        pixels += test.shape[0] * sum(size**2 for size in {self.image_size, *self.eval_sizes})
        return self.channels * pixels

    def training_examples(self) -> int:
        return int(self.data.train_labels.shape[0])

    def save(self, folder) -> None:
        """``labels.json``: the raw label of each class (class k is ``labels[k]``), a ClassLabel
        column's names (or null), and the normalisation applied to the images."""
        info = {"labels": self.data.labels, "names": self.data.names, "channels": self.channels}
        write_json(Path(folder) / "labels.json", info | {"mean": self.mean, "std": self.std})
