"""The captioning families (``model=captioner``, ``model=prefix_captioner``) and ``task=shapes_caption``:
forward and backward with every kind of image encoding and both stems, no causal leak in the text,
a position-free image side that ignores where patches are, the twin, labels, refusals, the
captions against the drawn images, the metrics, the report's two-way table, and learning."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import compose
from posbench import config, experiment, validation
from posbench.config import no_pe_config
from posbench.labels import label
from posbench.models import MODELS
from posbench.reporting import write_report
from posbench.tasks import TASKS
from posbench.tasks.base import PAD
from posbench.tasks.shapes_caption import COLOURS, RGB, SHAPE_WORDS, WORDS
from posbench.training.evaluate import score

#: One encoding of each kind on the image side: none, 1D absolute, 2D absolute, 2D rotary, 2D
#: bias, 2D relative (score), conditional (between blocks), convolutional feed-forward.
IMAGE_ENCODINGS = ["none", "learned", "sincos2d", "rope2d_axial", "rel_bias2d", "rel2d", "peg", "convffn"]
VOCAB = 13  # shapes_caption's 12 words and eos


def captioner(image_encoding="none", encoding="rope", image_size=16, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    section = {"name": "captioner", "d_model": 32, "heads": 2, "image_encoding": image_encoding, **options}
    return MODELS.build(section, VOCAB, {"name": encoding}, channels=3, image_size=image_size, eos=VOCAB - 1)


def prefix_captioner(encoding="rope", **options) -> torch.nn.Module:
    torch.manual_seed(0)
    section = {"name": "prefix_captioner", "d_model": 32, "heads": 2, "layers": 2, **options}
    return MODELS.build(section, VOCAB, {"name": encoding}, channels=3, image_size=16, eos=VOCAB - 1)


def captions(batch: int, length: int = 6) -> torch.Tensor:
    return torch.randint(0, VOCAB - 1, (batch, length), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("image_encoder", ["vit", "cnn"])
@pytest.mark.parametrize("image_encoding", IMAGE_ENCODINGS)
def test_captioner_trains_with_every_kind_of_image_encoding(image_encoding, image_encoder):
    model = captioner(image_encoding, image_encoder=image_encoder).train()
    images, tgt = torch.randn(3, 3, 16, 16), captions(3)
    loss, _ = model.loss(images, tgt)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in (p.grad for p in model.stem.parameters()))
    model.eval()
    assert model.predict(torch.randn(2, 3, 16, 16), 5).shape == (2, 5)
    assert model.predict(torch.randn(2, 3, 24, 24), 5).shape == (2, 5)  # another size: a larger grid


@pytest.mark.parametrize("image_tokens", ["grid", "pooled"])
def test_captioner_memory_is_the_grid_or_its_mean(image_tokens):
    model = captioner("sincos2d", image_tokens=image_tokens).eval()
    memory = model.encode(torch.randn(2, 3, 16, 16))
    assert memory.shape == (2, 16 if image_tokens == "grid" else 1, 32)


def shuffle_patches(images: torch.Tensor, patch: int, order: torch.Tensor) -> torch.Tensor:
    """``images`` with their ``patch x patch`` blocks moved to the raster places ``order``."""
    batch, channels, size, _ = images.shape
    side = size // patch
    blocks = images.unfold(2, patch, patch).unfold(3, patch, patch).reshape(batch, channels, side * side, patch, patch)
    blocks = blocks[:, :, order].reshape(batch, channels, side, side, patch, patch)
    return blocks.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, size, size)


@pytest.mark.parametrize("image_tokens", ["grid", "pooled"])
def test_a_position_free_image_side_ignores_where_patches_are(image_tokens):
    """Without an image encoding (and NoPE cross-attention) the decoder reads the set of patches:
    attention is permutation-equivariant, cross-attention and the mean permutation-invariant."""
    images, tgt = torch.randn(2, 3, 16, 16), captions(2)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    moved = shuffle_patches(images, 4, order)
    assert not torch.equal(moved, images)
    free = captioner("none", image_tokens=image_tokens).eval()
    torch.testing.assert_close(free.target_logits(moved, tgt), free.target_logits(images, tgt), atol=1e-5, rtol=1e-5)
    placed = captioner("sincos2d", image_tokens=image_tokens).eval()
    assert not torch.allclose(placed.target_logits(moved, tgt), placed.target_logits(images, tgt), atol=1e-4)


@pytest.mark.parametrize("build", [captioner, prefix_captioner], ids=["captioner", "prefix_captioner"])
@pytest.mark.parametrize("encoding", ["none", "rope", "sinusoidal", "alibi"])
def test_no_causal_leak_in_the_text(build, encoding):
    """Changing caption word t changes no logit at a position that cannot see it (<= t: the
    input at position t + 1 is word t under teacher forcing)."""
    model = build(encoding=encoding).eval()
    images, tgt = torch.randn(2, 3, 16, 16), captions(2, 7)
    before = model.target_logits(images, tgt)
    for t in (0, 3, 5):
        changed = tgt.clone()
        changed[:, t] = (changed[:, t] + 1) % (VOCAB - 1)
        after = model.target_logits(images, changed)
        torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(after[:, t + 1 :], before[:, t + 1 :])


def test_prefix_captioner_reads_the_image_and_writes_greedily():
    model = prefix_captioner("rope").eval()
    images, tgt = torch.randn(2, 3, 16, 16), captions(2)
    assert model.target_logits(images, tgt).shape == (2, 6, VOCAB)
    other = model.target_logits(torch.randn(2, 3, 16, 16), tgt)
    assert not torch.allclose(other, model.target_logits(images, tgt))
    assert model.predict(images, 6).shape == (2, 6)
    assert model.positions_needed(24, 6) == 36 + 6  # a 6x6 grid, then SEP and the caption


@pytest.mark.parametrize("build", [captioner, prefix_captioner], ids=["captioner", "prefix_captioner"])
@pytest.mark.parametrize("encoding", ["mrope", "rope", "learned", "alibi"])
def test_greedy_decoding_matches_teacher_forcing_on_its_own_output(build, encoding):
    """Each greedy step sees the positions (and, for M-RoPE, the (t, h, w)) that teacher forcing
    gives the same words: re-reading its own caption, the model predicts it again."""
    model = build(encoding=encoding).eval()
    images = torch.randn(3, 3, 16, 16)
    written = model.predict(images, 6)  # PAD once every caption has ended
    again = model.target_logits(images, written).argmax(-1)
    assert ((again == written) | (written == PAD)).all() and (written != PAD).sum() >= 6


def test_prefix_captioner_gives_a_3_axis_encoding_the_multimodal_coordinates():
    """A 3-axis encoding receives (t, h, w): the patches at t = 0 with their (row, col), the text
    from the grid's side on every axis; a 1D encoding the flattened index."""
    seen = {}
    for name in ("rope", "mrope"):
        model = prefix_captioner(name).eval()
        encoding = model.net.encoding
        original = encoding.positions

        def spy(pos, tokens=None, original=original, name=name):
            seen[name] = pos
            return original(pos, tokens)

        encoding.positions = spy
        model.target_logits(torch.randn(1, 3, 16, 16), captions(1, 3))
    assert seen["rope"].tolist() == [list(range(19))]
    coords = seen["mrope"][0]
    assert coords[:16].tolist() == [[0, r, c] for r in range(4) for c in range(4)]
    assert coords[16:].tolist() == [[4, 4, 4], [5, 5, 5], [6, 6, 6]]


