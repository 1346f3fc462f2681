"""A bounded cache of loaded data for one process: the dataset-backed tasks (text and images)
keep their prepared data by configuration, so that a task built again in the same process (the
no-PE twin, validation then training) costs nothing."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class ProcessCache:
    """At most ``size`` entries, the least recently used dropped first; keys are JSON-able lists."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: list, build: Callable[[], Any]) -> Any:
        """The entry for ``key``, built with ``build()`` on the first request."""
        text = json.dumps(key, sort_keys=True, default=str)
        if text in self._items:
            self._items.move_to_end(text)
            return self._items[text]
        value = build()
        self._items[text] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value
