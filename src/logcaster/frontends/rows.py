"""One text row per event, as every text answer shows it (SPEC §6).

`[YYYY-MM-DD HH:MM:SS] <line>`: the event time (UTC), then what a person needs
to read the event on one line. The line is the event's original first line,
except that:

- a syslog frame is shown without its noise (`host app[pid]: message` rather
  than `<13>1 2026-… host app - - [sd…] message`, see `syslog_line`);
- when the first line carries no message (the simulator's `[ERROR] … pod/x:`
  header, whose message is on the next line), the event's message follows it;
- control characters, line separators and bidi controls are escaped visibly
  (`\\x1b`, `\\r`, `\\n`, `\\u202e`; security/neutralize.py): a row is
  exactly one line, and a sender cannot forge further rows, drive the
  reader's terminal or reorder what they read (CWE-117).

Rows from the memory buffer and from the store are both `Event`s parsed by
`parse_event`, and both go through `format_row`.
"""

from __future__ import annotations

import time

import orjson

from logcaster.event import Event
from logcaster.parsing.parse import syslog_line
from logcaster.security.neutralize import neutral


def row_text(ev: Event) -> str:
    """What a row shows after the time: the first line, and the message if it lacks it."""
    first = ev.first_line
    line = syslog_line(first) if first.startswith("<") else None
    if line is None:
        line = first
    message = ev.message.strip()
    if message and not _carries(line, message):
        line = f"{line.rstrip()} {message}" if line.strip() else message
    return neutral(line)


def _carries(line: str, message: str) -> bool:
    """Whether `line` holds `message` already, as is or quote-escaped (a JSON line,
    a logfmt `msg="…\\"…"`). A substring test, as the parser does not record
    where the message came from: a header that happens to contain the whole
    message (a one-word message equal to the pod name) does not repeat it."""
    return message in line or orjson.dumps(message).decode()[1:-1] in line


def format_row(ev: Event) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ev.ts))
    return f"[{stamp}] {row_text(ev)}"
