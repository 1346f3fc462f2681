"""The ``posbench`` command: ``posbench train [flags] [hydra overrides]``, ``posbench report DIR``
and ``posbench list``.

Hydra has no subcommands, so the subcommand is taken off the arguments here. ``train`` then:

1. reads the flags with Hydra's own argument parser (an unknown flag is one line, exit code 2);
2. plans the command (``posbench.sweep.plan``): composes and validates every job, so that any
   mistake is one line (a sweep: one line per invalid job), exit code 2, before Hydra creates a
   folder, a twin-cache entry or a tensor;
3. hands the command to Hydra with the planned folders pinned, and runs each job with SIGINT and
   SIGTERM turned into a checkpoint and a line telling how to resume (exit code 130 / 143);
4. after a sweep, prints the outcome of every job; the exit code is 1 if a job failed.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from posbench.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"
USAGE = """usage: posbench <command> [args]

commands:
  train [OVERRIDES] [-m] [--cfg job] [--help]   train a model and its no-PE twin (Hydra overrides)
  report DIR [--metric M] [--out DIR]           tables (report.md, report.csv) and plots of every run under DIR
  analyze DIR [--lengths L ...] [--no-twin]     position probes and attention distances of a trained run (and its twin)
  plot [encoding=NAME] [OVERRIDES] [run=DIR]    PNG pictures of one encoding, untrained or as learned in a run
  list                                          every encoding, model, task and experiment, one line each

examples:
  posbench train                                 # encoding=rope task=copy model=encoder
  posbench train encoding=alibi task=reverse model=decoder
  posbench train -m encoding=none,sinusoidal,learned,rope,alibi,t5 task=reverse seed=0,1
  posbench train -m experiment=kazemnejad2023 budget=smoke   # a published experiment, scaled down
"""
#: Hydra flags that replace posbench's configuration (posbench's config tree is fixed).
REFUSED_FLAGS = ("config_path", "config_name", "config_dir", "experimental_rerun")
#: Hydra flags that only print something (help, the composed configuration, completion).
INFORMATIONAL_FLAGS = ("help", "hydra_help", "cfg", "info", "shell_completion")

log = logging.getLogger("posbench")


def error(message: str) -> None:
    print(f"posbench: error: {message}", file=sys.stderr)


def read_flags(argv: list[str]):
    """Hydra's command-line flags and overrides; an unknown or malformed flag is a ``ConfigError``."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()

    def refuse(message: str):
        raise ConfigError(f"{message} (see posbench train --help)")

    parser.error = refuse
    args = parser.parse_args(argv)
    commands = args.run + args.multirun + (args.cfg is not None) + (args.info is not None) + args.shell_completion
    if commands > 1:
        raise ConfigError("use only one of --run, --multirun, --cfg, --info and --shell-completion")
    if args.resolve and args.cfg is None and not args.help:
        raise ConfigError("--resolve goes with --cfg or --help")
    for name in REFUSED_FLAGS:
        if getattr(args, name, None):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} is not supported: posbench's configuration tree is fixed; override its keys instead")
    return args


def train(argv: list[str]) -> int:
    from posbench import sweep

    args = read_flags(argv)
    if any(getattr(args, name, None) for name in INFORMATIONAL_FLAGS):
        sweep.compose_checked(args.overrides)
        return hydra_main(argv, [], None)
    planned = sweep.plan(args.overrides, args.multirun)
    bad = planned.invalid
    if len(bad) == len(planned.jobs) and len({job.error for job in bad}) == 1:  # not about the swept values
        raise ConfigError(bad[0].error)
    if bad and planned.search:  # a search cannot skip what it may choose
        where = f"at {' '.join(bad[0].swept)}" if bad[0].swept else "in its fixed settings"
        raise ConfigError(f"the search reaches an invalid configuration {where}: {bad[0].error}")
    if bad and (not planned.skip_invalid or len(bad) == len(planned.jobs)):
        verb = "is" if len(bad) == 1 else "are"
        hint = "" if len(bad) == len(planned.jobs) else " (sweep.skip_invalid=true runs the others)"
        error(f"{len(bad)} of {len(planned.jobs)} jobs {verb} invalid; nothing was run{hint}:")
        for job in bad:
            error(f"{job.describe()}: {job.error}")
        return 2
    folder = planned.sweep_dir if planned.multirun else planned.jobs[0].run_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {folder}: {err.strerror}") from None
    if bad:
        print(f"posbench: skipping {len(bad)} invalid job(s) of {len(planned.jobs)} (listed at the end)", file=sys.stderr)
    if planned.multirun and not planned.search:  # a search's jobs are not known in advance
        sweep.write_manifest(planned, argv)
        reused = sum(job.reused for job in planned.jobs)
        if reused:
            print(f"posbench: {reused} of {len(planned.jobs)} jobs already complete in {folder}: not run again", file=sys.stderr)
    code = hydra_main(argv, planned.pinned, planned)
    if planned.multirun and code < 128:  # not interrupted
        code = max(code, sweep_summary(planned))
    return code


