"""Planning a ``posbench train`` command before Hydra runs it: one job, or every job of a sweep.

``plan`` composes the configuration of every job with Hydra's compose API (the same composition
Hydra's launcher performs), resolves where each job will write, and validates each one
(``posbench.validation``), so that a bad value is found before anything runs or is written:

* a single run that does not validate is refused (one line, exit code 2);
* a sweep (``-m``) with an invalid job is refused whole, each invalid job listed with its reason,
  unless ``sweep.skip_invalid=true``: then the valid jobs run, the invalid ones are skipped and
  listed at the end (a sweep whose jobs all fail for one reason is refused with that one line).

The plan pins, as Hydra overrides, what Hydra would otherwise resolve again a few milliseconds later
(the run or sweep folder: ``${now:...}``) and what the sweeper needs from the plan (the number of
jobs and the jobs to skip).

The sweep itself is run by posbench's Hydra sweeper (``hydra_plugins/posbench_sweeper``), which
skips the invalid jobs and carries on after a failed one; ``outcome`` reads what each job left
behind for the summary printed at the end of a sweep.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf, open_dict, read_write
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from hydra_plugins.posbench_sweeper.sweeper import combinations
from posbench import config
from posbench.errors import ConfigError, first_line
from posbench.labels import label
from posbench.schema import check_section
from posbench.training.files import write_json
from posbench.validation import Job, Slot, check_folder, validate

CONFIG_DIR = Path(__file__).parent / "configs"
#: Hydra settings that posbench decides (the run mode, the sweeper, its plan, the working directory);
#: a search's settings (``hydra.sweeper.n_trials`` with ``hparams_search=lr``) are the user's.
POSBENCH_SETTINGS = ("hydra.mode", "hydra/sweeper", "hydra.sweeper", "hydra.sweeper.jobs", "hydra.sweeper.skip", "hydra.job.chdir")


#: The launchers and sweepers of the ``sweep`` extra, and the plugins they come from.
SWEEP_EXTRA = {
    f"hydra/{kind}/{name}": f"{plugin} (pip install 'posbench[sweep]')"
    for kind, name, plugin in [
        ("launcher", "joblib", "hydra-joblib-launcher"),
        ("launcher", "submitit_local", "hydra-submitit-launcher"),
        ("launcher", "submitit_slurm", "hydra-submitit-launcher"),
        ("sweeper", "optuna", "hydra-optuna-sweeper"),
    ]
}


def needs_extra(group: str, name: str) -> str:
    """``hydra/launcher=joblib needs hydra-joblib-launcher (pip install 'posbench[sweep]')``."""
    return f"{group}={name} needs {SWEEP_EXTRA.get(f'{group}/{name}', 'its Hydra plugin')}"


# ---- the plan ----------------------------------------------------------------------------------
@dataclass
class PlannedJob:
    number: int
    overrides: list[str]
    #: The overrides that set this job apart from the others of its sweep (the swept values).
    swept: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    #: Why the job cannot run (None: it validated).
    error: str | None = None
    #: What a report shows of a validated job: label, task, model, seed.
    identity: dict = field(default_factory=dict)
    #: Its folder already holds the complete results of this configuration (an earlier launch of
    #: the same sweep): it is not launched again.
    reused: bool = False

    def describe(self) -> str:
        """``job 3 (encoding=rope seed=1)``: the job and the values that set it apart."""
        return f"job {self.number} ({' '.join(self.swept or self.overrides) or 'defaults'})"


@dataclass
class Plan:
    multirun: bool
    jobs: list[PlannedJob]
    skip_invalid: bool = False
    #: The sweep folder (multirun) or None.
    sweep_dir: Path | None = None
    #: Overrides appended for Hydra: the resolved folders and the jobs to skip.
    pinned: list[str] = field(default_factory=list)
    #: A search (``hparams_search=...``): ``jobs`` are the configurations checked before it starts
    #: (see ``_plan_search``), not the jobs it will run.
    search: bool = False

    @property
    def invalid(self) -> list[PlannedJob]:
        return [job for job in self.jobs if job.error is not None]


def plan(overrides: list[str], multirun: bool) -> Plan:
    """Compose and validate every job of ``posbench train [-m] overrides``; ``ConfigError`` for a
    problem of the command itself (a parse error, an unknown config group option in a single
    run, a sweep without ``-m``), per-job errors in ``Plan.jobs``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="posbench"):
        parsed = parse(overrides)
        _check_experiment(parsed)
        if not multirun:
            _refuse_sweeper_settings(parsed)
            swept = [o.input_line for o in parsed if o.is_sweep_override()]
            if swept:
                raise ConfigError(
                    f"{swept[0]} sweeps over several values: add -m to run one job per value "
                    "(or write a list as key=[a,b], a string with a comma as key='a,b')"
                )
            job = PlannedJob(0, list(overrides))
            cfg = compose_job(job.overrides)
            if _is_search(cfg):
                raise ConfigError("hparams_search runs a search of several jobs: add -m")
            configured, arms = configured_sweep(cfg)
            if arms or configured:  # a single run reads no sweeper settings: it would not be the experiment's
                experiment = cfg.hydra.runtime.choices.get("experiment")
                raise ConfigError(f"experiment={experiment} is a sweep of several jobs: add -m")
            _check_job(job, cfg, _resolve_path(cfg, "hydra.run.dir").absolute())
            if job.error is not None:
                raise ConfigError(job.error)
            return Plan(False, [job], pinned=[f"hydra.run.dir={hydra_string(job.run_dir)}"])

        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        base = compose_job(fixed)
        if _is_search(base):
            return _plan_search(parsed, fixed, base)
        _refuse_sweeper_settings(parsed)
        configured, arms = configured_sweep(base)
        everything = parse([*configured, *overrides])  # as the sweeper reads them: the command line wins
        arm_keys = _arm_keys(arms, parsed, base)
        job_overrides = combinations(everything, arms)
        if not job_overrides:
            empty = next(o for o in everything if o.is_sweep_override() and not list(o.sweep_string_iterator()))
            choices = ", ".join(GlobalHydra.instance().config_loader().get_group_options(empty.key_or_group))
            raise ConfigError(f"{empty.input_line} selects no {empty.key_or_group}; valid choices: {choices}")
        swept = {o.get_key_element() for o in everything if o.is_sweep_override()} | arm_keys
        jobs = [
            PlannedJob(number, list(values), [v for v in values if v.split("=", 1)[0] in swept])
            for number, values in enumerate(job_overrides)
        ]
        composed = {}
        for job in jobs:
            try:
                composed[job.number] = compose_job(job.overrides)
            except ConfigError as err:
                job.error = str(err)
        if not composed:
            return Plan(True, jobs)
        first = composed[min(composed)]  # the sweep's own settings do not depend on the swept values
        sweep_dir = _sweep_dir(first)
        skip_invalid = check_section("sweep", config.SweepOptions, own_config(first).get("sweep", {}))["skip_invalid"]
        at_once = concurrency(first.hydra.sweeper, len(jobs))
        for number, cfg in composed.items():
            _check_sweep_job(jobs[number], cfg, sweep_dir, number, at_once)
        skip = [job.number for job in jobs if job.error is not None or job.reused]
        pinned = [f"hydra.sweep.dir={hydra_string(sweep_dir)}", f"hydra.sweeper.jobs={len(jobs)}"]
        if skip:
            pinned.append(f"hydra.sweeper.skip=[{','.join(map(str, skip))}]")
        return Plan(True, jobs, skip_invalid, sweep_dir, pinned)


