"""Name -> class registries for encodings, models and tasks (a registry instead of if-chains)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any, Callable, Generic, TypeVar

from posbench.errors import ConfigError
from posbench.schema import check_section

T = TypeVar("T")


class Registry(Generic[T]):
    """Holds the classes of one kind (``encoding``, ``model``, ``task``) by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            if name in self._items:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            cls.name = name
            self._items[name] = cls
            return cls

        return add

    def get(self, name: str) -> type[T]:
        if name not in self._items:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}")
        return self._items[name]

    def build(self, section: dict, *args: Any, **wired: Any) -> T:
        """Instantiate the class named by ``section["name"]`` with ``*args``, the keyword-only
        arguments ``wired`` by posbench itself, and the section's other keys as keyword options,
        checked against their declared types and ranges (``posbench.schema``); an option the
        section leaves out takes its declared default."""
        options = self.check(section)
        del options["name"]
        return self.get(section["name"])(*args, **wired, **options)

    def check(self, section: dict) -> dict:
        """``section`` normalised by the schema of the class it names (``ConfigError`` if it is
        not a mapping with a known name, or an option is unknown, mistyped or out of range)."""
        if not isinstance(section, Mapping) or not isinstance(section.get("name"), str):
            raise ConfigError(f"{self.kind} must be a {self.kind} name or a mapping with a name, got {section!r}")
        return check_section(self.kind, self.get(section["name"]), section)

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, type[T]]]:
        return [(name, self._items[name]) for name in self.names()]


def import_submodules(package: str, path: list[str]) -> None:
    """Import every module of a package so that their ``@REGISTRY.register`` decorators run:
    adding an encoding, model or task is adding a file, with no import list to edit."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
