"""A run's label names what sets it apart from the defaults (posbench.labels), and the same label
names its folder, its printed table, its results.json and its TensorBoard run."""

import pytest

from posbench import config, labels
from tests.conftest import compose


def label_of(tmp_path, *overrides):
    return labels.label(config.normalise(compose(list(overrides), tmp_path / "twins")))


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ([], "rope"),
        (["encoding.scale=4"], "rope(scale=4)"),
        (["encoding.scale=4", "encoding.base=500"], "rope(base=500,scale=4)"),
        (["encoding=alibi"], "alibi"),
        (["encoding=combo"], "combo(learned+alibi)"),
        (["encoding=combo", "encoding.parts=[{name:rope,base:500},alibi]"], "combo(rope(base=500)+alibi)"),
        (["encoding=randomized"], "randomized(base=rope)"),
        (["encoding=randomized", "encoding.base=learned"], "randomized(base=learned)"),
        (["model=seq2seq", "encoding=none", "model.cross_encoding=rope"], "none cross_encoding=rope"),
        (["model=seq2seq", "model.decoder_encoding=alibi"], "rope decoder_encoding=alibi"),
        (["model.d_model=128", "task.train_lengths=[1,20]"], "rope d_model=128 train_lengths=[1,20]"),
        (["trainer.lr=0.01", "trainer.warmup_steps=0"], "rope lr=0.01 warmup_steps=0"),
        # the same value as the default is no difference; logging, saving and the device are none either
        (["encoding.scale=1.0", "model.d_model=64", "trainer.log_every=5", "trainer.device=cpu", "trainer.threads=1"], "rope"),
        (["task=reverse", "model=decoder", "seed=3"], "rope"),  # shown beside the label, not in it
    ],
)
def test_label_names_the_encoding_options_and_overrides_that_differ(tmp_path, overrides, expected):
    assert label_of(tmp_path, *overrides) == expected


def test_a_name_two_sections_share_is_qualified():
    cfg = {
        "encoding": {"name": "rope"}, "model": {"name": "encoder", "eval_seed": 3},
        "task": {"name": "copy", "eval_seed": 7}, "trainer": {"name": "default"},
    }
    assert labels.overrides(cfg) == ["model.eval_seed=3", "task.eval_seed=7"]


def test_slug_is_a_plain_file_name_and_long_names_keep_their_start_and_a_hash():
    assert labels.slug("rope(scale=4) train_lengths=[1,20]") == "rope-scale=4_train_lengths=1-20"
    assert labels.slug("combo(rope(base=500)+alibi)") == "combo-rope-base=500+alibi"
    assert labels.slug("a/b\\c:d*e") == "a-b-c-d-e"
    long_a, long_b = "rope_" + "d_model=128_" * 20 + "lr=0.1", "rope_" + "d_model=128_" * 20 + "lr=0.2"
    assert len(labels.cap(long_a)) == labels.SLUG_MAX and labels.cap(long_a) != labels.cap(long_b)
    assert labels.cap(long_a).startswith("rope_d_model=128_d_model=128") and labels.cap("short") == "short"


def test_folder_names_differ_for_every_distinct_configuration(tmp_path):
    variants = [["encoding.scale=1"], ["encoding.scale=2"], ["encoding.scale=4"], ["model.d_model=128"], ["seed=1"]]
    names = {labels.folder_name(config.normalise(compose(v, tmp_path))) for v in variants}
    assert names == {
        "rope_copy_encoder_s0", "rope-scale=2_copy_encoder_s0", "rope-scale=4_copy_encoder_s0",
        "rope_copy_encoder_s0_d_model=128", "rope_copy_encoder_s1",
    }
    # the twins of a sweep: the seed first
    twin = config.no_pe_config(config.normalise(compose(["seed=3", "model.d_model=128"], tmp_path)))
    assert labels.twin_name(twin) == "s3_copy_encoder_d_model=128"


def test_a_mapping_option_is_written_without_spaces():
    assert labels.value({"train": "train[:5000]", "test": "validation"}) == "{train:train[:5000],test:validation}"
    assert " " not in labels.overrides(
        {"encoding": {"name": "rope"}, "model": {"name": "encoder"}, "trainer": {"name": "default"},
         "task": {"name": "copy", "split": {"train": "a", "test": "b"}}}
    )[0]
