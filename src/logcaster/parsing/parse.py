"""Turn an event text into a structured `Event` (SPEC §3).

The format is detected from the event's first line, cheapest test first (its
first byte): `{` JSON, `<` syslog, `[` the simulator header, a digit a
timestamped test line, a letter the Python-style header or a leading level
word. Whatever matches, `key=value` pairs and the seed-002 id lines
("Request ID: …", "Thread: …, Request: POST /route") add fields. Nothing here
raises: a text that matches no format is plain text, received now.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from logcaster.event import Event, normalize_level
from logcaster.parsing.formats import MONTH_NAMES
from logcaster.parsing.syslog import split_syslog, syslog_level

# [LEVEL] 2026-01-19 15:30:01.234 service/version [pod/NAME]: message
_SIM_HEADER = re.compile(
    r"\[(?P<level>[A-Za-z]+)\]\s+(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)"
    r"(?:\s+(?P<service>[\w.-]+)/(?P<version>[^\s:]+))?(?:\s+pod/(?P<pod>[^\s:]+))?:?\s?"
)
# LEVEL: service/version pod/NAME message   (the simulator's Python variant)
_PY_HEADER = re.compile(
    r"(?P<level>[A-Za-z]+):\s+(?P<service>[\w.-]+)/(?P<version>v?\d[^\s:]*)"
    r"(?:\s+pod/(?P<pod>\S+))?\s?"
)
# 2026-01-19[ 15:30:01[.123][Z|+01:00]] LEVEL[:] message
_TS_LINE = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"(?:\s+\[?(?P<level>[A-Za-z]+)\]?:?(?=\s|$))?\s*"
)
# An access log line (nginx/Apache common or combined): host ident user, then the
# request's time as `[19/Jan/2026:08:14:02 +0000]`, its zone an offset.
_ACCESS_LINE = re.compile(
    r"\S+ \S+ \S+ \[(?P<day>\d\d)/(?P<month>[A-Z][a-z]{2})/(?P<year>\d{4}):"
    r"(?P<minute>\d\d:\d\d):(?P<second>\d\d) (?P<zone>[+-]\d{4})\]"
)
_MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
# A leading level word: "ERROR message", "ERROR: message", "[ERROR] message", "error|..."
_LEVEL_WORD = re.compile(r"\[?(?P<level>[A-Za-z]{3,11})\]?(?:[:|\]]|\s|$)\s*")

_TAG = re.compile(r"(?P<app>[A-Za-z_][\w.-]{0,47})(?:\[(?P<procid>\d+)\])?: ")

# key=value, key="quoted value", key='quoted'
_LOGFMT = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]*)=(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,;\"']+)")
_LOGFMT_ATTRIBUTES = frozenset(("level", "service", "ts", "time", "timestamp", "msg", "message"))
_KEY = re.compile(r"[A-Za-z_][\w.-]*")
_ESCAPE = re.compile(r"\\(.)", re.S)
# `<Key> ID: <value>`, the ids of the seed's records. re searches a pattern that
# starts with a literal by that literal, and one that starts with the five keys
# position by position (~11 ns a byte: most of a long traceback's parse). So
# " ID:" is searched and its key looked up behind it; a key may not start
# inside the previous id, as with the keys in the pattern.
_SEED_ID_VALUE = re.compile(r" ID:\s*([^\s,]+)")
_SEED_KEYS = {
    "Request": "request_id",
    "User": "user_id",
    "Correlation": "correlation_id",
    "Trace": "trace_id",
    "Span": "span_id",
}
# The thread name is bounded: unbounded, every "Thread:" of a long line would scan
# to the line's end looking for the comma (quadratic: seconds for one 64 KiB line).
_THREAD_LINE = re.compile(
    r"Thread:\s*(?P<thread>[^,\n]{1,256}),\s*Request:\s*(?P<method>[A-Z]+)\s+(?P<route>\S+)"
)

# JSON keys that fill the event's own attributes rather than `fields`.
_JSON_TS = ("timestamp", "time", "ts", "@timestamp")
_JSON_MSG = ("message", "msg")
_JSON_LEVEL = ("level", "severity", "lvl", "loglevel", "log.level")
# ECS dotted keys (ecs-logging libraries, flattened Elasticsearch sources) too.
_JSON_SERVICE = ("service", "service.name")
_JSON_VERSION = ("version", "service.version")
_JSON_HOST = ("host", "hostname", "host.name")
# The event times a datetime can hold: 0001-01-01 to 9999-12-31 23:59:59 UTC.
_MIN_TS = -62135596800.0
# The file-tail source's labels: file:<service>, then this and the file's position
# (sources/files/labels.py, which parsing does not import).
_FILE_SOURCE = "file:"
_FILE_POSITION = "\x1f"
_MAX_TS = 253402300799.0


def parse_event(id: int, received_at: float, source: str, text: bytes) -> Event:
    if _FILE_POSITION in source:
        # A file's batches carry their position in the label (sources/files/labels.py):
        # stored with the block, not part of the source.
        source = source[: source.index(_FILE_POSITION)]
    body = text.decode("utf-8", "replace")
    nl = body.find("\n")
    first = body if nl < 0 else body[:nl]
    ev = Event(id, received_at, source, body, first, received_at)
    json_message: str | None = None  # set when the first line is a JSON object
    if first:
        c = first[0]
        if c == "{":
            json_message = _parse_json(ev, first)
        elif c == "<":
            _parse_syslog(ev, body)
        elif c == "[":
            _parse_sim_header(ev, first) or _parse_level_word(ev, first)
        elif c.isdigit():
            _parse_ts_line(ev, first)
        else:
            _parse_py_header(ev, first) or _parse_level_word(ev, first)
    if "=" in body:
        if json_message is not None:
            # Pairs in the decoded message, not in the raw JSON text, whose escaped
            # quotes and other keys' values would give wrong fields.
            _add_logfmt(ev, json_message if nl < 0 else json_message + body[nl:])
        else:
            _add_logfmt(ev, body)
    if "ID:" in body or "Thread:" in body:
        _add_seed_ids(ev, body)
    if ev.service is None and source.startswith(_FILE_SOURCE):
        ev.service = source[len(_FILE_SOURCE) :]  # sources.files.inputs[].service
    return ev


def _parse_json(ev: Event, first: str) -> str | None:
    """Fill `ev` from a JSON object; its message ("" if none), or None if not an object."""
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    fields: dict[str, Any] = {}
    message: str | None = None
    for key, value in obj.items():
        if key in _JSON_MSG and isinstance(value, str) and message is None:
            message = value
        elif key in _JSON_TS and ev.ts == ev.received_at:
            ts = _json_time(value)
            if ts is None:
                fields[key] = value
            else:
                ev.ts = ts
        elif key in _JSON_LEVEL and isinstance(value, str) and ev.level is None:
            ev.level = normalize_level(value)
            if ev.level is None:
                fields[key] = value
        # A plain key wins over its ECS dotted one, in any order; the dotted
        # one is then a field.
        elif key in _JSON_SERVICE and isinstance(value, str) and _first(key, "service", obj):
            ev.service = value
        elif key in _JSON_VERSION and isinstance(value, str) and _first(key, "version", obj):
            ev.version = value
        elif key in _JSON_HOST and isinstance(value, str) and _first(key, "host", obj):
            ev.host = value
        elif key == "pod" and isinstance(value, str):
            ev.pod = value
        elif isinstance(value, dict | list) and _too_deep(value):
            # Kept in the body; as a field it could not be written back as JSON
            # (orjson writes 255 levels at most) nor usefully compared.
            fields[key] = TOO_DEEP
        else:
            fields[key] = value
    ev.fields = fields
    if message is None:
        return ""
    _set_message(ev, message)
    return message


def _first(key: str, plain: str, obj: dict[str, Any]) -> bool:
    """Whether `key` sets the attribute `plain`: it is a plain key, or the
    object has no plain key for it (`host.name` yields to `host` and `hostname`)."""
    if "." not in key:
        return True
    return plain not in obj and (plain != "host" or "hostname" not in obj)


# A JSON field value nested deeper than this is replaced by TOO_DEEP (the body keeps it).
MAX_FIELD_DEPTH = 64
TOO_DEEP = f"[nested deeper than {MAX_FIELD_DEPTH} levels: see the body]"


def _too_deep(value: dict[str, Any] | list[Any]) -> bool:
    """Whether a JSON value nests deeper than MAX_FIELD_DEPTH (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FIELD_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _json_time(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # Seconds, or milliseconds since the epoch when it is that large.
        ts = value / 1000.0 if value > 1e11 else float(value)
        # Only years 1..9999, as from a text time: beyond, gmtime() and the
        # datetime-based formatting of every reader fail.
        return ts if _MIN_TS <= ts <= _MAX_TS else None
    if isinstance(value, str):
        return parse_timestamp(value)
    return None


def _parse_syslog(ev: Event, body: str) -> None:
    # Python's SysLogHandler ends each message with a NUL byte.
    h = split_syslog(body.rstrip("\x00\n"))
    if h is None:
        return  # not a valid PRI: plain text
    if h.kind != "bare":
        _set_pri(ev, h.pri)
        if h.iso is not None:
            ev.ts = parse_timestamp(h.iso) or ev.ts
        else:
            ts = h.local_ts(ev.received_at)
            if ts is not None:
                ev.ts = ts
        ev.host = h.host
        ev.service = h.app
        ev.fields.update(h.fields)
        _set_message(ev, h.msg)
        return
    msg = h.msg
    if msg.startswith("<"):
        # "<13><14>…": no second round of syslog parsing (a stack of PRIs
        # would recurse once per "<N>" until RecursionError).
        _set_pri(ev, h.pri)
        _set_message(ev, msg)
        return
    # A bare "<PRI>message" (Python's SysLogHandler): the rest is a log line of
    # its own, perhaps behind the handler's `ident` ("app: " or "app[pid]: ").
    tag = _TAG.match(msg)
    if tag is not None and normalize_level(tag["app"]) is None:
        msg = msg[tag.end() :]
    else:
        tag = None
    inner = parse_event(ev.id, ev.received_at, ev.source, msg.encode())
    if tag is not None and inner.service is None:
        inner.service = tag["app"]
        if tag["procid"]:
            inner.fields["procid"] = tag["procid"]
    for name in ("ts", "service", "version", "host", "pod", "message"):
        setattr(ev, name, getattr(inner, name))
    ev.fields = inner.fields
    _set_pri(ev, h.pri)
    if inner.level is not None:
        ev.level = inner.level  # the text's own level word is more specific


def syslog_line(first: str) -> str | None:
    """A syslog first line as a person reads it, without the frame, or None if
    it is not syslog.

    RFC 5424 and BSD headers become `host app[procid]: message`, as a syslog
    file shows them, minus the time the row prints already, the PRI number (the
    level says it) and the version and nil fields. A bare `<PRI>text` is its
    text. Used for display only; the stored body keeps every byte.
    """
    h = split_syslog(first.rstrip("\x00"))
    if h is None:
        return None
    if h.kind == "bare":
        return h.msg
    tag = " ".join(part for part in (h.host, h.app) if part)
    if h.procid:
        tag += f"[{h.procid}]"
    return f"{tag}: {h.msg}" if tag else h.msg


def _set_pri(ev: Event, pri: int) -> None:
    ev.fields["facility"] = pri >> 3
    ev.level = syslog_level(pri)


def _set_message(ev: Event, msg: str) -> None:
    nl = msg.find("\n")
    ev.message = msg if nl < 0 else msg[:nl]


def _parse_sim_header(ev: Event, first: str) -> bool:
    return _apply_header(ev, _SIM_HEADER.match(first), first)


def _parse_py_header(ev: Event, first: str) -> bool:
    return _apply_header(ev, _PY_HEADER.match(first), first)


def _apply_header(ev: Event, m: re.Match[str] | None, first: str) -> bool:
    """Fill `ev` from a simulator header match; False if it is not one after all."""
    if m is None:
        return False
    level = normalize_level(m["level"])
    if level is None:
        return False
    ev.level = level
    stamp = m.groupdict().get("ts")
    if stamp:
        ev.ts = parse_timestamp(stamp) or ev.ts
    ev.service = m["service"]
    ev.version = m["version"]
    ev.pod = m["pod"]
    _header_message(ev, first[m.end() :])
    return True


def _header_message(ev: Event, rest: str) -> None:
    """The header's message; the simulator puts it on the second line when the first is bare."""
    rest = rest.strip()
    if not rest and "\n" in ev.body:
        rest = ev.body.split("\n", 2)[1].strip()
    ev.message = rest


def _parse_ts_line(ev: Event, first: str) -> None:
    m = _TS_LINE.match(first)
    if m is None:
        _parse_access_time(ev, first)
        return
    ts = parse_timestamp(m["ts"])
    if ts is not None:
        ev.ts = ts
    level = normalize_level(m["level"])
    if level is not None:
        ev.level = level
        ev.message = first[m.end() :]
    elif m["level"] is None and ts is not None:
        ev.message = first[m.end() :]
        _parse_level_word(ev, ev.message)


def _parse_access_time(ev: Event, first: str) -> None:
    """An access line's own time (SPEC §1: the event time is the line's when it
    carries one); no level or service: the parser takes none from it."""
    m = _ACCESS_LINE.match(first)
    month = _MONTHS.get(m["month"]) if m is not None else None
    if m is None or month is None or m["second"] > "59":
        return
    zone = m["zone"]
    hours, minutes = int(zone[1:3]), int(zone[3:])
    if hours > 23 or minutes > 59:
        return
    base = _minute_epoch(f"{m['year']}-{month:02d}-{m['day']} {m['minute']}")
    if base is None:
        return
    offset = hours * 3600 + minutes * 60
    ts = base + float(m["second"]) - (offset if zone[0] == "+" else -offset)
    if _MIN_TS <= ts <= _MAX_TS:
        ev.ts = ts


def _parse_level_word(ev: Event, first: str) -> bool:
    m = _LEVEL_WORD.match(first)
    if m is None:
        return False
    level = normalize_level(m["level"])
    if level is None:
        return False
    ev.level = level
    return True


def _add_logfmt(ev: Event, body: str) -> None:
    # str.split and partition run in C; the regex (slower by ~5x) is only the
    # fallback for quoted values, which may hold spaces.
    if '="' in body or "='" in body:
        pairs: list[tuple[str, str]] = _LOGFMT.findall(body)
    else:
        pairs = []
        for token in body.split():
            if "=" in token:
                key, _, value = token.partition("=")
                if (
                    value
                    and ((key.isidentifier() and key.isascii()) or _KEY.fullmatch(key))
                    and "," not in value
                    and ";" not in value
                    and '"' not in value
                    and "'" not in value
                ):
                    pairs.append((key, value))
                else:
                    # Not a plain key=value ("a=1,b=2", "(x=1)", "é=1"): the regex, on
                    # this token only, so both paths find the same pairs.
                    pairs.extend(_LOGFMT.findall(token))
    fields = ev.fields
    for key, raw in pairs:
        if key in fields or not raw:
            continue
        if raw[0] == '"':
            value = raw[1:-1]
            if "\\" in value:
                value = _ESCAPE.sub(r"\1", value)  # \" and \\, as logfmt writers escape them
        elif raw[0] == "'":
            value = raw[1:-1]
        else:
            value = raw
        fields[key] = value
        if key in _LOGFMT_ATTRIBUTES:
            _logfmt_attribute(ev, key, value)


def _logfmt_attribute(ev: Event, key: str, value: str) -> None:
    """A logfmt key that also fills one of the event's own attributes."""
    if key == "level" and ev.level is None:
        ev.level = normalize_level(value)
    elif key == "service" and ev.service is None:
        ev.service = value
    elif key in ("ts", "time", "timestamp") and ev.ts == ev.received_at:
        ts = parse_timestamp(value)
        if ts is not None:
            ev.ts = ts
    elif key in ("msg", "message") and ev.message == ev.first_line:
        # Only when no format gave the line a message: a header's stays.
        _set_message(ev, value)  # a quoted value may span lines; message is the first


def _add_seed_ids(ev: Event, body: str) -> None:
    fields = ev.fields
    taken = 0  # where the last id found ends
    for m in _SEED_ID_VALUE.finditer(body):
        at = m.start()
        for word, key in _SEED_KEYS.items():
            if at - len(word) >= taken and body.startswith(word, at - len(word)):
                fields.setdefault(key, m[1])
                taken = m.end()
                break
    thread = _THREAD_LINE.search(body)
    if thread is not None:
        fields.setdefault("thread", thread["thread"].strip())
        fields.setdefault("method", thread["method"])
        fields.setdefault("route", thread["route"])


def parse_timestamp(text: str) -> float | None:
    """ISO 8601 / RFC 3339 time to unix seconds; a time without a zone is UTC.

    Fast path for the common `YYYY-MM-DD[ T]HH:MM:SS[.fff][Z]`: the minute is
    converted once (cached: a burst of lines shares it) and the seconds added
    as a float, ~10x cheaper than `datetime.fromisoformat` per stamp. Other
    shapes (offsets, week dates, ...) take the full parser.
    """
    if len(text) >= 19 and text[16] == ":" and text[13] == ":" and text[10] in " T":
        rest = text[17:]
        if rest[-1:] in ("Z", "z"):
            rest = rest[:-1]
        if len(rest) == 2:
            seconds_ok = rest.isdigit()
        else:
            seconds_ok = (
                len(rest) > 3 and rest[:2].isdigit() and rest[2] in ".," and rest[3:].isdigit()
            )
        if seconds_ok and rest[:2] < "60":
            base = _minute_epoch(text[:16])
            if base is not None:
                return base + float(rest.replace(",", "."))
    return _parse_timestamp_full(text)


@lru_cache(maxsize=1024)
def _minute_epoch(minute: str) -> float | None:
    """Unix seconds at the start of a `YYYY-MM-DD HH:MM` minute, UTC."""
    try:
        when = datetime.fromisoformat(minute).replace(tzinfo=UTC)
    except ValueError:
        return None
    ts = when.timestamp()
    return ts if _MIN_TS <= ts <= _MAX_TS - 60 else None


@lru_cache(maxsize=1024)
def _parse_timestamp_full(text: str) -> float | None:
    s = text.strip()
    if len(s) < 10:
        return None
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    if len(s) > 19 and s[19] == ",":
        s = s[:19] + "." + s[20:]
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = when.timestamp()
    # "0001-01-01T00:00:00+01:00" is in year 0 in UTC: out of every reader's range.
    return ts if _MIN_TS <= ts <= _MAX_TS else None
