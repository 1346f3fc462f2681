"""Image tasks (``model=vit``): the synthetic generators (relation, patch_order, count, quadrant),
scikit-learn's digits, and image_classification on tiny local datasets. The order-sensitivity of
each synthetic task is checked on the images themselves (what a patch can reveal). Nothing here
downloads: datasets are tiny deterministic files written into tmp_path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from posbench.cli import CONFIG_DIR
from posbench.errors import ConfigError
from posbench.schema import options
from posbench.tasks import TASKS
from posbench.tasks.patch_order import permute_cells, shuffles, to_cells

SYNTHETIC = ["relation", "patch_order", "count", "quadrant"]
CLASSES = {"relation": 4, "patch_order": 2, "count": 4, "quadrant": 4}
PATCH = 4


def make(name, **kw):
    return TASKS.build({"name": name, **kw})


def patches(images: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """``[B, 1, S, S]`` -> ``[B, G*G, patch*patch]`` in raster order."""
    return to_cells(images[:, 0], patch).flatten(2)


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- every synthetic task ------------------------------------------------------------------------
@pytest.mark.parametrize("name", SYNTHETIC)
def test_draws_have_the_contract_shapes_at_every_size(name):
    task = make(name)
    assert task.inputs == "images" and task.classes == CLASSES[name] and task.n_symbols == task.classes
    assert task.chance == pytest.approx(1 / task.classes)
    g = torch.Generator().manual_seed(0)
    for size in task.eval_sizes:
        images, labels = task.sample(8, size, g)
        assert images.shape == (8, 1, size, size) and images.dtype == torch.float32
        assert labels.shape == (8, 1) and labels.dtype == torch.long
        assert 0 <= labels.min() and labels.max() < task.classes
    [(test_images, test_labels)] = task.test_set("cpu")
    assert test_images.shape == (task.eval_size, 1, 16, 16) and test_labels.shape == (task.eval_size, 1)
    sets = task.length_sets("cpu")
    assert sorted(sets) == [16, 24, 32]
    for size, [(images, labels)] in sets.items():
        assert images.shape == (task.eval_size, 1, size, size) and labels.shape == (task.eval_size, 1)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_labels_are_balanced(name):
    task = make(name)
    _, labels = task.draw(8000, 16, torch.Generator().manual_seed(1))
    share = torch.bincount(labels, minlength=task.classes).float() / labels.numel()
    assert torch.allclose(share, torch.full_like(share, 1 / task.classes), atol=0.03), share


@pytest.mark.parametrize("name", SYNTHETIC)
def test_the_generator_seed_decides_the_images(name):
    task = make(name)
    first = task.draw(16, 24, torch.Generator().manual_seed(5))
    again = task.draw(16, 24, torch.Generator().manual_seed(5))
    other = task.draw(16, 24, torch.Generator().manual_seed(6))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("name", SYNTHETIC)
def test_yaml_holds_every_option_with_its_default(name):
    yaml = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "task" / f"{name}.yaml"), resolve=True)
    declared = {key: option.default for key, option in options(TASKS.get(name)).items()}
    assert yaml.pop("name") == name
    assert yaml.keys() == declared.keys()
    for key, default in declared.items():
        assert yaml[key] == (list(default) if isinstance(default, tuple) else default), key


@pytest.mark.parametrize(
    "name, kw, message",
    [
        ("relation", {"cell": 3}, "task.cell=3 does not tile a 16-pixel image"),
        ("relation", {"cell": 2}, r"task.cell=2 must be >= 3"),
        ("relation", {"cell": 16, "eval_sizes": [16, 32]}, "fewer than 2 cells per side"),
        ("patch_order", {"noise": -1.0}, "task.noise=-1.0 must be >= 0"),
        ("patch_order", {"eval_sizes": [16, 18]}, "does not tile a 18-pixel image"),
        ("count", {"max_count": 17}, "task.max_count=17 shapes do not fit the 16 cells"),
        ("count", {"max_count": 1}, "task.max_count=1 must be >= 2"),
        ("quadrant", {"marker": 9}, "task.marker=9 does not fit a quadrant"),
        ("relation", {"image_size": 4}, "task.image_size has 4, below the smallest image"),
        ("count", {"colour": "red"}, "task=count has no option colour"),
    ],
)
def test_bad_options_are_one_line_config_errors(name, kw, message):
    with pytest.raises(ConfigError) as err:
        make(name, **kw)
    assert message in one_line(err)


# ---- order sensitivity, checked on the images --------------------------------------------------
def test_relation_no_patch_holds_both_shapes_and_the_label_is_their_relation():
    task = make("relation", noise=0.0)
    for size in (16, 24, 32):
        images, labels = task.draw(500, size, torch.Generator().manual_seed(2))
        counts = patches(images).sum(dim=2)  # pixels on per patch: plus 5, hollow square 8, both 13
        assert set(counts.unique().tolist()) <= {0.0, 5.0, 8.0}
        assert ((counts == 5).sum(dim=1) == 1).all() and ((counts == 8).sum(dim=1) == 1).all()
        grid = size // PATCH
        a, b = (counts == 5).float().argmax(dim=1), (counts == 8).float().argmax(dim=1)
        (row_a, col_a), (row_b, col_b) = (a // grid, a % grid), (b // grid, b % grid)
        assert (row_a != row_b).all() and (col_a != col_b).all()
        assert torch.equal(labels, 2 * (row_a < row_b).long() + (col_a < col_b).long())


def test_relation_patch_contents_do_not_depend_on_the_label():
    """What a set function sees (the sorted per-patch pixel counts) is the same for every label."""
    task = make("relation", noise=0.0)
    images, labels = task.draw(400, 16, torch.Generator().manual_seed(3))
    bags = patches(images).sum(dim=2).sort(dim=1).values
    assert (bags == bags[0]).all()
    assert set(labels.tolist()) == {0, 1, 2, 3}


def test_patch_order_shuffles_the_same_cells():
    task = make("patch_order")
    for size in (16, 32):
        images, shuffled = task.pair(200, size, torch.Generator().manual_seed(4))
        original_cells = to_cells(images, 4).flatten(2)
        shuffled_cells = to_cells(shuffled, 4).flatten(2)
        for row in range(images.shape[0]):  # the same multiset of cells, in another order
            a = sorted(map(tuple, original_cells[row].tolist()))
            b = sorted(map(tuple, shuffled_cells[row].tolist()))
            assert a == b
        assert not (shuffled == images).all(dim=(1, 2)).any()


def test_patch_order_draw_shows_the_drawn_or_the_shuffled_image():
    task = make("patch_order")
    shown, labels = task.draw(64, 16, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    coin = torch.rand(64, generator=g)  # the label's draw (uniform_int uses one rand per example)
    images, shuffled = task.pair(64, 16, g)
    assert torch.equal(labels, (coin * 2).floor().long())
    assert torch.equal(shown[:, 0], torch.where(labels[:, None, None] == 1, images, shuffled))
    ramp_rows = images[:, 1:, :] - images[:, :-1, :]  # a drawn image is smooth: small steps
    assert ramp_rows.abs().mean() < shuffled.diff(dim=1).abs().mean()


def test_shuffles_are_never_the_identity_and_permute_cells_moves_cells():
    g = torch.Generator().manual_seed(0)
    perms = shuffles(5000, 2, g)  # two cells: the only non-identity permutation is the swap
    assert (perms == torch.tensor([1, 0])).all()
    perms = shuffles(100, 16, g)
    assert (perms.sort(dim=1).values == torch.arange(16)).all()
    image = torch.arange(64.0).view(1, 8, 8)
    swapped = permute_cells(image, torch.tensor([[1, 0, 2, 3]]), 4)
    assert torch.equal(swapped[0, :4, :4], image[0, :4, 4:]) and torch.equal(swapped[0, 4:], image[0, 4:])


def test_count_is_the_number_of_shapes_each_in_its_own_patch():
    task = make("count", noise=0.0)
    assert not task.order_sensitive and make("relation").order_sensitive
    for size in (16, 24, 32):
        images, labels = task.draw(500, size, torch.Generator().manual_seed(8))
        counts = patches(images).sum(dim=2)
        assert set(counts.unique().tolist()) <= {0.0, 5.0, 8.0}
        assert torch.equal((counts > 0).sum(dim=1), labels + 1)


def test_quadrant_marker_lies_in_its_quadrant():
    task = make("quadrant", noise=0.0)
    for size in (16, 24, 32):
        images, labels = task.draw(500, size, torch.Generator().manual_seed(9))
        half = size // 2
        quadrants = images[:, 0].view(-1, 2, half, 2, half).sum(dim=(2, 4)).flatten(1)
        assert torch.equal(quadrants.argmax(dim=1), labels)
        assert ((quadrants > 0).sum(dim=1) == 1).all() and (quadrants.max(dim=1).values == 9).all()


# ---- digits --------------------------------------------------------------------------------------
def test_digits_split_sizes_labels_and_chance():
    from sklearn.datasets import load_digits

    task = make("digits")
    data = task.data
    assert task.dataset_backed and task.channels == 1 and task.classes == task.n_symbols == 10
    assert data.train_images.shape == (1437, 1, 8, 8) and data.test_images.shape == (360, 1, 8, 8)
    assert data.train_images.dtype == torch.uint8
    assert torch.equal(data.test_labels, torch.from_numpy(load_digits().target[-360:]).long())
    assert task.chance == pytest.approx(37 / 360)
    assert task.training_examples() == 1437


def test_digits_resizes_and_normalises():
    task = make("digits", image_size=24, eval_sizes=[8, 16, 32])
    images, labels = task.sample(32, 24, torch.Generator().manual_seed(0))
    assert images.shape == (32, 1, 24, 24) and images.dtype == torch.float32 and labels.shape == (32, 1)
    [(test, test_labels)] = task.test_set("cpu")
    assert test.shape == (360, 1, 24, 24) and test_labels.shape == (360, 1)
    sets = task.length_sets("cpu")
    assert {size: batch[0][0].shape[-1] for size, batch in sets.items()} == {8: 8, 16: 16, 32: 32}
    native = (sets[8][0][0] * task.std[0] + task.mean[0]) * 255  # size 8: the originals, unresized
    assert torch.allclose(native, task.data.test_images.float(), atol=1e-3)
    train = task.normalise(task.data.images("train", 8, "cpu"))
    assert train.mean().abs() < 1e-4 and (train.std() - 1).abs() < 1e-3


def test_digits_is_deterministic_and_cached_per_device():
    task, twin = make("digits"), make("digits")
    assert twin.data is task.data  # loaded once per process
    a = task.sample(16, 16, torch.Generator().manual_seed(3))
    b = twin.sample(16, 16, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert task.data.images("train", 16, "cpu") is task.data.images("train", 16, "cpu")
    assert task.data_fingerprint() == twin.data_fingerprint()
    subset = make("digits", eval_size=100)
    [(images, labels)] = subset.test_set("cpu")
    assert images.shape[0] == 100 and torch.equal(labels, make("digits", eval_size=100).test_set("cpu")[0][1])
    assert not torch.equal(labels, make("digits", eval_size=100, eval_seed=7).test_set("cpu")[0][1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_digits_are_held_on_the_training_device():
    task = make("digits")
    g = torch.Generator(device="cuda").manual_seed(0)
    images, labels = task.sample(8, 16, g)
    assert images.is_cuda and labels.is_cuda
    assert task.data.images("train", 16, "cuda") is task.data.images("train", 16, "cuda")
    cpu = make("digits").sample(8, 16, torch.Generator().manual_seed(0))
    assert cpu[0].shape == images.shape


# ---- image_classification on tiny local datasets -------------------------------------------------
datasets = pytest.importorskip("datasets")
from PIL import Image  # noqa: E402 (after the importorskip)


def colour_image(label: int, seed: int, size: int = 16) -> Image.Image:
    """A noisy image whose colour says its label (red, green or blue dominant)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (size, size, 3))
    pixels[:, :, label] += 150
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def grey_image(label: int, seed: int, size: int = 16) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.integers(0, 100, (size, size)) + 120 * label).astype(np.uint8), "L")


