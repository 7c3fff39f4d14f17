"""The line shapes the store's extractor reads without running Python per event.

The line shapes are one bytes regex with one capture group over a chunk of
escaped payload lines (parsing/extract.py has the why): each alternative proves
the fixed prefix of one line shape and captures its service or level word, and
an empty alternative keeps the results aligned with the lines that may start a
shape. It is the reference: where the C extensions are built, `find_captures`
walks the same shapes in parsing/_shapes.c (LINE_SHAPES_HEADS: the pattern
without the JSON shapes' tails) and checks those tails in parsing/_linescan.c
(`check_json_tails`), with the same results, 4-5x faster; else the pattern
runs (LINE_SHAPES_FULL). The numpy helpers read the fixed-width fields those prefixes place at
known offsets: rows of bytes, 5-byte level keys, and timestamps parsed
bit-identically to parse_timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from logcaster.parsing.codes import LEVEL_CODES
from logcaster.parsing.formats import MONTH_NAMES

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


# ---------------------------------------------------------------------------
# The bulk pattern

_LN = rb"(?:TRACE|DEBUG|INFO|WARN|ERROR|FATAL)"
# normalize_level is case-insensitive; these two spellings cover what writers emit
_LN_ANY_CASE = rb"(?:TRACE|DEBUG|INFO|WARN|ERROR|FATAL|trace|debug|info|warn|error|fatal)"
_T24 = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"  # 2026-01-19T08:00:00.003Z
_T19 = rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"  # 2026-01-19 08:00:05
# Printable ASCII without backslash: escaping cannot have altered it, and str-mode
# \s / \S (Unicode) split it where bytes-mode ones do.
_TOK = rb"[!-\[\]-~]+"
_APP = rb"[!#-.0-9;-Z\]-~]+"  # _TOK without the capture's stop bytes '"' '/' ':' '['
# The BSD header as parsing/syslog.py reads it: a host name of [\w.@/-]
# (ASCII here), and a tag's app without the capture's stop bytes nor the bytes
# that start a message instead (quotes, braces, '=', '<', '>', ']').
_HOST = rb"[-.0-9@-Z_a-z/]+"
_TAG_APP = rb"[!#-&(-.0-9;?-Z^-z|~]+"
# Up to three PRI digits; extract.py's numpy pass turns away a PRI over 191 or
# with a leading zero (plain text for the parser).
_PRI = rb"<\d{1,3}>"
_JSTR = rb'"[ !#-\[\]-~]*"'  # a JSON string without escapes
# A bare logfmt value the parser reads whole: printable ASCII without the bytes
# that end it (quotes, ',', ';'), '=' or a backslash.
_BARE = rb"[!#-&(-+\--:<>-\[\]-~]+"
_JVAL = rb"(?:" + _JSTR + rb"|-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?|true|false|null)"


# The rest of a flat JSON line after its first keys: more keys (none of `keys`
# again: orjson keeps the last duplicate) with simple values, then "}" at the
# end of the first line (escaped newline: \n). parsing/_linescan.c's
# `json_tails` checks the same where it is built (`tails_in_c` below).
def _json_tail(keys: bytes) -> bytes:
    return rb'(?:,"(?!(?:' + keys + rb')")[A-Za-z0-9_]+":' + _JVAL + rb")*\}(?=\n|\\n)"


def _line_shapes(tails_in_c: bool) -> re.Pattern[bytes]:
    """The pattern; `tails_in_c`: without the JSON shapes' tails (a lookahead over
    the whole line: ~1 us a line in sre, most of the pattern's time on JSON),
    which the caller then checks (extract.py)."""
    flat_tail = b"" if tails_in_c else _json_tail(b"timestamp|level|service")
    zap_tail = b"" if tails_in_c else _json_tail(b"level|ts|service")
    return re.compile(
        # Every alternative starts with one of these bytes: checked first, a line that
        # starts otherwise (the simulator's '[') costs one test instead of one per
        # alternative (findall 0.256 -> 0.215 us/line on the default corpus).
        rb"\n(?=[{t<0-9DEFITW])(?:(?:"
        # Flat JSON: timestamp, level, service first and never again (orjson keeps the
        # last duplicate), valid JSON to the end of the first line (escaped newline: \n).
        rb'\{"timestamp":"' + _T24 + rb'","level":"' + _LN_ANY_CASE + rb'","service":"'
        rb'(?=[A-Za-z0-9_.-]+"' + flat_tail + rb")"
        # logfmt starting `ts= level= service=` (the first occurrence of a key wins).
        rb"|ts=" + _T24 + rb" level=" + _LN_ANY_CASE + rb" service=(?=[A-Za-z0-9_.-]+(?= |\n))"
        # Go slog's text handler with a service attribute: `time= level= msg= service=`.
        # The msg value is one the parser's pair regex reads whole (printable ASCII;
        # quoted without escapes, or bare without the bytes that end or split a value),
        # so the next pair is the first `service=`.
        rb"|time="
        + _T24
        + rb" level="
        + _LN_ANY_CASE
        + rb" msg=(?:"
        + _JSTR
        + rb"|"
        + _BARE
        + rb") service=(?=[A-Za-z0-9_.-]+(?= |\n))"
        # zap-style JSON `{"level":…,"ts":"<time>",…}`, flat, neither key again and
        # no "service" key. Captures the level word. (A `service=` pair in the message
        # would set the service: extract.py turns such lines away, see `lines_naming`.)
        rb'|\{"level":"(?=' + _LN_ANY_CASE + rb'","ts":"' + _T24 + rb'"' + zap_tail + rb")"
        # An access log line (nginx/Apache common or combined) from an IPv4 client: the
        # parser takes its time (parse_access_rows reads it) and no level or service, so
        # a pair naming a time, level or service could change them (extract.py turns
        # those away). Captures the day.
        rb"|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} [!-~]+ [!-~]+ \[(?=\d\d/[A-Z][a-z]{2}/\d{4}:)"
        # RFC 5424 with structured data '-' and an app other than '-' (which would
        # leave the service to a logfmt pair).
        rb"|"
        + _PRI
        + rb"1 "
        + _T24
        + rb" "
        + _TOK
        + rb" (?=(?!-[ \n])"
        + _APP
        + rb" "
        + _TOK
        + rb" "
        + _TOK
        + rb" -)"
        # RFC 3164 `<PRI>Mmm dd hh:mm:ss host app[pid]:`.
        rb"|"
        + _PRI
        + rb"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d "
        + _HOST
        + rb" (?="
        + _TAG_APP
        + rb"(?:\[\d+\])?:)"
        # `ts LEVEL[:]` with no `service=` anywhere in the event ([^\n] spans the whole
        # escaped event): a logfmt service would be taken.
        rb"|" + _T19 + rb" (?=" + _LN + rb":?(?= |\n)(?![^\n]*service=))"
        # Python-style header `LEVEL: service/version` (no time of its own: the receive
        # time, unless a ts=/time=/timestamp= pair anywhere in the event sets one).
        rb"|" + _LN + rb": (?=[A-Za-z0-9_.-]+/v?[0-9])(?![^\n]*(?:ts|time|timestamp)=)"
        # The one group: the service, the level word (ts line, zap JSON) or the access
        # line's day. Or nothing, for any other line starting with one of
        # { t < D E F I T W or a digit, to keep results aligned with lines.
        rb')([^/" \n\[:]*)|(?=[{t<0-9DEFITW]))'
    )


try:
    from logcaster.parsing._linescan import (  # type: ignore[import-not-found]
        byte_offsets,
        json_tails,
    )
except ImportError:  # not built (scripts/build-native): the pattern checks the tails
    byte_offsets = json_tails = None  # and numpy finds bytes
try:
    from logcaster.parsing._shapes import captures  # type: ignore[import-not-found]
except ImportError:  # not built: LINE_SHAPES_HEADS runs
    captures = None

# byte_offsets(buffer, byte, end) -> int64 offsets as bytes (parsing/_linescan.c);
# None where it is not built. Tests switch it.
BYTE_OFFSETS: Callable[[object, int, int], bytes] | None = byte_offsets

# json_tails(buffer, starts: int64 bytes, zap: bool) -> one byte per start (1: a
# valid tail there); None where parsing/_linescan is not built.
JSON_TAILS: Callable[[object, bytes, bool], bytes] | None = json_tails
# captures(buffer, end) -> LINE_SHAPES_HEADS.findall(buffer, 0, end), walked in C
# (parsing/_shapes.c); None where it is not built. Tests switch both.
SHAPE_CAPTURES: Callable[[bytes, int], list[bytes]] | None = captures
LINE_SHAPES_FULL = _line_shapes(tails_in_c=False)
LINE_SHAPES_HEADS = _line_shapes(tails_in_c=True)
assert LINE_SHAPES_FULL.groups == LINE_SHAPES_HEADS.groups == 1


def find_captures(
    data: bytes, end: int
) -> tuple[list[bytes], Callable[[object, bytes, bool], bytes] | None]:
    """The pattern's results over data[:end] (one per line it looks at), and the
    JSON tails check the caller still runs on them (None: the pattern did)."""
    tails = JSON_TAILS
    if tails is None:
        return LINE_SHAPES_FULL.findall(data, 0, end), None
    if SHAPE_CAPTURES is not None:
        return SHAPE_CAPTURES(data, end), tails
    return LINE_SHAPES_HEADS.findall(data, 0, end), tails


# 5-byte level keys at a fixed offset (JSON, logfmt): a 4-letter word with its terminator.
_LEVEL_KEYS = [
    (w if len(w) == 5 else w + t, code)
    for name, code in LEVEL_CODES.items()
    if name
    for w in (name.encode(), name.lower().encode())
    for t in (b'"', b" ", b":")
]
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


# ---------------------------------------------------------------------------
# numpy helpers


def offsets_of(buf: U8 | bytes, byte: int, end: int) -> I64:
    """np.flatnonzero(buf[:end] == byte) (read-only), by a memchr walk where the
    extension is built: ~5x faster for newlines, ~2x for a logfmt chunk's "="."""
    if BYTE_OFFSETS is not None:
        found: I64 = np.frombuffer(BYTE_OFFSETS(buf, byte, end), np.int64)
        return found
    array = np.frombuffer(buf, np.uint8) if isinstance(buf, bytes) else buf
    return np.flatnonzero(array[:end] == byte)


