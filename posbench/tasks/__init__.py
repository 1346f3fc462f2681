"""Tasks: ``base.py`` holds the contract; each task module registers itself."""

from posbench.registry import import_submodules
from posbench.tasks.base import TASKS, Task

import_submodules(__name__, __path__)

__all__ = ["TASKS", "Task"]