def _refuse_sweeper_settings(parsed: list[Override]) -> None:
    """posbench's sweeper takes its settings from the plan (but ``max_batch_size``, the jobs
    launched at once); only a search (``hparams_search=...``) has settings of the user's."""
    for override in parsed:
        key = override.key_or_group
        if key.startswith("hydra.sweeper.") and key != "hydra.sweeper.max_batch_size":
            raise ConfigError(
                f"{override.input_line}: {key} is set by posbench train (a sweep's jobs are the combinations of "
                "its swept values; a search's settings apply with hparams_search=...)"
            )


def configured_sweep(cfg) -> tuple[list[str], list[list[str]]]:
    """What the composed configuration itself sweeps (an experiment, ``configs/experiment/``):
    ``hydra.sweeper.params`` as overrides, and ``hydra.sweeper.arms``."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    arms = OmegaConf.select(cfg, "hydra.sweeper.arms", default=None) or []
    return [f"{key}={value}" for key, value in params.items()], [[str(item) for item in arm] for arm in arms]


def _arm_keys(arms: list[list[str]], parsed: list[Override], cfg) -> set[str]:
    """The keys an experiment's arms set; the command line may not set them too (an arm is one
    variant: ``encoding=randomized encoding.base=rope``), so that a job is what its arm says."""
    keys = {o.get_key_element() for arm in arms for o in parse(arm)}
    clash = next((o for o in parsed if o.get_key_element() in keys), None)
    if clash is not None:
        experiment = cfg.hydra.runtime.choices.get("experiment")
        raise ConfigError(
            f"{clash.input_line}: experiment={experiment} sets {clash.get_key_element()} in each of its arms "
            f"(hydra.sweeper.arms in configs/experiment/{experiment}.yaml); run those variants without experiment="
        )
    return keys


def _check_experiment(parsed: list[Override]) -> None:
    """An experiment (``experiment=NAME``, ``configs/experiment/``) is one sweep at one budget:
    ``budget=`` needs it, neither is swept, and it is not searched (``hparams_search``)."""
    given = {o.key_or_group: o for o in parsed}
    for key in ("experiment", "budget"):
        if key in given and given[key].is_sweep_override():
            raise ConfigError(f"{given[key].input_line}: run one experiment at one budget per command")
    if "budget" in given and "experiment" not in given:
        names = ", ".join(GlobalHydra.instance().config_loader().get_group_options("experiment"))
        raise ConfigError(f"{given['budget'].input_line} scales an experiment: add experiment=NAME ({names})")
    search = given.get("hparams_search")
    if "experiment" in given and search is not None and search.get_value_element_as_str() != "none":
        raise ConfigError(f"{search.input_line}: an experiment is a sweep of its own; it cannot be searched")


def _plan_search(parsed: list[Override], fixed: list[str], base) -> Plan:
    """The plan of a search (``hparams_search=...``: a sweeper that chooses the values as it goes,
    e.g. Optuna): its jobs are not known in advance, so the configurations it can reach are checked
    where it can: the fixed settings, and each searched key at the ends of its interval and at each
    value of its choices and ranges (one key at a time)."""
    space = [o.input_line for o in parsed if o.is_sweep_override()] + configured_sweep(base)[0]
    jobs = [PlannedJob(0, fixed)]
    for override in parse(space):
        sweep = override.value()
        if isinstance(sweep, IntervalSweep):
            values = [sweep.start, sweep.end]
        elif override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        for value in values:
            setting = f"{override.get_key_element()}={value}"
            jobs.append(PlannedJob(len(jobs), [*fixed, setting], [setting]))
    sweep_dir = _sweep_dir(base)
    at_once = concurrency(base.hydra.sweeper, None)
    for job in jobs:
        try:
            cfg = compose_job(job.overrides)
        except ConfigError as err:
            job.error = str(err)
            continue
        _check_sweep_job(job, cfg, sweep_dir, 0, at_once)
    return Plan(True, jobs, sweep_dir=sweep_dir, pinned=[f"hydra.sweep.dir={hydra_string(sweep_dir)}"], search=True)


def _is_search(cfg) -> bool:
    """Whether the composed command runs a search (``hparams_search=...``), not posbench's sweeper."""
    return not str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="")).endswith(".PosbenchSweeper")


