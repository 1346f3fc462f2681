"""Tasks. Importing this package registers every task listed below."""

from posbench.tasks import copy, majority, reverse, sort  # noqa: F401  (registration)
from posbench.tasks.base import TASKS, Task

__all__ = ["TASKS", "Task"]
