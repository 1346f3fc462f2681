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
import re
from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from posbench import config
from posbench.errors import ConfigError, first_line
from posbench.schema import check_section
from posbench.validation import check_folder, validate

CONFIG_DIR = Path(__file__).parent / "configs"
#: Hydra settings that posbench decides (the run mode, the sweeper and its plan, the working directory).
POSBENCH_SETTINGS = ("hydra.mode", "hydra/sweeper", "hydra.sweeper", "hydra.job.chdir")


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

    @property
    def invalid(self) -> list[PlannedJob]:
        return [job for job in self.jobs if job.error is not None]


def plan(overrides: list[str], multirun: bool) -> Plan:
    """Compose and validate every job of ``posbench train [-m] overrides``; ``ConfigError`` for a
    problem of the command itself (a parse error, an unknown config group option in a single
    run, a sweep without ``-m``), per-job errors in ``Plan.jobs``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="posbench"):
        parsed = parse(overrides)
        if not multirun:
            swept = [o.input_line for o in parsed if o.is_sweep_override()]
            if swept:
                raise ConfigError(
                    f"{swept[0]} sweeps over several values: add -m to run one job per value "
                    "(or write a list as key=[a,b], a string with a comma as key='a,b')"
                )
            job = PlannedJob(0, list(overrides))
            cfg = compose_job(job.overrides)
            _check_job(job, cfg, _resolve_path(cfg, "hydra.run.dir").absolute())
            if job.error is not None:
                raise ConfigError(job.error)
            return Plan(False, [job], pinned=[f"hydra.run.dir={hydra_string(job.run_dir)}"])

        job_overrides = BasicSweeper.split_arguments(parsed, None)[0]
        if not job_overrides:
            empty = next(o for o in parsed if o.is_sweep_override() and not list(o.sweep_string_iterator()))
            choices = ", ".join(GlobalHydra.instance().config_loader().get_group_options(empty.key_or_group))
            raise ConfigError(f"{empty.input_line} selects no {empty.key_or_group}; valid choices: {choices}")
        swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
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
        sweep_dir = _resolve_path(first, "hydra.sweep.dir", check_config=False).absolute()
        check_folder("hydra.sweep.dir", sweep_dir)
        skip_invalid = check_section("sweep", config.SweepOptions, _resolved(first).get("sweep", {}))["skip_invalid"]
        for number, cfg in composed.items():
            job = jobs[number]
            try:
                with read_write(cfg.hydra), open_dict(cfg.hydra):
                    cfg.hydra.sweep.dir = str(sweep_dir)
                    cfg.hydra.job.num = number
                run_dir = sweep_dir / _resolve_path(cfg, "hydra.sweep.subdir")
            except ConfigError as err:
                job.error = str(err)
                continue
            _check_job(job, cfg, run_dir, len(jobs))
        skip = [job.number for job in jobs if job.error is not None]
        pinned = [f"hydra.sweep.dir={hydra_string(sweep_dir)}", f"hydra.sweeper.jobs={len(jobs)}"]
        if skip:
            pinned.append(f"hydra.sweeper.skip=[{','.join(map(str, skip))}]")
        return Plan(True, jobs, skip_invalid, sweep_dir, pinned)


def compose_checked(overrides: list[str]) -> None:
    """Compose the command's configuration (its swept keys at their defaults) to refuse, in one
    line, what Hydra could not compose: used before Hydra prints help or the configuration."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="posbench"):
        compose_job([o.input_line for o in parse(overrides) if not o.is_sweep_override()])


def _check_job(job: PlannedJob, cfg, run_dir: Path, sweep_jobs: int | None = None) -> None:
    """Fill ``job.run_dir`` and ``job.error`` (None when ``validate`` accepts the job)."""
    job.run_dir = run_dir
    try:
        task_cfg = _resolved(cfg)
        launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        validate(task_cfg, run_dir, launcher, sweep_jobs)
    except ConfigError as err:
        job.error = str(err)


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
        if key in POSBENCH_SETTINGS or (key.startswith("hydra.sweeper.") and key != "hydra.sweeper.max_batch_size"):
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
        if err.options is not None and group:
            raise ConfigError(f"unknown {group} {name!r}; valid choices: {', '.join(err.options)}") from None
        raise ConfigError(first_line(err)) from None
    except HydraException as err:
        match = re.match(r"Could not override '([^']+)'", str(err))
        if match:
            key = match.group(1)
            if key.startswith("hydra."):
                raise ConfigError(f"{key} is not a Hydra setting (posbench train --hydra-help lists them)") from None
            added = [f"+{item}" if item.split("=", 1)[0] == key else item for item in overrides]
            return compose_job(added)
        raise ConfigError(first_line(err)) from None
    except OmegaConfBaseException as err:
        raise ConfigError(first_line(err)) from None


def _resolved(cfg) -> dict:
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
        config.normalise(_resolved(cfg))
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
