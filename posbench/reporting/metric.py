"""The quantity a report compares (``--metric``): its name, where results.json holds it, how to
read it from a run or a no-PE twin, and whether lower is better.

Names: ``acc``, ``seq_acc``, ``bleu``, ``ppl`` (``metrics``); ``pe_off`` / ``pe_off.seq_acc``
(the same model with its encoding switched off); ``len<L>`` / ``len<L>.seq_acc`` (evaluation
length L); ``size<S>`` (an image task's evaluation size S). A model without an encoding (``none``,
a twin) read as ``pe_off`` gives its own value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from posbench import scales
from posbench.errors import ConfigError

#: Metrics that are better when lower.
LOWER_IS_BETTER = ("ppl",)


@dataclass(frozen=True)
class Metric:
    """``key`` (acc, seq_acc, bleu, ppl) read from ``metrics``, ``pe_off`` or the scores at one
    evaluation length or image size (source ``length``/``size``, ``posbench.scales``)."""

    key: str = "acc"
    #: ``metrics``, ``pe_off``, ``length`` or ``size``.
    source: str = "metrics"
    #: The length or size, for those sources.
    length: str | None = None

    @property
    def name(self) -> str:
        if self.source in scales.AXES:
            base = f"{scales.prefix(self.source)}{self.length}"
        else:
            base = {"metrics": None, "pe_off": "pe_off"}[self.source]
        if base is None:
            return self.key
        return base if self.key == "acc" else f"{base}.{self.key}"

    @property
    def lower_is_better(self) -> bool:
        return self.key in LOWER_IS_BETTER

    @property
    def with_pe(self) -> Metric:
        """The same quantity with the encoding on (``pe_off`` → ``acc``)."""
        return Metric(self.key) if self.source == "pe_off" else self

    def of(self, entry: dict | None) -> float | None:
        """The value in a results.json (or its ``nope`` entry); None where it holds none."""
        entry = entry or {}
        if self.source == "pe_off" and entry.get("pe_off") is not None:  # a model without PE: its own numbers
            values = entry.get("pe_off")
        elif self.source in scales.AXES:
            values = (entry.get(scales.key(self.source)) or {}).get(self.length)
        else:
            values = entry.get("metrics")
        value = values.get(self.key) if isinstance(values, dict) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def format(self, value: float | None, sign: bool = False) -> str:
        if value is None:
            return "—"
        digits = 2 if self.key in ("bleu", "ppl") else 3
        return f"{value:{'+' if sign else ''}.{digits}f}"


def available(entries: list[dict]) -> list[str]:
    """Every metric name the ``ok`` results in ``entries`` hold (``acc`` and ``seq_acc`` always)."""
    names = {"acc": None, "seq_acc": None}
    by_scale: set[str] = set()
    for entry in entries:
        names.update(dict.fromkeys(Metric(key).name for key in entry.get("metrics") or {}))
        names.update(dict.fromkeys(Metric(key, "pe_off").name for key in entry.get("pe_off") or {}))
        axis = scales.axis_of(entry)
        for n, values in (scales.scores(entry) or {}).items():
            by_scale.update(Metric(key, axis, n).name for key in values or {})
    ordered = sorted(by_scale, key=lambda name: (int(re.search(r"\d+", name)[0]), "." in name, name))
    return [*names, *ordered]


def parse(name: str, entries: list[dict]) -> Metric:
    """The metric called ``name``; ConfigError (listing the valid ones) if the results hold none such."""
    head, dot, key = name.strip().partition(".")
    if head == "pe_off":
        metric = Metric(key or "acc", "pe_off")
    elif re.fullmatch(r"(len|size)\d+", head):
        axis = "length" if head.startswith("len") else "size"
        metric = Metric(key or "acc", axis, str(int(head[len(scales.prefix(axis)):])))
    else:
        metric = Metric(head) if not dot else None
    valid = available(entries)
    if metric is None or metric.name not in valid:
        raise ConfigError(f"unknown metric {name!r}; these results hold: {', '.join(valid)}")
    return metric
