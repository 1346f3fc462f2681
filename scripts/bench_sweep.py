"""Sweep throughput: the same 12-run CPU sweep with Hydra's basic launcher and with joblib.

What is measured
    Wall time, and runs per hour, of ``posbench train -m`` over 6 encodings (none, sinusoidal,
    learned, rope, alibi, t5) x 2 seeds on the copy task, ``--steps`` training steps each, with the
    no-PE twins (one per seed, trained once: the ``none`` jobs are the twins). The whole command is
    timed as a user runs it, start-up, validation of every job, evaluation and the report included.

    * ``basic``: Hydra's sequential launcher, one job at a time with ``trainer.threads=auto``
      (every CPU this process may use);
    * ``joblib``: ``hydra/launcher=joblib hydra.launcher.n_jobs=2``, two jobs at a time, each with
      ``trainer.threads=auto`` = CPUs // 2 (1 thread each on 2 CPUs).

    Each launcher starts from an empty twin cache and its own sweep folder (under a temporary
    folder, deleted at the end), so both do the same work. With ``--repeats`` > 1 the launchers
    alternate (basic, joblib, joblib, basic, ...) and the medians are reported.
    Target: joblib at least ``TARGET`` x the runs per hour of the basic launcher on 2 cores.

Run from the project root:  ``.venv/bin/python scripts/bench_sweep.py [--steps 1000] [--repeats 1]``
(``make bench-sweep``). Needs the ``sweep`` extra (hydra-joblib-launcher).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCODINGS = "none,sinusoidal,learned,rope,alibi,t5"
SEEDS = "0,1"
RUNS = 12
TARGET = 1.5
LAUNCHERS = {"basic": ["hydra/launcher=basic"], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def sweep(launcher: str, steps: int, folder: Path) -> float:
    """Seconds the sweep takes with ``launcher``, in ``folder`` (which must not exist yet)."""
    command = [
        sys.executable, "-m", "posbench", "train", "-m", *LAUNCHERS[launcher], f"encoding={ENCODINGS}", f"seed={SEEDS}",
        f"trainer.max_steps={steps}", f"trainer.eval_every={steps}", f"trainer.checkpoint_every={steps}",
        f"twin_cache={folder / 'twins'}", f"hydra.sweep.dir={folder / 'sweep'}",
    ]
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
    seconds = time.perf_counter() - start
    if out.returncode != 0 or f"sweep of {RUNS} jobs: {RUNS} ok" not in out.stderr:
        sys.exit(f"the {launcher} sweep did not end with {RUNS} ok jobs:\n{out.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000, the trainer's default)")
    parser.add_argument("--repeats", type=int, default=1, help="sweeps per launcher (default 1)")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{RUNS}-run sweep (encoding={ENCODINGS} seed={SEEDS}, task=copy, {args.steps} steps each) on {cpus} CPUs")
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    with tempfile.TemporaryDirectory(prefix="posbench-bench-") as tmp:
        for repeat in range(args.repeats):
            order = list(LAUNCHERS) if repeat % 2 == 0 else list(reversed(LAUNCHERS))
            for launcher in order:
                seconds = sweep(launcher, args.steps, Path(tmp) / f"{launcher}{repeat}")
                times[launcher].append(seconds)
                print(f"  {launcher:<7} repeat {repeat + 1}: {seconds:7.1f} s")
    print(f"\n{'launcher':<34} {'wall s':>8} {'runs/hour':>10}")
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in median.items():
        print(f"{name + ' ' + ' '.join(LAUNCHERS[name][1:]):<34} {seconds:8.1f} {RUNS * 3600 / seconds:10.0f}")
    ratio = median["basic"] / median["joblib"]
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"\njoblib / basic: {ratio:.2f}x the runs per hour ({verdict} the {TARGET}x target)")


if __name__ == "__main__":
    main()
