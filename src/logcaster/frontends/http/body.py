"""Request bodies, read within `http.max_body_bytes` before and after decoding.

The declared length is checked before anything is read; the bytes read are
counted as they come (a chunked body has no declared length); and a gzip or
deflate body is inflated in steps that stop one byte past the same bound, so
a small bomb never expands in memory: each case is a 413.

A body must also come at `http.min_body_rate` bytes/s on average, after a
grace of `http.header_timeout` (the time a request's headers may take): the
server sets both in the app (`BODY_PACE`), so every endpoint reading through
here gets them, and a client trickling its body is cut with 408 long before
`http.request_timeout` (slowloris).
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web

READ_STEP = 256 * 1024
# (bytes/s, grace s): the minimum rate, from `grace` s after the body's start; unset or 0: none.
BODY_PACE = web.AppKey("body_pace", tuple[int, float])
# zlib: 16 + MAX_WBITS reads a gzip header, 32 + MAX_WBITS either gzip or zlib.
_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": 32 + zlib.MAX_WBITS,
}


class BodyError(Exception):
    """A body the server will not take: the status and the reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, decoded per Content-Encoding; BodyError past the bound."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in _WBITS and encoding not in ("identity", ""):
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r} (gzip, deflate)")
    length = request.content_length
    if length is not None and length > max_bytes:
        raise BodyError(413, f"body of {length} bytes, over http.max_body_bytes={max_bytes}")
    parts: list[bytes] = []
    size = 0
    rate, grace = request.app.get(BODY_PACE, (0, 0.0))
    start = asyncio.get_running_loop().time() + grace
    while True:
        if rate and not request.content.is_eof():
            chunk = await _read_in_time(request, start + size / rate, rate)
        else:  # no minimum, or the whole body is buffered already (the common case)
            chunk = await request.content.read(READ_STEP)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"body over http.max_body_bytes={max_bytes}")
        parts.append(chunk)
    raw = b"".join(parts)
    if encoding in _WBITS:
        return inflate(raw, _WBITS[encoding], max_bytes)
    return raw


async def _read_in_time(request: web.Request, due: float, rate: int) -> bytes:
    """The next piece of the body, which must start coming by `due` (loop time): by
    then the body would average less than `rate` bytes/s since its grace."""
    try:
        async with asyncio.timeout_at(due):
            return await request.content.read(READ_STEP)
    except TimeoutError:
        raise BodyError(408, f"body slower than http.min_body_rate={rate} bytes/s") from None


def inflate(data: bytes, wbits: int, max_bytes: int) -> bytes:
    """Decompress `data`, refusing (413) once the output passes `max_bytes`."""
    inflater = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    pending = data
    try:
        while pending or not inflater.eof:
            piece = inflater.decompress(pending, max_bytes + 1 - size)
            size += len(piece)
            if size > max_bytes:
                raise BodyError(413, f"decoded body over http.max_body_bytes={max_bytes}")
            out.append(piece)
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                break
        if not inflater.eof:
            raise BodyError(400, "truncated compressed body")
    except zlib.error as exc:
        raise BodyError(400, f"bad compressed body: {exc}") from exc
    return b"".join(out)
