"""Progress of the long loops (training steps, evaluated examples), wherever the output goes.

On a terminal (stderr is a TTY) it is tqdm's bar. Elsewhere (a pipe, nohup, a Slurm log) a bar
draws nothing or a wall of carriage returns, and a run that prints nothing for minutes looks hung;
there progress is a line through the ``posbench`` logger (Hydra sends it to stdout and to the
job's ``posbench.log``) at most every ``EVERY_SECONDS``::

    rope: step 0/1000
    rope: step 400/1000  loss 0.412  batch_acc 0.875  test_acc 0.873  21.3 steps/s  ETA 0:28
    rope: step 1000/1000  loss 0.127  batch_acc 0.969  test_acc 0.968  20.8 steps/s  done in 0:48

Training announces its start and end whatever its length; an evaluation (``announce=False``)
logs only once it has run for ``EVERY_SECONDS``, so a quick one (every periodic evaluation during
training, usually) adds no line.
"""

from __future__ import annotations

import logging
import sys
from time import monotonic

from tqdm import tqdm

log = logging.getLogger("posbench")

#: Seconds between two progress lines off a terminal (and before an evaluation's first one).
EVERY_SECONDS = 30.0


def on_terminal() -> bool:
    """Whether progress is a bar: stderr, where tqdm draws, is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr (pythonw), or a closed one
        return False


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def speed(rate: float) -> str:
    """A rate with a useful number of digits: ``21.3``, ``0.042``."""
    return f"{rate:.1f}" if rate >= 1 else f"{rate:.2g}"


class Progress:
    """``total`` units of work from ``start`` (a resumed run): ``update(n, **postfix)`` after each
    piece, ``close()`` (or the end of a ``with`` block, which also covers an exception) at the end.
    ``postfix`` values (formatted by the caller: ``loss="0.412"``) are shown until replaced.

    ``announce``: log the first and the last line even when the work is quick (a run's log then
    says when training started and how fast it went); False: lines only once the work has taken
    ``EVERY_SECONDS``, the last one then closing them (an evaluation)."""

    def __init__(self, desc: str, total: int, start: int = 0, unit: str = "step", announce: bool = True):
        self.desc, self.total, self.unit, self.announce = desc, total, unit, announce
        self.n = self.first = self.last_n = start
        self.postfix: dict[str, object] = {}
        self.logged = self.closed = False
        self.started = self.last_time = monotonic()
        self.bar = tqdm(desc=desc, initial=start, total=total, unit=unit, leave=False) if on_terminal() else None
        if self.bar is None and announce:
            self._log(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **postfix) -> None:
        """``n`` more units done; off a terminal, a line if ``EVERY_SECONDS`` passed since the last."""
        self.n += n
        self.postfix.update(postfix)
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(self.postfix, refresh=False)
            self.bar.update(n)
            return
        now = monotonic()
        if n and now - self.last_time >= EVERY_SECONDS:  # n = 0: only the postfix changed
            self._log(self.line(now))
            self.last_time, self.last_n = now, self.n

    def close(self) -> None:
        """Remove the bar, or log the last line: the rate since the start and the time taken
        (``done in``; ``stopped after`` when the work ended early: divergence, an interrupt)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.announce or self.logged:
            self._log(self.line(monotonic(), final=True))

    def line(self, now: float | None = None, final: bool = False) -> str:
        """The progress line; without ``now`` (the first line) no rate. The rate is over the
        interval since the last line (it follows a machine's changing load), or over the whole
        run when the interval saw no work or when ``final``."""
        parts = [f"{self.desc}: {self.count()}", *(f"{key} {value}" for key, value in self.postfix.items())]
        if now is None:
            return "  ".join(parts)
        rate = None
        if not final and self.n > self.last_n and now > self.last_time:
            rate = (self.n - self.last_n) / (now - self.last_time)
        elif self.n > self.first and now > self.started:
            rate = (self.n - self.first) / (now - self.started)
        if rate is not None:
            parts.append(f"{speed(rate)} {self.unit}s/s")
        if final:
            parts.append(f"{'done in' if self.n >= self.total else 'stopped after'} {clock(now - self.started)}")
        elif rate:
            parts.append(f"ETA {clock(max(self.total - self.n, 0) / rate)}")
        return "  ".join(parts)

    def count(self) -> str:
        """``step 400/1000`` (a position) for steps, ``512/2048 examples`` (an amount) otherwise."""
        if self.unit == "step":
            return f"step {self.n}/{self.total}"
        return f"{self.n}/{self.total} {self.unit}s"

    def _log(self, line: str) -> None:
        log.info(line)
        self.logged = True
