"""What the captioners turn an image into: a grid of tokens, one per ``patch_size x patch_size``
pixels, from one of two stems (``model.image_encoder``):

* ``vit``: a strided convolution embedding each patch (Dosovitskiy et al. 2021, eq. 1), as
  ``model=vit`` does. A token sees its own patch only.
* ``cnn``: a ResNet-18-style backbone trained from scratch (He et al. 2016; torchvision's
  ``BasicBlock``, no weights downloaded): a 3x3 convolution, then ``log2(patch_size)`` stages of
  two residual blocks, each stage halving the resolution and doubling the width (from
  ``cnn_width``), then a 1x1 convolution to ``d_model``. Its final feature map is the grid of
  image tokens, as in the classic CNN + Transformer captioners. **A CNN is not position-free**:
  each token sees the 3x3 neighbourhoods of its neighbours (its receptive field spans several
  patches) and zero padding tells tokens at the border from the others (Islam et al. 2020, "How
  Much Position Information Do Convolutional Neural Networks Encode?"), so ``image_encoding=none``
  on it removes the explicit encoding, not every position signal.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from posbench.errors import ConfigError

ImageStem = Literal["vit", "cnn"]


def build_stem(kind: str, channels: int, d_model: int, patch: int, cnn_width: int) -> nn.Module:
    """A module ``[B, channels, S, S] -> [B, d_model, S / patch, S / patch]``."""
    if kind == "vit":
        return nn.Conv2d(channels, d_model, kernel_size=patch, stride=patch)
    return ResNetStem(channels, d_model, patch, cnn_width)


def stem_cost(kind: str, channels: int, d_model: int, size: int, patch: int, cnn_width: int) -> tuple[int, int, int]:
    """Rough ``(saved, peak, parameters)`` of a stem for one image of side ``size``: the values it
    leaves for the backward pass, the largest map alive at once without one (evaluation), and its
    weights (the memory estimate, before anything is built)."""
    tokens = d_model * (size // patch) ** 2
    if kind == "vit":
        return tokens, tokens, channels * patch * patch * d_model
    stages = max(patch.bit_length() - 1, 0)
    saved, parameters = 3 * cnn_width * size * size, 9 * channels * cnn_width
    for stage in range(1, stages + 1):
        planes, side = cnn_width * 2**stage, size // 2**stage
        saved += 13 * planes * side * side  # two BasicBlocks save about six maps each, plus the shortcut
        parameters += 4 * 9 * planes * planes
    return saved + tokens, 2 * cnn_width * size * size, parameters + cnn_width * 2**stages * d_model


class ResNetStem(nn.Sequential):
    """ResNet-18-style feature extractor with an output stride of ``patch`` (a power of 2)."""

    def __init__(self, channels: int, d_model: int, patch: int, width: int):
        stages = patch.bit_length() - 1
        if patch != 1 << stages:
            raise ConfigError(
                f"model.patch_size={patch} must be a power of 2 with model.image_encoder=cnn "
                "(each stage of the CNN halves the resolution)"
            )
        try:
            from torchvision.models.resnet import BasicBlock
        except ImportError:
            raise ConfigError("model.image_encoder=cnn needs the 'torchvision' package: pip install 'posbench[vision]'") from None
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        inplanes = width
        for stage in range(stages):
            planes = width * 2 ** (stage + 1)
            shortcut = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=2, bias=False), nn.BatchNorm2d(planes))
            layers += [BasicBlock(inplanes, planes, stride=2, downsample=shortcut), BasicBlock(planes, planes)]
            inplanes = planes
        layers.append(nn.Conv2d(inplanes, d_model, kernel_size=1))
        super().__init__(*layers)


def grid_tokens(features: Tensor) -> Tensor:
    """A stem's ``[B, d, G, G]`` feature map as ``[B, G * G, d]`` tokens in raster order."""
    return features.flatten(2).transpose(1, 2)


class Stemmed:
    """What the captioners share about their stem (``self.stem``, built with ``build_stem``): the
    image's tokens, and its cost from the config alone (``SequenceModel.stem_cost``)."""

    stem: nn.Module

    def image_tokens(self, images: Tensor) -> Tensor:
        """Images ``[B, C, S, S]`` -> their tokens ``[B, (S / patch)^2, d_model]`` in raster order."""
        return grid_tokens(self.stem(images))

    @classmethod
    def stem_cost(cls, section: dict, channels: int, size: int) -> tuple[int, int, int]:
        return stem_cost(
            section["image_encoder"], channels, section["d_model"], size, section["patch_size"], section["cnn_width"]
        )