def concurrency(sweeper, jobs: int | None) -> int | None:
    """How many jobs the sweeper hands the launcher at once (what ``trainer.threads=auto`` divides
    the CPUs by, at most): a sweep's ``jobs``, at most ``max_batch_size``; a search's ``n_jobs``
    (Optuna's trials per batch). None: not known (as many as the launcher runs)."""
    if "n_jobs" in sweeper:
        return sweeper.n_jobs
    batch = sweeper.get("max_batch_size")
    return min(jobs, batch) if jobs is not None and batch not in (None, -1) else jobs


def _sweep_dir(cfg) -> Path:
    """The sweep folder of a composed multirun, resolved once and checked."""
    sweep_dir = _resolve_path(cfg, "hydra.sweep.dir", check_config=False).absolute()
    check_folder("hydra.sweep.dir", sweep_dir)
    return sweep_dir


def _check_sweep_job(job: PlannedJob, cfg, sweep_dir: Path, number: int, at_once: int | None) -> None:
    """``_check_job`` for job ``number`` of a sweep in ``sweep_dir``, with the sweep's folders pinned."""
    try:
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.sweep.dir = str(sweep_dir)
            cfg.hydra.job.num = number
        run_dir = sweep_dir / _resolve_path(cfg, "hydra.sweep.subdir")
    except ConfigError as err:
        job.error = str(err)
        return
    _check_job(job, cfg, run_dir, Slot(number, sweep_dir, at_once=at_once))