def hydra_main(argv: list[str], pinned: list[str], planned) -> int:
    """Run ``posbench train`` through ``hydra.main`` with ``pinned`` overrides appended."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    from posbench.experiment import run
    from posbench.report import one_line, summary
    from posbench.sweep import concurrency
    from posbench.training import interrupt
    from posbench.validation import Slot

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
    def job(cfg: DictConfig) -> float:
        """One run; returns its in-distribution accuracy (0 when it diverged): the objective of a
        search (``hparams_search=lr``); other sweeps ignore it."""
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir).absolute()
        multirun = hydra_cfg.mode.name == "MULTIRUN"
        launcher = OmegaConf.to_container(hydra_cfg.launcher, resolve=True)
        slot = None
        if multirun:  # the jobs of the sweep (posbench's sweeper), or the trials of a search (Optuna's n_trials)
            jobs = hydra_cfg.sweeper.get("jobs") or hydra_cfg.sweeper.get("n_trials")
            slot = Slot(hydra_cfg.job.num, Path(hydra_cfg.sweep.dir).absolute(), jobs, concurrency(hydra_cfg.sweeper, jobs))
        try:
            results = run(OmegaConf.to_container(cfg, resolve=True), run_dir, launcher, slot)
        except ConfigError as err:  # checked before Hydra started; possible on another machine (a cluster job)
            if multirun:
                log.error(f"posbench: error: {err}")
                raise
            error(str(err))
            sys.exit(2)
        except Exception:
            if multirun:  # the sweep goes on; the traceback stays in this job's posbench.log
                log.exception("posbench: this job failed")
            raise
        if results["status"] == "diverged":
            log.warning(
                f"posbench: {results['label']} diverged at step {results['diverged_at']}: no accuracy is reported "
                f"(results.json has status diverged); results: {run_dir / 'results.json'}"
            )
            return 0.0
        if multirun:  # the sweep ends with one report of every job
            log.info(f"posbench: job {slot.number + 1}/{slot.jobs or '?'} {one_line(results)}; {run_dir / 'results.json'}")
        else:
            log.info(summary(results, run_dir))
        return results["metrics"]["acc"]

    sys.argv = ["posbench train", *argv, *pinned]
    try:
        with interrupt.handle_signals():
            job()
    except interrupt.Interrupted as stop:
        print(f"posbench: {interrupted(stop, argv, planned)}", file=sys.stderr)
        return stop.exit_code
    except SystemExit as stop:  # Hydra (help, a failed single run) and refusals inside the job exit
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


def interrupted(stop, argv: list[str], planned) -> str:
    """``interrupted at step N; resume with: posbench train ...`` (the same command, the same folder)."""
    from posbench.sweep import hydra_string

    where = "" if stop.step is None else f" at step {stop.step}" + (" of the no-PE twin" if stop.label == "none" else "")
    if planned is None:  # help or --cfg: nothing to resume
        return f"interrupted{where}"
    key = "hydra.sweep.dir" if planned.multirun else "hydra.run.dir"
    folder = planned.sweep_dir if planned.multirun else planned.jobs[0].run_dir
    kept = [arg for arg in argv if not arg.startswith(f"{key}=")]
    command = shlex.join(["posbench", "train", *kept, f"{key}={hydra_string(folder)}"])
    return f"interrupted{where}; resume with: {command}"


def sweep_summary(planned) -> int:
    """Print how every job of a sweep ended; 1 if any failed, else 0."""
    from posbench.reporting.collect import natural
    from posbench.sweep import PlannedJob, outcome

    counts = {"ok": 0, "diverged": 0, "failed": 0, "skipped": 0, "reused": 0}
    lines = []
    jobs = planned.jobs
    if planned.search:  # the jobs a search ran: the run folders it made
        folders = sorted((path.parent for path in planned.sweep_dir.glob("*/.hydra")), key=natural)
        jobs = [PlannedJob(number, [folder.name], run_dir=folder) for number, folder in enumerate(folders)]
    for job in jobs:
        if job.error is not None:
            counts["skipped"] += 1
            lines.append(f"  skipped {job.describe()}: {job.error}")
            continue
        status, detail = outcome(job)
        key = "reused" if job.reused else status
        counts[key] = counts.get(key, 0) + 1
        if status != "ok":
            lines.append(f"  {status} {job.describe()}: {detail}")
    totals = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    print(f"\nsweep of {sum(counts.values())} jobs: {totals}  ({planned.sweep_dir})", *lines, sep="\n", file=sys.stderr)
    return 1 if counts["failed"] else 0


def report(argv: list[str]) -> int:
    from posbench.reporting import main as report_main

    return report_main(argv)


def analyze(argv: list[str]) -> int:
    from posbench.analysis import main as analyze_main

    return analyze_main(argv)


def plot(argv: list[str]) -> int:
    from posbench.plotting import main as plot_main

    return plot_main(argv)


def list_all() -> int:
    from posbench.report import catalogue

    print(catalogue())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    commands = {"train": lambda: train(rest), "report": lambda: report(rest), "analyze": lambda: analyze(rest),
                "plot": lambda: plot(rest), "list": list_all}
    try:
        if command not in commands:
            raise ConfigError(f"unknown command {command!r}; valid commands: {', '.join(commands)}")
        return commands[command]()
    except ConfigError as err:
        error(str(err))
        return 2
    except KeyboardInterrupt:  # before a job started (composing, validating): nothing to resume
        print("posbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the output went into a pipe closed early (`posbench list | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
