"""The level and service codes of the store's index columns.

The index (store/index.py) keeps an event's level and service as small
integers: `LEVEL_CODES`, a fixed table written into index files, and
`ServiceCodes`, the bounded dictionary of service names persisted beside the
index as JSON. The extractor (parsing/extract.py) gives the codes at ingest; the
reader (store/reader.py) turns a query's names back into codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from logcaster.event import LEVELS

__all__ = ["LEVEL_CODES", "LEVEL_NAMES", "ServiceCodes", "level_code"]

# ---------------------------------------------------------------------------
# Level codes: a fixed table, stored in index files, so never reorder it.

LEVEL_NAMES: Final[tuple[str | None, ...]] = (None, *LEVELS)
"""Level code -> canonical name: 0 none, 1 TRACE, 2 DEBUG, 3 INFO, 4 WARN, 5 ERROR, 6 FATAL."""
LEVEL_CODES: Final[dict[str | None, int]] = {name: code for code, name in enumerate(LEVEL_NAMES)}


def level_code(name: str | None) -> int:
    """The code of a canonical level name (`Event.level`), 0 for None; ValueError otherwise."""
    try:
        return LEVEL_CODES[name]
    except KeyError:
        raise ValueError(f"not a canonical level name: {name!r}") from None


# ---------------------------------------------------------------------------
# Service codes


class ServiceCodes:
    """Service names <-> uint16 codes, bounded, persisted with the index as JSON.

    Code 0 is "no service" (None) and `OTHER` (65,535) the overflow code: once
    `capacity` names have codes, every new name maps to `OTHER`. Codes never change
    once given, so columns written earlier stay valid as the dictionary grows.
    """

    NONE: Final = 0
    OTHER: Final = 65_535
    MAX_CAPACITY: Final = 65_534  # codes 1 .. 65,534

    __slots__ = ("_bytes_codes", "_codes", "_names", "capacity")

    def __init__(self, names: Iterable[str] = (), *, capacity: int = MAX_CAPACITY) -> None:
        if not 0 <= capacity <= self.MAX_CAPACITY:
            raise ValueError(f"capacity must be 0..{self.MAX_CAPACITY}")
        self.capacity = capacity
        self._names: list[str] = []
        self._codes: dict[str, int] = {}
        for name in names:
            if name in self._codes:
                raise ValueError(f"duplicate service name {name!r}")
            if self.code(name) == self.OTHER:
                raise ValueError("more names than capacity")

    def __len__(self) -> int:
        return len(self._names)

    @property
    def full(self) -> bool:
        return len(self._names) >= self.capacity

    @property
    def names(self) -> tuple[str, ...]:
        """The names in code order: names[0] has code 1."""
        return tuple(self._names)

    def code(self, name: str | None) -> int:
        """The code of `name`, given one if new; NONE for None, OTHER once full."""
        if name is None:
            return self.NONE
        code = self._codes.get(name)
        if code is None:
            if len(self._names) >= self.capacity:
                return self.OTHER
            self._names.append(name)
            code = self._codes[name] = len(self._names)
        return code

    def get(self, name: str | None) -> int | None:
        """The code of `name` without adding it: None if it has none (queries)."""
        if name is None:
            return self.NONE
        return self._codes.get(name)

    def name(self, code: int) -> str | None:
        """The name of `code`: None for NONE; KeyError for OTHER and unknown codes."""
        if code == self.NONE:
            return None
        if 1 <= code <= len(self._names):
            return self._names[code - 1]
        raise KeyError(code)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "capacity": self.capacity, "names": self._names})

    @classmethod
    def from_json(cls, data: str | bytes) -> ServiceCodes:
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("version") != 1:
            raise ValueError("not a version 1 service dictionary")
        names = obj.get("names")
        capacity = obj.get("capacity")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("service dictionary names must be a list of strings")
        if not isinstance(capacity, int):
            raise ValueError("service dictionary capacity must be an integer")
        return cls(names, capacity=capacity)
