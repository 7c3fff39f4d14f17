"""The line shapes the store's extractor reads without running Python per event.

`LINE_SHAPES` is one bytes regex with one capture group over a chunk of escaped
payload lines (parsing/extract.py has the why): each alternative proves the
fixed prefix of one line shape and captures its service or level word, and an
empty alternative keeps the results aligned with the lines that may start a
shape. The numpy helpers read the fixed-width fields those prefixes place at
known offsets: rows of bytes, 5-byte level keys, and timestamps parsed
bit-identically to parse_timestamp.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from logcaster.parsing.codes import LEVEL_CODES

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
_JVAL = rb"(?:" + _JSTR + rb"|-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?|true|false|null)"

LINE_SHAPES = re.compile(
    rb"\n(?:(?:"
    # Flat JSON: timestamp, level, service first and never again (orjson keeps the
    # last duplicate), valid JSON to the end of the first line (escaped newline: \n).
    rb'\{"timestamp":"' + _T24 + rb'","level":"' + _LN_ANY_CASE + rb'","service":"'
    rb'(?=[A-Za-z0-9_.-]+"(?:,"(?!(?:timestamp|level|service)")[A-Za-z0-9_]+":'
    + _JVAL
    + rb")*\}(?=\n|\\n))"
    # logfmt starting `ts= level= service=` (the first occurrence of a key wins).
    rb"|ts=" + _T24 + rb" level=" + _LN_ANY_CASE + rb" service=(?=[A-Za-z0-9_.-]+(?= |\n))"
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
    # The one group: the service, or the ts line's level word. Or nothing, for any
    # other line starting with one of { t < D E F I T W or a digit, to keep results
    # aligned with lines.
    rb')([^/" \n\[:]*)|(?=[{t<0-9DEFITW]))'
)
assert LINE_SHAPES.groups == 1

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


def window_rows(buf: U8, pos: I64, width: int) -> U8:
    """Rows buf[p : p + width] for p in pos: a take on a sliding-window view, a row
    memcpy each (~5x cheaper than fancy indexing with an (n, width) index matrix).
    The caller's buffer is padded, so rows never run past its end."""
    return sliding_window_view(buf, width)[pos]


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
    a = rows.astype(np.int64) - ord("0")
    y = a[:, 0] * 1000 + a[:, 1] * 100 + a[:, 2] * 10 + a[:, 3]
    mo = a[:, 5] * 10 + a[:, 6]
    d = a[:, 8] * 10 + a[:, 9]
    hh = a[:, 11] * 10 + a[:, 12]
    mi = a[:, 14] * 10 + a[:, 15]
    ss = a[:, 17] * 10 + a[:, 18]
    frac = a[:, 19] == ord(".") - ord("0")
    ms = np.where(frac, a[:, 20] * 100 + a[:, 21] * 10 + a[:, 22], 0)
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
    minute = (days * 86400 + hh * 3600 + mi * 60).astype(np.float64)
    ts = minute + (ss * 1000 + ms).astype(np.float64) / 1000.0
    ok &= ts != 0.0
    return ts, ok
