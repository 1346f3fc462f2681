"""What the machine offers a run: the CPUs this process may use, the thread count that
``trainer.threads=auto`` resolves to, memory, and the device's name (recorded in results.json).

Why threads matter: torch's CPU kernels split work over ``torch.get_num_threads()`` threads. On a
machine whose cores are already busy (other jobs of a sweep, other users), more threads than free
cores make every step wait for the slowest thread: on a 2-core machine with one core kept busy by
another process, the default run took 165 s with 2 threads and 60 s with 1. Parallel reductions also round differently with a different
thread count, so CPU numbers are reproducible only for a fixed count: it is recorded in
results.json and is part of a CPU twin's cache key.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from posbench.errors import ConfigError
from posbench.schema import Check


def usable_cpus() -> int:
    """CPUs this process may use: Slurm's allocation (``SLURM_CPUS_PER_TASK``) when set, else the
    CPU affinity mask (which containers and ``taskset`` restrict), else the CPU count."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def launcher_parallelism(launcher: dict | None, at_once: int | None = None) -> int:
    """How many jobs the Hydra launcher runs at once on this machine: 1 for the default, sequential
    launcher; joblib's ``n_jobs`` (negative: CPUs + 1 + n_jobs, as joblib counts); submitit's
    local launcher starts every job it is handed at once. Never more than ``at_once``, the jobs the
    sweeper hands the launcher at once (``posbench.sweep.concurrency``). Slurm jobs get CPUs of
    their own (``SLURM_CPUS_PER_TASK``)."""
    target = str((launcher or {}).get("_target_", ""))
    cpus = usable_cpus()
    if target.endswith("JoblibLauncher"):
        n_jobs = launcher.get("n_jobs")
        parallel = cpus if n_jobs is None else (cpus + 1 + int(n_jobs) if int(n_jobs) < 0 else int(n_jobs))
    elif target.endswith("LocalLauncher"):  # hydra-submitit-launcher's submitit_local: a batch at once
        parallel = at_once or 1
    else:
        parallel = 1
    if at_once is not None:
        parallel = min(parallel, at_once)
    return max(1, min(parallel, cpus))


def remote_device(launcher: dict | None) -> str | None:
    """The device type the jobs of a launcher that runs them on other machines get there (Slurm:
    ``cuda`` when it asks for GPUs, else ``cpu``), or None when jobs run on this machine. A sweep
    is planned (and resumed) on a login node that may have no GPU: with ``trainer.device=auto`` its
    jobs are checked, and fingerprinted, as they will run."""
    launcher = launcher or {}
    if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return None
    return "cuda" if launcher.get("gpus_per_node") or launcher.get("gpus_per_task") else "cpu"


def resolve_threads(threads: int | str, launcher: dict | None = None, at_once: int | None = None) -> int:
    """``trainer.threads``: a number, or ``auto`` = usable CPUs // jobs the launcher runs at once
    (at least 1). submitit's ``cpus_per_task``, when set, is what each job is given."""
    if threads != "auto":
        return int(threads)
    per_task = (launcher or {}).get("cpus_per_task")
    if per_task:
        return int(per_task)
    return max(1, usable_cpus() // launcher_parallelism(launcher, at_once))


def resolve_device(name: str, slot: int | None = None) -> torch.device:
    """``trainer.device``: ``auto`` is CUDA when present, else the CPU; on a machine with several
    GPUs, a job that runs beside others (``slot``: its number in a parallel launcher's sweep) takes
    GPU ``slot % count``, so that the jobs spread over the devices."""
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        count = torch.cuda.device_count()
        return torch.device(f"cuda:{slot % count}" if slot is not None and count > 1 else "cuda")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={name} but CUDA is not available here; use trainer.device=cpu")
        if name != "cuda" and int(name.split(":")[1]) >= torch.cuda.device_count():
            raise ConfigError(f"trainer.device={name} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(name)


class Threads(Check):
    """``auto`` or a positive number of threads."""

    def __call__(self, value: Any) -> int | str:
        if value == "auto":
            return value
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be auto or a number of threads >= 1")
        return value


def memory_bytes(device: torch.device) -> int | None:
    """Memory a run on ``device`` can use: the GPU's total memory, or the machine's RAM (the cgroup
    limit when it is lower, as in a container or a Slurm allocation). None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