def receive_times(received: float | F64, n: int) -> F64:
    """The receive time of each of n events: one for all, or an array of n."""
    if isinstance(received, np.ndarray):
        recv = np.asarray(received, np.float64)
        if recv.shape != (n,):
            raise ValueError(f"received has shape {recv.shape}, expected ({n},)")
    else:
        recv = np.full(n, float(received), np.float64)
    if not np.isfinite(recv).all():
        raise ValueError("receive times must be finite")
    return recv


def check_json_tails(
    tails: Callable[[object, bytes, bool], bytes],
    data: bytes,
    buf: U8,
    starts: I64,
    hit: Bool,
    brace: Bool,
    third: U8,
    captured: I64,
) -> None:
    """The JSON lines' tails, which LINE_SHAPES_HEADS leaves out, checked by
    `tails` (JSON_TAILS); a line whose tail fails is no longer a `hit` (as with
    LINE_SHAPES_FULL: the parser decides). Flat JSON lines start
    `{"timestamp":"<24>","level":"<word>","service":"<name>"`, zap ones
    `{"level":"<word>","ts":"<24>"`; `captured` is each line's capture's length
    (the name, the word). Per line of the payload: `starts`, `hit`, `brace`
    (starts with "{"), `third` (its third byte)."""
    for zap in (False, True):
        idx = np.flatnonzero(hit & brace & (third == ord("l" if zap else "t")))
        if not len(idx):
            continue
        st = starts[idx]
        if zap:  # '{"level":"', the word, '","ts":"', the time and its '"'
            at = st + 10 + captured[idx] + 8 + 24 + 1
        else:  # a 4- or 5-letter level word at 49, '","service":"', the name, '"'
            word = np.where(buf[st + 53] == ord('"'), 4, 5)
            at = st + 49 + word + 13 + captured[idx] + 1
        hit[idx] = np.frombuffer(tails(data, at.astype(np.int64).tobytes(), zap), np.bool_)


