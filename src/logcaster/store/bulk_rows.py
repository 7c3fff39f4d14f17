"""A text scan's raw reports turned into index rows in bulk, without Python per match.

`Scanner.hits` (store/scan.py) only records each Hyperscan report (`id << 40 |
end`). Here, with numpy: a literal's piece is checked to end its whole
literal, each report is placed on its line by the index's row offsets and the
block header offsets between them (a report on a header line is dropped), and
lines are counted once. Only the lines the scanner cannot vouch for are
confirmed one by one (`Scanner.confirm`): none for an exact keyword, for a
regex alone only the lines that are not plain ASCII without a backslash
(there the escaped line is the body and the translated pattern is the
pattern), else all. So a word or pattern on a hundred thousand lines costs
array work, not a hundred thousand callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from logcaster.exceptions import QueryTimeout
from logcaster.store.scan import Buffer, Scanner

I64 = npt.NDArray[np.int64]
Offsets = npt.NDArray[np.uint32] | npt.NDArray[np.int64]
# Per position in the rows scanned: plain (1), not (0), unknown (-1).
PlainOf = Callable[[I64], npt.NDArray[np.int8]]
_END = (1 << 40) - 1


def rows_from_hits(
    scanner: Scanner,
    buf: Buffer,
    hits: I64,
    row_starts: Offsets,
    headers: I64,
    span_end: int,
    deadline: float,
    plain: PlainOf | None = None,
) -> I64:
    """Positions in `row_starts` (ascending line starts of the rows scanned and any
    between; the index's uint32 column as it is, or int64) of the rows that match,
    ascending. `headers`: block header line starts among them (ascending);
    `span_end`: where the last row's line ends (+1); `plain`: for positions of
    rows, whether each line is plain (1), not (0), or unknown (-1) (the token
    index knows, store/terms.py)."""
    if not len(hits) or not len(row_starts):
        return np.zeros(0, np.int64)
    ids, ends = hits >> 40, hits & _END
    if scanner.path in ("literal", "literals"):
        pos = np.full(len(hits), -1, np.int64)
        data = np.frombuffer(buf, np.uint8)
        for i, lit in enumerate(scanner.literals):
            mine = np.flatnonzero(ids == i)
            start = ends[mine] - len(lit)
            inside = start >= 0
            mine, start = mine[inside], start[inside]
            # The piece scanned is the literal's tail: the rest must precede it
            # (byte by byte: memory stays one array of the hits).
            same = np.ones(len(start), np.bool_)
            for k, byte in enumerate(lit):
                same &= data[start + k] == byte

            pos[mine[same]] = start[same]
        pos = pos[pos >= 0]
    else:
        pos = ends - 1  # a match's last byte is on its line (or is its newline)
    # The index column is strided (one field of 16-byte records): a binary search
    # there misses the cache at each of its last steps; a packed copy of the batch's
    # offsets costs less than those misses (status+path regex, 47 batches: the
    # searches 17 -> 8 ms). Needles of the haystack's dtype: else numpy converts
    # all of it per call.
    packed = np.ascontiguousarray(row_starts)
    row = np.searchsorted(packed, pos.astype(packed.dtype), side="right") - 1
    pos, row = pos[row >= 0], row[row >= 0]
    if len(headers):
        h = np.searchsorted(headers, pos, side="right") - 1
        on_header = (h >= 0) & (headers[np.maximum(h, 0)] > packed[row].astype(np.int64))
        row = row[~on_header]
    row = np.sort(row)  # nearly sorted already (reports come in offset order)
    rows: I64 = row[np.r_[True, row[1:] != row[:-1]]] if len(row) else row
    mode = scanner.confirm
    if mode == "none" or not len(rows):
        return rows
    known = np.full(len(rows), -1, np.int8)
    if mode == "unplain" and plain is not None:
        known = plain(rows)
    check = np.flatnonzero(known != 1) if mode == "unplain" else np.arange(len(rows))
    if not len(check):
        return rows  # every line plain: the translated pattern's reports are exact
    keep = np.ones(len(rows), np.bool_)
    # Where each line to test starts and ends (its newline, or a block header).
    mine = rows[check]
    starts = packed[mine].astype(np.int64)
    nxt = np.minimum(mine + 1, len(packed) - 1)
    line_end = np.where(mine + 1 < len(packed), packed[nxt].astype(np.int64), span_end)
    if len(headers):
        h = np.searchsorted(headers, starts, side="right")
        line_end = np.where(
            h < len(headers),
            np.minimum(line_end, headers[np.minimum(h, len(headers) - 1)]),
            line_end,
        )
    test = scanner.matches_line
    clock = time.monotonic
    for j, k in enumerate(check.tolist()):
        line = bytes(buf[int(starts[j]) : int(line_end[j]) - 1])
        if mode == "unplain" and known[k] < 0 and line.isascii() and b"\\" not in line:
            continue
        if clock() >= deadline:
            raise QueryTimeout("query exceeded its time limit")
        keep[k] = test(line)
    return rows[keep]