def compose_checked(overrides: list[str]) -> None:
    """Compose and check the command's configuration (its swept keys at their defaults) to refuse,
    in one line, what Hydra could not compose or resolve: used before Hydra prints help or the
    configuration (``--cfg ... --resolve`` resolves the folders, which need a valid configuration)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="posbench"):
        cfg = compose_job([o.input_line for o in parse(overrides) if not o.is_sweep_override()])
        config.normalise(own_config(cfg))


def _check_job(job: PlannedJob, cfg, run_dir: Path, slot: Slot | None = None) -> None:
    """Fill ``job.run_dir`` and ``job.error`` (None when ``validate`` accepts the job in ``slot``
    of its sweep)."""
    job.run_dir = run_dir
    if "_target_" not in cfg.hydra.launcher:  # posbench's settings for a launcher whose plugin is missing
        job.error = needs_extra("hydra/launcher", cfg.hydra.runtime.choices.get("hydra/launcher"))
        return
    try:
        task_cfg = own_config(cfg)
        launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        valid = validate(task_cfg, run_dir, launcher, slot)
    except ConfigError as err:
        job.error = str(err)
        return
    job.identity = {
        "label": label(valid.cfg), **{key: valid.cfg[key]["name"] for key in ("task", "model")}, "seed": valid.cfg["seed"],
    }
    job.reused = slot is not None and finished(valid)


def finished(job: Job) -> bool:
    """Whether ``job.run_dir`` holds complete results of this configuration (``job.earlier``, which
    ``validate`` read and matched to the configuration): ``ok`` (with its twin's numbers when it
    compares with one) or ``diverged``."""
    if job.earlier is None:
        return False
    status = job.earlier.get("status")
    needs_twin = job.cfg["compare_nope"] and not config.is_pe_free(job.cfg)
    return status == "diverged" or (status == "ok" and (not needs_twin or job.earlier.get("nope") is not None))


def write_manifest(planned: Plan, command: list[str]) -> None:
    """``<sweep dir>/sweep.json``: every job of the sweep with its label, folder and state
    (``planned``, ``skipped`` when invalid, ``reused`` when complete from an earlier launch), so that
    ``posbench report`` can tell the jobs that have not finished from those that never ran."""
    jobs = [
        {
            "number": job.number, **job.identity, "overrides": job.swept or job.overrides,
            "run_dir": None if job.run_dir is None else os.path.relpath(job.run_dir, planned.sweep_dir),
            "state": "skipped" if job.error is not None else ("reused" if job.reused else "planned"),
            "reason": job.error,
        }
        for job in planned.jobs
    ]
    write_json(planned.sweep_dir / "sweep.json", {"command": shlex.join(["posbench", "train", *command]), "jobs": jobs})


def parse(overrides: list[str]) -> list[Override]:
    """Hydra's parse of the overrides (globs expanded against the config groups); one line for
    anything it cannot read."""
    for item in overrides:
        if re.match(r"^[+~]{0,2}=", item):
            raise ConfigError(f"{item!r} has no key: write KEY=VALUE, e.g. encoding=rope")
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    try:
        parsed = parser.parse_overrides(overrides)
    except OverrideParseException as err:
        lines = [line for line in str(err).splitlines() if line.strip() and not line.startswith("See https")]
        raise ConfigError("cannot read the override: " + "; ".join(lines)) from None
    for override in parsed:
        key = override.key_or_group
        if key in POSBENCH_SETTINGS:
            raise ConfigError(
                f"{override.input_line}: {key} is set by posbench train (sweep with -m; a run writes into "
                "hydra.run.dir, relative paths are relative to where posbench starts)"
            )
    return parsed


def compose_job(overrides: list[str]):
    """The composed configuration (with its ``hydra`` node) of one job; Hydra's composition errors
    as one line. A key that does not exist (``encoding.foo=1``) is composed as an addition
    (``+encoding.foo=1``) so that the schema names the options that do exist."""
    try:
        return compose("train", overrides=overrides, return_hydra_config=True)
    except MissingConfigException as err:
        missing = str(err.missing_cfg_file or "")
        group, _, name = missing.rpartition("/")
        if f"{group}/{name}" in SWEEP_EXTRA:
            raise ConfigError(needs_extra(group, name)) from None
        if err.options is not None and group:
            raise ConfigError(f"unknown {group} {name!r}; valid choices: {', '.join(err.options)}") from None
        raise ConfigError(first_line(err)) from None
    except HydraException as err:
        match = re.match(r"Could not override '([^']+)'", str(err))
        if match:
            key = match.group(1)
            if key.startswith("hydra.") and not isinstance(err.__cause__, (ConfigKeyError, ConfigAttributeError)):
                raise ConfigError(f"cannot set {key}: {first_line(err.__cause__ or err)}") from None
            if key.startswith("hydra."):
                raise ConfigError(f"{key} is not a Hydra setting (posbench train --hydra-help lists them)") from None
            added = [f"+{item}" if item.split("=", 1)[0] == key else item for item in overrides]
            return compose_job(added)
        raise ConfigError(first_line(err)) from None
    except OmegaConfBaseException as err:
        raise ConfigError(first_line(err)) from None
    except ValueError as err:  # a group set to null: ``experiment=null``
        given = next((item for item in overrides if item.endswith("=null")), None)
        if given is None:
            raise ConfigError(first_line(err)) from None
        raise ConfigError(f"{given}: a config group takes an option's name, not null (leave {given.split('=')[0]} out)") from None


def own_config(cfg) -> dict:
    """The job's own configuration (without ``hydra``), every interpolation resolved."""
    own = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        return OmegaConf.to_container(own, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"cannot resolve {err.full_key}: {first_line(err)}") from None