def window_rows(buf: U8, pos: I64, width: int) -> U8:
    """Rows buf[p : p + width] for p in pos: a 1-D take of `width`-byte void items
    from a view of the buffer at every byte offset, one memcpy each. (A take on a
    2-D sliding-window view cost 2-5x more, half of it building the view.)
    The caller's buffer is padded, so rows never run past its end."""
    items = np.ndarray((len(buf) - width + 1,), f"V{width}", buffer=buf, strides=(1,))
    rows: U8 = items[pos].view(np.uint8).reshape(len(pos), width)
    return rows


def ascii_alnum(rows: U8) -> Bool:
    """Which bytes are ASCII letters or digits, by comparisons: a 256-entry table
    lookup per byte costs about four times as much over a chunk. `| 0x20` folds
    upper to lower case, and each subtraction wraps every byte below its range
    around to 159 or more."""
    letter = (rows | 0x20) - np.uint8(ord("a")) < 26
    alnum: Bool = letter | (rows - np.uint8(ord("0")) < 10)
    return alnum


def word_bytes(rows: U8) -> Bool:
    """Which bytes are str-mode `[\\w.-]` restricted to ASCII (service names)."""
    word: Bool = ascii_alnum(rows) | (rows == ord("_")) | (rows == ord(".")) | (rows == ord("-"))
    return word


