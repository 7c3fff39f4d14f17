"""Syslog headers as senders really write them (SPEC §2, §3).

`split_syslog` reads the header of a text that starts with `<`: RFC 5424,
the BSD (RFC 3164) header in the shapes rsyslog, syslog-ng, network devices
and `logger` send, or a bare `<PRI>text`. It returns the header's parts and
leaves filling the event to `parse.py`; it never raises. What each variant
becomes is in docs/parsing.md ("Syslog"); in short:

- **PRI** is `<0>` .. `<191>` without leading zeros (RFC 5424 §6.2.1, RFC 3164
  §4.1.1). Anything else is not syslog: the text is plain text, no level.
- **RFC 5424**: SD-PARAM values are unescaped (`\\"`, `\\\\`, `\\]`; §6.3.3).
- **BSD time**: `Mmm d[d] hh:mm:ss` with a month in any case, one or two spaces
  before the day, an optional year after the day and fraction after the
  seconds (Cisco: `Apr 15 2007 21:28:13.123:`, with its trailing colon), or
  an RFC 3339 time (rsyslog's `RSYSLOG_ForwardFormat`, syslog-ng's
  `$ISODATE` templates). Before it, Cisco's `NNN: ` sequence number and `*`/`.`
  clock marks are skipped. A time without a year is local, this year or last.
- **Host and tag**: the first word after the time is the tag when it is one
  (`prog:`, `prog[pid]:`, `prog[pid]`), and then there is no host; else it is
  the host when it looks like one (letters, digits, `.-_@/`, or an IPv6
  address, which is not split at its colons), and a tag may follow it. A word
  without a colon or a `[pid]` is not a tag: `host Use the BFG!` has the
  message `Use the BFG!`.

The store's bulk extractor reads the common RFC 5424 and BSD shapes on its own
(parsing/line_shapes.py) and must agree with this module on ts, level and app:
it takes only shapes that mean the same here and leaves the rest to the parser.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from logcaster.parsing.formats import MONTH_NAMES, SYSLOG_SEVERITY_LEVELS

__all__ = ["SyslogHeader", "bsd_time", "split_syslog", "syslog_level"]

# PRIVAL 0..191, no leading zeros; the range is checked after the match.
_PRI = re.compile(r"<(0|[1-9]\d{0,2})>")
# 1 TIMESTAMP HOST APP PROCID MSGID SD [MSG], after the PRI
_RFC5424 = re.compile(
    r"1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?",
    re.S,
)
_SD_ELEMENT = re.compile(r"\[(?P<id>[^\s\]=]+)(?P<params>(?:\s+[^\s=\]]+=\"(?:[^\"\\]|\\.)*\")*)\]")
_SD_PARAM = re.compile(r"([^\s=\]]+)=\"((?:[^\"\\]|\\.)*)\"")
_SD_ESCAPE = re.compile(r"\\([\\\"\]])")  # the three escapes of §6.3.3; others stay
# The BSD header's time, after the PRI.
_BSD_TIME = re.compile(
    r"(?:(?P<seq>\d{1,10}): )?"  # Cisco's sequence number
    r" ?[*.]?"  # HP's stray space; Cisco's clock marks (* unsynced, . synced)
    r"(?:(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)?)"
    r"|(?P<mon>[A-Za-z]{3}) {1,2}(?P<day>\d{1,2})(?: (?P<year>\d{4}))?"
    r" (?P<hh>\d{1,2}):(?P<mm>\d\d):(?P<ss>\d\d)(?P<frac>\.\d{1,6})?)"
    r":?(?=\s|\Z)\s?"  # Cisco's colon after the time
)
# A tag: prog: / prog[pid]: (anything may follow), or prog[pid] before a space.
# Real tags hold `/ . % ( )` (postfix/smtpd, %LINK-3-UPDOWN, run-parts(/etc/cron.daily));
# quotes, braces, `=` and `<>` start a message ({"k": 1}, k=v:), not a tag.
_TAG = re.compile(
    r"(?P<app>[^\s:\[\]\"'{}=<>]+)(?:\[(?P<procid>[^\s\]]*)\](?=[\s:]|\Z))?(?P<colon>:)?"
)
_TAG_ONLY = re.compile(r"[^\s:\[\]\"'{}=<>]+\[[^\s\]]*\]\Z")  # prog[pid], a whole word
_HOST = re.compile(r"[\w.@/-]{1,255}(?= |\Z)")
_WORD = re.compile(r"\S*")
_MONTHS = {name.lower(): number for number, name in enumerate(MONTH_NAMES, 1)}
_LEVELS = SYSLOG_SEVERITY_LEVELS


@dataclass(slots=True)
class SyslogHeader:
    """The parts of one syslog text's header; `kind` says which header it had.

    kind: "rfc5424", "bsd", or "bare" (`<PRI>text`: `msg` is a log line of its own).
    `fields` holds procid, msgid, the structured data's params and Cisco's
    sequenceId, by name, as the event's fields.
    """

    kind: str
    pri: int
    msg: str
    host: str | None = None
    app: str | None = None
    procid: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    iso: str | None = None  # an RFC 3339 time
    bsd: tuple[int, int, int, int, int, int, float] | None = None  # y(0: none) m d h m s frac

    def local_ts(self, received_at: float) -> float | None:
        """The BSD time in unix seconds; None if there is none or it is no real date.
        (An RFC 3339 time, `iso`, is the caller's to parse, as every other ISO time.)"""
        if self.bsd is None:
            return None
        year, month, day, hh, mm, ss, frac = self.bsd
        ts = local_time(year, month, day, hh, mm, ss, received_at)
        return None if ts is None else ts + frac


def syslog_level(pri: int) -> str:
    return _LEVELS[pri & 7]


def split_syslog(text: str) -> SyslogHeader | None:
    """The header of a text starting with `<`, or None if its PRI is not valid."""
    m = _PRI.match(text)
    if m is None:
        return None
    pri = int(m[1])
    if pri > 191:
        return None
    at = m.end()
    return _rfc5424(text, at, pri) or _bsd(text, at, pri) or SyslogHeader("bare", pri, text[at:])


def _rfc5424(text: str, at: int, pri: int) -> SyslogHeader | None:
    m = _RFC5424.match(text, at)
    if m is None:
        return None
    msg = m["msg"] or ""
    if msg.startswith("\ufeff"):  # the BOM before a UTF-8 message
        msg = msg[1:]
    h = SyslogHeader("rfc5424", pri, msg)
    if m["ts"] != "-":
        h.iso = m["ts"]
    if m["host"] != "-":
        h.host = m["host"]
    if m["app"] != "-":
        h.app = m["app"]
    fields = h.fields
    if m["procid"] != "-":
        h.procid = fields["procid"] = m["procid"]
    if m["msgid"] != "-":
        fields["msgid"] = m["msgid"]
    if m["sd"] != "-":
        for element in _SD_ELEMENT.finditer(m["sd"]):
            for key, value in _SD_PARAM.findall(element["params"]):
                fields[key] = _SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
    return h


def _bsd(text: str, at: int, pri: int) -> SyslogHeader | None:
    m = _BSD_TIME.match(text, at)
    if m is None:
        return None
    h = SyslogHeader("bsd", pri, "")
    if m["iso"] is not None:
        h.iso = m["iso"]
    else:
        month = _MONTHS.get(m["mon"].lower())
        if month is None:
            return None
        frac = float(m["frac"]) if m["frac"] else 0.0
        year = int(m["year"]) if m["year"] else 0
        h.bsd = (year, month, int(m["day"]), int(m["hh"]), int(m["mm"]), int(m["ss"]), frac)
    if m["seq"] is not None:
        h.fields["sequenceId"] = m["seq"]
    rest = text[m.end() :]
    rest = _host(h, rest)
    _tag(h, rest)
    return h


def _host(h: SyslogHeader, rest: str) -> str:
    """Take the host from the front of `rest` if the first word is one; the rest after it."""
    m = _WORD.match(rest)
    word = m[0] if m is not None else ""
    if not word:
        return rest
    end = len(word)
    if ":" in word:
        # An IPv6 address is a host; any other word with a colon is a tag.
        if word.count(":") >= 2 and _is_ipv6(word):
            h.host = word
            return rest[end + 1 :]
        return rest
    if _TAG_ONLY.match(word) or _HOST.match(rest) is None:
        return rest  # prog[pid] (a tag without a colon), or not a host name: the message
    if word != "-":  # a nil host
        h.host = word
    return rest[end + 1 :]


def _is_ipv6(word: str) -> bool:
    try:
        ipaddress.IPv6Address(word)
    except ValueError:
        return False
    return True


def _tag(h: SyslogHeader, rest: str) -> None:
    """The tag, if `rest` starts with one, then the message."""
    m = _TAG.match(rest)
    if m is not None and (m["colon"] or m["procid"] is not None):
        h.app = m["app"]
        procid = m["procid"]
        if procid and procid != "-":
            h.procid = h.fields["procid"] = procid
        rest = rest[m.end() :]
        if rest[:1].isspace():
            rest = rest[1:]
    elif rest.startswith(" "):
        rest = rest.lstrip(" ")  # two spaces after the host: no tag
    h.msg = rest


def local_time(
    year: int, month: int, day: int, hh: int, mm: int, ss: int, received_at: float
) -> float | None:
    """A BSD header's local wall-clock time in unix seconds; None if no such date.

    Without a year (0): the receiver's year, or last year if that puts the time
    more than a day ahead of the receive time (RFC 3164 has no year).
    """
    now = datetime.fromtimestamp(received_at).astimezone()
    try:
        if year:
            return datetime(year, month, day, hh, mm, ss).timestamp()
        when = now.replace(month=month, day=day, hour=hh, minute=mm, second=ss, microsecond=0)
    except (ValueError, OverflowError):
        return None
    # Feb 29 ahead in a leap year: last year has none, keep this year's.
    if when.timestamp() > received_at + 86400 and (month, day) != (2, 29):
        when = when.replace(year=when.year - 1)
    return when.timestamp()


def bsd_time(stamp: str, received_at: float) -> float:
    """A classic `Mmm dd hh:mm:ss` stamp's time, or `received_at` if it is no date
    (the store's bulk extractor calls this for the BSD lines it reads itself)."""
    month = _MONTHS.get(stamp[:3].lower())
    try:
        day = int(stamp[4:6])
        hh, mm, ss = int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15])
    except ValueError:
        return received_at
    if month is None:
        return received_at
    ts = local_time(0, month, day, hh, mm, ss, received_at)
    return received_at if ts is None else ts
