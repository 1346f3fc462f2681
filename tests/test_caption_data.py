"""task=caption on tiny local datasets: Hugging Face's imagefolder layout (metadata.csv/jsonl),
a parquet file shaped like the hub's Flickr8k (image + caption_0..caption_4), jsonl tables with
list-valued captions, the references used by BLEU, and the one-line refusals. Nothing here
downloads: every dataset is a few tiny PNGs written into tmp_path, read through the same
``posbench.data.hub.load_splits`` path as a hub name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose
from posbench import experiment
from posbench.cli import CONFIG_DIR
from posbench.data.tokenizer import TextTokenizer
from posbench.errors import ConfigError
from posbench.schema import options
from posbench.tasks import TASKS
from posbench.tasks.base import PAD

datasets = pytest.importorskip("datasets")
pytest.importorskip("sacrebleu")
from PIL import Image  # noqa: E402 (after the importorskip)

COLOURS = {
    "red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220), "yellow": (220, 220, 20),
    "cyan": (20, 210, 210), "purple": (150, 20, 170), "white": (235, 235, 235), "black": (15, 15, 15),
    "orange": (240, 140, 10), "pink": (240, 150, 190), "grey": (128, 128, 128), "brown": (120, 70, 20),
}
NAMES = list(COLOURS)


def picture(colour: str, seed: int, size: int = 16) -> Image.Image:
    """A noisy square of one colour."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(COLOURS[colour]) + rng.integers(-10, 10, (size, size, 3)), 0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def captions_of(colour: str, count: int) -> list[str]:
    """``count`` distinct captions, each naming ``colour`` (mixed case and spacing, lower-cased later)."""
    forms = [
        "A {} square  on a plain field", "the picture is {} all over", "a small {} tile seen from above",
        "{} paint fills the whole frame", "nothing but {} in this photo",
    ]
    return [form.format(colour) for form in forms[:count]]


def named_colour(image: torch.Tensor) -> str:
    """The colour of ``COLOURS`` nearest an image's mean pixel (uint8 ``[3, S, S]``)."""
    mean = image.float().mean(dim=(1, 2))
    return min(NAMES, key=lambda name: float((torch.tensor(COLOURS[name], dtype=torch.float) - mean).norm()))


def imagefolder(root, colours: dict[str, list[str]], metadata: str = "csv") -> str:
    """Hugging Face's imagefolder layout: ``root/<split>/images/<k>.png`` and ``root/<split>/metadata.csv``
    (one row per caption: 3, 2, 3, 2, ... captions per image) or ``metadata.jsonl`` (a list per image)."""
    for split, names in colours.items():
        folder = root / split
        (folder / "images").mkdir(parents=True)
        lines = []
        for k, colour in enumerate(names):
            picture(colour, 100 * len(split) + k).save(folder / "images" / f"{k}.png")
            texts = captions_of(colour, 3 - k % 2)
            if metadata == "csv":
                lines += [f"images/{k}.png,{text}" for text in texts]
            else:
                lines.append(json.dumps({"file_name": f"images/{k}.png", "caption": texts}))
        header = ["file_name,caption"] if metadata == "csv" else []
        (folder / f"metadata.{metadata}").write_text("\n".join(header + lines) + "\n")
    return str(root)


SPLITS = {"train": NAMES[:8], "test": NAMES[8:]}


@pytest.fixture
def folder(tmp_path):
    return imagefolder(tmp_path / "data", SPLITS)


def flickr_parquet(path, colours: list[str], seed: int) -> str:
    """A parquet file as the hub's Flickr8k holds it: an ``image`` column (``{bytes, path}`` with
    the Image feature) and ``caption_0`` .. ``caption_4``, five captions per image."""
    features = datasets.Features(
        {"image": datasets.Image(), **{f"caption_{k}": datasets.Value("string") for k in range(5)}}
    )
    data = {"image": [picture(colour, seed + i) for i, colour in enumerate(colours)]}
    for k in range(5):
        data[f"caption_{k}"] = [captions_of(colour, 5)[k] for colour in colours]
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))
    return str(path)


@pytest.fixture
def parquet_files(tmp_path):
    return {
        "train": flickr_parquet(tmp_path / "train.parquet", NAMES[:8], 0),
        "test": flickr_parquet(tmp_path / "test.parquet", NAMES[8:], 50),
    }


def make(**kw):
    kw = {"name": "caption", "image_size": 16, "eval_sizes": [16, 24], "vocab_size": 300, **kw}
    return TASKS.build(kw)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- the imagefolder layout --------------------------------------------------------------------