_KEY_BYTE = np.zeros(256, np.bool_)  # what may precede a pair's key inside a longer key
_KEY_BYTE[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")] = True
_KEY_WINDOW = 11  # a key of up to 9 bytes, the byte before it and one more


def lines_naming(
    buf: U8, end: int, nl: I64, keys: tuple[bytes, ...], wanted: Bool | None = None
) -> Bool:
    """Which lines of an escaped payload may hold a `key=` pair for one of `keys`.

    The parser's pairs start where the byte before the key is not [\\w.-] (str
    mode: any Unicode word character). Seen from the escaped bytes this errs only
    towards yes: a non-ASCII byte before the key, or a backslash two before it (the
    key may follow an escaped newline), counts as a pair. `buf[:end]` is b"\\n" +
    payload, `nl` its newline positions; the result has one entry per line.
    `wanted` (one entry per line): only these lines are looked at, the others are
    False (logfmt lines name `time=` and `level=` on every line; the caller asks
    about a few shapes only).
    """
    if not all(2 <= len(key) <= _KEY_WINDOW - 2 for key in keys):
        raise ValueError("keys of 2 to 9 bytes")
    eq = offsets_of(buf, ord("="), end)
    # Only an '=' after one of the keys' last two bytes needs the full test (most
    # pairs name other keys: request_id=, rt=, ...): a 16-bit compare first.
    ends = np.array([(key[-2] << 8) | key[-1] for key in keys], np.uint16)
    before = np.maximum(eq - 2, 0)
    tail2 = (buf[before].astype(np.uint16) << 8) | buf[before + 1]
    eq = eq[(eq < _KEY_WINDOW) | np.isin(tail2, ends)]
    if wanted is not None:
        # Before the window test: on a chunk of logfmt lines with a few access lines
        # among them, it would test the logfmt lines' own keys (this function 214 ->
        # 110 ns/line, extraction 965 -> 904, on the frequent bench corpus).
        eq = eq[wanted[np.searchsorted(nl, eq, "right") - 1]]
    rows = window_rows(buf, np.maximum(eq - _KEY_WINDOW, 0), _KEY_WINDOW)
    named = eq < _KEY_WINDOW  # too near the start to look at: say yes
    for key in keys:
        size = len(key)
        at = _KEY_WINDOW - size
        word = np.frombuffer(key, np.uint8)
        hit = (rows[:, at:] == word).all(axis=1)
        hit &= ~_KEY_BYTE[rows[:, at - 1]] | (rows[:, at - 2] == ord("\\"))
        named |= hit
    out = np.zeros(len(nl) - 1, np.bool_)
    out[np.searchsorted(nl, eq[named], "right") - 1] = True
    return out


def level_key(rows: U8) -> U8:
    key = np.ascontiguousarray(rows).view("S5").ravel()
    out = np.zeros(len(key), np.uint8)
    for word, code in _LEVEL_KEYS:
        out[key == word] = code
    return out


def parse_ts_rows(rows: U8) -> tuple[F64, Bool]:
    """Vectorized parse_timestamp of `YYYY-MM-DD[ T]HH:MM:SS[.mmm]` rows -> (ts, ok).

    The digits are already validated by the caller. Bit-identical to parse_timestamp:
    the minute's epoch (an exact integer) + (SS * 1000 + mmm) / 1000.0, a correctly
    rounded division of exact integers, hence equal to float("SS.mmm"). ok is False
    for impossible dates and for 0.0 (`parse_timestamp(...) or ev.ts` keeps the
    receive time then).
    """
    # int32 until the seconds: any row's bytes (0..255) keep every term below 2^31
    # (the year at most 229,977, the days 84M); ~15% faster than int64 throughout.
    # One byte position per row of `a` (transposed once): each term below reads
    # contiguous memory, not a column strided across the rows (396 -> 287 us for
    # a chunk's 5,258 simulator lines).
    a = np.ascontiguousarray(rows.T).astype(np.int32) - ord("0")
    y = a[0] * 1000 + a[1] * 100 + a[2] * 10 + a[3]
    mo = a[5] * 10 + a[6]
    d = a[8] * 10 + a[9]
    hh = a[11] * 10 + a[12]
    mi = a[14] * 10 + a[15]
    ss = a[17] * 10 + a[18]
    frac = a[19] == ord(".") - ord("0")
    ms = (a[20] * 100 + a[21] * 10 + a[22]) * frac
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    mo_c = np.clip(mo, 0, 12)
    dim = _DAYS_IN_MONTH[mo_c] + ((mo_c == 2) & leap)
    # 1970..9998: _minute_epoch's range check never trips inside it
    ok = (y >= 1970) & (y <= 9998) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= dim)
    ok &= (hh < 24) & (mi < 60) & (ss < 60)
    yy = y - (mo <= 2)  # days from civil (H. Hinnant)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    minute = (days.astype(np.int64) * 86400 + (hh * 3600 + mi * 60)).astype(np.float64)
    ts = minute + (ss * 1000 + ms).astype(np.float64) / 1000.0
    ok &= ts != 0.0
    return ts, ok


