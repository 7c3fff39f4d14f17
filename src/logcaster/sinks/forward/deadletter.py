"""Dead letters: events a receiver refused for good, kept for a person to look at.

One NDJSON file per group, `<dir>/dead-letters.ndjson`, one object per event:
`{"id", "received", "source", "text" | "text_b64", "sink", "status",
"reason", "at"}`. Appends are fsynced (refusals are rare, and a dead letter
is the only copy the forward path keeps). The file is bounded by `max_bytes`:
past it, further refusals are counted and logged (`dropped`), never written.

`logcaster dlq inspect DIR` lists them; `logcaster dlq replay DIR --to URL`
sends them again and keeps only those refused again (see cli.py).
"""

from __future__ import annotations

import base64
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from logcaster.pipeline.batch import Batch
from logcaster.sinks.forward.transports import Rejection, SendError, open_forward

FILE_NAME = "dead-letters.ndjson"


def encode_letter(rejection: Rejection, sink: str, at: float) -> bytes:
    record: dict[str, Any] = {
        "id": rejection.event_id,
        "received": rejection.received,
        "source": rejection.source,
    }
    try:
        record["text"] = rejection.text.decode()
    except UnicodeDecodeError:
        record["text_b64"] = base64.b64encode(rejection.text).decode("ascii")
    record |= {"sink": sink, "status": rejection.status, "reason": rejection.reason, "at": at}
    return orjson.dumps(record) + b"\n"


class DeadLetters:
    """The append-only, bounded dead-letter file of one group (synchronous; run in a thread)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.max_bytes = max_bytes
        self.written = 0  # letters written since start
        self.dropped = 0  # letters not written: the file was at max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def nbytes(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def add(self, rejections: Iterable[Rejection], sink: str) -> int:
        """Append and fsync; returns how many did not fit (also counted in `dropped`)."""
        room = self.max_bytes - self.nbytes
        now = time.time()
        data = bytearray()
        dropped = 0
        for rejection in rejections:
            line = encode_letter(rejection, sink, now)
            if len(data) + len(line) > room:
                dropped += 1
                continue
            data += line
        if data:
            _append(self.path, bytes(data))
            self.written += data.count(b"\n")
        self.dropped += dropped
        return dropped


def read_letters(path: Path) -> Iterator[dict[str, Any]]:
    """Every letter in the file; a damaged line (a torn last write) is skipped."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for line in f:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                yield record


def letter_text(record: dict[str, Any]) -> bytes:
    if "text_b64" in record:
        return base64.b64decode(record["text_b64"])
    return str(record.get("text", "")).encode()


def letter_batch(record: dict[str, Any]) -> Batch:
    """The letter as a one-event batch with its original id, time and source."""
    return Batch(
        int(record["id"]),
        float(record.get("received", 0.0)),
        str(record.get("source", "")),
        [letter_text(record)],
    )


def letters_path(path: Path) -> Path:
    """The dead-letter file given it or the group directory holding it."""
    return path / FILE_NAME if path.is_dir() else path


def summarize(path: Path, limit: int) -> dict[str, Any]:
    """`logcaster dlq inspect`: counts by sink, status and reason, and the first letters."""
    records = list(read_letters(path))
    by = Counter((r.get("sink"), r.get("status"), r.get("reason")) for r in records)
    return {
        "file": str(path),
        "letters": len(records),
        "bytes": path.stat().st_size if path.exists() else 0,
        "by_reason": [
            {"sink": sink, "status": status, "reason": reason, "letters": n}
            for (sink, status, reason), n in by.most_common()
        ],
        "first": records[:limit],
    }


REPLAYING_NAME = "dead-letters.replaying.ndjson"
MERGING_NAME = "dead-letters.merging.ndjson"


async def replay(
    path: Path, url: str, send_timeout: float, chunk_events: int = 500
) -> tuple[int, int]:
    """`logcaster dlq replay`: send every letter to `url`, in id order, in chunks.

    Safe while the server appends: the file is renamed aside first (the
    server's next letter creates a new one), a leftover from an interrupted
    replay included. Letters delivered are gone; letters refused again (with
    the new answer) and those not tried after a retryable failure are
    appended back to the live file in one write. Returns (delivered, left).
    """
    aside = _set_aside(path)
    # Ids may repeat (an event refused again after a resend): letters are
    # tracked by position, a refusal matched to the next letter with its id.
    records = sorted(read_letters(aside), key=lambda r: int(r["id"]))
    delivered = [False] * len(records)
    sink = open_forward(url, timeout=send_timeout)
    try:
        for start in range(0, len(records), chunk_events):
            part = records[start : start + chunk_events]
            try:
                rejected = await sink.deliver([letter_batch(r) for r in part])
            except SendError:
                break
            again: dict[int, deque[Rejection]] = defaultdict(deque)
            for refusal in rejected:
                again[refusal.event_id].append(refusal)
            for i, record in enumerate(part, start):
                refused = again.get(int(record["id"]))
                if not refused:
                    delivered[i] = True
                    continue
                refusal = refused.popleft()
                record |= {"status": refusal.status, "reason": refusal.reason, "at": time.time()}
    finally:
        await sink.close()
        left = [r for r, done in zip(records, delivered, strict=True) if not done]
        _append_back(path, aside, left)
    return len(records) - len(left), len(left)


def _set_aside(path: Path) -> Path:
    """Move the live file aside for a replay, after what an interrupted replay left.

    The live file is only ever renamed (never read and unlinked, which would
    lose a letter the server appends in between): to the aside name, or, when
    an aside file is left over, to a merge name whose letters are appended to it.
    """
    aside = path.with_name(REPLAYING_NAME)
    merging = path.with_name(MERGING_NAME)
    if merging.exists():
        _merge(merging, aside)  # an interrupted merge
    if path.exists():
        if not aside.exists():
            os.replace(path, aside)
        else:
            os.replace(path, merging)
            _merge(merging, aside)
    return aside


def _merge(source: Path, target: Path) -> None:
    """Append `source` to `target`, fsync, then remove `source`."""
    _append(target, source.read_bytes())
    source.unlink()


def _append(path: Path, data: bytes) -> None:
    """One O_APPEND write (atomic against the server's appends), then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_back(path: Path, aside: Path, records: list[dict[str, Any]]) -> None:
    """Append `records` to the live file, then drop the aside file."""
    if records:
        _append(path, b"".join(orjson.dumps(r) + b"\n" for r in records))
    aside.unlink(missing_ok=True)