def test_the_twin_switches_off_both_sides_and_labels_show_the_image_side(tmp_path):
    cfg = config.normalise(compose(["model=captioner", "task=shapes_caption", "encoding=rope"], tmp_path))
    assert label(cfg) == "rope image_encoding=sincos2d"
    twin = no_pe_config(cfg)
    assert twin["encoding"] == {"name": "none", "logn_scale": None}  # NoPE normalised
    assert twin["model"]["image_encoding"] == "none" and twin["model"]["cross_encoding"] == "none"
    assert label(twin) == "none image_encoding=none"
    assert config.run_label({**cfg, "encoding": {"name": "none"}}) == "with_pe"
    text_only = config.normalise(compose(["model=captioner", "task=shapes_caption", "model.image_encoding=none"], tmp_path))
    assert label(text_only) == "rope image_encoding=none"
    model = config.build(cfg)[1]
    with model.encoding_off():
        assert {stack.encoding.name for stack in model.stacks()} == {"none"}


REFUSALS = [
    (["model=captioner", "task=quadrant"], "model=captioner reads captioned images but task=quadrant gives images; its tasks:"),
    (["model=vit", "task=shapes_caption"], "model=vit reads images but task=shapes_caption gives captioned images"),
    (["model=decoder", "task=shapes_caption"], "model=decoder reads sequences but task=shapes_caption gives captioned images"),
    (["model=prefix_captioner", "task=shapes_caption", "encoding=sincos2d"], "encoding=sincos2d is a 2D encoding"),
    (["model=captioner", "task=shapes_caption", "model.image_encoding=nope"], "unknown encoding 'nope'"),
    (["model=captioner", "task=shapes_caption", "model.image_encoding={name:rope,foo:1}"], "encoding=rope has no option foo"),
    (["model=captioner", "task=shapes_caption", "model.image_encoding=xpos"],
     "model=captioner, image encoder (model.image_encoding): encoding=xpos is defined only for causal attention"),
    (["model=captioner", "task=shapes_caption", "model.cross_encoding=sinusoidal"], "model.cross_encoding=sinusoidal acts through embed"),
    (["model=captioner", "task=shapes_caption", "model.cross_encoding=sincos2d"], "encoding=sincos2d is a 2D encoding"),
    (["model=captioner", "task=shapes_caption", "model.image_encoder=resnet"], "model.image_encoder=resnet must be one of vit, cnn"),
    (["model=captioner", "task=shapes_caption", "model.image_encoder=cnn", "model.patch_size=3", "task.cell=6",
      "task.image_size=18", "task.eval_sizes=[18]"], "model.patch_size=3 must be a power of 2 with model.image_encoder=cnn"),
    (["model=captioner", "task=shapes_caption", "model.patch_size=8"], "task.cell=4 is not a multiple of model.patch_size=8"),
    (["model=captioner", "task=shapes_caption", "model.image_tokens=all"], "model.image_tokens=all must be one of grid, pooled"),
    (["model=captioner", "task=shapes_caption", "model.image_layers=0"], "model.image_layers=0"),
    (["model=captioner", "task=shapes_caption", "model.image_encoding={name:learned,max_len:8,resize:refuse}"],
     "encoding=learned represents 8 positions"),
    (["model=captioner", "task=shapes_caption", "encoding=learned", "encoding.max_len=8"], "encoding=learned represents 8 positions"),
    (["model=captioner", "task=shapes_caption", "task.min_shapes=3", "task.max_shapes=2"], "task.min_shapes=3 is above task.max_shapes=2"),
    (["model=captioner", "task=shapes_caption", "task.max_shapes=4"], "task.max_shapes=4"),
    (["model=captioner", "task=shapes_caption", "task.image_size=8"], "task.cell=4 leaves a 8-pixel image fewer than 3 cells per side"),
]
#: A sweep is checked job by job: its refusal names the invalid jobs, one line each.
SWEEP_REFUSALS = [
    (["-m", "model=captioner", "task=shapes_caption", "model.image_encoding=none,nope"], "job 1 (model.image_encoding=nope): unknown encoding 'nope'"),
    (["-m", "model=captioner", "task=quadrant,shapes_caption"], "job 0 (task=quadrant): model=captioner reads captioned images"),
]


