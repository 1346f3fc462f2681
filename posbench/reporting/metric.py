"""The quantity a report compares (``--metric``): its name, where results.json holds it, how to
read it from a run or a no-PE twin, and whether lower is better.

Names: ``acc``, ``seq_acc``, ``bleu``, ``ppl`` (``metrics``); ``pe_off`` / ``pe_off.seq_acc``
(the same model with its encoding switched off); ``len<L>`` / ``len<L>.seq_acc`` (evaluation
length L); ``size<S>`` (an image task's evaluation size S); ``pe_off.len<L>`` /
``pe_off.len<L>.seq_acc`` (``pe_off.size<S>``): evaluation length L with the encoding switched off
(results.json ``pe_off_lengths``, ``pe_off_sizes``). In general ``pe_off.`` before any name reads
the same quantity with PE off (``pe_off.acc`` is written ``pe_off``). A model without an encoding
(``none``, a twin) read with PE off gives its own value.
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
    evaluation length or image size (source ``length``/``size``, ``posbench.scales``), those with
    the encoding switched off if ``off`` (``pe_off_lengths``/``pe_off_sizes``)."""

    key: str = "acc"
    #: ``metrics``, ``pe_off``, ``length`` or ``size``.
    source: str = "metrics"
    #: The length or size, for those sources.
    length: str | None = None
    #: For source ``length``/``size``: the scores with the encoding switched off.
    off: bool = False

    @property
    def name(self) -> str:
        if self.source in scales.AXES:
            base = f"{'pe_off.' if self.off else ''}{scales.prefix(self.source)}{self.length}"
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
        """The same quantity with the encoding on (``pe_off`` → ``acc``, ``pe_off.len20`` → ``len20``)."""
        return Metric(self.key) if self.source == "pe_off" else Metric(self.key, self.source, self.length)

    def of(self, entry: dict | None) -> float | None:
        """The value in a results.json (or its ``nope`` entry); None where it holds none."""
        entry = entry or {}
        if self.source == "pe_off" and entry.get("pe_off") is not None:  # a model without PE: its own numbers
            values = entry.get("pe_off")
        elif self.source in scales.AXES:
            # PE off: the scores with the encoding off where it has one (pe_off set), else its own
            off = self.off and entry.get("pe_off") is not None
            values = (entry.get((scales.pe_off_key if off else scales.key)(self.source)) or {}).get(self.length)
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
    off_scale: set[str] = set()
    for entry in entries:
        names.update(dict.fromkeys(Metric(key).name for key in entry.get("metrics") or {}))
        names.update(dict.fromkeys(Metric(key, "pe_off").name for key in entry.get("pe_off") or {}))
        axis = scales.axis_of(entry)
        for n, values in (scales.scores(entry) or {}).items():
            by_scale.update(Metric(key, axis, n).name for key in values or {})
        for n, values in (entry.get(scales.pe_off_key(axis)) or {}).items():
            off_scale.update(Metric(key, axis, n, off=True).name for key in values or {})

    def order(name: str):
        name = name.removeprefix("pe_off.")
        return int(re.search(r"\d+", name)[0]), "." in name, name

    return [*names, *sorted(by_scale, key=order), *sorted(off_scale, key=order)]


def parse(name: str, entries: list[dict]) -> Metric:
    """The metric called ``name``; ConfigError (listing the valid ones) if the results hold none such."""
    head, dot, key = name.strip().partition(".")
    off = head == "pe_off"
    if off:  # pe_off, pe_off.seq_acc, pe_off.len20, pe_off.len20.seq_acc
        head, dot, key = key.partition(".")
    if re.fullmatch(r"(len|size)\d+", head):
        axis = "length" if head.startswith("len") else "size"
        metric = Metric(key or "acc", axis, str(int(head[len(scales.prefix(axis)):])), off=off)
    elif off:
        metric = Metric(head or "acc", "pe_off") if not dot else None
    else:
        metric = Metric(head) if not dot else None
    valid = available(entries)
    if metric is None or metric.name not in valid:
        raise ConfigError(f"unknown metric {name!r}; these results hold: {', '.join(valid)}")
    return metric
