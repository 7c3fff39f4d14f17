"""Elasticsearch's `filter_path` query parameter on our answers (docs/shippers.md).

Beats, Logstash and the OpenTelemetry Collector's Elasticsearch exporter send
`_bulk?filter_path=errors,items.*.error,items.*.status`, so the answer to a
bulk of thousands of items is a few bytes each. As in Elasticsearch: paths are
comma separated and dotted; a segment may hold `*` wildcards (`items.*.err*`),
`**` matches any number of levels, and a path led by `-` removes what it
matches instead. Arrays are looked through: a path applies to each element,
and elements left empty are dropped. What matches nothing is `{}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_FILTER_PATHS = 64
MAX_FILTER_CHARS = 2048
_MISSING = object()
_Path = tuple["re.Pattern[str] | None", ...]  # segments; None is `**`


@dataclass(frozen=True, slots=True)
class FilterPath:
    """Parsed `filter_path`: the paths to keep, and those to remove."""

    keep: tuple[_Path, ...]
    drop: tuple[_Path, ...]

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self.keep:
            kept = _select(doc, self.keep)
            doc = kept if isinstance(kept, dict) else {}
        if self.drop:
            left = _remove(doc, self.drop)
            doc = left if isinstance(left, dict) else {}
        return doc


def parse_filter(text: str | None) -> FilterPath | None:
    """The filter a `filter_path` value asks for; None for none (or a blank one)."""
    if not text or not text.strip():
        return None
    paths = [path.strip() for path in text[:MAX_FILTER_CHARS].split(",")][:MAX_FILTER_PATHS]
    keep: list[_Path] = []
    drop: list[_Path] = []
    for path in paths:
        if not path:
            continue
        target = drop if path.startswith("-") else keep
        segments = path.lstrip("-").split(".")
        target.append(tuple(None if s == "**" else _segment(s) for s in segments))
    if not keep and not drop:
        return None
    return FilterPath(tuple(keep), tuple(drop))


def _segment(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, text.split("*"))), re.DOTALL)


def _advance(key: str, paths: tuple[_Path, ...]) -> tuple[bool, tuple[_Path, ...]]:
    """After stepping into `key`: whether a path ends there, and the paths left."""
    ends = False
    rest: list[_Path] = []
    for path in paths:
        head = path[0]
        if head is None:  # `**`: stay at this depth, or consume this key and go on
            rest.append(path)
            if len(path) == 1:
                ends = True
                continue
            more = ((path[1], *path[2:]),)
            sub_ends, sub_rest = _advance(key, more)
            ends = ends or sub_ends
            rest.extend(sub_rest)
        elif head.fullmatch(key):
            if len(path) == 1:
                ends = True
            else:
                rest.append(path[1:])
    return ends, tuple(rest)


def _select(value: Any, paths: tuple[_Path, ...]) -> Any:
    if isinstance(value, list):
        kept = [_select(item, paths) for item in value]
        kept = [item for item in kept if item is not _MISSING]
        return kept if kept else _MISSING
    if not isinstance(value, dict):
        return _MISSING
    out: dict[str, Any] = {}
    for key, item in value.items():
        ends, rest = _advance(key, paths)
        if ends:
            out[key] = item
        elif rest:
            kept = _select(item, rest)
            if kept is not _MISSING:
                out[key] = kept
    return out if out else _MISSING


def _remove(value: Any, paths: tuple[_Path, ...]) -> Any:
    if isinstance(value, list):
        return [_remove(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        ends, rest = _advance(key, paths)
        if ends:
            continue
        out[key] = _remove(item, rest) if rest else item
    return out