# An access line's time `[dd/Mon/yyyy:HH:MM:SS +zzzz]`: its "[" is looked for in
# the line's first bytes (beyond them, the parser decides); which of its bytes
# are digits, and the separators at the others.
_ACCESS_HEAD = 48
_ACCESS_TIME = 27
_ACCESS_DIGITS = np.array([0, 1, 7, 8, 9, 10, 12, 13, 15, 16, 18, 19, 22, 23, 24, 25])
_ACCESS_SEPS = {2: b"/", 6: b"/", 11: b":", 14: b":", 17: b":", 20: b" ", 26: b"]"}
_MONTH_KEYS = np.array([int.from_bytes(m.encode(), "big") for m in MONTH_NAMES])


def parse_access_rows(buf: U8, starts: I64, received: F64) -> tuple[F64, Bool]:
    """The own time of access lines (nginx/Apache common or combined) starting at
    `starts`, as parse.py's `_parse_access_time` gives it -> (ts, ok); ok False:
    not provably that, the parser decides (also a time equal to the `received`
    one, which a later ts= pair could replace: extract._Columns.accept). The
    local time is rebuilt as a `YYYY-MM-DD HH:MM:SS` row for parse_ts_rows, then
    the zone's offset taken off (whole seconds: exact in a float, as in the parser)."""
    n = len(starts)
    bracket = window_rows(buf, starts, _ACCESS_HEAD) == ord("[")
    ok = bracket.any(axis=1)
    r = window_rows(buf, starts + np.argmax(bracket, axis=1) + 1, _ACCESS_TIME)
    ok &= ((r[:, _ACCESS_DIGITS] - np.uint8(ord("0"))) < 10).all(axis=1)
    for at, sep in _ACCESS_SEPS.items():
        ok &= r[:, at] == sep[0]
    ok &= (r[:, 21] == ord("+")) | (r[:, 21] == ord("-"))
    key = (r[:, 3].astype(np.int64) << 16) | (r[:, 4].astype(np.int64) << 8) | r[:, 5]
    named = key[:, None] == _MONTH_KEYS
    ok &= named.any(axis=1)
    month = np.argmax(named, axis=1) + 1
    rows = np.full((n, 23), ord("0"), np.uint8)
    rows[:, 0:4] = r[:, 7:11]
    rows[:, 4] = rows[:, 7] = ord("-")
    rows[:, 5] = month // 10 + ord("0")
    rows[:, 6] = month % 10 + ord("0")
    rows[:, 8:10] = r[:, 0:2]
    rows[:, 10] = rows[:, 19] = ord(" ")  # (not "." at 19: no milliseconds)
    rows[:, 11:13] = r[:, 12:14]
    rows[:, 13] = rows[:, 16] = ord(":")
    rows[:, 14:16] = r[:, 15:17]
    rows[:, 17:19] = r[:, 18:20]
    local, valid = parse_ts_rows(rows)
    z = r[:, 22:26].astype(np.int64) - ord("0")
    hours, minutes = z[:, 0] * 10 + z[:, 1], z[:, 2] * 10 + z[:, 3]
    ok &= valid & (hours <= 23) & (minutes <= 59)
    offset = (hours * 3600 + minutes * 60) * np.where(r[:, 21] == ord("+"), 1, -1)
    ts = local - offset.astype(np.float64)
    return ts, ok & (ts != received)
