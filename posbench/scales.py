"""The scale a run is scored at beyond its training distribution: the evaluation *length* of a
sequence task (results.json ``lengths``, ``train_lengths``) or the image *size* of an image task
(``sizes``, ``train_sizes``). Everything that reads per-scale scores (the printed table,
TensorBoard, reports) asks this module which of the two a record holds."""

from __future__ import annotations

#: Axis -> (results.json key of the scores, key of the training range, short prefix, words).
AXES = {
    "length": ("lengths", "train_lengths", "len", "evaluation length"),
    "size": ("sizes", "train_sizes", "size", "image size (pixels)"),
}


def axis_of(record: dict | None) -> str:
    """``size`` for a record (results.json, its ``nope`` entry, an outcome) of an image task, else ``length``."""
    return "size" if isinstance(record, dict) and record.get("sizes") is not None else "length"


def scores(record: dict | None) -> dict | None:
    """The record's per-scale scores ``{"16": {"acc": ...}, ...}``, or None."""
    if not isinstance(record, dict):
        return None
    return record.get(AXES[axis_of(record)][0])


def key(axis: str) -> str:
    """results.json's key of the per-scale scores: ``lengths`` or ``sizes``."""
    return AXES[axis][0]


def pe_off_key(axis: str) -> str:
    """results.json's key of the per-scale scores of the same model with its encoding switched
    off: ``pe_off_lengths`` or ``pe_off_sizes`` (the in-distribution ones are ``pe_off``)."""
    return f"pe_off_{key(axis)}"


def train_key(axis: str) -> str:
    return AXES[axis][1]


def prefix(axis: str) -> str:
    """``len`` or ``size``: metric names ``len16``, ``size32``."""
    return AXES[axis][2]


def words(axis: str) -> str:
    return AXES[axis][3]