@pytest.mark.parametrize("args, expected", REFUSALS + SWEEP_REFUSALS, ids=[" ".join(args) for args, _ in REFUSALS + SWEEP_REFUSALS])
def test_bad_captioning_input_is_one_line_before_anything_runs(args, expected, refusal):
    assert expected in refusal(args)


# ---- shapes_caption --------------------------------------------------------------------------
def read_image(image: torch.Tensor, cell: int) -> list[tuple[str, int, int]]:
    """(colour, row, col) of every shape in an image, read from its pixels."""
    side = image.shape[-1] // cell
    found = []
    for r in range(side):
        for c in range(side):
            block = image[:, r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
            if block.max() > 0.6:
                colour = (block.amax(dim=(1, 2)) > 0.6).float()
                found.append((COLOURS[[tuple(x) for x in RGB.tolist()].index(tuple(colour.tolist()))], r, c))
    return found


def test_captions_describe_the_drawn_images():
    task = TASKS.build({"name": "shapes_caption", "noise": 0.0})
    images, caps = task.sample(64, 16, torch.Generator().manual_seed(0))
    assert images.shape == (64, 3, 16, 16) and caps.shape == (64, task.target_len(16))
    counts = set()
    for image, caption in zip(images, caps):
        shapes = sorted(read_image(image, 4), key=lambda item: COLOURS.index(item[0]))
        words = task.decode(caption).split(" ")
        assert caption[len(words)] == task.eos and (caption[len(words) + 1 :] == PAD).all()
        counts.add(len(shapes))
        assert [w for w in words if w in COLOURS] == [colour for colour, _, _ in shapes]
        assert len([w for w in words if w in SHAPE_WORDS]) == len(shapes)
        rows, cols = {r for _, r, _ in shapes}, {c for _, _, c in shapes}
        assert len(shapes) == 1 or len(rows) == 1 or len(cols) == 1  # one row or one column
        relations = [w for w in words if w in ("left", "right", "above", "below")]
        for (_, r1, c1), (_, r2, c2), word in zip(shapes, shapes[1:], relations):
            expected = ("left" if c1 < c2 else "right") if r1 == r2 else ("above" if r1 < r2 else "below")
            assert word == expected, (words, shapes)
    assert counts == {1, 2, 3}


def test_spatial_words_are_uniform_and_metrics_score_them():
    task = TASKS.build({"name": "shapes_caption"})
    _, caps = task.sample(4000, 16, torch.Generator().manual_seed(1))
    spatial = torch.tensor([WORDS.index(word) for word in ("left", "right", "above", "below")])
    counts = torch.stack([(caps == word).sum() for word in spatial]).float()
    assert (counts / counts.sum() - 0.25).abs().max() < 0.03
    # the metrics: a prediction right everywhere but one spatial word
    pred = caps[:100].clone()
    where = torch.isin(pred, spatial).nonzero()[0]
    pred[where[0], where[1]] = spatial[(spatial == pred[where[0], where[1]]).nonzero()[0, 0] - 1]
    metrics = task.corpus_metrics([pred], [caps[:100]])
    total = int(torch.isin(caps[:100], spatial).sum())
    assert metrics["spatial_acc"] == pytest.approx(1 - 1 / total)
    assert 90 < metrics["bleu"] < 100
    assert task.corpus_metrics([caps[:100]], [caps[:100]])["bleu"] == pytest.approx(100)


def test_score_reads_several_references():
    """Token accuracy against the first reference, BLEU against all of them."""

    class Fixed(torch.nn.Module):
        eos = VOCAB - 1

        def __init__(self, answer):
            super().__init__()
            self.answer = answer

        def predict(self, src, tgt_len):
            return self.answer

    task = TASKS.build({"name": "shapes_caption"})
    first, second = task.sample(8, 16, torch.Generator().manual_seed(2))[1], task.sample(8, 16, torch.Generator().manual_seed(3))[1]
    references = torch.stack((first, second), dim=1)  # [B, 2, T]
    metrics = score(Fixed(second), [(torch.zeros(8, 3, 16, 16), references)], task)
    assert metrics["bleu"] == pytest.approx(100) and metrics["acc"] < 1


def test_bleu_skips_a_missing_reference():
    """A reference that is all PAD is absent: matching the one present reference scores 100."""
    task = TASKS.build({"name": "shapes_caption"})
    caps = task.sample(8, 16, torch.Generator().manual_seed(4))[1]
    references = torch.stack((caps, torch.full_like(caps, PAD)), dim=1)
    references[:4, 1] = caps[4:]  # half the images have a second reference, the others none
    assert task.corpus_metrics([caps], [references])["bleu"] == pytest.approx(100)


def test_encoding_options_are_one_value_per_encoding(tmp_path):
    """``{name: none}`` is ``none`` (the twin check, labels and fingerprints see one encoding)."""
    spelled = config.normalise(compose(
        ["model=captioner", "task=shapes_caption", "encoding=none", "model.image_encoding={name:none}"], tmp_path,
    ))
    assert spelled["model"]["image_encoding"] == "none" and config.is_pe_free(spelled)
    assert label(spelled) == "none image_encoding=none"


def test_the_memory_estimate_counts_every_stack_and_the_cnn(tmp_path):
    def training_bytes(*overrides):
        cfg = config.normalise(compose(["model=captioner", "task=shapes_caption", *overrides], tmp_path))
        parts = validation.memory_estimate(cfg, config.build_task(cfg), 0, pair_bytes=0)
        return next(value for key, value in parts.items() if key.startswith("training activations"))

    base = training_bytes()
    assert training_bytes("model.image_layers=8") > 2 * base  # the image encoder's depth counts
    assert training_bytes("model.image_encoder=cnn") > 2 * base  # so do the CNN's full-resolution maps


def test_the_report_shows_a_2x2_ablation_as_one_table(tmp_path):
    """Runs that cross two factors (text encoding x image encoding) get a two-way table."""
    values = {("none", "none"): 0.6, ("none", "sincos2d"): 0.95, ("rope", "none"): 0.62, ("rope", "sincos2d"): 1.0}
    for (text, image), acc in values.items():
        for seed in (0, 1):
            cfg = config.normalise(compose(
                ["model=captioner", "task=shapes_caption", f"encoding={text}", f"model.image_encoding={image}", f"seed={seed}"],
                tmp_path / "twins",
            ))
            folder = tmp_path / "sweep" / f"{text}_{image}_{seed}"
            folder.mkdir(parents=True)
            results = {
                "status": "ok", "task": "shapes_caption", "model": "captioner", "label": label(cfg), "seed": seed,
                "config": cfg, "metrics": {"acc": acc + 0.01 * seed, "seq_acc": acc}, "chance": 1 / 12,
            }
            (folder / "results.json").write_text(json.dumps(results))
    text = write_report(tmp_path / "sweep", plots=False)
    assert "### shapes_caption: acc by encoding × image_encoding" in text
    table = text.split("### shapes_caption: acc by encoding × image_encoding")[1].split("##")[0]
    assert "| encoding ↓  image_encoding → | none | sincos2d |" in table
    assert "| rope | 0.625 ± 0.007 (n=2) | 1.005 ± 0.007 (n=2) |" in table
    (tmp_path / "sweep" / "rope_sincos2d_0" / "results.json").unlink()
    (tmp_path / "sweep" / "rope_sincos2d_1" / "results.json").unlink()
    assert "by encoding × image_encoding" not in write_report(tmp_path / "sweep", plots=False)  # not a full crossing


@pytest.mark.slow
def test_the_captioner_needs_image_positions_for_spatial_words(tmp_path):
    """With a 2D encoding on the image side the spatial words are learned; the no-PE twin, which
    sees the set of patches only, stays at chance (1/4) on them."""
    cfg = compose([
        "model=captioner", "task=shapes_caption", "encoding=rope", "model.image_encoding=sincos2d",
        "trainer.max_steps=700", "trainer.eval_every=700", "trainer.log_every=100", "trainer.checkpoint_every=700",
        "trainer.device=cpu", "trainer.threads=1", "task.max_shapes=2", "task.eval_sizes=[16]", "task.eval_size=256",
    ], tmp_path / "twins")
    results = experiment.run(cfg, tmp_path / "run")
    assert results["metrics"]["spatial_acc"] >= 0.9, results["metrics"]
    assert abs(results["nope"]["metrics"]["spatial_acc"] - 0.25) < 0.1, results["nope"]["metrics"]
