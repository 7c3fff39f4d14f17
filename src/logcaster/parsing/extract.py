"""Bulk extraction of (ts, level, service) for every event of an escaped segment payload.

The store's index needs three columns per event, at ingest rate, and they must be
exactly what `parse_event` would give (docs/store-design.md). The full parser costs
10-30 us/event; this module does ~1.5-2 us/event by never running Python per event
for the common line shapes:

- **Input is the escaped payload**, the raw-mode lines of one or more blocks
  (segments/blocks.py) concatenated without their headers: that is what the indexer
  reads from segment files, so no decoding pass runs before the extraction. Every
  event is exactly one line, and escaping only ever produces a backslash pair, so
  a token without a backslash means the same bytes in the stored line and in the
  text. Callers that hold the texts instead use `Extractor.extract_texts`.
- **One `re.findall` over the chunk, with one capture group.** Each alternative
  matches the fixed prefix of one line shape (flat JSON, zap JSON, logfmt, Go slog
  text, RFC 5424, RFC 3164, `YYYY-MM-DD HH:MM:SS LEVEL`, `LEVEL: service/version`,
  access lines) and proves the rest with lookaheads; an empty alternative yields b""
  for any other line starting with one of `{ t < D E F I T W` or a digit, so the
  k-th result belongs to the k-th such line. Shapes that must hold no pair naming
  a column (zap JSON, access lines) are checked in numpy (`lines_naming`): a
  lookahead over the whole line cost more than the rest of the pattern.
  Each capture group costs SRE more than all the validation, hence one group shared
  by all shapes. The pattern and the numpy field readers: parsing/line_shapes.py;
  where the C extensions are built, the same shapes are walked in C
  (parsing/_shapes.c, `find_captures`), with the same results.
- **The simulator header `[LEVEL] ts service/ver` and access lines' times are
  read in numpy only**: fixed-offset byte rows gathered with a sliding window.
- **Anything the fast path cannot prove goes through `parse_event`** (the fallback),
  so the columns equal the full parser's by construction; the tests compare them
  event by event. The rules for "cannot prove" mirror the parser's precedence:
  a later duplicate JSON key wins in orjson; logfmt pairs anywhere in the body may
  set a field the format left unset; a timestamp that equals the receive time (or
  is 0.0) lets a later `ts=`/`time=` pair override it; str-mode `\\s`/`\\w` are
  Unicode, so only printable-ASCII tokens are accepted. The level and service
  codes the columns hold are parsing/codes.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from logcaster.parsing.codes import LEVEL_CODES, ServiceCodes
from logcaster.parsing.formats import SYSLOG_SEVERITY_LEVELS
from logcaster.parsing.line_shapes import (
    F64,
    I64,
    U8,
    U16,
    Bool,
    check_json_tails,
    find_captures,
    level_key,
    lines_naming,
    offsets_of,
    parse_access_rows,
    parse_ts_rows,
    receive_times,
    window_rows,
    word_bytes,
)
from logcaster.parsing.parse import parse_event
from logcaster.parsing.syslog import bsd_time
from logcaster.segments.blocks import BlockFormatError, decode_payload, encode_payload

__all__ = ["Extractor", "Fields", "extract"]

_SYSLOG_LEVEL = np.array(
    [LEVEL_CODES[x] for x in SYSLOG_SEVERITY_LEVELS],
    np.uint8,
)
# The level words the pattern captures: upper case (ts lines), lower case (zap JSON)
_LEVEL_WORD = {
    word: code
    for name, code in LEVEL_CODES.items()
    if name
    for word in (name.encode(), name.lower().encode())
}
_ATTRIBUTE_KEYS = (b"level", b"service", b"ts", b"time", b"timestamp")
_SIM_KEYS = [(b"TRACE", 1, 5), (b"DEBUG", 2, 5), (b"INFO]", 3, 4), (b"WARN]", 4, 4)]
_SIM_KEYS += [(b"ERROR", 5, 5), (b"FATAL", 6, 5)]
_VERSION0 = np.zeros(256, np.bool_)  # a version's first byte: printable, not ':' nor '\'
_VERSION0[[c for c in range(0x21, 0x7F) if c not in b":\\"]] = True
_HEADER_FIRST = np.zeros(256, np.bool_)
_HEADER_FIRST[list(b"DEFITW")] = True
_DIGITS_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22]
_SEPARATORS = {4: ord("-"), 7: ord("-"), 10: ord(" "), 13: ord(":"), 16: ord(":")}
_SEPARATORS |= {19: ord("."), 23: ord(" ")}
_SW = 40  # the simulator service window: longer names take the fallback
_HASH_K = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0x27D4EB2F165667C5,
        0xFF51AFD7ED558CCD,
    ],
    np.uint64,
)
# Bytes after the payload, so fixed-width rows of the last lines never leave the
# buffer; zeros fail every shape check.
_PAD = 128
_PAD_BYTES = bytes(_PAD)
_MAX_TOKENS = 1 << 16  # the token cache is reset past this many distinct tokens
_MAX_BSD_MINUTES = 1 << 14


@dataclass(frozen=True, slots=True)
class Fields:
    """The columns of n events, in payload order."""

    ts: F64  # event time, unix seconds; the receive time for events without one
    level: U8  # LEVEL_NAMES index
    service: U16  # ServiceCodes code
    fallback: int  # how many events went through parse_event

    def __len__(self) -> int:
        return len(self.ts)


class _Columns:
    """The columns being filled, and which events have their final values."""

    __slots__ = ("done", "level", "recv", "service", "ts")

    def __init__(self, recv: F64) -> None:
        n = len(recv)
        self.recv = recv
        self.ts = recv.copy()
        self.level = np.zeros(n, np.uint8)
        self.service = np.zeros(n, np.uint16)
        self.done = np.zeros(n, np.bool_)

    def accept(self, idx: I64, t: F64, lv: U8, sv: U16, *, own_time: bool = True) -> None:
        """Take the fast path's values for events `idx`, where they are provably final.

        `own_time`: t is the event's own time. One equal to the receive time lets a
        later ts=/time= pair of the body replace it in parse_event (its
        `ev.ts == ev.received_at` tests): not provable, so those events fall back.
        """
        ok = lv != 0
        if own_time:
            ok &= t != self.recv[idx]
        idx = idx[ok]
        self.ts[idx] = t[ok]
        self.level[idx] = lv[ok]
        self.service[idx] = sv[ok]
        self.done[idx] = True


class Extractor:
    """Extracts `Fields` from payloads, with caches shared across chunks.

    Not thread-safe (it owns the ServiceCodes it adds to); one per indexer.
    """

    def __init__(self, services: ServiceCodes | None = None) -> None:
        self.services = services if services is not None else ServiceCodes()
        # Distinct capture tokens (services and level words) -> token id, with each
        # token's level code and its service code looked up lazily (-1: not yet),
        # so a level word only gets a service code if it is used as one.
        self._tokens: dict[bytes, int] = {}
        self._token_names: list[bytes] = []
        self._token_level = np.zeros(0, np.uint8)
        self._token_length = np.zeros(0, np.int64)
        self._token_service = np.zeros(0, np.int32)
        self._bsd_minutes: dict[tuple[bytes, float], float] = {}

    # -- public ------------------------------------------------------------

    def extract(
        self,
        payload: bytes | Sequence[bytes],
        received: float | F64,
        texts: Sequence[bytes] | None = None,
    ) -> Fields:
        """The fields of the n events of a raw-mode payload (n = its newline count),
        or of the payloads of consecutive blocks, in order (joined here, in the one
        copy that frames them for the fast path: the indexer's 1 MiB chunks paid
        two copies, ~15% of its time, when it joined them first).

        `received`: the receive time of every event (one block), or a float64 array
        of n (blocks concatenated: `np.repeat(block_times, block_counts)`). Events
        without a time of their own take it, as in parse_event. `texts`, if the
        caller has the decoded texts, saves decoding the fallback lines.
        Raises BlockFormatError if the payload is not escaped lines.
        """
        parts = [payload] if isinstance(payload, bytes) else list(payload)
        data = b"".join([b"\n", *parts, _PAD_BYTES])
        end = len(data) - _PAD
        buf = np.frombuffer(data, np.uint8)
        nl = offsets_of(buf, 10, end)
        n = len(nl) - 1
        if end > 1 and (data[end - 1] != 10 or data[1] == ord("#")):
            raise BlockFormatError("payload is not newline-terminated escaped lines")
        if texts is not None and len(texts) != n:
            raise ValueError(f"{len(texts)} texts for a payload of {n} lines")
        out = _Columns(receive_times(received, n))
        if n == 0:
            return Fields(out.ts, out.level, out.service, 0)
        starts = nl[:-1] + 1
        first = buf[starts]
        if (first == ord("#")).any():
            raise BlockFormatError("a payload line starts with '#'")

        sim = np.flatnonzero(first == ord("["))
        if len(sim):
            ok, t, lv, sv = self._simulator(buf, starts[sim])
            out.accept(sim[ok], t[ok], lv[ok], sv[ok])

        digit = (first >= ord("0")) & (first <= ord("9"))
        header = _HEADER_FIRST[first]  # D E F I T W: a Python-style header may follow
        lined = np.flatnonzero(
            (first == ord("{")) | (first == ord("t")) | (first == ord("<")) | digit | header
        )
        col, tails = find_captures(data, end)
        if len(col) != len(lined):  # an invariant of the pattern, not of the data
            raise AssertionError(f"pattern results {len(col)} != lines {len(lined)}")
        if col:
            token = np.zeros(n, np.int64)
            token[lined] = self._token_ids(col)
            hit = np.zeros(n, np.bool_)
            hit[lined] = np.fromiter(map(bool, col), np.bool_, len(col))
            second = buf[starts + 1]
            third = buf[starts + 2]
            if tails is not None:
                captured = self._token_length[token]
                check_json_tails(tails, data, buf, starts, hit, first == ord("{"), third, captured)
            brace, t = hit & (first == ord("{")), hit & (first == ord("t"))
            # `YYYY-` (a ts line) or `N.N.N.N ` (an access line)
            dated = buf[starts + 4] == ord("-")
            zap, access = brace & (third == ord("l")), digit & hit & ~dated
            if zap.any() or access.any():
                # a pair naming one of these would set a column the shape leaves unset
                plain = ~lines_naming(buf, end, nl, _ATTRIBUTE_KEYS, zap | access)
                zap &= plain
                access &= plain
            # {"timestamp":"<24>","level":"<level>","service":"<service>"
            self._fixed_prefix(buf, starts, token, out, brace & (third == ord("t")), 14, 49)
            # {"level":"<level word>","ts":"<24>", ; no service. The time is
            # len('{"level":"') + len('","ts":"') = 18 bytes after the word's length.
            self._word_level(buf, starts, zap, token, out, ts_after=18)
            # ts=<24> level=<level> service=<service>
            self._fixed_prefix(buf, starts, token, out, t & (second == ord("s")), 3, 34)
            # time=<24> level=<level> msg=<msg> service=<service>
            self._fixed_prefix(buf, starts, token, out, t & (second == ord("i")), 5, 36)
            self._syslog(buf, starts, first, hit, token, out)
            # YYYY-MM-DD HH:MM:SS LEVEL[:] ; no service (no pair of the event names one)
            self._word_level(buf, starts, digit & hit & dated, token, out, ts_after=None)
            rows = np.flatnonzero(access)  # no level nor service: their own time only
            t, timed = parse_access_rows(buf, starts[rows], out.recv[rows])
            out.ts[rows[timed]], out.done[rows[timed]] = t[timed], True
            self._py_header(buf, starts, header & hit, token, out)

        rest = np.flatnonzero(~out.done)
        if len(rest):
            self._fallback(rest.tolist(), data, nl, texts, out)
        return Fields(out.ts, out.level, out.service, len(rest))

    def extract_texts(self, texts: Sequence[bytes], received: float | F64) -> Fields:
        """The fields of event texts (encoded to a payload first: the fast path's input)."""
        return self.extract(encode_payload(list(texts)), received, texts)

    # -- shapes ------------------------------------------------------------

    def _simulator(self, buf: U8, st: I64) -> tuple[Bool, F64, U8, U16]:
        """`[LEVEL] YYYY-MM-DD HH:MM:SS.mmm service/v` lines, checked and parsed in numpy."""
        k = window_rows(buf, st + 1, 6)
        key = np.ascontiguousarray(k[:, :5]).view("S5").ravel()
        lv = np.zeros(len(st), np.uint8)
        width = np.zeros(len(st), np.int64)
        for word, code, length in _SIM_KEYS:
            hit = key == word
            if length == 5:
                hit &= k[:, 5] == ord("]")
            lv[hit] = code
            width[hit] = length
        ok = lv != 0
        ok &= buf[st + 2 + width] == ord(" ")  # exactly one space: \s+ could take more
        tso = st + 3 + width
        t = window_rows(buf, tso, 24)
        for at, ch in _SEPARATORS.items():
            ok &= t[:, at] == ch
        d = t[:, _DIGITS_AT]
        ok &= ((d >= ord("0")) & (d <= ord("9"))).all(axis=1)
        ts, tok = parse_ts_rows(t[:, :23])
        ok &= tok
        # service: [\w.-]+ then '/', then a version's first byte
        sw = window_rows(buf, tso + 24, _SW + 1)
        p = np.argmin(word_bytes(sw), axis=1)  # the first non-word byte
        ok &= (p >= 1) & (p < _SW)
        rows = np.arange(len(st))
        ok &= sw[rows, p] == ord("/")
        ok &= _VERSION0[sw[rows, np.minimum(p + 1, _SW)]]
        name = np.multiply(sw[:, :_SW], np.arange(_SW)[None, :] < p[:, None], dtype=np.uint8)
        return ok, ts, lv, self._encode_names(name, ok)

    def _fixed_prefix(
        self,
        buf: U8,
        starts: I64,
        token: I64,
        out: _Columns,
        lines: Bool,
        ts_at: int,
        level_at: int,
    ) -> None:
        """Lines whose time and level sit at fixed offsets (the regex proved the shape)."""
        idx = np.flatnonzero(lines)
        if len(idx):
            st = starts[idx]
            t, ok = parse_ts_rows(window_rows(buf, st + ts_at, 23))
            lv = level_key(window_rows(buf, st + level_at, 5))
            sv = self._service_codes(token[idx])
            out.accept(idx[ok], t[ok], lv[ok], sv[ok])

    def _word_level(
        self, buf: U8, starts: I64, lines: Bool, token: I64, out: _Columns, ts_after: int | None
    ) -> None:
        """Lines whose level is the captured word and that name no service: the time
        starts the line (`ts_after` None) or `ts_after` bytes plus the word's length in."""
        idx = np.flatnonzero(lines)
        if len(idx):
            tok = token[idx]
            at = starts[idx]
            if ts_after is not None:
                at = at + ts_after + self._token_length[tok]
            t, ok = parse_ts_rows(window_rows(buf, at, 23))
            sv = np.zeros(len(idx), np.uint16)
            out.accept(idx[ok], t[ok], self._token_level[tok][ok], sv[ok])

    def _syslog(
        self, buf: U8, starts: I64, first: U8, hit: Bool, token: I64, out: _Columns
    ) -> None:
        idx = np.flatnonzero((first == ord("<")) & hit)
        if not len(idx):
            return
        st = starts[idx]
        # '>' after 1, 2 or 3 PRI digits; the level is the PRI's severity
        gt = np.where(buf[st + 2] == ord(">"), 2, np.where(buf[st + 3] == ord(">"), 3, 4))
        d = window_rows(buf, st + 1, 3).astype(np.int64) - ord("0")
        pri = np.where(
            gt == 2,
            d[:, 0],
            np.where(gt == 3, d[:, 0] * 10 + d[:, 1], d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]),
        )
        # A PRI over 191 or with a leading zero makes the line plain text (no level):
        # the parser's; checked here rather than in the pattern, where it costs more.
        valid = (pri <= 191) & ((gt == 2) | (d[:, 0] != 0))
        if not valid.all():
            idx, st, gt, pri = idx[valid], st[valid], gt[valid], pri[valid]
        lv = _SYSLOG_LEVEL[pri & 7]
        sv = self._service_codes(token[idx])
        rfc5424 = buf[st + gt + 1] == ord("1")  # '<PRI>1 ts'; RFC 3164 has a month name
        if rfc5424.any():
            t, ok = parse_ts_rows(window_rows(buf, st[rfc5424] + gt[rfc5424] + 3, 23))
            i = idx[rfc5424]
            out.accept(i[ok], t[ok], lv[rfc5424][ok], sv[rfc5424][ok])
        bsd = ~rfc5424
        if bsd.any():
            i = idx[bsd]
            stamps = window_rows(buf, st[bsd] + gt[bsd] + 1, 15)
            keys = np.ascontiguousarray(stamps).view("S15").ravel().tolist()
            t = np.array(
                [self._bsd_time(s, r) for s, r in zip(keys, out.recv[i].tolist(), strict=True)],
                np.float64,
            )
            ok = ~np.isnan(t)
            out.accept(i[ok], t[ok], lv[bsd][ok], sv[bsd][ok])

    def _fallback(
        self,
        rows: list[int],
        data: bytes,
        nl: I64,
        texts: Sequence[bytes] | None,
        out: _Columns,
    ) -> None:
        bounds = (nl + 1).tolist()  # bounds[k]: line k's start in data (b"\n" + payload)
        received = out.recv.tolist()
        ts, level, service = out.ts, out.level, out.service
        code = self.services.code
        for i in rows:
            if texts is not None:
                text = texts[i]
            else:
                line = data[bounds[i] : bounds[i + 1]]  # with its newline
                text = decode_payload(line, 1)[0] if b"\\" in line else line[:-1]
            ev = parse_event(0, received[i], "", text)
            ts[i] = ev.ts
            level[i] = LEVEL_CODES[ev.level]
            service[i] = code(ev.service)

    # -- helpers -------------------------------------------------------------

    def _py_header(self, buf: U8, starts: I64, lines: Bool, token: I64, out: _Columns) -> None:
        # LEVEL: service/version ; the event's time is its receive time
        idx = np.flatnonzero(lines)
        if len(idx):
            lv = level_key(window_rows(buf, starts[idx], 5))
            sv = self._service_codes(token[idx])
            out.accept(idx, out.recv[idx], lv, sv, own_time=False)

    def _token_ids(self, col: list[bytes]) -> I64:
        """Token ids of the pattern's results; new tokens get a level and a lazy service."""
        # Unknown ones (-1) are added in order of first appearance, not set order: service
        # codes must not depend on the hash seed, or a rebuilt index would differ.
        known = self._tokens
        ids = np.fromiter(map(known.get, col, repeat(-1)), np.int64, len(col))
        unknown = np.flatnonzero(ids < 0).tolist()
        if unknown:
            new = list(dict.fromkeys([col[i] for i in unknown]))
            if len(known) + len(new) > _MAX_TOKENS:  # start over: every id changes
                known.clear()
                self._token_names.clear()
                new = list(dict.fromkeys(col))
                unknown = list(range(len(col)))
            base = len(self._token_names)
            for tok in new:
                self._tokens[tok] = len(self._token_names)
                self._token_names.append(tok)
            added = self._token_names[base:]
            lv = np.array([_LEVEL_WORD.get(t, 0) for t in added], np.uint8)
            self._token_level = np.concatenate([self._token_level[:base], lv])
            size = np.array([len(t) for t in added], np.int64)
            self._token_length = np.concatenate([self._token_length[:base], size])
            self._token_service = np.concatenate(
                [self._token_service[:base], np.full(len(added), -1, np.int32)]
            )
            ids[unknown] = [known[col[i]] for i in unknown]
        return ids

    def _service_codes(self, tokens: I64) -> U16:
        """Service codes of service tokens; a token gets its code on first use as a service."""
        codes = self._token_service[tokens]
        missing = tokens[codes < 0]
        if len(missing):
            _, at = np.unique(missing, return_index=True)
            for t in missing[np.sort(at)].tolist():  # in order of first appearance
                # ASCII by construction of the pattern
                self._token_service[t] = self.services.code(self._token_names[t].decode("ascii"))
            codes = self._token_service[tokens]
        return codes.astype(np.uint16)

    def _encode_names(self, name: U8, ok: Bool) -> U16:
        """Service codes of zero-padded name rows: a 64-bit hash -> np.unique (an int
        sort), then an exact check that every row equals its hash group's first row
        (a collision -> a bytes sort). Rows not `ok` get 0 and add no name."""
        out = np.zeros(len(name), np.uint16)
        rows = np.ascontiguousarray(name[ok])
        if not len(rows):
            return out
        words = rows.view(np.uint64)  # (n, _SW / 8)
        # Column by column: a sum along the rows' axis costs three times as much.
        h = words[:, 0] * _HASH_K[0]
        for j in range(1, words.shape[1]):
            h += words[:, j] * _HASH_K[j]
        _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        if not (words == words[first[inverse]]).all():
            _, first, inverse = np.unique(
                rows.view(f"S{_SW}").ravel(), return_index=True, return_inverse=True
            )
        code = self.services.code
        ucode = np.zeros(len(first), np.uint16)
        for u in np.argsort(first, kind="stable").tolist():  # first appearance gets a code first
            ucode[u] = code(bytes(rows[first[u]]).rstrip(b"\0").decode("ascii"))
        out[ok] = ucode[inverse.ravel()]
        return out

    def _bsd_time(self, stamp: bytes, received: float) -> float:
        """parse.bsd_time(stamp, received), with one real call per distinct minute.

        A minute's seconds are its start + ss: the local zone changes on whole
        minutes. Near the "more than a day ahead: last year" cut, or for a date the
        real function rejects (it then returns the receive time), NaN: fallback.
        """
        key = (stamp[:12], received)
        base = self._bsd_minutes.get(key)
        if base is None:
            if len(self._bsd_minutes) >= _MAX_BSD_MINUTES:
                self._bsd_minutes.clear()
            base = bsd_time(stamp[:12].decode("ascii") + ":00", received)
            self._bsd_minutes[key] = base
        if base == received or base + 60 > received + 86400:
            return float("nan")
        ss = (stamp[13] - 48) * 10 + stamp[14] - 48
        return base + ss if 0 <= ss < 60 else float("nan")


def extract(
    payload: bytes,
    received: float | F64,
    services: ServiceCodes,
    texts: Sequence[bytes] | None = None,
) -> Fields:
    """`Extractor(services).extract(...)` for one payload (no caches kept across calls)."""
    return Extractor(services).extract(payload, received, texts)
