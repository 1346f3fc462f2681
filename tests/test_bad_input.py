"""Every mistake is one line before anything runs: a table of bad inputs, each run through the real
command line in-process (``posbench.cli.main``) from a workspace holding an earlier run's results,
a twin cache, data files and a few traps. Each case must:

* exit with code 2 and print exactly one stderr line, beginning ``posbench: error:``, that says
  what is wrong (the expected words are part of the table), and no traceback;
* start no training (``experiment.run`` and the training loop must not be reached);
* leave the workspace byte-identical: no new folder (no run folder, twin entry or lock), no
  rewritten file, the planted ``results.json`` untouched.

A handful of cases also run as a subprocess (``test_bad_input_end_to_end``) for the real exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import compose
from posbench import cli, config, experiment
from posbench.encodings import ENCODINGS
from posbench.hardware import resolve_threads
from posbench.training import loop

REPO = Path(__file__).resolve().parents[1]

# (id, arguments of `posbench train`, words the error line must contain). "{ws}" is the workspace.
CASES = [
    # unknown choices, keys and commands
    ("unknown-encoding", ["encoding=foo"], "unknown encoding 'foo'; valid choices: " + ", ".join(ENCODINGS.names())),
    ("unknown-task", ["task=nope"], "unknown task 'nope'; valid choices:"),
    ("unknown-model", ["model=vit3000"], "unknown model 'vit3000'; valid choices: captioner, decoder, encoder, prefix_captioner, seq2seq, vit"),
    ("unknown-trainer", ["trainer=fast"], "unknown trainer 'fast'; valid choices: default"),
    ("unknown-launcher", ["hydra/launcher=nope"], "unknown hydra/launcher 'nope'; valid choices: basic"),
    ("unknown-launcher-sweep", ["-m", "hydra/launcher=nope"], "unknown hydra/launcher 'nope'"),
    ("unknown-key", ["foo=1"], "unknown key foo; the keys of posbench train are encoding, model, task, trainer"),
    ("append-unknown-key", ["+foo=1"], "unknown key foo"),
    ("force-add-unknown-key", ["++foo=1"], "unknown key foo"),
    ("unknown-trainer-key", ["trainer.foo=1"], "trainer has no option foo; its options: max_steps"),
    ("append-trainer-key", ["+trainer.foo=1"], "trainer has no option foo"),
    ("unknown-encoding-key", ["encoding.foo=1"], "encoding=rope has no option foo; its options: base, rotary_fraction"),
    ("append-encoding-key", ["+encoding.foo=1"], "encoding=rope has no option foo"),
    ("unknown-model-key", ["model.depth=3"], "model=encoder has no option depth; its options: d_model"),
    ("unknown-task-key", ["task.length=3"], "task=copy has no option length; its options: vocab_size"),
    ("unknown-sweep-key", ["+sweep.foo=1"], "sweep has no option foo; its options: skip_invalid"),
    ("unknown-hydra-key", ["hydra.foo=1"], "hydra.foo is not a Hydra setting"),
    ("unknown-part-option", ["encoding=combo", "encoding.parts=[{name:rope,foo:1}]"], "encoding=rope has no option foo"),
    ("unknown-part", ["encoding=combo", "encoding.parts=[rope,nope]"], "unknown encoding 'nope'"),
    ("unknown-decoder-option", ["model=seq2seq", "model.decoder_encoding={name:alibi,foo:1}"], "encoding=alibi has no option foo"),
    # deleted keys and groups
    ("delete-encoding", ["~encoding"], "encoding is missing: choose one with encoding=NAME"),
    ("delete-task", ["~task"], "task is missing"),
    ("delete-model", ["~model"], "model is missing"),
    ("delete-trainer", ["~trainer"], "trainer is missing"),
    ("delete-seed", ["~seed"], "seed is missing"),
    ("delete-compare-nope", ["~compare_nope"], "compare_nope is missing"),
    ("delete-twin-cache", ["~twin_cache"], "twin_cache is missing"),
    # wrong types
    ("steps-abc", ["trainer.max_steps=abc"], "trainer.max_steps=abc is not an integer"),
    ("lr-abc", ["trainer.lr=abc"], "trainer.lr=abc is not a number"),
    ("d-model-abc", ["model.d_model=abc"], "model.d_model=abc is not an integer"),
    ("dropout-high", ["model.dropout=high"], "model.dropout=high is not a number"),
    ("steps-list", ["trainer.max_steps=[1,2]"], "trainer.max_steps=[1,2] is not an integer"),
    ("vocab-list", ["task.vocab_size=[16]"], "task.vocab_size=[16] is not an integer"),
    ("steps-float", ["trainer.max_steps=1e2"], "trainer.max_steps=100.0 is not an integer (write 100)"),
    ("batch-fraction", ["trainer.batch_size=1.5"], "trainer.batch_size=1.5 is not an integer"),
    ("seed-abc", ["seed=abc"], "seed=abc is not an integer"),
    ("seed-path", ["seed=../../x"], "seed=../../x is not an integer"),
    ("seed-bool", ["seed=true"], "seed=true is not an integer"),
    ("layers-bool", ["model.layers=true"], "model.layers=true is not an integer"),
    ("base-abc", ["encoding.base=abc"], "encoding.base=abc is not a number"),
    ("eval-lengths-int", ["task.eval_lengths=5"], "task.eval_lengths=5 is not a list of integers"),
    ("train-lengths-int", ["task.train_lengths=5"], "task.train_lengths=5 is not a list of integers"),
    ("train-lengths-text", ["task.train_lengths=[1,a]"], "task.train_lengths[1]=a is not an integer"),
    ("device-int", ["trainer.device=0"], "trainer.device=0 must be auto, cpu, cuda or cuda:N"),
    ("device-gpu", ["trainer.device=gpu"], "trainer.device=gpu must be auto, cpu, cuda or cuda:N"),
    ("threads-many", ["trainer.threads=many"], "trainer.threads=many must be auto or a number of threads >= 1"),
    ("threads-zero", ["trainer.threads=0"], "trainer.threads=0 must be auto or a number of threads >= 1"),
    ("kerple-kernel", ["encoding=kerple", "encoding.kernel=gaussian"], "encoding.kernel=gaussian must be one of log, power"),
    ("eval-positions", ["encoding=randomized", "encoding.eval_positions=shuffled"], "must be one of random, sequential"),
    ("tokenizer", ["model=seq2seq", "task=translation", "task.tokenizer=words"], "task.tokenizer=words must be one of bpe, char"),
    ("parts-number", ["encoding=combo", "encoding.parts=3"], "encoding.parts must be a list of encodings"),
    ("randomized-base-number", ["encoding=randomized", "encoding.base=3"], "encoding.base must be an encoding name"),
    # strings for booleans, numbers, and values OmegaConf would convert
    ("compare-nope-maybe", ["compare_nope=maybe"], "compare_nope=maybe is not true or false"),
    ("learned-slopes-maybe", ["encoding=alibi", "encoding.learned_slopes=maybe"], "encoding.learned_slopes=maybe is not true or false"),
    ("shaw-values-perhaps", ["encoding=shaw", "encoding.values=perhaps"], "encoding.values=perhaps is not true or false"),
    ("skip-invalid-sometimes", ["sweep.skip_invalid=sometimes"], "sweep.skip_invalid=sometimes is not true or false"),
    ("compare-nope-yes", ["compare_nope=yes"], "compare_nope=yes is not true or false"),
    ("compare-nope-one", ["compare_nope=1"], "compare_nope=1 is not true or false"),
    ("seed-quoted", ["seed='5'"], "seed='5' is not an integer"),
    ("lr-quoted", ["trainer.lr='0.1'"], "trainer.lr='0.1' is not a number"),
    ("train-lengths-fraction", ["task.train_lengths=[1,2.5]"], "task.train_lengths[1]=2.5 is not an integer"),
    ("float32-overflow", ["encoding=scaled_sinusoidal", "encoding.init_scale=1e39"], "within float32's range"),
    # non-finite and out-of-range numbers
    ("lr-inf", ["trainer.lr=inf"], "trainer.lr=inf must be a finite number"),
    ("lr-nan", ["trainer.lr=nan"], "trainer.lr=nan must be a finite number"),
    ("lr-minus-inf", ["trainer.lr=-inf"], "trainer.lr=-inf must be a finite number"),
    ("lr-negative", ["trainer.lr=-1"], "trainer.lr=-1 must be > 0"),
    ("lr-zero", ["trainer.lr=0"], "trainer.lr=0 must be > 0"),
    ("steps-zero", ["trainer.max_steps=0"], "trainer.max_steps=0 must be >= 1"),
    ("steps-negative", ["trainer.max_steps=-5"], "trainer.max_steps=-5 must be >= 1"),
    ("batch-zero", ["trainer.batch_size=0"], "trainer.batch_size=0 must be >= 1"),
    ("clip-zero", ["trainer.grad_clip=0"], "trainer.grad_clip=0 must be > 0"),
    ("decay-negative", ["trainer.weight_decay=-0.1"], "trainer.weight_decay=-0.1 must be >= 0"),
    ("warmup-negative", ["trainer.warmup_steps=-1"], "trainer.warmup_steps=-1 must be >= 0"),
    ("eval-every-zero", ["trainer.eval_every=0"], "trainer.eval_every=0 must be >= 1"),
    ("d-model-zero", ["model.d_model=0"], "model.d_model=0 must be >= 1"),
    ("heads-zero", ["model.heads=0"], "model.heads=0 must be >= 1"),
    ("layers-negative", ["model.layers=-1"], "model.layers=-1 must be >= 1"),
    ("ffn-zero", ["model.ffn_mult=0"], "model.ffn_mult=0 must be >= 1"),
    ("dropout-one", ["model.dropout=1.0"], "model.dropout=1.0 must be < 1"),
    ("dropout-negative", ["model.dropout=-0.1"], "model.dropout=-0.1 must be >= 0"),
    ("vocab-one", ["task.vocab_size=1"], "task.vocab_size=1 must be at least 2 for task=copy"),
    ("eval-size-zero", ["task.eval_size=0"], "task.eval_size=0 must be >= 1"),
    ("seed-negative", ["seed=-1"], "seed=-1 must be >= 0"),
    ("seed-too-large", ["seed=4294967296"], "seed=4294967296 must be <= 4294967295"),
    ("eval-seed-huge", ["task.eval_seed=99999999999999999999999"], "task.eval_seed=99999999999999999999999 must be <="),
    ("learned-max-len-zero", ["encoding=learned", "encoding.max_len=0"], "encoding.max_len=0 must be >= 1"),
    ("xpos-scale-zero", ["model=decoder", "encoding=xpos", "encoding.scale_base=0"], "encoding.scale_base=0 must be > 0"),
    ("fire-init-c-zero", ["encoding=fire", "encoding.init_c=0"], "encoding.init_c=0 must be > 0"),
    # malformed length ranges
    ("train-lengths-one", ["task.train_lengths=[5]"], "task.train_lengths=[5] must be [min, max]"),
    ("train-lengths-three", ["task.train_lengths=[1,5,9]"], "task.train_lengths=[1,5,9] must be [min, max]"),
    ("train-lengths-reversed", ["task.train_lengths=[9,1]"], "task.train_lengths=[9,1] must be [min, max] with min <= max"),
    ("train-lengths-zero", ["task.train_lengths=[0,5]"], "task.train_lengths=[0,5] must hold numbers >= 1"),
    ("eval-lengths-empty", ["task.eval_lengths=[]"], "task.eval_lengths=[] must not be empty"),
    ("eval-lengths-zero", ["task.eval_lengths=[0,5]"], "task.eval_lengths=[0,5] must hold numbers >= 1"),
    ("addition-length-one", ["task=binary_addition", "task.train_lengths=[1,5]"], "min at least 3 for task=binary_addition"),
    # option values that make an encoding degenerate
    ("t5-no-buckets", ["encoding=t5", "encoding.num_buckets=0"], "encoding.num_buckets=0 must be >= 2"),
    ("t5-two-buckets", ["encoding=t5", "encoding.num_buckets=2"], "leaves no exact bucket in bidirectional attention"),
    ("t5-short-distance", ["encoding=t5", "encoding.max_distance=4"], "encoding=t5 needs max_distance > 8"),
    ("rope-base-zero", ["encoding.base=0"], "encoding.base=0 must be > 1"),
    ("rope-base-negative", ["encoding.base=-10"], "encoding.base=-10 must be > 1"),
    ("rope-base-one", ["encoding.base=1"], "encoding.base=1 must be > 1"),
    ("sinusoidal-base-half", ["encoding=sinusoidal", "encoding.base=0.5"], "encoding.base=0.5 must be > 1"),
    ("rope-no-rotation", ["encoding.rotary_fraction=0"], "encoding.rotary_fraction=0 must be > 0"),
    ("spe-no-realization", ["encoding=spe", "encoding.num_realizations=0"], "encoding.num_realizations=0 must be >= 1"),
    ("cope-no-position", ["model=decoder", "encoding=cope", "encoding.npos_max=0"], "encoding.npos_max=0 must be >= 1"),
    ("part-base-zero", ["encoding=combo", "encoding.parts=[{name:rope,base:0},alibi]"], "encoding.base=0 must be > 1"),
    # sizes beyond the machine
    ("eval-size-huge", ["task.eval_size=1000000000000"], "mostly for evaluation sets (task.eval_size, task.eval_lengths)"),
    ("d-model-huge", ["model.d_model=1000000000000"], "mostly for parameters and optimizer state"),
    ("vocab-huge", ["task.vocab_size=1000000000000"], "mostly for parameters and optimizer state"),
    ("batch-huge", ["trainer.batch_size=1000000000000"], "mostly for training activations (trainer.batch_size"),
    ("eval-length-huge", ["task.eval_lengths=[1000000000000]"], "this run needs about"),
    ("table-huge", ["encoding=learned", "encoding.max_len=1000000000000"], "mostly for parameters and optimizer state"),
    # interpolations
    ("interpolation-missing", ["seed=${foo}"], "cannot resolve seed: Interpolation key 'foo' not found"),
    ("interpolation-env", ["seed=${oc.env:POSBENCH_UNSET_VARIABLE}"], "cannot resolve seed"),
    ("interpolation-env-path", ["twin_cache=${oc.env:POSBENCH_UNSET_VARIABLE}"], "cannot resolve twin_cache"),
    # folders
    ("run-dir-empty", ["hydra.run.dir="], "hydra.run.dir is empty: give a folder"),
    ("twin-cache-empty", ["twin_cache="], "twin_cache= must not be empty"),
    ("run-dir-is-file", ["hydra.run.dir={ws}/afile"], "hydra.run.dir={ws}/afile cannot be a folder: {ws}/afile is a file"),
    ("run-dir-under-file", ["hydra.run.dir={ws}/afile/run"], "cannot be a folder: {ws}/afile is a file"),
    ("twin-cache-is-file", ["twin_cache={ws}/afile"], "twin_cache={ws}/afile cannot be a folder"),
    ("twin-cache-under-file", ["twin_cache={ws}/afile/twins"], "cannot be a folder: {ws}/afile is a file"),
    ("sweep-dir-is-file", ["-m", "seed=0,1", "hydra.sweep.dir={ws}/afile"], "cannot be a folder: {ws}/afile is a file"),
    ("run-dir-read-only", ["hydra.run.dir=/proc/sys/posbench-run"], "hydra.run.dir=/proc/sys/posbench-run is not writable"),
    # what Hydra cannot parse, and flags
    ("no-value", ["trainer.max_steps"], "cannot read the override: Error parsing override 'trainer.max_steps'"),
    ("no-key", ["=rope"], "'=rope' has no key: write KEY=VALUE"),
    ("open-list", ["task.train_lengths=[1,"], "cannot read the override"),
    ("unbalanced", ["encoding=rope)"], "cannot read the override"),
    ("sweep-without-m", ["seed=0,1"], "seed=0,1 sweeps over several values: add -m"),
    ("choice-sweep-without-m", ["encoding=rope,alibi"], "encoding=rope,alibi sweeps over several values: add -m"),
    ("empty-sweep-value", ["-m", "encoding=rope,,alibi"], "cannot read the override"),
    ("glob-matches-nothing", ["-m", "encoding=glob(zzz*)"], "encoding=glob(zzz*) selects no encoding; valid choices:"),
    ("unknown-flag", ["--bogus"], "unrecognized arguments: --bogus"),
    ("cfg-choice", ["--cfg", "foo"], "argument --cfg/-c: invalid choice: 'foo'"),
    ("config-dir", ["--config-dir", "{ws}"], "--config-dir is not supported"),
    ("config-name", ["--config-name", "other"], "--config-name is not supported"),
    ("cfg-and-multirun", ["--cfg", "job", "-m"], "use only one of --run, --multirun, --cfg"),
    ("run-and-multirun", ["-m", "-r", "seed=0,1"], "use only one of --run, --multirun, --cfg"),
    ("resolve-alone", ["--resolve"], "--resolve goes with --cfg or --help"),
    # Hydra settings that posbench decides
    ("hydra-mode", ["hydra.mode=MULTIRUN"], "hydra.mode=MULTIRUN: hydra.mode is set by posbench train"),
    ("hydra-chdir", ["hydra.job.chdir=true"], "hydra.job.chdir is set by posbench train"),
    ("hydra-sweeper", ["hydra/sweeper=basic"], "hydra/sweeper is set by posbench train"),
    ("hydra-sweeper-params", ["-m", "hydra.sweeper.params={seed:'0,1'}"], "hydra.sweeper.params is set by posbench train"),
    ("hydra-sweeper-skip", ["-m", "seed=0,1", "hydra.sweeper.skip=[0]"], "hydra.sweeper.skip is set by posbench train"),
    ("sweep-every-job-same-error", ["-m", "seed=0,1", "trainer.lr=inf"], "trainer.lr=inf must be a finite number"),
    # searches (hparams_search) and launchers
    ("hparams-search-unknown", ["-m", "hparams_search=bogus"], "unknown hparams_search 'bogus'; valid choices: lr, none"),
    ("search-range-end", ["-m", "hparams_search=lr", "hydra.sweeper.params={trainer.lr:'interval(0.001,inf)'}"], "trainer.lr=inf must be a finite number"),
    ("search-choice", ["-m", "hparams_search=lr", "hydra.sweeper.params={trainer.lr:'choice(0.001,-1)'}"], "the search reaches an invalid configuration at trainer.lr=-1: trainer.lr=-1 must be > 0"),
    ("search-dotted-key", ["-m", "hparams_search=lr", "+hydra.sweeper.params.model.heads='choice(4,5)'"], "Error merging override +hydra.sweeper.params.model.heads"),
    ("launcher-unknown", ["-m", "seed=0,1", "hydra/launcher=nope"], "unknown hydra/launcher 'nope'"),
    ("search-without-m", ["hparams_search=lr"], "hparams_search runs a search of several jobs: add -m"),
    ("search-fixed-invalid", ["-m", "hparams_search=lr", "model.d_model=30"], "model.d_model=30 is not divisible by model.heads=4"),
    ("search-fixed-value", ["-m", "hparams_search=lr", "trainer.lr=0"], "invalid configuration in its fixed settings: trainer.lr=0 must be > 0"),
    ("cfg-resolve-invalid", ["--cfg", "all", "--resolve", "encoding.scale=-1"], "encoding.scale=-1 must be > 0"),
    ("joblib-bad-n-jobs", ["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=many"], "n_jobs"),
    # encodings, models and tasks that do not fit together
    ("xpos-in-encoder", ["encoding=xpos"], "encoding=xpos is defined only for causal attention"),
    ("cope-in-encoder", ["encoding=cope"], "encoding=cope is defined only for causal attention"),
    ("xpos-in-seq2seq-encoder", ["model=seq2seq", "encoding=xpos"], "model=seq2seq, encoder self-attention (encoding): encoding=xpos"),
    ("embedding-in-cross", ["model=seq2seq", "model.cross_encoding=sinusoidal"], "acts through embed"),
    ("translation-encoder", ["task=translation"], "task=translation is defined for model=decoder or model=seq2seq"),
    ("short-table", ["encoding=learned", "encoding.max_len=8"], "encoding=learned represents 8 positions but this run needs 41"),
    ("heads-divide", ["model.d_model=30"], "model.d_model=30 is not divisible by model.heads=4"),
    ("spe-with-rope", ["encoding=combo", "encoding.parts=[spe,rope]"], "cannot combine spe with rope"),
    ("empty-combo", ["encoding=combo", "encoding.parts=[]"], "needs at least one encoding"),
    ("randomized-of-itself", ["encoding=randomized", "encoding.base=randomized"], "cannot be its own base"),
    ("randomized-too-few", ["encoding=randomized", "encoding.max_random_len=16"], "max_random_len=16 but this run needs 41"),
    ("xpos-overflow", ["model=decoder", "encoding=combo", "encoding.parts=[{name:xpos,scale_base:8},alibi]",
                       "task.eval_lengths=[350]"], "this run needs 700"),
    ("cycle-vocab", ["task=cycle_navigation", "task.vocab_size=4"], "task.vocab_size=4 must be at least 5"),
    # an earlier run in the folder
    ("resume-other-config", ["hydra.run.dir={ws}/outputs/runs/earlier", "trainer.lr=0.01"],
     "holds the results of another configuration (trainer.lr: 0.002 there, 0.01 here)"),
    ("checkpoint-random-bytes", ["hydra.run.dir={ws}/runs/random"], "{ws}/runs/random/checkpoint_rope.pt is not a usable checkpoint ("),
    ("checkpoint-truncated", ["hydra.run.dir={ws}/runs/truncated"], "{ws}/runs/truncated/checkpoint_rope.pt is not a usable checkpoint (damaged"),
    ("checkpoint-empty", ["hydra.run.dir={ws}/runs/empty"], "{ws}/runs/empty/checkpoint_rope.pt is not a usable checkpoint (empty)"),
    ("checkpoint-crafted", ["hydra.run.dir={ws}/runs/crafted"], "{ws}/runs/crafted/checkpoint_rope.pt is not a usable checkpoint"),
    ("checkpoint-not-posbench", ["hydra.run.dir={ws}/runs/foreign"], "is not a usable checkpoint (not a posbench checkpoint)"),
    ("results-garbage", ["hydra.run.dir={ws}/runs/garbage"], "{ws}/runs/garbage/results.json is not the results of a run of this posbench version"),
    # local data files that cannot be read
    ("csv-empty", ["model=seq2seq", "task=translation", "task.data_files={train: {ws}/data/empty.csv, test: {ws}/data/ok.csv}"],
     "could not be loaded: EmptyDataError: No columns to parse from file"),
    ("csv-header-only", ["model=seq2seq", "task=translation", "task.data_files={train: {ws}/data/header.csv, test: {ws}/data/header.csv}"],
     "the train split ('train') of task.data_files="),
    ("csv-header-only-train", ["model=seq2seq", "task=translation", "task.data_files={train: {ws}/data/header.csv, test: {ws}/data/ok.csv}"],
     "could not be loaded: TypeError: Couldn't write column 'en'"),
    ("csv-garbage", ["model=seq2seq", "task=translation", "task.data_files={train: {ws}/data/garbage.csv, test: {ws}/data/ok.csv}"],
     "could not be loaded: ParserError"),
    ("csv-columns-differ", ["model=seq2seq", "task=translation", "task.tokenizer=char",
                            "task.data_files={train: {ws}/data/french.csv, test: {ws}/data/ok.csv}"],
     "All the data files must have the same columns"),
    ("csv-missing", ["model=seq2seq", "task=translation", "task.data_files={train: {ws}/data/none.csv, test: {ws}/data/ok.csv}"],
     "task.data_files: no such file"),
    ("csv-wrong-column", ["model=seq2seq", "task=translation", "task.tokenizer=char", "task.source_lang=fr",
                          "task.data_files={train: {ws}/data/ok.csv, test: {ws}/data/ok.csv}"],
     "are not columns of the train split of task.data_files="),
]


class Crafted:
    """A pickle that creates a file when loaded with ``weights_only=False``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def craft_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"model": Crafted(marker)}, path)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """The current directory of a user who has run posbench before, with traps for bad inputs."""
    ws = tmp_path / "ws"
    ws.mkdir()
    earlier = config.normalise(compose([], "outputs/twins"))
    (ws / "outputs" / "runs" / "earlier").mkdir(parents=True)
    (ws / "outputs" / "runs" / "earlier" / "results.json").write_text(
        json.dumps({"status": "ok", "device": "cpu", "config": earlier, "provenance": {"fingerprint": "0" * 64, "threads": resolve_threads("auto")}})
    )
    (ws / "outputs" / "twins" / "0123456789abcdef").mkdir(parents=True)
    (ws / "outputs" / "twins" / "0123456789abcdef" / "outcome.json").write_text('{"status": "ok"}')
    (ws / "afile").write_text("not a folder")
    runs = ws / "runs"
    for name in ("random", "truncated", "empty", "crafted", "foreign", "garbage"):
        (runs / name).mkdir(parents=True)
    (runs / "random" / "checkpoint_rope.pt").write_bytes(random.Random(0).randbytes(256))
    buffer = runs / "full.pt"
    torch.save({"model": {"w": torch.ones(64, 64)}, "step": 3}, buffer)
    (runs / "truncated" / "checkpoint_rope.pt").write_bytes(buffer.read_bytes()[:4000])
    buffer.unlink()
    (runs / "empty" / "checkpoint_rope.pt").write_bytes(b"")
    craft_checkpoint(runs / "crafted" / "checkpoint_rope.pt", ws / "pwned")
    torch.save({"weights": torch.zeros(3)}, runs / "foreign" / "checkpoint_rope.pt")
    (runs / "garbage" / "results.json").write_text("{not json")
    data = ws / "data"
    data.mkdir()
    (data / "empty.csv").write_text("")
    (data / "header.csv").write_text("en,de\n")
    (data / "garbage.csv").write_bytes(b'\x00\x01garbage\xff\n,,,"')
    (data / "french.csv").write_text("en,fr\nhello,bonjour\n")
    (data / "ok.csv").write_text("en,de\nhello,hallo\nworld,welt\n")
    monkeypatch.chdir(ws)

    def no_training(*args, **kwargs):
        raise AssertionError("a refused command must not start a run")

    monkeypatch.setattr(experiment, "run", no_training)
    monkeypatch.setattr(loop, "fit", no_training)
    return ws


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its kind, permissions and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        state[str(path.relative_to(root))] = (stat.st_mode, digest)
    return state


