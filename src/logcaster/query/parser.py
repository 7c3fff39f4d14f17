"""Parse a line-protocol command (SPEC §6) into a `Command`.

Grammar: `[JSON] VERB [args]`. QUERY and FILTER take `key=value` parameters;
a value may be quoted with "…" (backslash escapes \\" and \\\\) or '…'.
SEARCH and REGEX take the rest of the line as their text, RECENT an optional count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from logcaster.event import LEVELS, normalize_level
from logcaster.exceptions import QuerySyntaxError
from logcaster.options import QueryConfig
from logcaster.query.limits import apply_limits
from logcaster.query.model import Query

Verb = Literal["COUNT", "STATS", "HELP", "QUERY", "CLEAR"]

RECENT_DEFAULT = 10
MAX_COUNT_VALUE = 2**63 - 1  # the largest max_count: a count, it fits a signed 64-bit int

_TOKEN = re.compile(r"""\s*([^\s="']+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)|\s*(\S+)""")


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    query: Query | None = None
    json: bool = False


def parse_command(line: str, config: QueryConfig) -> Command:
    text = line.strip()
    as_json = False
    head, _, rest = text.partition(" ")
    if head.upper() == "JSON":
        as_json = True
        text = rest.strip()
        head, _, rest = text.partition(" ")
    verb = head.upper()
    rest = rest.strip()
    if verb in ("COUNT", "STATS", "HELP", "CLEAR"):
        if rest:
            raise QuerySyntaxError(f"{verb} takes no arguments")
        return Command(verb, json=as_json)  # type: ignore[arg-type]
    if verb in ("QUERY", "FILTER"):
        params = parse_params(rest)
        if verb == "FILTER" and not params:
            raise QuerySyntaxError("FILTER needs at least one key=value")
        query, fmt_json = build_query(params, config)
        return Command("QUERY", query, as_json or fmt_json)
    if verb == "SEARCH":
        word = unquote(rest)
        if not word:
            raise QuerySyntaxError("SEARCH needs a text")
        query = apply_limits(Query(keywords=(word,), limit=config.default_limit), config)
        return Command("QUERY", query, as_json)
    if verb == "REGEX":
        pattern = unquote(rest)
        if not pattern:
            raise QuerySyntaxError("REGEX needs a pattern")
        query = apply_limits(Query(regex=pattern, limit=config.default_limit), config)
        return Command("QUERY", query, as_json)
    if verb == "RECENT":
        count = _positive_int("RECENT count", rest) if rest else RECENT_DEFAULT
        return Command("QUERY", Query(limit=min(count, config.max_limit)), as_json)
    raise UnknownCommand(verb)


class UnknownCommand(QuerySyntaxError):
    pass


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        inner = text[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\") if text[0] == '"' else inner
    return text


def parse_params(text: str) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            break
        if m.group(3) is not None:
            if m.group(3).startswith(("'", '"')):
                raise QuerySyntaxError(f"unterminated quote in {m.group(3)!r}")
            raise QuerySyntaxError(f"expected key=value, got {m.group(3)!r}")
        value = m.group(2)
        if value[:1] in ("'", '"') and (len(value) < 2 or value[-1] != value[0]):
            raise QuerySyntaxError(f"unterminated quote in {m.group(1)}=")
        params.append((m.group(1), unquote(value)))
        pos = m.end()
        if text[pos:].strip() == "":
            break
    return params


def build_query(params: list[tuple[str, str]], config: QueryConfig) -> tuple[Query, bool]:
    """A `Query` from `key=value` parameters, within the `query.` limits
    (query/limits.py); the flag says `format=json` was asked for."""
    query = Query(limit=config.default_limit)
    keywords: list[str] = []
    fields: list[tuple[str, str]] = []
    as_json = False
    for key, value in params:
        name = key.lower()
        if not value:
            # An empty value would silently match everything (keyword=) or nothing.
            raise QuerySyntaxError(f"{key}= needs a value")
        if name == "keyword":
            keywords.append(value)
        elif name == "keywords":
            keywords.extend(w for w in (part.strip() for part in value.split(",")) if w)
        elif name == "operator":
            op = value.upper()
            if op not in ("AND", "OR"):
                raise QuerySyntaxError(f"operator must be AND or OR, not {value!r}")
            query = replace(query, operator=op)  # type: ignore[arg-type]
        elif name == "regex":
            query = replace(query, regex=value)  # checked with the rest (apply_limits)
        elif name in ("level", "levels"):
            levels = set(query.levels)
            for part in value.split(","):
                level = normalize_level(part.strip())
                if level is None:
                    raise QuerySyntaxError(
                        f"unknown level {part.strip()!r} (use one of {', '.join(LEVELS)})"
                    )
                levels.add(level)
            query = replace(query, levels=frozenset(levels))
        elif name in ("service", "services"):
            services = set(query.services) | {s.strip() for s in value.split(",") if s.strip()}
            query = replace(query, services=frozenset(services))
        elif name == "time_from":
            query = replace(query, time_from=parse_time(key, value))
        elif name == "time_to":
            query = replace(query, time_to=parse_time(key, value))
        elif name == "limit":
            query = replace(query, limit=min(_count("limit", value), config.max_limit))
        elif name == "order":
            order = value.lower()
            if order not in ("asc", "desc"):
                raise QuerySyntaxError(f"order must be asc or desc, not {value!r}")
            query = replace(query, order=order)  # type: ignore[arg-type]
        elif name == "format":
            if value.lower() not in ("json", "text"):
                raise QuerySyntaxError(f"format must be text or json, not {value!r}")
            as_json = value.lower() == "json"
        elif name == "source":
            source = value.lower()
            if source not in ("memory", "store", "all"):
                raise QuerySyntaxError(f"source must be memory, store or all, not {value!r}")
            query = replace(query, source=source)  # type: ignore[arg-type]
        elif name == "origin":
            # The event's own source (`tcp:10.0.0.7:51234`, `http:...`): what
            # `source=` would say if it did not choose memory or the store.
            fields.append(("source", value))
        elif name == "decrypt":
            flag = value.lower()
            if flag not in ("1", "0", "true", "false", "yes", "no"):
                raise QuerySyntaxError(f"decrypt must be 1 or 0, not {value!r}")
            query = replace(query, decrypt=flag in ("1", "true", "yes"))
        elif name == "max_count":
            max_count = _positive_int("max_count", value)
            if max_count > MAX_COUNT_VALUE:
                # JSON answers carry it, and orjson writes integers up to 64 bits.
                raise QuerySyntaxError(f"max_count must be at most {MAX_COUNT_VALUE}")
            query = replace(query, max_count=max_count)
        else:
            fields.append((key, value))
    if keywords:
        query = replace(query, keywords=tuple(keywords))
    if fields:
        query = replace(query, fields=tuple(fields))
    if (
        query.time_from is not None
        and query.time_to is not None
        and query.time_from > query.time_to
    ):
        raise QuerySyntaxError("time_from is after time_to")
    return apply_limits(query, config), as_json


def parse_time(key: str, value: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):  # float() also takes "nan" and "inf"
            raise QuerySyntaxError(f"{key} must be a finite number of unix seconds")
        return seconds
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QuerySyntaxError(f"{key} must be unix seconds or an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _count(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise QuerySyntaxError(f"{name} must be a non-negative integer, not {value!r}") from None
    if n < 0:
        raise QuerySyntaxError(f"{name} must be a non-negative integer, not {value!r}")
    return n


def _positive_int(name: str, value: str) -> int:
    n = _count(name, value.strip())
    if n == 0:
        raise QuerySyntaxError(f"{name} must be at least 1")
    return n