def test_imagefolder_rows_are_grouped_by_image_with_all_their_captions(folder):
    task = make(data_files=folder)
    data = task.data
    assert task.inputs == "captioned images" and task.dataset_backed and task.channels == 3
    assert data.train_images.shape == (8, 3, 16, 16) and data.test_images.shape == (4, 3, 16, 16)
    assert task.training_examples() == 3 + 2 + 3 + 2 + 3 + 2 + 3 + 2  # one example per (image, caption)
    assert task.references == 3 and task.chance == pytest.approx(1 / task.vocab_size)
    assert task.model_inputs() == {"channels": 3, "image_size": 16, "eos": task.vocab_size}
    assert task.target_len(16) == task.longest_caption + 1 == data.train_captions.shape[1]
    for k, colour in enumerate(SPLITS["train"]):  # pixels and captions stay paired
        assert named_colour(data.train_images[k]) == colour
    images, captions = task.sample(64, 16, torch.Generator().manual_seed(0))
    assert images.shape == (64, 3, 16, 16) and images.dtype == torch.float32 and captions.shape[0] == 64
    raw = images * torch.tensor(task.std)[:, None, None] + torch.tensor(task.mean)[:, None, None]
    for image, caption in zip(raw, captions):
        text = task.decode(caption)
        assert text == text.lower() and "  " not in text and named_colour(image * 255) in text.split()
    [(test, references)] = task.test_set("cpu")
    assert test.shape == (4, 3, 16, 16) and references.shape == (4, 3, task.target_len(16))
    for k, colour in enumerate(SPLITS["test"]):
        expected = [" ".join(text.lower().split()) for text in captions_of(colour, 3 - k % 2)]
        assert [task.decode(ref) for ref in references[k, : len(expected)]] == expected
        assert (references[k, len(expected) :] == PAD).all()  # a missing reference is all PAD
    assert {size: batch[0][0].shape[-1] for size, batch in task.length_sets("cpu").items()} == {16: 16, 24: 24}


