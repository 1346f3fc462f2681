"""The declared type and range of every configuration option: the schema that validation enforces.

Each option is declared once, where it is used: as an annotated parameter (with its default) of the
``__init__`` of the encoding, model or task class that takes it, or as a field of a dataclass (the
trainer, the top-level keys). The annotation gives the type (``int``, ``float``, ``bool``, ``str``,
a list, ``Literal[...]`` for a choice, ``X | None`` where null is allowed) and, through
``typing.Annotated``, the range::

    def __init__(self, shape, base: Annotated[float, Range(gt=1)] = 10000.0, clip: NonNegativeInt = 16)

``check_section`` turns a class's options into a dataclass that OmegaConf enforces (types, unknown
keys: ``encoding.base=abc`` or ``compare_nope=maybe`` cannot pass), then applies the ranges, and
returns the section normalised: every option with its declared type, in declaration order, with
the default of each option the section leaves out. Every float must be finite. Messages are one
line and name the key as the user writes it (``trainer.lr=inf must be a finite number``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import operator
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from posbench.errors import ConfigError


# ---- ranges and other checks (the metadata of ``Annotated``) -------------------------------------
class Check:
    """A constraint on one option's value: ``__call__`` returns the value (possibly normalised) or
    raises ``ValueError`` with what is wrong, phrased to follow ``key=value``."""

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Range(Check):
    """Numeric bounds; ``None`` passes (nullable options)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __call__(self, value):
        comparisons = ((self.ge, ">=", operator.ge), (self.gt, ">", operator.gt),
                       (self.le, "<=", operator.le), (self.lt, "<", operator.lt))
        for bound, sign, holds in comparisons:
            if value is not None and bound is not None and not holds(value, bound):
                raise ValueError(f"must be {sign} {show(bound)}")
        return value


@dataclass(frozen=True)
class Span(Check):
    """A ``[min, max]`` pair of integers with ``min <= max``."""

    def __call__(self, value):
        if value is None:
            return value
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError("must be [min, max] with min <= max, e.g. [1, 10]")
        return value


@dataclass(frozen=True)
class NonEmpty(Check):
    """A string or list that is not empty."""

    def __call__(self, value):
        if value is not None and len(value) == 0:
            raise ValueError("must not be empty")
        return value


@dataclass(frozen=True)
class EachAtLeast(Check):
    """Every element of a list of numbers is at least ``minimum``."""

    minimum: int

    def __call__(self, value):
        if value is not None and any(item < self.minimum for item in value):
            raise ValueError(f"must hold numbers >= {self.minimum}")
        return value


@dataclass(frozen=True)
class Choices(Check):
    """One of a fixed set of values (from ``Literal[...]``)."""

    values: tuple

    def __call__(self, value):
        if value not in self.values:
            raise ValueError(f"must be one of {', '.join(map(str, self.values))}")
        return value


#: The largest finite float32: encodings compute in float32, where a larger float is infinite.
FLOAT32_MAX = 3.4028234663852886e38

PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
#: A seed: torch and NumPy both take 0 .. 2^32 - 1.
Seed = Annotated[int, Range(ge=0, le=2**32 - 1)]
#: The base of a geometric sequence of frequencies (sinusoidal, RoPE): <= 1 makes them degenerate.
FrequencyBase = Annotated[float, Range(gt=1)]
NonEmptyStr = Annotated[str, NonEmpty()]
#: A length range ``[min, max]``.
LengthSpan = Annotated[list[int], Span(), EachAtLeast(1)]
#: A non-empty list of lengths.
Lengths = Annotated[list[int], NonEmpty(), EachAtLeast(1)]


# ---- options of a class ------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    name: str
    #: The type OmegaConf enforces (int, float, bool, str, Optional/List/Dict of those, or Any).
    type: Any
    default: Any
    checks: tuple[Check, ...]


