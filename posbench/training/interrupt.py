"""Ctrl-C and SIGTERM during a run: stop at a step boundary with a checkpoint, never mid-update.

The command line installs ``handle_signals()`` for the duration of a job. While the training loop
runs (inside ``deferred()``), a first SIGINT or SIGTERM is only recorded; the loop finishes the
step it is in, writes a checkpoint and raises ``Interrupted`` with that step, from which a run
started again in the same directory resumes to the same numbers. Outside the loop (loading data,
evaluating), or on a second signal, ``Interrupted`` is raised at once, without a step: the
checkpoint on disk is the last one written. Without ``handle_signals()`` (posbench used as a
library, the tests) signals keep Python's default behaviour.

``Interrupted`` derives from ``BaseException``, like ``KeyboardInterrupt``, so that no
``except Exception`` (Hydra's job runner, a sweep that carries on after a failed job) swallows it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was stopped by ``signum``; ``step``: the last completed (and checkpointed) training
    step of the model ``label``, or None when no training step was in progress."""

    def __init__(self, signum: int, step: int | None = None, label: str | None = None):
        super().__init__(signum, step, label)
        self.signum, self.step, self.label = signum, step, label

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


_state = {"installed": False, "deferring": False, "pending": None}


def _handler(signum: int, frame) -> None:
    if _state["deferring"] and _state["pending"] is None:
        _state["pending"] = signum
        return
    raise Interrupted(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``Interrupted`` for the duration of the block."""
    previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    _state.update(installed=True, pending=None)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.update(installed=False, deferring=False, pending=None)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside this block a first signal waits for ``pending()`` to be polled; one still pending
    when the block ends (the loop did not poll again) is raised then."""
    outer = _state["deferring"]
    _state["deferring"] = _state["installed"]
    try:
        yield
    finally:
        _state["deferring"] = outer
    signum = _state["pending"]
    if signum is not None and not outer:
        _state["pending"] = None
        raise Interrupted(signum)


def pending() -> int | None:
    """The signal received inside ``deferred()`` and not yet acted upon, if any."""
    return _state["pending"]
