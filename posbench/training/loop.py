"""The training loop: AdamW, linear warmup then cosine decay, gradient clipping, periodic
evaluation, TensorBoard scalars, progress (a bar on a terminal, timed log lines elsewhere), and
atomic checkpoints that an interrupted run resumes from to the same numbers (model, optimizer,
schedule, step, the data generator's and torch's global generators' states). A checkpoint holds
tensors, numbers and strings only and is loaded with ``weights_only=True``: a crafted file cannot
run code."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from posbench.config import TrainerConfig, difference
from posbench.errors import ConfigError, first_line
from posbench.models import SequenceModel
from posbench.tasks import Task
from posbench.tasks.base import Batch
from posbench.training import interrupt
from posbench.training.evaluate import score, token_hits
from posbench.training.files import save_torch
from posbench.training.progress import Progress


class Diverged(Exception):
    """The training loss became NaN or infinite at ``step``: the run stops there (its result)."""

    def __init__(self, step: int, loss: float, label: str):
        super().__init__(f"{label} diverged at step {step} (loss {loss})")
        self.step, self.loss, self.label = step, loss, label


class CorruptCheckpoint(ConfigError):
    """A checkpoint file that cannot be resumed from (unreadable, truncated, not posbench's)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path} is not a usable checkpoint ({reason}); delete it to restart this run from step 0, "
            "or choose another hydra.run.dir"
        )
        self.path = path


#: What a checkpoint holds (tensors, numbers and strings only: it loads with ``weights_only=True``).
CHECKPOINT_KEYS = ("model", "optimizer", "schedule", "generator", "rng", "step", "fingerprint", "semantic")


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's content, loaded onto the CPU without running any code (``weights_only=True``);
    a file that is not a complete posbench checkpoint raises ``CorruptCheckpoint``. (The random
    generators' states must stay on the CPU; ``load_state_dict`` moves the rest to the model's device.)"""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CorruptCheckpoint(path, "not a torch file, or it holds objects other than tensors and plain values") from None
    except EOFError:
        raise CorruptCheckpoint(path, "empty") from None
    except Exception as err:  # torch raises RuntimeError, ValueError, ... for damaged files
        raise CorruptCheckpoint(path, f"damaged or not a torch file: {first_line(err)[:150]}") from None
    if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= set(state):
        raise CorruptCheckpoint(path, "not a posbench checkpoint")
    return state


def warmup_cosine(warmup: int, total: int):
    """Learning-rate multiplier: linear from 1/warmup to 1, then cosine down to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def parameter_groups(model: SequenceModel, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices of the network only. Biases, norms and every
    encoding parameter (slopes, tables, kernels; several are log-parameterised, where decay would
    pull them towards 1) are not decayed."""
    encoding = {id(p) for p in model.encoding_parameters()}
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.dim() >= 2 and id(p) not in encoding else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def fit(
    model: SequenceModel,
    task: Task,
    test_set: list[Batch],
    cfg: TrainerConfig,
    seed: int,
    device: torch.device,
    writer: SummaryWriter,
    checkpoint: Path,
    label: str,
    fingerprint: str,
    semantic: dict | None = None,
    desc: str | None = None,
) -> None:
    """Train ``model`` on ``task`` for ``cfg.max_steps`` steps, resuming from ``checkpoint`` if present;
    ``test_set`` is scored every ``cfg.eval_every`` steps. ``fingerprint`` identifies the
    configuration (a checkpoint of another one is ``CorruptCheckpoint``: the command line refuses
    it before training, the twin cache retrains); ``semantic`` is that configuration, stored with
    the checkpoint so that a refusal can say what differs. ``label`` names the model in
    ``Diverged`` and ``Interrupted``; ``desc`` (default: ``label``) prefixes its progress, e.g.
    ``job 3/12 rope(scale=4)`` in a sweep (see ``posbench.training.progress``).

    Raises ``Diverged`` at the first step whose loss is not finite (before the update), and
    ``Interrupted`` after checkpointing the step in progress when a signal arrives (see
    ``posbench.training.interrupt``)."""
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps, cfg.max_steps))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    start = 0
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state["fingerprint"] != fingerprint:
            reason = f"written by another configuration: {difference(state['semantic'], semantic) or 'other data'}"
            raise CorruptCheckpoint(checkpoint, reason)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError:  # e.g. written before a change of the model's layer names
            raise CorruptCheckpoint(checkpoint, "its weights do not fit this model: written by another posbench version") from None
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        restore_rng(state["rng"])
        start = state["step"]

    def save(step: int) -> None:
        save_torch(
            checkpoint,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "generator": generator.get_state(),
                "rng": rng_state(),
                "step": step,
                "fingerprint": fingerprint,
                "semantic": semantic,
            },
        )

    model.train()
    desc = label if desc is None else desc
    bar = Progress(desc, cfg.max_steps, start=start)
    with interrupt.deferred(), bar:  # the bar closes however the loop ends
        for step in range(start, cfg.max_steps):
            src, tgt = task.sample(cfg.batch_size, task.sample_length(generator), generator)
            loss, pred = model.loss(src, tgt)
            done = step + 1
            if not math.isfinite(loss.item()):
                raise Diverged(done, loss.item(), label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            schedule.step()

            shown = {}
            if done % cfg.log_every == 0 or done == cfg.max_steps:
                hit, scored = token_hits(pred, tgt)
                acc = hit.sum().item() / max(scored.sum().item(), 1)
                writer.add_scalar("train/loss", loss.item(), done)
                writer.add_scalar("train/acc", acc, done)
                writer.add_scalar("train/lr", schedule.get_last_lr()[0], done)
                shown = {"loss": f"{loss.item():.3f}", "batch_acc": f"{acc:.3f}"}
            bar.update(**shown)
            if done % cfg.eval_every == 0 or done == cfg.max_steps:
                # a quick evaluation shows a passing bar on a terminal and no line elsewhere
                scores = score(model, test_set, task, progress=f"{desc}: evaluating at step {done}")
                for key, value in scores.items():
                    writer.add_scalar(f"test/{key}", value, done)
                bar.update(0, test_acc=f"{scores['acc']:.3f}")  # shown from the next line on
            signum = interrupt.pending()
            if done % cfg.checkpoint_every == 0 or done == cfg.max_steps or signum is not None:
                save(done)
            if signum is not None:
                writer.flush()
                raise interrupt.Interrupted(signum, done, label)
        signum = interrupt.pending()  # arrived while the last checkpoint was written
        if signum is not None:
            raise interrupt.Interrupted(signum, cfg.max_steps, label)
    writer.flush()


def rng_state() -> dict:
    """torch's global generators (dropout, SPE's noise draw from them), saved with a checkpoint so
    that a resumed run continues the same random stream."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