def options(cls: type) -> dict[str, Option]:
    """The options of ``cls`` in declaration order: the fields of a dataclass, or the parameters
    of ``__init__`` with defaults, following ``**options`` that an ``__init__`` passes on to its
    parent's. Keyword-only parameters are wired by posbench (e.g. a model's ``eos``), not options;
    a parameter without default is given by code too (an encoding's shape)."""
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        return {
            f.name: _option(f.name, hints[f.name], _field_default(f)) for f in dataclasses.fields(cls)
        }
    found: dict[str, Option] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        init = vars(klass)["__init__"]
        hints = typing.get_type_hints(init, include_extras=True)
        parameters = inspect.signature(init).parameters.values()
        for p in parameters:
            if p.default is not p.empty and p.kind is not p.KEYWORD_ONLY and p.name not in found:
                found[p.name] = _option(p.name, hints.get(p.name, Any), p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return found


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def _option(name: str, annotation: Any, default: Any) -> Option:
    base, checks = _unwrap(annotation)
    return Option(name, base, default, checks)


def _unwrap(annotation: Any) -> tuple[Any, tuple[Check, ...]]:
    """An annotation as (a type OmegaConf can enforce, the checks it carries)."""
    checks: tuple[Check, ...] = ()
    if typing.get_origin(annotation) is Annotated:
        annotation, *meta = typing.get_args(annotation)
        checks = tuple(m for m in meta if isinstance(m, Check))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return type(args[0]), (Choices(args), *checks)
    if origin in (Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(present) == 1 and len(args) == 2:
            inner, inner_checks = _unwrap(present[0])
            return (Optional[inner] if inner is not Any else Any), (*inner_checks, *checks)
        return Any, checks
    if origin in (list, tuple) and args and args[0] in (int, float, str, bool):
        return list[args[0]], checks
    if annotation in (int, float, bool, str):
        return annotation, checks
    if origin is dict and args in ((str, str), (str, float)):
        return dict[str, args[1]], checks
    return Any, checks


# ---- checking a section ------------------------------------------------------------------------
def check_section(prefix: str, cls: type, section: Mapping, *, skip: tuple[str, ...] = ("name",)) -> dict:
    """``section`` (the config of one ``cls`` instance, keys of ``skip`` aside) checked against the
    options of ``cls`` and normalised; ``prefix`` names the section in messages (``encoding``,
    ``trainer``). Raises ``ConfigError`` for an unknown key, a wrong type or a value out of range."""
    declared = options(cls)
    given = {key: value for key, value in section.items() if key not in skip}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        what = f"{prefix}={section['name']}" if "name" in section else prefix
        known = ", ".join(declared) or "none"
        raise ConfigError(f"{what} has no option {', '.join(unknown)}; its options: {known}")
    typed = {name: option for name, option in declared.items() if option.type is not Any}
    for name in given.keys() & typed.keys():
        _check_type(prefix, name, typed[name].type, given[name])
    fields = [
        (name, option.type, dataclasses.field(default_factory=lambda d=option.default: _copy(d)))
        for name, option in typed.items()
    ]
    schema = OmegaConf.structured(dataclasses.make_dataclass(f"{cls.__name__}Options", fields))
    try:
        merged = OmegaConf.merge(schema, OmegaConf.create({key: given[key] for key in given if key in typed}))
        values = OmegaConf.to_container(merged, throw_on_missing=True)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{_key(prefix, err.full_key)} is missing: give it a value") from None
    except OmegaConfBaseException as err:
        key = _key(prefix, err.full_key)
        name = str(err.full_key).split("[")[0].split(".")[0]
        kind = declared[name].type if name in declared else Any
        if "[" in str(err.full_key):  # one element of a list
            kind = typing.get_args(typing.get_args(kind)[0] if typing.get_origin(kind) is Union else kind)[0]
        value = _lookup(given, err.full_key)
        hint = f" (write {int(value)})" if kind is int and isinstance(value, float) and value.is_integer() else ""
        raise ConfigError(f"{key}={show(value)} is not {_describe(kind)}{hint}") from None
    for name, option in declared.items():  # untyped options (an encoding spec, data files) are the classes' to check
        if name not in typed:
            values[name] = given.get(name, _copy(option.default))
            if values[name] is MISSING:
                raise ConfigError(f"{_key(prefix, name)} is missing: give it a value")
    normalised = {key: section[key] for key in skip if key in section}
    for name, option in declared.items():
        value = values[name]
        if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= FLOAT32_MAX):
            raise ConfigError(
                f"{_key(prefix, name)}={show(given.get(name, value))} must be a finite number (within float32's range)"
            )
        for check in option.checks:
            try:
                value = check(value)
            except ValueError as err:
                raise ConfigError(f"{_key(prefix, name)}={show(given.get(name, values[name]))} {err}") from None
        normalised[name] = value
    return normalised


def _check_type(prefix: str, name: str, kind: Any, value: Any) -> None:
    """Refuse what OmegaConf would convert: a string or number for a boolean (``maybe``, ``yes``,
    ``1``), a string or boolean for a number (``'5'``, ``true``), a float for an integer (``1e2``)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:  # Optional[X]
        if value is not None:
            _check_type(prefix, name, args[0], value)
        return
    if origin is list:
        if isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                _check_type(prefix, f"{name}[{index}]", args[0], item)
        return  # not a list at all: OmegaConf's check says so
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    fits = {
        bool: isinstance(value, bool),
        int: number and isinstance(value, int),
        float: number,
        str: isinstance(value, str) or number,
    }.get(kind, True)
    if not fits:
        hint = f" (write {int(value)})" if kind is int and isinstance(value, float) and value.is_integer() else ""
        shown = f"'{value}'" if isinstance(value, str) and _numeric(value) else show(value)  # seed='5': a string
        raise ConfigError(f"{_key(prefix, name)}={shown} is not {_describe(kind)}{hint}")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _copy(value: Any) -> Any:
    if value is MISSING:
        return value
    if isinstance(value, tuple):
        return list(value)
    return value


def _key(prefix: str, full_key: Any) -> str:
    """``prefix.full_key`` as the user writes it (``task.train_lengths[1]``, ``seed`` at the top)."""
    full_key = str(full_key)
    if not full_key or not prefix:
        return full_key or prefix
    return f"{prefix}{'' if full_key.startswith('[') else '.'}{full_key}"


def _lookup(given: Mapping, full_key: Any) -> Any:
    """The user's value at ``full_key`` (``lens[1]``, ``a.b``) for the message."""
    value: Any = given
    for part in str(full_key).replace("]", "").replace("[", ".").split("."):
        try:
            value = value[int(part)] if isinstance(value, (list, tuple)) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            return value
    return value


def show(value: Any) -> str:
    """A value as the user would write it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show(item) for item in value) + "]"
    return str(value)


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Union:  # Optional[X]
        return _describe(args[0]) + " (or null)"
    if origin is list:
        return f"a list of {_describe(args[0]).split(' ', 1)[1]}s"
    if origin is dict:
        return f"a mapping of names to {_describe(args[1]).split(' ', 1)[1]}s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(kind, "of the right type")
