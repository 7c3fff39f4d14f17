"""Request bodies, read within `http.max_body_bytes` before and after decoding.

The declared length is checked before anything is read; the bytes read are
counted as they come (a chunked body has no declared length); and a gzip or
deflate body is inflated in steps that stop one byte past the same bound, so
a small bomb never expands in memory: each case is a 413.
"""

from __future__ import annotations

import zlib

from aiohttp import web

READ_STEP = 256 * 1024
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
    while True:
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
