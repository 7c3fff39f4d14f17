"""Events and answers as IRC text: compact, one line, safe, never over-long.

A log channel line is `HH:MM:SS LEVEL service message [req=…] #id` (UTC):
the time, the level (in mIRC colour codes with `irc.colors`), the service,
the message's first line, the request or correlation id when there is one,
and the event id that `!show` takes. A multi-line event adds how many lines
it has left (`(+12 lines: !show 4521)`).

Event text is untrusted. Control characters, IRC's formatting codes among
them, are shown as visible escapes (`\\x03`; security/neutralize.py), so an
event can neither forge a line nor colour the reader's client (CWE-117);
only the level's colour is the server's own. A line that would pass the
512-byte limit is cut at a character boundary and ends in `…`.
"""

from __future__ import annotations

import time

from logcaster.event import Event
from logcaster.security.neutralize import neutral

MARK = "…"
_MARK_BYTES = len(MARK.encode())

# mIRC colour numbers: red, brown, orange, green, grey, light grey.
_COLORS = {"FATAL": "05", "ERROR": "04", "WARN": "07", "INFO": "03", "DEBUG": "14", "TRACE": "15"}
_C = "\x03"  # mIRC colour code; a bare one ends the colour


def fit(text: str, room: int) -> str:
    """`text` cut to at most `room` UTF-8 bytes, ending in `…` when cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= room:
        return text
    cut = data[: max(0, room - _MARK_BYTES)].decode("utf-8", "ignore")
    return cut + MARK


def split(text: str, room: int) -> list[str]:
    """`text` in pieces of at most `room` UTF-8 bytes, cut at character boundaries."""
    data = text.encode("utf-8", "replace")
    if len(data) <= room:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(len(data), start + room)
        while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
            end -= 1  # not inside a character
        pieces.append(data[start:end].decode("utf-8", "replace"))
        start = end
    return pieces


def request_of(ev: Event) -> str | None:
    fields = ev.fields
    if not fields:
        return None
    value = fields.get("request_id") or fields.get("correlation_id")
    return None if value is None else str(value)


def event_line(ev: Event, colors: bool, room: int = 100_000) -> str:
    """The one line a log channel shows for `ev`, in at most about `room` bytes:
    the message is what gets cut, so the id `!show` takes stays at the end."""
    stamp = time.strftime("%H:%M:%S", time.gmtime(ev.ts))
    level = ev.level or "-"
    color = _COLORS.get(level) if colors else None
    shown = f"{_C}{color}{level}{_C}" if color else level
    message = ev.message.strip() or ev.first_line.strip()
    first = message.partition("\n")[0]
    head = [stamp, shown]
    if ev.service:
        head.append(fit(neutral(ev.service), 60))
    tail = []
    request = request_of(ev)
    if request and request not in first:
        tail.append(f"[req={fit(neutral(request), 80)}]")
    extra = ev.body.count("\n")
    tail.append(f"(+{extra} lines: !show {ev.id})" if extra else f"#{ev.id}")
    fixed = len(" ".join(head + tail).encode()) + 1
    text = fit(neutral(first.rstrip("\r")), max(20, room - fixed))
    return " ".join([*head, text, *tail])


def body_lines(ev: Event, room: int, most: int) -> tuple[list[str], int]:
    """The whole body of `ev` as lines of at most `room` bytes (long lines split),
    at most `most` of them; and how many were left out."""
    out: list[str] = []
    lines = ev.body.split("\n")
    for i, line in enumerate(lines):
        for piece in split(neutral(line.rstrip("\r")) or " ", room):
            if len(out) == most:
                return out, len(lines) - i
            out.append(piece)
    return out, 0
