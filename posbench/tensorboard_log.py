"""What a run shows in TensorBoard beyond its training curves (``posbench.training.loop``): its
final numbers, one HParams row, accuracy against evaluation length, and where its twin appears.

* **Accuracy against length** is a curve: ``length/acc`` (``length/seq_acc``, ``length/ppl``...)
  written with the evaluation length as its step, so the runs of a sweep overlay on one chart
  (the scalar dashboard's x axis reads "step": it is the length). An image task's is accuracy
  against image size: ``size/acc`` with the size in pixels as its step.
* **HParams.** Each run writes a session (start and end) whose hparams are its label, encoding,
  task, model, seed and every option of its configuration with its own type (numbers as numbers,
  lists as text; written with TensorBoard's own hparams API, which keeps booleans boolean), whose
  trial ID is the run's folder name (encoding and seed first), and whose metrics are
  ``final_metrics``. No run writes an experiment-wide summary: TensorBoard then
  builds the table from every run and marks the hparams whose values differ, which its dashboard
  ticks first (it ticks five hparams and the first five metrics by default).
* **The twin appears once.** Its events stay in the twin cache; a single run links them in as
  ``<run dir>/tb/none`` (so ``tensorboard --logdir <run dir>`` shows the run beside its twin), a
  sweep links each distinct twin once as ``<sweep dir>/twins/<twin's folder name>``, and the runs
  of a sweep link none. TensorBoard follows these symbolic links (checked with its data server
  and its Python loader).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from torch.utils.tensorboard import SummaryWriter

from posbench import labels, scales

log = logging.getLogger(__name__)


def log_result(folder: Path, cfg: dict, outcome: dict, step: int, twin: dict | None = None) -> None:
    """Write the final numbers of an ``ok`` run (``outcome``, and its ``twin``'s) into ``folder``,
    the TensorBoard folder its training curves went to."""
    if outcome["status"] != "ok":
        return
    with SummaryWriter(str(folder)) as writer:
        axis = scales.axis_of(outcome)
        for n, metrics in sorted(scales.scores(outcome).items(), key=lambda item: int(item[0])):
            for key, value in metrics.items():
                writer.add_scalar(f"{axis}/{key}", value, int(n))
        file_writer = writer._get_file_writer()
        file_writer.add_summary(hparams_pb(hparam_values(cfg), trial_id=labels.folder_name(cfg)))
        file_writer.add_summary(session_end())
        for tag, value in final_metrics(outcome, twin).items():
            writer.add_scalar(tag, value, step)


def session_end() -> summary_pb2.Summary:
    """The end of a run's HParams session, successful (TensorBoard's public protos; its
    ``summary.session_end_pb`` needs TensorFlow)."""
    data = plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=time.time())
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR
    )
    return summary


def final_metrics(outcome: dict, twin: dict | None) -> dict[str, float]:
    """The HParams metrics: ``hparam/acc``, ``hparam/acc_pe_off``, ``hparam/acc_twin``,
    ``hparam/len_<L>_acc`` (``hparam/size_<S>_acc`` for image sizes; zero-padded to one width, so
    that they sort in numeric order),
    ``hparam/seq_acc`` and the task's other metrics (bleu, ppl). TensorBoard's HParams table shows
    the first five metric columns in name order: accuracy, with PE off, the twin's and the two
    shortest lengths (the periodic test-set scores are ``test/...``, after ``hparam/...``)."""
    metrics = {f"hparam/{key}": value for key, value in outcome["metrics"].items()}
    if outcome.get("pe_off") is not None:
        metrics["hparam/acc_pe_off"] = outcome["pe_off"]["acc"]
    if twin is not None and twin.get("status") == "ok":
        metrics["hparam/acc_twin"] = twin["metrics"]["acc"]
    by_scale, name = scales.scores(outcome), scales.prefix(scales.axis_of(outcome))
    width = max(len(n) for n in by_scale)
    for n, values in by_scale.items():
        metrics[f"hparam/{name}_{n:0>{width}}_acc"] = values["acc"]
    return metrics


def hparam_values(cfg: dict) -> dict:
    """The run's HParams: label, encoding, task, model, seed and every option (``model.d_model``,
    ``encoding.scale``...) with its own type; lists, encodings and null as text."""
    values = {
        "label": labels.label(cfg), "encoding": cfg["encoding"]["name"], "task": cfg["task"]["name"],
        "model": cfg["model"]["name"], "seed": cfg["seed"],
    }
    for group in ("encoding", "model", "task", "trainer"):
        for key, value in cfg[group].items():
            if key == "name" or key in labels.NOT_IN_LABEL:
                continue
            values[f"{group}.{key}"] = value if isinstance(value, (bool, int, float, str)) else labels.value(value)
    return values  # TensorBoard's types: bool, number (int too: it has no integer type), string


def link_twin(events: Path, cfg: dict, run_dir: Path, sweep_dir: Path | None) -> None:
    """Make the twin whose TensorBoard folder is ``events`` visible once: in a sweep as
    ``<sweep dir>/twins/<folder name>``, for a single run as ``<run dir>/tb/none``."""
    if not events.is_dir():
        return
    if sweep_dir is not None:
        link = sweep_dir / "twins" / labels.twin_name(cfg)
    else:
        link = run_dir / "tb" / "none"
    target = events.absolute()
    link.parent.mkdir(parents=True, exist_ok=True)
    # another twin under the same name (e.g. another thread count) gets the name with its cache key
    for name in (link, link.with_name(f"{link.name}-{events.parent.parent.name[:8]}")):
        try:
            name.symlink_to(target, target_is_directory=True)
            return
        except FileExistsError:  # linked before, or by another job of the sweep at the same moment
            if name.is_symlink() and Path(os.readlink(name)) == target:
                return
        except OSError as err:  # a file system without symbolic links
            log.warning(f"cannot link the no-PE twin's TensorBoard events into {name.parent} ({err.strerror}); they are in {target}")
            return
