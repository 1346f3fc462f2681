"""``hydra/sweeper=posbench``: Hydra's basic sweeper (every combination of the swept values, in
Hydra's order, jobs numbered as the basic sweeper numbers them) with three changes:

* the jobs listed in ``skip`` are not launched: ``posbench train -m`` validates every job before
  Hydra starts (``posbench.sweep.plan``) and, with ``sweep.skip_invalid=true``, lists the invalid
  ones here (``jobs``, the number of jobs it planned, makes sure the numbers refer to the same jobs);
* a job that fails does not stop the sweep (the basic sweeper raises the first failure): each job
  records its outcome in its results.json, which ``posbench train -m`` summarises at the end;
* ``arms``: a list of override lists, each one arm of the sweep, for variants that are not a cross
  product (``experiment=ruoss2023``: each base encoding, and ``randomized`` over each base). Every arm
  is crossed with the swept values (``params`` and the command line): jobs = arms × combinations,
  arms outermost. ``combinations`` is the one expansion that the sweeper and ``posbench train -m``'s
  plan both use, so that job numbers agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf


def combinations(parsed: list, arms: list[list[str]]) -> list[list[str]]:
    """The jobs of a sweep, each a list of overrides: every combination of the swept values in
    ``parsed`` (Hydra's basic sweeper's order), each arm's overrides first, arms outermost."""
    jobs = BasicSweeper.split_arguments(parsed, None)[0]
    return [[*arm, *job] for arm in arms or [[]] for job in jobs]


class PosbenchSweeper(BasicSweeper):
    """Hydra's basic sweeper that skips the jobs in ``skip`` and never stops at a failed job."""

    def __init__(
        self, max_batch_size: Optional[int], params: Optional[dict] = None, skip: Optional[list] = None,
        jobs: Optional[int] = None, arms: Optional[list] = None,
    ):
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.skip = set(skip or [])
        self.planned = jobs
        self.arms = [list(arm) for arm in arms or []]

    def sweep(self, arguments: list[str]) -> Any:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = combinations(parser.parse_overrides([*self._parse_config(), *arguments]), self.arms)
        if self.planned is not None and len(jobs) != self.planned:  # job numbers would not match the plan
            raise RuntimeError(f"the sweep expands to {len(jobs)} jobs but posbench planned {self.planned}")
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        for start, batch in self._batches(jobs):
            self.validate_batch_is_legal(batch)
            returns.append(self.launcher.launch(batch, initial_job_idx=start))  # failures are read later
        return returns

    def _batches(self, jobs: list) -> list[tuple[int, list]]:
        """Runs of consecutive jobs to launch (keeping every job's number), at most
        ``max_batch_size`` each."""
        size = self.max_batch_size if self.max_batch_size not in (None, -1) else len(jobs)
        batches: list[tuple[int, list]] = []
        for number, job in enumerate(jobs):
            if number in self.skip:
                continue
            if batches and batches[-1][0] + len(batches[-1][1]) == number and len(batches[-1][1]) < size:
                batches[-1][1].append(job)
            else:
                batches.append((number, [job]))
        return batches


