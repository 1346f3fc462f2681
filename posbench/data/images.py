"""Image data for the dataset-backed image tasks (``posbench[vision]``): decoded splits held as
uint8 tensors, resized on the training device with torchvision's transforms v2, their statistics
and fingerprint, and the batched per-image augmentation.

torchvision is imported lazily (``transforms``), so that ``import posbench`` and the synthetic
tasks work without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from posbench.errors import ConfigError
from posbench.tasks.image import uniform_int

#: Pixels of padding around an image for ``augment: crop_flip``.
CROP_PADDING = 4
#: Images resized at once (bounds the memory of resizing a whole split).
CHUNK = 4096


def transforms():
    """torchvision's ``transforms.v2``, imported when an image dataset is used (the vision extra)."""
    try:
        from torchvision.transforms import v2
    except ImportError:
        raise ConfigError("image datasets need the 'torchvision' package: pip install 'posbench[vision]'") from None
    return v2


@dataclass
class ImageData:
    """Decoded splits (uint8 ``[N, C, S0, S0]`` on CPU, labels ``[N]`` in ``0 .. K-1``) and what is
    derived from them, shared by every task built on the same data in a process."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    #: The raw label of each class, and the names of a ClassLabel column (or None).
    labels: list
    names: list[str] | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    def images(self, role: str, size: int, device: torch.device | str) -> Tensor:
        """The ``role`` split as uint8 ``[N, C, size, size]`` on ``device``: moved once per device,
        resized once per size (on the device, in chunks)."""
        device = torch.device(device)
        key = (role, size, str(device))
        if key not in self._cache:
            native = self.train_images if role == "train" else self.test_images
            native_key = (role, native.shape[-1], str(device))
            if native_key not in self._cache:
                self._cache[native_key] = native.to(device)
            if key != native_key:
                resize = transforms().Resize((size, size), antialias=True)
                self._cache[key] = torch.cat([resize(chunk) for chunk in self._cache[native_key].split(CHUNK)])
        return self._cache[key]

    def labels_on(self, role: str, device: torch.device | str) -> Tensor:
        """The ``role`` split's labels on ``device`` (moved once)."""
        return self.moved((role, "labels"), self.train_labels if role == "train" else self.test_labels, device)

    def moved(self, name: tuple, tensor: Tensor, device: torch.device | str) -> Tensor:
        """``tensor`` on ``device``, moved once and kept under ``name``."""
        key = (*name, str(torch.device(device)))
        if key not in self._cache:
            self._cache[key] = tensor.to(device)
        return self._cache[key]

    def stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the training images, scaled to [0, 1]."""
        if "stats" not in self._cache:
            total = torch.zeros(self.channels, dtype=torch.float64)
            squares = torch.zeros(self.channels, dtype=torch.float64)
            for chunk in self.train_images.split(CHUNK):
                pixels = chunk.double().div_(255).transpose(0, 1).flatten(1)
                total += pixels.sum(dim=1)
                squares += pixels.square().sum(dim=1)
            count = self.train_images[:, 0].numel()
            mean = total / count
            std = (squares / count - mean.square()).clamp_min(0).sqrt().clamp_min(1e-6)
            self._cache["stats"] = (mean.tolist(), std.tolist())
        return self._cache["stats"]

    def fingerprint(self) -> str:
        """A hash of every decoded image and label (and the label names)."""
        if "fingerprint" not in self._cache:
            digest = hashlib.sha256(json.dumps([self.labels, self.names], default=str).encode())
            for tensor in (self.train_images, self.train_labels, self.test_images, self.test_labels):
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.contiguous().numpy().tobytes())
            self._cache["fingerprint"] = digest.hexdigest()
        return self._cache["fingerprint"]


def crop_flip(images: Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> Tensor:
    """Each image of ``[B, C, S, S]`` cropped at a random place of itself padded by ``padding``
    zeros, and flipped horizontally with probability 1/2; one draw per image, from ``generator``."""
    batch, _, size, _ = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    top = uniform_int(0, 2 * padding, (batch,), generator)
    left = uniform_int(0, 2 * padding, (batch,), generator)
    flip = uniform_int(0, 1, (batch,), generator).bool()
    index = torch.arange(size, device=device)
    rows = top[:, None] + index
    cols = left[:, None] + torch.where(flip[:, None], size - 1 - index, index)
    which = torch.arange(batch, device=device)[:, None, None]
    return padded[which, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def arrays(images: list, mode: str) -> list[np.ndarray]:
    """PIL images as uint8 arrays ``[H, W, C]`` in ``mode``."""
    arrays = [np.asarray(image.convert(mode)) for image in images]
    return [a[:, :, None] if a.ndim == 2 else a for a in arrays]


def stack(arrays: list[np.ndarray], size: int | None) -> Tensor:
    """Arrays ``[H, W, C]`` -> uint8 ``[N, C, S, S]``: as they are (``size`` None), else each
    resized to ``size x size``."""
    if size is None:
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    resize = transforms().Resize((size, size), antialias=True)
    return torch.stack([resize(torch.from_numpy(a).permute(2, 0, 1)) for a in arrays])