@pytest.mark.parametrize("case_id, args, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_before_anything_runs(case_id, args, expected, workspace, capsys):
    if case_id == "run-dir-read-only" and os.access("/proc/sys", os.W_OK):
        pytest.skip("/proc/sys is writable here")
    args = [arg.replace("{ws}", str(workspace)) for arg in args]
    expected = expected.replace("{ws}", str(workspace))
    before = snapshot(workspace)
    code = cli.main(["train", *args])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("posbench: error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert snapshot(workspace) == before
    assert not (workspace / "pwned").exists()


def test_the_table_covers_every_category():
    assert len(CASES) >= 80
    assert len({case[0] for case in CASES}) == len(CASES)


def test_a_crafted_checkpoint_would_run_code(tmp_path):
    """The planted file is a real threat: torch.load without weights_only creates the marker."""
    marker = tmp_path / "pwned"
    craft_checkpoint(tmp_path / "checkpoint_rope.pt", marker)
    torch.load(tmp_path / "checkpoint_rope.pt", weights_only=False)
    assert marker.exists()


def test_a_crafted_pickle_in_the_twin_cache_is_discarded_without_running(tiny_cfg, tmp_path, caplog):
    """A twin entry whose checkpoint is a crafted pickle (no outcome.json yet, as after an
    interruption) is discarded with a log line and the twin is trained again; the code never runs."""
    cfg = tiny_cfg("encoding=rope")
    first = experiment.run(cfg, tmp_path / "first")
    entry = Path(first["provenance"]["twin"])
    (entry / "outcome.json").unlink()
    marker = tmp_path / "pwned"
    craft_checkpoint(entry / "checkpoint_none.pt", marker)
    with caplog.at_level("WARNING"):
        again = experiment.run(cfg, tmp_path / "again")
    assert not marker.exists()
    assert "discarding" in caplog.text and "checkpoint_none.pt" in caplog.text
    assert again["nope"] == first["nope"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["foo=1"], "unknown key foo"),
        (["trainer.lr=inf"], "trainer.lr=inf must be a finite number"),
        (["trainer.max_steps"], "cannot read the override"),
        (["seed=../../x"], "seed=../../x is not an integer"),
    ],
)
def test_bad_input_end_to_end(tmp_path, args, expected):
    out = subprocess.run(
        [sys.executable, "-m", "posbench", "train", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [out.stderr.splitlines()[0]] and expected in out.stderr
    assert out.stdout == "" and not list(tmp_path.iterdir())