def _resolve_path(cfg, key: str, check_config: bool = True) -> Path:
    """A folder setting of the ``hydra`` node, resolved once (``${now:...}``, ``${encoding.name}``);
    relative as given (a run or sweep folder is relative to the working directory, a job's
    subfolder to its sweep folder). ``check_config``: report a missing or invalid key of the
    configuration as such first, not as a failure to resolve the folder."""
    if check_config:
        config.normalise(own_config(cfg))
    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {first_line(err)}") from None
    if value is None or not str(value).strip():
        raise ConfigError(f"{key} is empty: give a folder")
    return Path(str(value))


def hydra_string(path: Path) -> str:
    """``path`` as a Hydra override value: quoted unless it is plain."""
    text = str(path)
    if re.fullmatch(r"[\w./:+@%-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${") + "'"


# ---- after the sweep ---------------------------------------------------------------------------
def outcome(job: PlannedJob) -> tuple[str, str]:
    """``(status, detail)`` of a launched job from its results.json: ``ok``, ``diverged``,
    ``failed`` (with the error), or ``failed`` when it left no results."""
    path = job.run_dir / "results.json"
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return "failed", f"no results.json (see {job.run_dir / 'posbench.log'})"
    status = results.get("status", "failed")
    if status == "diverged":
        return status, f"at step {results.get('diverged_at')}"
    if status == "failed":
        return status, f"{results.get('error')} (see {job.run_dir / 'posbench.log'})"
    return status, ""


class ReportAtEnd(Callback):
    """``hydra.callbacks.report`` (``configs/train.yaml``): when a multirun ends, ``posbench
    report`` of its sweep folder is written (report.md, report.csv, plots) and its Markdown printed,
    so that a sweep ends with one table instead of one per job. ``~hydra.callbacks.report`` turns it off."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from posbench.reporting import write_report

        folder = Path(config.hydra.sweep.dir)
        try:
            text = write_report(folder)
        except ConfigError as err:  # e.g. every job failed: nothing to tabulate
            print(f"posbench: no report: {err}", file=sys.stderr)
            return
        print(f"\n{text}\nreport:  {folder / 'report.md'}, {folder / 'report.csv'}", flush=True)
        print(f"compare: tensorboard --logdir {folder}", flush=True)
