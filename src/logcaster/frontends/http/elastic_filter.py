"""Elasticsearch's `filter_path` query parameter on our answers (docs/shippers.md).

Beats, Logstash and the OpenTelemetry Collector's Elasticsearch exporter send
`_bulk?filter_path=errors,items.*.error,items.*.status`, so the answer to a
bulk of thousands of items is a few bytes each. As in Elasticsearch: paths are
comma separated and dotted; a segment may hold `*` wildcards (`items.*.err*`),
`**` matches any number of levels, and a path led by `-` removes what it
matches instead. Arrays are looked through: a path applies to each element,
and elements left empty are dropped. What matches nothing is `{}`.

The parameter is the sender's, so its cost is bounded: at most
MAX_FILTER_PATHS paths of MAX_SEGMENTS segments, runs of `**` collapsed, the
paths still open at a level kept as a set (so `**` cannot multiply them), and
a wildcard segment matched in linear time (`_glob`: its literal parts found in
order, never a backtracking regex).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_FILTER_PATHS = 64
MAX_FILTER_CHARS = 2048
MAX_SEGMENTS = 16  # per path, `**` runs collapsed; our answers are 5 deep at most
_MISSING = object()
_Segment = tuple[str, ...] | None  # the literal parts around its `*`s; None is `**`
_Path = tuple[_Segment, ...]


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
    if len(text) > MAX_FILTER_CHARS:
        text = text[:MAX_FILTER_CHARS].rpartition(",")[0]  # whole paths only: a cut one would widen
    paths = [path.strip() for path in text.split(",")][:MAX_FILTER_PATHS]
    keep: list[_Path] = []
    drop: list[_Path] = []
    for path in paths:
        if not path:
            continue
        target = drop if path.startswith("-") else keep
        segments: list[_Segment] = []
        for text in path.lstrip("-").split("."):
            segment = None if text == "**" else tuple(text.split("*"))
            if segment is None and segments and segments[-1] is None:
                continue  # `**.**` is `**`
            segments.append(segment)
            if len(segments) > MAX_SEGMENTS:
                break
        if len(segments) <= MAX_SEGMENTS:  # a deeper path matches nothing we answer
            target.append(tuple(segments))
    if not keep and not drop:
        return None
    return FilterPath(tuple(keep), tuple(drop))


def _glob(parts: tuple[str, ...], key: str) -> bool:
    """Whether `key` matches a segment split at its `*`s: the first part a
    prefix, the last a suffix, the others found in order between them
    (leftmost is always right for `*`-only globs, so one pass decides)."""
    if len(parts) == 1:
        return key == parts[0]
    first, last = parts[0], parts[-1]
    if len(key) < len(first) + len(last) or not key.startswith(first) or not key.endswith(last):
        return False
    at, end = len(first), len(key) - len(last)
    for part in parts[1:-1]:
        found = key.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


def _advance(key: str, paths: tuple[_Path, ...]) -> tuple[bool, tuple[_Path, ...]]:
    """After stepping into `key`: whether a path ends there, and the paths left
    (a set: however many `**` lead to the same rest, it is walked once)."""
    ends = False
    rest: dict[_Path, None] = {}  # ordered, unique
    todo = list(paths)
    while todo:
        path = todo.pop()
        head = path[0]
        if head is None:  # `**`: stay at this depth, or consume this key and go on
            rest[path] = None
            if len(path) == 1:
                ends = True
            else:
                todo.append(path[1:])  # `**` matching nothing: the next segment here
        elif _glob(head, key):
            if len(path) == 1:
                ends = True
            else:
                rest[path[1:]] = None
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
