"""Image classification on real images: a Hugging Face dataset by name or local files.

Default data: CIFAR-10 (Krizhevsky 2009; hub ``uoft-cs/cifar10``, columns ``img`` and ``label``,
10 classes, 50k/10k train/test, 32x32 colour). ``ylecun/mnist`` and
``zalando-datasets/fashion_mnist`` (column ``image``, 28x28 grey) work as they are; any dataset
with an image column and a label column does. Local files: ``task.data_files`` as parquet files
(an image column as ``datasets`` writes it, or plain ``{bytes, path}`` structs) or image files
(``.png``/``.jpg``/``.jpeg``, a folder of them, or ``{train: folder, test: folder}``) read by the
``imagefolder`` builder, whose labels are the names of the folders the images sit in.

Data flow (at build time, so a wrong option, column or file fails before training; cached per
process, so the no-PE twin costs nothing): ``posbench.data.hub.load_splits`` -> every image decoded
once to a uint8 tensor ``[N, C, S0, S0]`` (``channels``: 1 when every image is greyscale, else 3,
all converted alike; images of differing sizes are each resized to the largest scored size) ->
labels: the sorted distinct training labels become classes 0..K-1 (a test label never seen in
training is a ``ConfigError``). The tensors move to the training device once; torchvision's
transforms v2 resize them (``Resize``, antialiased) to ``image_size`` for training and to each of
``eval_sizes`` for scoring, then scale to [0, 1] and normalise them (``ToDtype``, ``Normalize``)
with the per-channel mean and standard deviation of the training split.

``augment: crop_flip``: per training image, a random ``image_size`` crop of the image padded by 4
pixels (the padding is 0 after normalisation: the mean colour) and a horizontal flip with
probability 1/2, drawn from the run's generator on the device (a resumed run repeats them). v2's
``RandomCrop``/``RandomHorizontalFlip`` draw one crop and one flip per call, i.e. per batch, so the
batched per-image version is written here.

Evaluation: the in-distribution test set is ``eval_size`` test images at ``image_size`` (the whole
split if it has no more; otherwise a subset chosen by ``eval_seed``, the same for every run); each
evaluation size scores the same images resized to that size.
What it measures: how much of a real image's class the encodings' position information carries
(a ViT without PE still sees every patch's content, so it is well above chance); ``eval_sizes``
other than ``image_size`` measure resolution generalization.
Chance: the share of the most frequent label among the scored test images (the best constant
guess; 1/10 for CIFAR-10).
"""

from __future__ import annotations

from typing import Literal

import torch

from posbench.data import hub, require
from posbench.data.images import ImageData, arrays, stack
from posbench.errors import ConfigError, first_line
from posbench.schema import Lengths, NonEmptyStr, PositiveInt, Seed
from posbench.tasks.base import TASKS
from posbench.tasks.image_data import ImageDataTask

#: PIL modes read as one grey channel.
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _label_order(label):
    return (type(label).__name__, label)


@TASKS.register("image_classification")
class ImageClassification(ImageDataTask):
    description = "classify real images (default CIFAR-10; chance: most frequent test label)"

    def __init__(
        self,
        dataset: str | None = "uoft-cs/cifar10",
        dataset_config: str | None = None,
        data_files=None,
        split: dict | None = None,
        image_column: NonEmptyStr | None = None,
        label_column: NonEmptyStr = "label",
        augment: Literal["none", "crop_flip"] = "none",
        image_size: PositiveInt = 32,
        eval_sizes: Lengths = (24, 32, 48),
        eval_size: PositiveInt = 10000,
        eval_seed: Seed = 1234,
    ):
        """``dataset``/``dataset_config``: a Hugging Face hub dataset; ``data_files``: local files
        instead (parquet or images; a path, folder, list or ``{split: path}``); ``split``:
        ``{train: ..., test: ...}`` dataset splits, slicing allowed; ``image_column``: the column
        of images (None: ``image`` or ``img``); ``label_column``: the column of labels (ints or
        strings); ``augment``: ``none`` or ``crop_flip`` (training images only)."""
        self.dataset, self.dataset_config, self.data_files = dataset, dataset_config, data_files
        self.split = hub.split_mapping(split)
        self.image_column, self.label_column = image_column, str(label_column)
        self.augment = augment
        super().__init__(image_size=image_size, eval_sizes=eval_sizes, eval_size=eval_size, eval_seed=eval_seed)

    @property
    def where(self) -> str:
        return hub.describe(self.dataset, self.data_files)

    def data_key(self) -> list:
        source = [None, None] if self.data_files is not None else [self.dataset, self.dataset_config]
        resized = max(self.image_size, *self.eval_sizes)
        return [source, hub.files_signature(self.data_files), self.split, self.image_column, self.label_column, resized]

    def load(self) -> ImageData:
        splits = hub.load_splits(self.dataset, self.dataset_config, self.data_files, self.split)
        column = self.find_image_column(splits["train"])
        read = {role: self._read(splits[role], role, column) for role in hub.ROLES}
        modes = {image.mode for images, _ in read.values() for image in images}
        mode = "L" if modes <= set(GREY_MODES) else "RGB"
        labels = sorted(set(read["train"][1]), key=_label_order)
        if len(labels) < 2:
            raise ConfigError(
                f"task.label_column={self.label_column!r} of {self.where} has {len(labels)} distinct label(s) "
                "in the train split; classification needs at least 2"
            )
        index = {label: k for k, label in enumerate(labels)}
        unseen = sorted({label for label in read["test"][1] if label not in index}, key=_label_order)
        if unseen:
            raise ConfigError(
                f"the test split of {self.where} has label(s) {', '.join(map(repr, unseen[:5]))} never seen in "
                "the train split; choose splits that share their labels"
            )
        names = getattr(splits["train"].features.get(self.label_column), "names", None)
        if names and all(isinstance(label, int) and 0 <= label < len(names) for label in labels):
            names = [names[label] for label in labels]
        else:
            names = None
        pixels = {role: arrays(images, mode) for role, (images, _) in read.items()}
        size = self.stored_size({a.shape[:2] for role in hub.ROLES for a in pixels[role]})
        tensors = {
            role: (stack(pixels[role], size), torch.tensor([index[label] for label in read[role][1]]))
            for role in hub.ROLES
        }
        return ImageData(*tensors["train"], *tensors["test"], labels=labels, names=names)

    def _read(self, table, role: str, column: str) -> tuple[list, list]:
        """The decoded PIL images and raw labels of one split (rows with a missing value left out)."""
        columns = {"task.image_column": column, "task.label_column": self.label_column}
        hub.require_columns(table, columns, role, self.where)
        datasets = require("datasets", "image data loading")
        if not isinstance(table.features[column], datasets.Image):
            try:
                table = table.cast_column(column, datasets.Image())
            except Exception:
                raise ConfigError(
                    f"task.image_column={column!r} of the {role} split of {self.where} does not hold images "
                    f"({table.features[column]})"
                ) from None
        try:
            rows = [(image, label) for image, label in zip(table[column], table[self.label_column])]
        except Exception as err:
            raise ConfigError(f"the {role} split of {self.where} has an unreadable image: {first_line(err)}") from None
        rows = [(image, label) for image, label in rows if image is not None and label is not None]
        if not rows:
            raise ConfigError(f"the {role} split of {self.where} has no image with a label")
        images, labels = zip(*rows)
        return list(images), list(labels)
