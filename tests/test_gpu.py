"""The CUDA path. Skipped cleanly where there is no GPU (CI never has one); every line of it has a
CPU twin in the other tests."""

import pytest
import torch

from conftest import sequence_encodings, skip_unsupported
from posbench import experiment
from posbench.encodings import ENCODINGS
from posbench.models import MODELS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_tiny_run_on_cuda_with_auto_device(tiny_cfg, tmp_path):
    results = experiment.run(tiny_cfg("encoding=rope", "trainer.device=auto"), tmp_path / "run")
    assert results["device"] == "cuda" and 0.0 <= results["metrics"]["acc"] <= 1.0


@pytest.mark.parametrize("model", ["encoder", "decoder"])
@pytest.mark.parametrize("encoding", sequence_encodings())
def test_cuda_and_cpu_compute_the_same_logits(model, encoding):
    skip_unsupported(encoding, causal=model == "decoder")
    torch.manual_seed(0)
    net = MODELS.get(model)(11, {"name": encoding}, d_model=32, layers=2, heads=4).eval()
    tokens = torch.randint(0, 11, (3, 17))
    on_cpu = net.net(tokens)
    on_gpu = net.cuda().net(tokens.cuda()).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-4, rtol=1e-4)


def test_seq2seq_variable_length_task_on_cuda(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=seq2seq", "task=addition", "task.train_lengths=[1,3]", "task.eval_lengths=[4]",
                   "trainer.device=cuda")
    results = experiment.run(cfg, tmp_path / "run")
    assert results["device"] == "cuda" and 0.0 <= results["metrics"]["acc"] <= 1.0


@pytest.mark.parametrize("encoding", ["none", "rope", "alibi", "shaw"])
def test_seq2seq_cuda_and_cpu_agree(encoding):
    torch.manual_seed(0)
    net = MODELS.get("seq2seq")(11, {"name": encoding}, d_model=32, layers=2, heads=4, eos=10).eval()
    src, tgt = torch.randint(0, 11, (3, 9)), torch.randint(0, 11, (3, 6))
    on_cpu = net.target_logits(src, tgt)
    on_gpu = net.cuda().target_logits(src.cuda(), tgt.cuda()).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("encoding", [name for name in ENCODINGS.names() if ENCODINGS.get(name).axes == 2])
def test_cuda_and_cpu_compute_the_same_vit_logits(encoding):
    torch.manual_seed(0)
    net = MODELS.build({"name": "vit", "d_model": 32, "layers": 2}, 4, {"name": encoding}, channels=1, image_size=16).eval()
    images = torch.randn(3, 1, 24, 24)  # another size than the training one: tables resample
    on_cpu = net.logits(images)
    on_gpu = net.cuda().logits(images.cuda()).cpu()
    assert torch.allclose(on_cpu, on_gpu, atol=1e-4, rtol=1e-4)
