"""A crash-safe, bounded, disk-backed FIFO of event batches (the forward sinks' spool).

A forward sink group appends the batches no remote accepted, later reads them
from the head in order, sends them and commits what was delivered. Storage is
the file sink's: `SegmentWriter` writes one checksummed block per batch to
`active.log` (fsync policy, torn-tail truncation and quarantine at open) and
the spool rotates it into `logcaster-<time>-<first id>.log` segments. Nothing
here defines a file format.

- Bounded: `max_bytes` limits the bytes of all segments. The policy decides
  what an append does when the spool is full: `block` writes anyway (the
  caller checks `full` first and waits), `drop_newest` writes what fits and
  counts the rest, `drop_oldest` writes everything, then deletes the oldest
  rotated segments until the total is back under `max_bytes`. The segment being
  written is never deleted, so the disk holds at most about max_bytes plus one
  segment. Sizes are estimated before writing (payload plus a header bound),
  so `segment_bytes` and `drop_newest`'s cut are targets, not exact limits.
- The cursor: the highest id delivered. `commit` moves it, deletes segments
  whose last id is at or below it (rotating a consumed active.log first, so
  its space returns) and persists it in the file `cursor` (tmp, fsync, rename),
  at most every CURSOR_PERSIST_S seconds, from `maybe_sync`, or on close.
- On crash: reopening makes exactly the events after the persisted cursor
  pending again. A cursor older than the last commit only re-sends delivered
  batches (at-least-once); deleted segments are gone, so nothing older
  returns. The writer cuts a torn tail off active.log, and keeps the good
  blocks of an active.log damaged in the middle (only the damaged bytes go to
  quarantine/).
  Damaged blocks inside a segment are skipped by the reader, counted and logged.

Reading keeps, per segment, the offset after the last block read, and the
batches read but not committed stay in memory (about the largest `read` asked
for): repeated reads cost nothing, new data is read once.

Synchronous and not thread-safe: call one method at a time (a worker thread).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from logcaster.datadir.marker import ensure_marker
from logcaster.datadir.versions import SPOOL_FORMAT
from logcaster.durable_file import replace_durably
from logcaster.exceptions import StorageError
from logcaster.log import log_event
from logcaster.pipeline.batch import Batch, mark_label, split_label
from logcaster.segments.blocks import decode_payload
from logcaster.segments.names import list_rotated
from logcaster.segments.segment import iter_raw_blocks, scan_segment
from logcaster.segments.writer import FsyncPolicy, SegmentWriter

logger = logging.getLogger("logcaster.sinks.spool")

SpoolPolicy = Literal["block", "drop_newest", "drop_oldest"]
CURSOR_NAME = "cursor"
CURSOR_PERSIST_S = 0.5
# Per-block bytes beyond the texts: a header is at most 217 bytes, typically ~60
# (see blocks.MAX_HEADER_BYTES); a newline per event is added separately.
_BLOCK_OVERHEAD = 64
# The writer must never rotate on its own: the spool rotates, so it knows which
# batches each segment holds.
_NO_ROTATION = 1 << 62


class SpoolAppend(NamedTuple):
    appended: int  # events written
    dropped_newest: int  # events of this call not written (drop_newest, spool full)
    dropped_oldest: int  # events deleted from the head to make room (drop_oldest)


@dataclass(slots=True, eq=False)
class _Segment:
    path: Path  # active.log until rotated, then the rotated name (same inode)
    last_id: int = -1  # of its last good block; -1 while it has none
    events: int = 0  # in its good blocks
    done: int = 0  # of those, at or below the cursor (consumed)
    nbytes: int = 0
    read_at: int = 0  # offset after the last block read into memory


def _labelled(batch: Batch) -> Batch:
    if batch.stream is None:
        return batch
    label = mark_label(batch.source, batch.stream)
    return Batch(batch.first_id, batch.received_at, label, batch.texts)


def _estimate(batch: Batch) -> int:
    return sum(map(len, batch.texts)) + len(batch.texts) + _BLOCK_OVERHEAD


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync: FsyncPolicy = "interval",
        fsync_interval: float = 0.2,
        policy: SpoolPolicy = "block",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        if policy not in ("block", "drop_newest", "drop_oldest"):
            raise ValueError(f"policy must be block, drop_newest or drop_oldest, not {policy!r}")
        if segment_bytes is None:
            segment_bytes = max(64 * 1024, min(16 * 1024 * 1024, max_bytes // 8))
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # A segment larger than the whole spool could never be dropped whole.
        self.segment_bytes = max(1, min(segment_bytes, max_bytes))
        self.policy: SpoolPolicy = policy
        self.dropped_oldest = 0
        self.dropped_newest = 0
        self.quarantined = 0  # active.log files the writer quarantined at open
        self.damaged = 0  # damaged regions skipped while reading
        self._writer = SegmentWriter(
            self.directory, max_bytes=_NO_ROTATION, fsync=fsync, fsync_interval=fsync_interval
        )
        # The spool's own version (docs/data-format.md): its segments say theirs,
        # the cursor file does not.
        ensure_marker(self.directory, "spool", SPOOL_FORMAT, "spool")
        self._recover()
        self._cursor_path = self.directory / CURSOR_NAME
        # Ids at or below the cursor were delivered. A cursor above everything on
        # disk (committed data lost in a crash) is lowered, so new ids are never hidden.
        saved = self._load_cursor()
        self._cursor = min(saved, self.written_id)
        self._last_delivered = max(saved, 0)  # for `last_id` when the segments are gone
        self._persisted = self._cursor
        self._persisted_at = time.monotonic()
        # Ids up to this were taken by the sender and may be in flight: drop_oldest
        # spares their segments (set by the caller; -1: nothing in flight).
        self.held_through = -1
        self._failed_logged_at = 0.0
        self._segments: list[_Segment] = [self._scan(p) for p in list_rotated(self.directory)]
        self._active = self._scan(self._writer.active_path)
        self._loaded: deque[tuple[Batch, _Segment]] = deque()  # read, not committed
        self._loaded_events = 0
        self._release()

    # -- opening --------------------------------------------------------------

    def _recover(self) -> None:
        rec = self._writer.recovered
        if rec is None:
            return
        log_event(logger, logging.WARNING, "spool_recovered", **rec.fields())
        # Damage in the middle leaves the good blocks in active.log ("repaired");
        # a file without one good block is set aside whole.
        if rec.kind != "torn_tail":
            self.quarantined += 1

    def _scan(self, path: Path) -> _Segment:
        scan = scan_segment(path, keep_blocks=False)
        last = scan.last_id if scan.last_id is not None else -1
        return _Segment(path, last, scan.event_count, nbytes=scan.size)

    def _load_cursor(self) -> int:
        try:
            return int(self._cursor_path.read_text())
        except FileNotFoundError:
            return -1
        except (OSError, ValueError) as exc:
            # Re-sending everything is the safe side of a lost cursor.
            log_event(logger, logging.WARNING, "spool_cursor_unreadable", error=str(exc))
            return -1

    # -- state ----------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._segments) + self._writer.active_bytes

    @property
    def full(self) -> bool:
        return self.nbytes >= self.max_bytes

    @property
    def events(self) -> int:
        return sum(s.events - s.done for s in (*self._segments, self._active))

    @property
    def empty(self) -> bool:
        return self.events == 0

    @property
    def durable_id(self) -> int:
        return self._writer.durable_id or 0

    @property
    def last_id(self) -> int:
        return max(self._writer.last_id or 0, self._last_delivered)

    @property
    def unsynced(self) -> bool:
        """Written but not yet fsynced under the policy (then `durable_id` < the last write)."""
        written = self._writer.last_id
        return written is not None and written > (self._writer.durable_id or -1)

    @property
    def closed(self) -> bool:
        return self._writer.closed

    @property
    def written_id(self) -> int:
        """The highest id on disk or written, -1 if none (ids may start at 0).

        After `append` raised StorageError, the batches up to it were written:
        an append that retries leaves them out (or cuts the one across it)."""
        last = self._writer.last_id
        return -1 if last is None else last

    @property
    def cursor(self) -> int:
        """The highest id committed (-1 before any)."""
        return self._cursor

    # -- writing --------------------------------------------------------------

    def append(self, batches: list[Batch]) -> SpoolAppend:
        """Write `batches` (ids increasing, above every id written) at the tail.

        Raises ValueError (before writing) for ids out of order, StorageError on
        an OS error: then the batches with ids up to `last_id` were written.
        """
        prev = self._writer.last_id
        for b in batches:
            if b.texts and prev is not None and b.first_id <= prev:
                raise ValueError(f"first_id {b.first_id} is not above the last id {prev}")
            prev = b.last_id if b.texts else prev
        todo = [b for b in batches if b.texts]
        dropped_newest = 0
        if self.policy == "drop_newest":
            todo, dropped_newest = self._fit(todo)
            self.dropped_newest += dropped_newest
        group: list[Batch] = []
        size = self._writer.active_bytes
        for b in todo:
            est = _estimate(b)
            if size and size + est > self.segment_bytes:
                self._write(group)
                group = []
                self._rotate()
                size = 0
            group.append(b)
            size += est
        self._write(group)
        dropped_oldest = 0
        # Delete whole rotated segments only: the active one holds the newest data.
        # Segments with ids the sender holds (`held_through`) may be delivered:
        # the oldest of the others goes (else the same events would be counted
        # both dropped and delivered). Those in flight are the sender's window.
        while self.policy == "drop_oldest" and self.nbytes > self.max_bytes:
            seg = self._droppable()
            if seg is None:
                break
            dropped_oldest += seg.events - seg.done
            self._delete(seg)
        self.dropped_oldest += dropped_oldest
        return SpoolAppend(sum(map(len, todo)), dropped_newest, dropped_oldest)

    def _fit(self, batches: list[Batch]) -> tuple[list[Batch], int]:
        """The head of `batches` that fits under max_bytes (the last one cut), and the rest."""
        room = self.max_bytes - self.nbytes
        kept: list[Batch] = []
        for i, b in enumerate(batches):
            est = _estimate(b)
            if est <= room:
                kept.append(b)
                room -= est
                continue
            room -= _BLOCK_OVERHEAD
            n = 0
            while n < len(b.texts) and len(b.texts[n]) + 1 <= room:
                room -= len(b.texts[n]) + 1
                n += 1
            if n:
                kept.append(b.cut(0, n))
            return kept, len(b.texts) - n + sum(map(len, batches[i + 1 :]))
        return kept, 0

    def _write(self, group: list[Batch]) -> None:
        if not group:
            return
        seg = self._active
        try:
            # A stream mark (session, line) lives in the block's source label.
            self._writer.write_many([_labelled(b) for b in group])
        finally:
            # After an error, what reached the file is what the writer counted.
            written = self.written_id
            for b in group:
                if b.last_id <= written:
                    seg.events += len(b.texts)
                    seg.last_id = b.last_id

    def _rotate(self) -> None:
        size = self._writer.active_bytes
        path = self._writer.rotate()
        if path is None:
            return
        seg = self._active
        seg.path, seg.nbytes = path, size
        self._segments.append(seg)
        self._active = _Segment(self._writer.active_path)

    def _droppable(self) -> _Segment | None:
        """The oldest rotated segment with no pending id at or below `held_through`."""
        before = -1  # the last id of the segment before
        for seg in self._segments:
            if max(self._cursor, before) >= self.held_through:
                return seg  # its first pending id is above what the sender holds
            before = seg.last_id
        return None

    def _delete(self, seg: _Segment) -> None:
        self._segments.remove(seg)
        if any(s is seg for _, s in self._loaded):
            self._loaded = deque(e for e in self._loaded if e[1] is not seg)
            self._loaded_events = sum(len(b.texts) for b, _ in self._loaded)
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()

    # -- reading and committing -----------------------------------------------

    def read(self, max_events: int) -> list[Batch]:
        """The oldest pending batches, about `max_events` events (at least one
        batch if any is pending), in id order; nothing is consumed."""
        self._load(max(max_events, 1))
        out: list[Batch] = []
        n = 0
        for batch, _ in self._loaded:
            if out and n + len(batch.texts) > max_events:
                break
            out.append(batch)
            n += len(batch.texts)
        return out

    def _load(self, want: int) -> None:
        """Read blocks from disk into `_loaded` until it holds `want` events or all.

        Blocks at or below the cursor are counted as done and skipped; a block
        across it is cut.
        """
        for seg in (*self._segments, self._active):
            if self._loaded_events >= want:
                return
            active = seg is self._active
            end = self._writer.active_bytes if active else seg.nbytes
            if seg.read_at >= end:
                continue
            with open(seg.path, "rb") as f:
                blocks = iter_raw_blocks(seg.path, start=seg.read_at, end=end, file=f)
                for raw in blocks:
                    h = raw.header
                    if raw.payload_offset - h.length > seg.read_at:
                        self._damaged(seg)  # the reader resynced past bad bytes
                    seg.read_at = raw.payload_offset + h.payload_bytes
                    skip = min(max(self._cursor - h.first_id + 1, 0), h.count)
                    seg.done += skip
                    if skip < h.count:
                        texts = decode_payload(raw.payload, h.count, h.mode)
                        source, mark = split_label(h.source)
                        batch = Batch(h.first_id, h.received, source, texts, mark).cut(skip)
                        self._loaded.append((batch, seg))
                        self._loaded_events += len(batch.texts)  # as cut: not the skipped
                        if self._loaded_events >= want:
                            return
            if not active and seg.read_at < end:
                self._damaged(seg)  # a damaged tail of a rotated segment: never rescan it
                seg.read_at = end

    def _damaged(self, seg: _Segment) -> None:
        self.damaged += 1
        log_event(
            logger, logging.WARNING, "spool_damage_skipped", path=str(seg.path), offset=seg.read_at
        )

    def commit(self, through_id: int) -> None:
        """Everything up to `through_id` was delivered: consume it, free its segments."""
        # Ids not written yet cannot have been delivered: a cursor past `last_id`
        # would hide the next appends.
        through_id = min(through_id, self.written_id)
        if through_id <= self._cursor:
            return
        self._cursor = through_id
        while self._loaded:
            batch, seg = self._loaded[0]
            n = min(through_id - batch.first_id + 1, len(batch.texts))
            if n <= 0:
                break
            seg.done += n
            self._loaded_events -= n
            if n == len(batch.texts):
                self._loaded.popleft()
            else:
                self._loaded[0] = (batch.cut(n), seg)
        # The cursor moved: the caller counts the chunk delivered. Freeing space and
        # saving the cursor are retried (the next commit, `maybe_sync`), so an error
        # here is logged rather than raised (raising would make the caller send
        # again what the cursor already skips, uncounted).
        try:
            self._release()
        except (OSError, StorageError) as exc:
            self._housekeeping_failed("release", exc)
        self._save_cursor_if_due()

    def _save_cursor_if_due(self) -> None:
        """Persist a moved cursor at most every CURSOR_PERSIST_S; a failure is logged."""
        if (
            self._persisted == self._cursor
            or time.monotonic() - self._persisted_at < CURSOR_PERSIST_S
        ):
            return
        try:
            self._persist_cursor()
        except StorageError as exc:
            self._persisted_at = time.monotonic()  # try again in CURSOR_PERSIST_S
            self._housekeeping_failed("cursor", exc)

    def _housekeeping_failed(self, step: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._failed_logged_at >= 1.0:
            self._failed_logged_at = now
            log_event(
                logger,
                logging.ERROR,
                "spool_housekeeping_failed",
                step=step,
                path=str(self.directory),
                error=str(exc),
            )

    def _release(self) -> None:
        """Delete the consumed segments; count the consumed part of the next one."""
        if self._active.events and self._active.last_id <= self._cursor:
            self._rotate()
        while self._segments and self._segments[0].last_id <= self._cursor:
            self._delete(self._segments[0])
        if not self._loaded:
            # Reads ahead to the first pending block, so `events` is exact.
            self._load(1)

    def _persist_cursor(self) -> None:
        try:
            replace_durably(self._cursor_path, b"%d\n" % self._cursor)
        except OSError as exc:
            msg = f"cannot save the spool cursor {self._cursor_path}: {exc.strerror or exc}"
            raise StorageError(msg, path=str(self._cursor_path), errno=exc.errno) from exc
        self._persisted = self._cursor
        self._persisted_at = time.monotonic()

    # -- syncing and closing --------------------------------------------------

    def sync(self) -> None:
        """Fsync unsynced data now."""
        self._writer.sync()

    def maybe_sync(self) -> bool:
        """Fsync if the interval passed; persist a cursor left unsaved by `commit`.

        For the caller's timer (every `fsync_interval`, and while commits happen).
        """
        # Data first: a cursor that cannot be saved must not hold back durability.
        synced = self._writer.maybe_fsync()
        self._save_cursor_if_due()
        return synced

    def close(self) -> None:
        """Persist the cursor, fsync and close. Safe to call twice."""
        if self._writer.closed:
            return
        try:
            if self._persisted != self._cursor:
                self._persist_cursor()
        finally:
            self._writer.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