def write_hf_parquet(path, rows: int, seed: int) -> str:
    """A parquet file as the hub holds them (an ``img`` Image column and a ClassLabel ``label``)."""
    features = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["r", "g", "b"])})
    labels = [(seed + i) % 3 for i in range(rows)]
    data = {"img": [colour_image(label, seed * 1000 + i) for i, label in enumerate(labels)], "label": labels}
    datasets.Dataset.from_dict(data, features=features).to_parquet(str(path))
    return str(path)


def write_plain_parquet(path, rows: int, seed: int) -> str:
    """A parquet file written by pyarrow alone: ``image`` as ``{bytes, path}`` structs, string labels."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = []
    for i in range(rows):
        buffer = io.BytesIO()
        colour_image(i % 2, seed * 1000 + i).save(buffer, format="PNG")
        records.append({"image": {"bytes": buffer.getvalue(), "path": None}, "label": ["cat", "dog"][i % 2]})
    pq.write_table(pa.Table.from_pylist(records), str(path))
    return str(path)


def write_folder(root, counts: dict[str, int], seed: int) -> str:
    for k, (label, count) in enumerate(counts.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            grey_image(k, seed * 1000 + 10 * k + i).save(root / label / f"{i}.png")
    return str(root)


@pytest.fixture
def parquet_files(tmp_path):
    return {
        "train": write_hf_parquet(tmp_path / "train.parquet", 30, 0),
        "test": write_hf_parquet(tmp_path / "test.parquet", 12, 1),
    }


@pytest.fixture
def image_folders(tmp_path):
    return {
        "train": write_folder(tmp_path / "train", {"cat": 8, "dog": 6}, 0),
        "test": write_folder(tmp_path / "test", {"cat": 3, "dog": 4}, 1),
    }


def classify(data_files, **kw):
    kw = {"image_size": 16, "eval_sizes": [8, 16, 24], **kw}
    return make("image_classification", data_files=data_files, **kw)


def test_parquet_images_are_decoded_with_their_channels_and_labels(parquet_files):
    task = classify(parquet_files)
    data = task.data
    assert task.channels == 3 and task.classes == task.vocab_size == 3 and data.names == ["r", "g", "b"]
    assert data.train_images.shape == (30, 3, 16, 16) and data.test_images.shape == (12, 3, 16, 16)
    assert data.train_images.dtype == torch.uint8
    dominant = data.train_images.float().mean(dim=(2, 3)).argmax(dim=1)
    assert torch.equal(dominant, data.train_labels)  # pixels and labels stay paired
    assert task.chance == pytest.approx(4 / 12)
    model_inputs = task.model_inputs()
    assert model_inputs == {"channels": 3, "image_size": 16}


def test_normalisation_uses_the_training_split_statistics(parquet_files, tmp_path):
    task = classify(parquet_files)
    pixels = task.data.train_images.double() / 255
    assert task.mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist())
    assert task.std == pytest.approx(pixels.std(dim=(0, 2, 3), unbiased=False).tolist())
    train = task.normalise(task.data.images("train", 16, "cpu"))
    assert torch.allclose(train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(train.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)
    task.save(tmp_path)
    saved = json.loads((tmp_path / "labels.json").read_text())
    assert saved["labels"] == [0, 1, 2] and saved["names"] == ["r", "g", "b"] and saved["channels"] == 3


def test_an_image_folder_is_grey_and_labelled_by_folder(image_folders):
    for split, folder in image_folders.items():  # Hugging Face's imagefolder convention: not data
        (tmp := __import__("pathlib").Path(folder)).joinpath("metadata.csv").write_text("file_name,note\n")
        tmp.joinpath("README.txt").write_text(f"{split} images\n")
    task = classify(image_folders)
    assert task.channels == 1 and task.data.labels == [0, 1] and task.data.names == ["cat", "dog"]
    assert task.data.train_images.shape == (14, 1, 16, 16) and task.data.test_images.shape == (7, 1, 16, 16)
    assert task.chance == pytest.approx(4 / 7)
    single = classify(image_folders["train"], split={"train": "train[:10]", "test": "train[10:]"})
    assert single.data.train_images.shape[0] == 10 and single.data.test_images.shape[0] == 4


def test_plain_parquet_with_string_labels(tmp_path):
    files = {
        "train": write_plain_parquet(tmp_path / "a.parquet", 10, 0),
        "test": write_plain_parquet(tmp_path / "b.parquet", 4, 1),
    }
    task = classify(files)
    assert task.channels == 3 and task.data.labels == ["cat", "dog"] and task.data.names is None
    assert task.data.train_labels.tolist() == [0, 1] * 5


def test_eval_sizes_are_the_test_images_resized(parquet_files):
    task = classify(parquet_files, image_size=8, eval_sizes=[8, 16, 32])
    images, labels = task.sample(5, 8, torch.Generator().manual_seed(0))
    assert images.shape == (5, 3, 8, 8) and labels.shape == (5, 1)
    [(test, _)] = task.test_set("cpu")
    assert test.shape == (12, 3, 8, 8)
    sets = task.length_sets("cpu")
    assert {size: batch[0][0].shape for size, batch in sets.items()} == {
        size: (12, 3, size, size) for size in (8, 16, 32)
    }
    assert torch.equal(sets[16][0][1], task.data.test_labels[:, None])  # all 12 are scored
    native = task.normalise(task.data.test_images)
    assert torch.equal(sets[16][0][0], native)  # at the native size: unresized


def test_augmentation_changes_images_keeps_labels_and_follows_the_seed(parquet_files):
    plain, augmented = classify(parquet_files), classify(parquet_files, augment="crop_flip")
    a = plain.sample(64, 16, torch.Generator().manual_seed(1))
    b = augmented.sample(64, 16, torch.Generator().manual_seed(1))
    again = augmented.sample(64, 16, torch.Generator().manual_seed(1))
    other = augmented.sample(64, 16, torch.Generator().manual_seed(2))
    assert torch.equal(a[1], b[1]) and not torch.equal(a[0], b[0])
    assert torch.equal(b[0], again[0]) and not torch.equal(b[0], other[0])
    # every augmented image is a crop of its padded original, flipped or not
    padded = torch.nn.functional.pad(a[0], (4, 4, 4, 4))
    for image, original in zip(b[0], padded):
        crops = [
            crop
            for top in range(9)
            for left in range(9)
            for crop in (original[:, top : top + 16, left : left + 16],)
            for crop in (crop, crop.flip(-1))
        ]
        assert any(torch.equal(image, crop) for crop in crops)
    # test images are never augmented
    assert torch.equal(plain.test_set("cpu")[0][0], augmented.test_set("cpu")[0][0])


def test_a_wrong_column_names_the_available_columns(parquet_files, tmp_path):
    with pytest.raises(ConfigError) as err:
        classify(parquet_files, label_column="class")
    assert "task.label_column='class' is not a column" in one_line(err) and "available columns: img, label" in str(err.value)
    with pytest.raises(ConfigError) as err:
        classify(parquet_files, image_column="picture")
    assert "task.image_column='picture'" in one_line(err) and "available columns: img, label" in str(err.value)
    with pytest.raises(ConfigError) as err:
        classify(parquet_files, image_column="label")
    assert "does not hold images" in one_line(err)
    with pytest.raises(ConfigError) as err:
        classify(parquet_files, augment="rotate")
    assert "task.augment=rotate must be one of none, crop_flip" in one_line(err)


def test_unseen_test_labels_and_empty_folders_are_config_errors(tmp_path):
    files = {
        "train": write_folder(tmp_path / "train", {"cat": 3, "dog": 3}, 0),
        "test": write_folder(tmp_path / "test", {"cat": 2, "eel": 2}, 1),
    }
    with pytest.raises(ConfigError) as err:
        classify(files)
    assert "never seen in the train split" in one_line(err)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        classify({"train": str(tmp_path / "empty"), "test": files["test"]})
    assert "holds no file of a known format" in one_line(err)


def test_data_fingerprint_changes_when_a_file_changes(image_folders):
    first = classify(image_folders).data_fingerprint()
    assert classify(image_folders).data_fingerprint() == first
    path = os.path.join(image_folders["train"], "cat", "0.png")
    grey_image(1, 99).save(path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert classify(image_folders).data_fingerprint() != first


def test_an_unreachable_hub_dataset_fails_fast_in_one_line():
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        make("image_classification", dataset="nobody/no-such-images")
    assert "could not be loaded" in one_line(err) and time.monotonic() - start < 20


# ---- end to end ----------------------------------------------------------------------------------
def posbench(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "posbench", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


QUICK = [
    "trainer.max_steps=12", "trainer.eval_every=6", "trainer.log_every=3", "trainer.checkpoint_every=6",
    "trainer.device=cpu", "trainer.threads=1", "model.d_model=32", "model.layers=2", "task.eval_size=32",
]


def test_relation_trains_end_to_end_through_the_cli(tmp_path):
    out = posbench(tmp_path, "train", "model=vit", "task=relation", "encoding=learned", *QUICK)
    assert out.returncode == 0, out.stderr
    [path] = list((tmp_path / "outputs" / "runs").rglob("results.json"))
    results = json.loads(path.read_text())
    assert results["status"] == "ok" and results["task"] == "relation"
    assert results["chance"] == pytest.approx(0.25)
    assert sorted(results["sizes"], key=int) == ["16", "24", "32"] and results["train_sizes"] == [16, 16]
    assert all(0.0 <= scores["acc"] <= 1.0 for scores in results["sizes"].values())


def test_image_classification_trains_end_to_end_on_a_folder(tmp_path, image_folders):
    files = "{train: " + image_folders["train"] + ", test: " + image_folders["test"] + "}"
    out = posbench(
        tmp_path, "train", "model=vit", "task=image_classification", "encoding=learned", *QUICK,
        f"task.data_files={files}", "task.image_size=16", "task.eval_sizes=[16,24]", "task.augment=crop_flip",
    )
    assert out.returncode == 0, out.stderr
    [path] = list((tmp_path / "outputs" / "runs").rglob("results.json"))
    results = json.loads(path.read_text())
    assert results["status"] == "ok" and results["chance"] == pytest.approx(4 / 7)
    assert (path.parent / "labels.json").is_file()


@pytest.mark.slow
def test_digits_learns_above_ninety_percent_with_the_default_trainer(tmp_path):
    out = posbench(tmp_path, "train", "model=vit", "task=digits", "encoding=learned", "trainer.threads=1",
                   "trainer.device=cpu", "compare_nope=false")
    assert out.returncode == 0, out.stderr
    [path] = list((tmp_path / "outputs" / "runs").rglob("results.json"))
    assert json.loads(path.read_text())["metrics"]["acc"] >= 0.9
