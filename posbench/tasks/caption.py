"""Caption: image captioning on real photos, a Hugging Face dataset by name or local files
(``model=captioner``, ``model=prefix_captioner``; needs ``posbench[vision,text]``).

Default data: Flickr8k (Hodosh, Young & Hockenmaier 2013, "Framing Image Description as a Ranking
Task: Data, Models and Evaluation Metrics", JAIR 47; hub ``jxie/flickr8k``: parquet, columns
``image`` and ``caption_0`` .. ``caption_4``, five captions per image, 6k/1k/1k
train/validation/test images). Any dataset with an image column and one or more caption columns
works (``task.dataset``, ``task.dataset_config``, ``task.split`` as for every dataset task).

Columns. ``image_column`` (None: the first of ``image``, ``img``, ``file_name``, ``filename``)
holds images (as ``datasets`` writes them, or ``{bytes, path}`` structs) or paths of image files
(strings; a relative path is read from the folder of the captions file that names it).
``caption_columns`` (None: detected on the train split, in this order): every column named
``caption_<k>`` (``caption_0``, ``caption_1``, ... in the order of k); else the first of
``captions``, ``caption``, ``sentences``, ``text``. A caption cell may be a string, a list of
strings, or a dict (or list of dicts) with a ``raw`` string (COCO/Karpathy ``sentences``); all of a
row's captions, over all its caption columns, describe its image. Rows that hold the same image
(the same encoded bytes, or the same file) are one image with all their captions, so a captions
file with one row per caption works as well as one row per image.

Local files (``task.data_files``), both read by ``posbench.data.hub.load_splits``:

* Hugging Face's imagefolder layout: a folder of images with a ``metadata.csv`` (or
  ``metadata.jsonl``/``metadata.parquet``) whose ``file_name`` column gives each image's path
  relative to the metadata file, and a caption column (several rows per image allowed; in jsonl a
  list of captions)::

      data/train/images/0.png
      data/train/images/1.png
      data/train/metadata.csv     file_name,caption
                                  images/0.png,a dog runs on the grass
                                  images/0.png,a brown dog running
                                  images/1.png,two children on a beach
      data/test/...               (the same)

  ``task.data_files=data`` reads it as a local dataset folder with the ``imagefolder`` builder,
  which takes the splits from the subfolders' names (``train``, ``test``, ``validation``; a folder
  without them is one split, ``train``, to slice with ``task.split``: slicing counts rows, so with
  one row per caption an image's captions may fall on both sides);
  ``task.data_files={train: data/train, test: data/test}`` reads each folder's metadata file as a
  table of file names and captions.
* Tables: csv, jsonl or parquet files (``{train: a.csv, test: b.csv}``): an image column of images
  or of paths (``image``, ``file_name``, ``filename``), and caption columns as above.

Data flow (at build time, so a wrong option, column or file fails before training; cached per
process, so the no-PE twin costs nothing): the splits are read -> rows grouped by image -> every
image decoded once to a uint8 tensor (upright by its EXIF orientation, as ``datasets`` decodes
images; a JPEG at a reduced scale still at least the largest scored size; ``channels``: 1 when
every image is greyscale, else 3; images of differing sizes each resized, aspect ratio not kept,
to the largest of ``image_size`` and ``eval_sizes``) -> captions
lower-cased if ``lowercase`` and whitespace-normalised -> a tokenizer (``tokenizer``: ``bpe``, the
default, byte-level BPE with ``vocab_size`` symbols, which keeps frequent words whole and captions
short; or ``char``) fitted on the training captions only and saved as ``tokenizer.json`` in the
run folder -> captions cut to ``max_caption_length`` tokens, then ``eos``. The images are held on
the training device, resized and normalised as in ``image_classification``
(``posbench.tasks.image_data``). No augmentation: a flip would falsify "left" and "right".

Training: every (image, caption) pair is one example (an image with five captions appears five
times), drawn uniformly from the run's generator. Evaluation: ``eval_size`` test images (all of
the split if it has no more, otherwise a subset chosen by ``eval_seed``), each with ALL its
captions as references, ``[B, R, T]`` (R: the most captions a test image has; a missing one is all
PAD), at ``image_size`` and at each of ``eval_sizes``. ``T`` (``target_len``) is the longest caption
after the cut plus ``eos``. Token accuracy and exact match are scored against the first reference,
corpus BLEU-4 (sacrebleu) of the decoded captions against all of them
(``posbench.tasks.captions``). The references are the captions as the task holds them: lower-cased
(with ``lowercase``), cut to ``max_caption_length`` tokens and decoded back to text, so the score
compares encodings within posbench and is not the published BLEU of a caption paper (other
tokenization, full-length references). Images without a caption are left out.

Chance: 1 / vocab_size per token (a uniform guess over the tokenizer's symbols).
What it measures: how the image side's and the text side's encodings serve describing a real
photo (BLEU, token accuracy); ``eval_sizes`` other than ``image_size`` measure resolution
generalization. Photos at 32 px are what fits a CPU: expect low absolute BLEU, compare encodings.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from torch import Tensor

from posbench.data import hub, require
from posbench.data.images import ImageData, arrays, stack
from posbench.data.tokenizer import TextTokenizer, fit_tokenizer
from posbench.errors import ConfigError, first_line
from posbench.schema import Lengths, NonEmpty, NonEmptyStr, PositiveInt, Seed
from posbench.tasks.base import PAD, TASKS, pack_answers, symbols_before_stop
from posbench.tasks.captions import CaptionTask
from posbench.tasks.image_classification import GREY_MODES
from posbench.tasks.image_data import ImageDataTask
from posbench.training.files import write_json

#: Caption columns looked for (after ``caption_<k>``) when ``task.caption_columns`` is not set.
CAPTION_COLUMNS = ("captions", "caption", "sentences", "text")
NUMBERED = re.compile(r"caption_(\d+)")
#: Hugging Face's imagefolder metadata files.
METADATA_FILES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")
#: The EXIF tag of an image's orientation (applied when decoding, as ``datasets`` does).
ORIENTATION = 0x0112
#: Rows read at once while grouping and decoding images.
ROWS = 256

CaptionColumns = Annotated[list[str], NonEmpty()]


@dataclass
class CaptionData(ImageData):
    """Decoded images (``ImageData``) with captions instead of labels: ``train_labels`` is the
    image of each training caption (a pair's index into ``train_images``), ``test_labels`` each test
    image's own index (the scored subset is chosen among them); ``train_captions [P, T]`` and
    ``test_captions [N, R, T]`` are encoded captions (words, ``eos``, PAD)."""

    train_captions: Tensor | None = None
    test_captions: Tensor | None = None
    tokenizer: TextTokenizer | None = None

    def captions_on(self, device: torch.device | str) -> Tensor:
        """The training captions on ``device`` (moved once)."""
        return self.moved(("train", "captions"), self.train_captions, device)

    def fingerprint(self) -> str:
        """A hash of every decoded image, the fitted tokenizer and every encoded caption."""
        if "caption_fingerprint" not in self._cache:
            digest = hashlib.sha256(super().fingerprint().encode())
            digest.update(self.tokenizer.to_str().encode())
            for tensor in (self.train_captions, self.test_captions):
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.contiguous().numpy().tobytes())
            self._cache["caption_fingerprint"] = digest.hexdigest()
        return self._cache["caption_fingerprint"]


def _texts(value) -> list[str]:
    """The caption strings of one cell: a string, a list of them, or dicts with a ``raw`` string."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return _texts(value.get("raw"))
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in _texts(item)]
    return []