def test_imagefolder_trains_end_to_end_through_the_cli(tmp_path, folder):
    out = subprocess.run(
        [
            sys.executable, "-m", "posbench", "train", "model=captioner", "task=caption", "encoding=rope",
            f"task.data_files={folder}", "task.image_size=16", "task.eval_sizes=[16,24]", "task.eval_size=4",
            "task.vocab_size=300", "trainer.max_steps=4", "trainer.eval_every=2", "trainer.log_every=1",
            "trainer.checkpoint_every=2", "trainer.device=cpu", "trainer.threads=1", "model.d_model=16",
            "model.layers=1", "model.heads=2", "model.image_layers=1",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    [path] = list((tmp_path / "outputs" / "runs").rglob("results.json"))
    results = json.loads(path.read_text())
    assert results["status"] == "ok" and results["task"] == "caption" and results["model"] == "captioner"
    assert {"acc", "seq_acc", "bleu"} <= set(results["metrics"]) and 0.0 <= results["metrics"]["bleu"] <= 100.0
    assert sorted(results["sizes"], key=int) == ["16", "24"] and "bleu" in results["sizes"]["24"]
    assert results["nope"] is not None and "bleu" in results["nope"]["metrics"]
    tokenizer = TextTokenizer.load(path.parent)
    assert tokenizer.kind == "bpe" and results["chance"] == pytest.approx(1 / tokenizer.vocab_size)
    assert json.loads((path.parent / "images.json").read_text())["channels"] == 3


def test_prefix_captioner_runs_on_a_parquet_caption_set(tmp_path, parquet_files):
    files = "{" + ",".join(f"{split}:'{path}'" for split, path in parquet_files.items()) + "}"
    cfg = compose(
        [
            "model=prefix_captioner", "task=caption", "encoding=rope", "compare_nope=false", f"task.data_files={files}",
            "task.image_size=16", "task.eval_sizes=[16]", "task.eval_size=4", "task.tokenizer=char",
            "task.max_caption_length=12", "trainer.max_steps=2", "trainer.eval_every=2", "trainer.log_every=1",
            "trainer.checkpoint_every=2", "trainer.device=cpu", "trainer.threads=1", "model.d_model=16",
            "model.layers=1", "model.heads=2",
        ],
        tmp_path / "twins",
    )
    results = experiment.run(cfg, tmp_path / "run")
    assert results["status"] == "ok" and {"acc", "seq_acc", "bleu"} <= set(results["metrics"])
    assert TextTokenizer.load(tmp_path / "run").kind == "char"


# ---- a parquet file shaped like the hub's Flickr8k ---------------------------------------------
def test_flickr8k_shaped_parquet_scores_bleu_against_all_five_references(parquet_files):
    task = make(data_files=parquet_files)
    assert task.data.train_images.shape == (8, 3, 16, 16) and task.training_examples() == 40
    [(_, references)] = task.test_set("cpu")
    assert references.shape == (4, 5, task.target_len(16)) and task.references == 5
    for k, colour in enumerate(NAMES[8:]):  # caption_0 .. caption_4 in order, lower-cased
        assert [task.decode(ref) for ref in references[k]] == [
            " ".join(text.lower().split()) for text in captions_of(colour, 5)
        ]
    third = references[:, 2].clone()  # a prediction equal to each image's third caption (eos, then PAD)
    assert task.corpus_metrics([third], [references])["bleu"] == pytest.approx(100.0)
    assert task.corpus_metrics([third], [references[:, :1]])["bleu"] < 50.0  # not against the first alone
    subset = make(data_files=parquet_files, eval_size=3, split={"test": "test[:3]"})
    assert subset.test_set("cpu")[0][1].shape[0] == 3 and subset.data.test_images.shape[0] == 3


def test_an_image_in_several_rows_is_one_image(tmp_path):
    """Rows holding the same image bytes (one row per caption) are grouped, as files are."""
    rows = [(colour, text) for colour in NAMES[:3] for text in captions_of(colour, 2)]
    table = {"image": [picture(colour, NAMES.index(colour)) for colour, _ in rows], "caption": [t for _, t in rows]}
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(tmp_path / "rows.parquet"))
    task = make(data_files=str(tmp_path / "rows.parquet"), split={"train": "train", "test": "train"})
    assert task.data.train_images.shape[0] == 3 and task.training_examples() == 6 and task.references == 2


def test_photos_of_other_shapes_are_resized_and_turned_upright(tmp_path):
    """JPEGs of differing, non-square sizes are resized to the largest scored size, after their
    EXIF orientation is applied (as ``datasets`` decodes images)."""
    (tmp_path / "photos").mkdir()
    rows = []
    for k in range(4):
        pixels = np.zeros((20, 40 + 8 * k, 3), np.uint8)
        half = pixels.shape[1] // 2
        pixels[:, :half], pixels[:, half:] = COLOURS["red"], COLOURS["blue"]  # red left, blue right
        exif = Image.Exif()
        exif[0x0112] = 6  # shown rotated 90 degrees clockwise: red on top
        Image.fromarray(pixels).save(tmp_path / "photos" / f"{k}.jpg", quality=95, exif=exif)
        rows.append(f"photos/{k}.jpg,a red half above a blue half")
    (tmp_path / "captions.csv").write_text("filename,caption\n" + "\n".join(rows) + "\n")
    task = make(data_files=str(tmp_path / "captions.csv"), split={"train": "train", "test": "train"}, tokenizer="char")
    images = task.data.train_images
    assert images.shape == (4, 3, 24, 24) and task.data.test_images.shape == (4, 3, 24, 24)
    assert all(named_colour(image[:, :10]) == "red" and named_colour(image[:, 14:]) == "blue" for image in images)


# ---- jsonl: list-valued captions ---------------------------------------------------------------
def test_jsonl_tables_with_lists_of_captions_and_relative_paths(tmp_path):
    for split, names in SPLITS.items():
        (tmp_path / split / "pics").mkdir(parents=True)
        lines = []
        for k, colour in enumerate(names):
            picture(colour, k).save(tmp_path / split / "pics" / f"{colour}.png")
            lines.append(json.dumps({"image": f"pics/{colour}.png", "captions": captions_of(colour, 1 + k % 3)}))
        (tmp_path / split / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    files = {split: str(tmp_path / split / f"{split}.jsonl") for split in SPLITS}
    task = make(data_files=files, tokenizer="char", lowercase=False)
    assert task.training_examples() == sum(1 + k % 3 for k in range(8)) and task.references == 3
    [(_, references)] = task.test_set("cpu")
    assert task.decode(references[1, 1]) == captions_of(SPLITS["test"][1], 2)[1][: task.max_caption_length]
    assert (references[0, 1:] == PAD).all() and (references[1, 2] == PAD).all()
    for k, colour in enumerate(SPLITS["train"]):  # paths resolved from the jsonl's folder
        assert named_colour(task.data.train_images[k]) == colour


def test_metadata_jsonl_folders_given_per_split(tmp_path):
    root = imagefolder(tmp_path / "data", SPLITS, metadata="jsonl")
    task = make(data_files={"train": f"{root}/train", "test": f"{root}/test"})
    assert task.training_examples() == 20 and task.references == 3
    whole = make(data_files=root)  # the same layout read by the imagefolder builder
    assert whole.data_fingerprint() == task.data_fingerprint()


# ---- determinism, fingerprint, saved files -----------------------------------------------------
def test_builds_are_cached_and_the_fingerprint_follows_the_captions(folder, tmp_path):
    task, twin = make(data_files=folder), make(data_files=folder)
    assert twin.data is task.data and twin.data_fingerprint() == task.data_fingerprint()
    a = task.sample(16, 16, torch.Generator().manual_seed(3))
    b = twin.sample(16, 16, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert make(data_files=folder, lowercase=False).data_fingerprint() != task.data_fingerprint()
    assert task.held_bytes() > 3 * 8 * 16 * 16 and task.example_bytes(16) == 4 * 3 * 256 + 8 * 3 * task.target_len(16)
    metadata = os.path.join(folder, "train", "metadata.csv")
    with open(metadata, "a") as handle:
        handle.write("images/0.png,one more caption for the red square\n")
    assert make(data_files=folder).data_fingerprint() != task.data_fingerprint()
    task.save(tmp_path / "run")
    assert TextTokenizer.load(tmp_path / "run").to_str() == task.tokenizer.to_str()


def test_yaml_holds_every_option_with_its_default():
    yaml = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "task" / "caption.yaml"), resolve=True)
    declared = {key: option.default for key, option in options(TASKS.get("caption")).items()}
    assert yaml.pop("name") == "caption" and yaml.pop("split") == {"train": "train", "test": "test"}
    assert yaml.keys() == declared.keys() - {"split"}
    for key, default in declared.items():
        if key != "split":
            assert yaml[key] == (list(default) if isinstance(default, tuple) else default), key


# ---- refusals ----------------------------------------------------------------------------------
def test_missing_or_empty_caption_columns_name_the_available_columns(parquet_files, tmp_path):
    with pytest.raises(ConfigError) as err:
        make(data_files=parquet_files, caption_columns=["sentence"])
    assert "task.caption_columns='sentence' is not a column" in one_line(err)
    assert "available columns: image, caption_0, caption_1, caption_2, caption_3, caption_4" in one_line(err)
    labelled = tmp_path / "labelled"  # an imagefolder without metadata: labels from folder names
    for label in ("cats", "dogs"):
        (labelled / label).mkdir(parents=True)
        picture("red", 0).save(labelled / label / "0.png")
    with pytest.raises(ConfigError) as err:
        make(data_files=str(labelled), split={"train": "train", "test": "train"})
    assert "has no caption column" in one_line(err) and "available columns: image, label" in one_line(err)
    with pytest.raises(ConfigError) as err:
        make(data_files=str(labelled), split={"train": "train", "test": "train"}, caption_columns=["label"])
    assert "task.caption_columns='label'" in one_line(err) and "holds no text" in one_line(err)
    assert "available columns: image, label" in one_line(err)


def test_an_image_column_without_images_is_refused(parquet_files, tmp_path):
    with pytest.raises(ConfigError) as err:
        make(data_files=parquet_files, image_column="caption_0")
    assert "task.image_column='caption_0'" in one_line(err) and "does not hold images" in one_line(err)
    with pytest.raises(ConfigError) as err:
        make(data_files=parquet_files, image_column="picture")
    assert "task.image_column='picture' is not a column" in one_line(err)
    (tmp_path / "no-image.csv").write_text("image,caption\n12,a red square\n")
    with pytest.raises(ConfigError) as err:
        make(data_files=str(tmp_path / "no-image.csv"), split={"train": "train", "test": "train"})
    assert "does not hold images" in one_line(err)


def test_other_bad_data_and_options_are_one_line(folder, tmp_path):
    with pytest.raises(ConfigError) as err:
        make(data_files=folder, vocab_size=100)
    assert "task.vocab_size=100 is below the 256 byte symbols" in one_line(err)
    with pytest.raises(ConfigError) as err:
        make(data_files=folder, tokenizer="word")
    assert "task.tokenizer=word must be one of bpe, char" in one_line(err)
    with pytest.raises(ConfigError) as err:
        make(data_files=folder, caption_columns=[])
    assert "task.caption_columns=[] must not be empty" in one_line(err)
    blank = tmp_path / "blank"
    imagefolder(blank, {"train": NAMES[:2]})
    (blank / "test" / "images").mkdir(parents=True)
    picture("red", 0).save(blank / "test" / "images" / "0.png")
    (blank / "test" / "metadata.csv").write_text('file_name,caption\nimages/0.png," "\n')
    with pytest.raises(ConfigError) as err:
        make(data_files=str(blank))
    assert "the test split of task.data_files=" in one_line(err) and "has no image with a caption" in one_line(err)


def test_an_uncached_hub_name_offline_fails_fast_in_one_line():
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:  # the test session is offline (conftest)
        make(dataset="nobody/no-such-captions")
    assert "task.dataset=nobody/no-such-captions could not be loaded" in one_line(err)
    assert "task.data_files" in one_line(err) and time.monotonic() - start < 10


def test_the_default_dataset_offline_is_a_one_line_cli_error(tmp_path):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run(
        [sys.executable, "-m", "posbench", "train", "model=captioner", "task=caption", "trainer.device=cpu"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("posbench: error: task.dataset=jxie/flickr8k could not be loaded (no network")