def _metadata_in(folder: str) -> list[str]:
    """The imagefolder metadata files under ``folder`` (sorted)."""
    return sorted(
        os.path.join(root, name) for root, _, names in os.walk(folder) for name in names if name in METADATA_FILES
    )


def _metadata_or(paths) -> list:
    """``paths`` (one or a list) with each folder that holds imagefolder metadata files replaced by them."""
    found = []
    for path in paths if isinstance(paths, (list, tuple)) else [paths]:
        folder = _folder(path)
        found += (_metadata_in(folder) if folder else []) or [path]
    return found


def _folder(path) -> str | None:
    """``path`` as an absolute folder, or None if it is not one."""
    if not isinstance(path, (str, Path)):
        return None
    absolute = os.path.abspath(os.path.expanduser(str(path)))
    return absolute if os.path.isdir(absolute) else None


@TASKS.register("caption")
class Caption(CaptionTask, ImageDataTask):
    description = "caption real photos (default Flickr8k, 5 references per image; BLEU-4, token accuracy)"
    #: Image columns looked for when ``task.image_column`` is not set (the last two hold paths).
    image_columns = ("image", "img", "file_name", "filename")

    def __init__(
        self,
        dataset: str | None = "jxie/flickr8k",
        dataset_config: str | None = None,
        data_files=None,
        split: dict | None = None,
        image_column: NonEmptyStr | None = None,
        caption_columns: CaptionColumns | None = None,
        tokenizer: Literal["bpe", "char"] = "bpe",
        vocab_size: PositiveInt = 2000,
        max_caption_length: PositiveInt = 24,
        lowercase: bool = True,
        image_size: PositiveInt = 32,
        eval_sizes: Lengths = (24, 32, 48),
        eval_size: PositiveInt = 1000,
        eval_seed: Seed = 1234,
    ):
        """``dataset``/``dataset_config``: a Hugging Face hub dataset; ``data_files``: local files
        instead (an imagefolder with ``metadata.csv``/``.jsonl``, or csv/jsonl/parquet tables; a
        path, list or ``{split: path}``); ``split``: ``{train: ..., test: ...}`` dataset splits,
        slicing allowed; ``image_column``: images or paths of images (None: ``image``, ``img``,
        ``file_name`` or ``filename``); ``caption_columns``: the columns holding captions (None:
        detected, see the module docstring); ``tokenizer``: ``bpe`` or ``char``; ``vocab_size``:
        the BPE size (at least 256; ignored by ``char``), replaced by the fitted size;
        ``max_caption_length``: captions are cut to this many tokens; ``lowercase``: lower-case
        every caption."""
        self.dataset, self.dataset_config, self.data_files = dataset, dataset_config, data_files
        self.split = hub.split_mapping(split)
        self.image_column = image_column
        self.caption_columns = None if caption_columns is None else [str(name) for name in caption_columns]
        self.tokenizer_kind, self.requested_vocab = tokenizer, int(vocab_size)
        self.max_caption_length, self.lowercase = int(max_caption_length), bool(lowercase)
        super().__init__(image_size=image_size, eval_sizes=eval_sizes, eval_size=eval_size, eval_seed=eval_seed)
        self.tokenizer: TextTokenizer = self.data.tokenizer
        self.classes = self.vocab_size = self.tokenizer.vocab_size
        self.references = int(self.data.test_captions.shape[1])

    @property
    def where(self) -> str:
        return hub.describe(self.dataset, self.data_files)

    # ---- loading -----------------------------------------------------------------------------
    def data_key(self) -> list:
        source = [None, None] if self.data_files is not None else [self.dataset, self.dataset_config]
        folders = [self.data_files] if _folder(self.data_files) else []
        if isinstance(self.data_files, dict):
            folders = list(self.data_files.values())
        elif isinstance(self.data_files, (list, tuple)):
            folders = list(self.data_files)
        metadata = [
            (path, os.stat(path).st_size, os.stat(path).st_mtime_ns)
            for folder in map(_folder, folders) if folder for path in _metadata_in(folder)
        ]
        resized = max(self.image_size, *self.eval_sizes)
        return [
            source, hub.files_signature(self.data_files), metadata, self.split, self.image_column,
            self.caption_columns, self.tokenizer_kind, self.requested_vocab, self.max_caption_length,
            self.lowercase, resized,
        ]

    def _splits(self) -> tuple[dict, dict[str, list[str]]]:
        """The loaded ``{train, test}`` splits and, per role, the folders a relative image path is
        read from (its captions files' folders, a local dataset folder; then the working folder)."""
        folder = _folder(self.data_files)
        if folder and _metadata_in(folder):  # imagefolder with metadata: datasets infers the splits
            try:
                splits = hub.load_splits(folder, None, None, self.split)
            except ConfigError as err:
                message = str(err).replace(hub.describe(folder, None), self.where)
                if "is not a split of" in message:
                    message += (
                        "; a folder without train/test subfolders is one split named 'train': slice it, "
                        "e.g. task.split={train: 'train[:90%]', test: 'train[90%:]'}"
                    )
                raise ConfigError(message) from None
            return splits, {role: [] for role in hub.ROLES}
        files = self.data_files
        if isinstance(files, dict):  # a folder with a metadata file stands for that file
            files = {split: _metadata_or(paths) for split, paths in files.items()}
        elif isinstance(files, (list, tuple)):
            files = _metadata_or(files)
        splits = hub.load_splits(self.dataset, self.dataset_config, files, self.split)
        resolved = hub.resolve_data_files(files)[1] if files is not None else {}
        local = _folder(self.dataset) if files is None else None
        bases = {}
        for role in hub.ROLES:
            paths = resolved.get(self.split[role].split("[")[0], [])
            bases[role] = [*dict.fromkeys(os.path.dirname(path) for path in paths), *([local] if local else [])]
        return splits, bases

    def load(self) -> CaptionData:
        splits, bases = self._splits()
        image_column = self.find_image_column(splits["train"])
        caption_columns = self._caption_columns(splits["train"])
        read = {role: self._read(splits[role], role, image_column, caption_columns, bases[role]) for role in hub.ROLES}
        headers = [group["header"] for role in hub.ROLES for group in read[role]["groups"]]
        mode = "L" if {mode for _, mode in headers} <= set(GREY_MODES) else "RGB"
        size = self.stored_size({shape for shape, _ in headers})
        images = {role: self._decode(read[role], role, image_column, mode, size) for role in hub.ROLES}

        captions = {role: [group["captions"] for group in read[role]["groups"]] for role in hub.ROLES}
        train_texts = [text for texts in captions["train"] for text in texts]
        tokenizer = fit_tokenizer(self.tokenizer_kind, train_texts, self.requested_vocab)
        eos = tokenizer.vocab_size

        def encode(texts: list[str]) -> list[list[int]]:
            return [ids[: self.max_caption_length] for ids in tokenizer.encode_batch(texts)]

        train = encode(train_texts)
        test = [encode(texts) for texts in captions["test"]]
        width = 1 + max(len(ids) for ids in [*train, *(ids for refs in test for ids in refs)])
        image_of = torch.tensor([k for k, texts in enumerate(captions["train"]) for _ in texts])
        test_captions = torch.full((len(test), max(map(len, test)), width), PAD, dtype=torch.long)
        for k, refs in enumerate(test):
            test_captions[k, : len(refs)] = pack_answers(refs, width, eos, "cpu")
        return CaptionData(
            images["train"], image_of, images["test"], torch.arange(len(test)), labels=[],
            train_captions=pack_answers(train, width, eos, "cpu"), test_captions=test_captions, tokenizer=tokenizer,
        )

    def _caption_columns(self, table) -> list[str]:
        if self.caption_columns is not None:
            return self.caption_columns
        names = list(table.column_names)
        numbered = sorted((int(m.group(1)), name) for name in names if (m := NUMBERED.fullmatch(name)))
        if numbered:
            return [name for _, name in numbered]
        for name in CAPTION_COLUMNS:
            if name in names:
                return [name]
        raise ConfigError(
            f"{self.where} has no caption column (caption_0, caption_1, ... or one of {', '.join(CAPTION_COLUMNS)}); "
            f"set task.caption_columns; available columns: {', '.join(names)}"
        )

    def _read(self, table, role: str, image_column: str, caption_columns: list[str], bases: list[str]) -> dict:
        """One split grouped by image, in order of first row: the undecoded image ``column`` and,
        per image, ``groups`` of its first ``row``, its file (``path``, when it has no bytes), its
        ``header`` (size, mode) and its normalised captions. Images without a caption are left out."""
        hub.require_columns(table, {"task.image_column": image_column}, role, self.where)
        for name in caption_columns:
            hub.require_columns(table, {"task.caption_columns": name}, role, self.where)
        rows: list[list[str]] = [[] for _ in range(len(table))]
        for name in caption_columns:
            texts = [[self._normalised(text) for text in _texts(value)] for value in table[name]]
            if role == "train" and not any(map(any, texts)):
                raise ConfigError(
                    f"task.caption_columns={name!r} of the {role} split of {self.where} holds no text "
                    f"({table.features[name]}); available columns: {', '.join(table.column_names)}"
                )
            for row, found in zip(rows, texts):
                row.extend(text for text in found if text)
        column = self._image_values(table, role, image_column)
        index: dict[str, int] = {}
        groups: list[dict] = []
        for start in range(0, len(column), ROWS):
            values = column[start : start + ROWS][image_column]
            for row, (value, texts) in enumerate(zip(values, rows[start : start + ROWS]), start):
                if not texts or value is None or not (value.get("bytes") or value.get("path")):
                    continue
                value = self._located(value, role, image_column, bases)
                key = hashlib.sha1(value["bytes"]).hexdigest() if value["bytes"] else value["path"]
                if key not in index:
                    index[key] = len(groups)
                    header = self._header(value, role, image_column)
                    groups.append({"row": row, "path": value["path"], "header": header, "captions": []})
                groups[index[key]]["captions"] += texts
        if not groups:
            raise ConfigError(f"the {role} split of {self.where} has no image with a caption")
        return {"column": column, "groups": groups}

    def _normalised(self, text: str) -> str:
        text = " ".join(text.split())
        return text.lower() if self.lowercase else text

    def _image_values(self, table, role: str, column: str):
        """The image column alone, undecoded (``{bytes, path}`` per row)."""
        datasets = require("datasets", "image data loading")
        table = table.select_columns([column])
        try:
            return table.cast_column(column, datasets.Image(decode=False))
        except Exception:
            raise ConfigError(
                f"task.image_column={column!r} of the {role} split of {self.where} does not hold images "
                f"({table.features[column]})"
            ) from None

    def _located(self, value: dict, role: str, column: str, bases: list[str]) -> dict:
        """``value`` with a relative path made absolute (the first base folder that has it)."""
        if value.get("bytes"):
            return {"bytes": value["bytes"], "path": None}
        path = os.path.expanduser(value["path"])
        for base in [*bases, os.getcwd()] if not os.path.isabs(path) else [""]:
            candidate = os.path.join(base, path)
            if os.path.isfile(candidate):
                return {"bytes": None, "path": os.path.abspath(candidate)}
        raise ConfigError(
            f"task.image_column={column!r} of the {role} split of {self.where} does not hold images: no image file "
            f"{value['path']!r} (a relative path is read from the folder of its captions file)"
        )

    def _open(self, value: dict, role: str, column: str):
        from PIL import Image

        try:
            return Image.open(io.BytesIO(value["bytes"]) if value["bytes"] else value["path"])
        except Exception as err:
            what = value["path"] or "an image's bytes"
            raise ConfigError(
                f"task.image_column={column!r} of the {role} split of {self.where} does not hold images: "
                f"cannot read {what!r} ({type(err).__name__}: {first_line(err)})"
            ) from None

    def _header(self, value: dict, role: str, column: str) -> tuple[tuple[int, int], str]:
        with self._open(value, role, column) as image:
            return image.size, image.mode

    def _decode(self, read: dict, role: str, column: str, mode: str, size: int | None) -> Tensor:
        """uint8 ``[N, C, S, S]``, one per image group: decoded in ``mode`` (a JPEG at a reduced
        scale still at least ``size``), as it is (``size`` None) or resized to ``size x size``.
        Images stored as bytes are read again from the table, ``ROWS`` at a time."""
        from PIL import ImageOps

        decoded = []
        groups = read["groups"]
        for start in range(0, len(groups), ROWS):
            chunk = groups[start : start + ROWS]
            stored = [group["row"] for group in chunk if group["path"] is None]
            blobs = iter(read["column"].select(stored)[column] if stored else [])
            for group in chunk:
                path = group["path"]
                value = {"bytes": None, "path": path} if path else {"bytes": next(blobs)["bytes"], "path": None}
                with self._open(value, role, column) as image:
                    if size is not None:
                        image.draft(None, (size, size))
                    if image.getexif().get(ORIENTATION) is not None:  # as datasets decodes images
                        image = ImageOps.exif_transpose(image)
                    decoded.append(stack([array.copy() for array in arrays([image], mode)], size)[0])  # writable
        return torch.stack(decoded)

    # ---- the task contract -------------------------------------------------------------------
    @property
    def longest_caption(self) -> int:
        return self.data.train_captions.shape[1] - 1

    def decode(self, symbols) -> str:
        return self.tokenizer.decode(symbols_before_stop(symbols, self.vocab_size))

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Random training (image, caption) pairs, uniform over the pairs, from ``generator``."""
        device = generator.device
        captions = self.data.captions_on(device)
        index = torch.randint(0, captions.shape[0], (batch_size,), generator=generator, device=device)
        image = self.data.labels_on("train", device)[index]
        return self.normalise(self.data.images("train", size, device)[image]), captions[index]

    def scored(self, size: int, device):
        """The scored test images at ``size``, normalised, and all their captions ``[n, R, T]``."""
        index = self._scored.to(device)
        images = self.data.images("test", size, device)[index]
        return self.normalise(images), self.data.test_captions.to(device)[index]

    def held_bytes(self) -> int:
        """The images (``ImageDataTask.held_bytes``) and the training captions with their image index."""
        return super().held_bytes() + 8 * (self.data.train_captions.numel() + self.data.train_labels.numel())

    def save(self, folder) -> None:
        """``tokenizer.json`` (the fitted tokenizer) and ``images.json`` (channels, and the
        normalisation applied to the images)."""
        self.tokenizer.save(folder)
        write_json(Path(folder) / "images.json", {"channels": self.channels, "mean": self.mean, "std": self.std})
