"""The file sink (SPEC §5, issue 4): batches into checksummed segment files.

The disk work (encode, write, fsync, rotate) runs in a worker thread through
`asyncio.to_thread`, one call at a time under a lock: the event loop never
waits on the disk, and while a write is in flight the pipeline worker waits
for it, so the bounded queue fills and the `block` policy pauses sources —
a slow disk pushes back on senders instead of growing memory.

Housekeeping (time rotation, gzip of rotated segments, retention, quarantine of
damaged rotated segments found at start) runs in one background task. Only its
time rotation takes the write lock; compression, retention and the start-up
scan touch rotated files alone, which the writer never writes again, so they run
in a thread while writes go on.
See docs/persistence-design.md for the format and the rotation order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from logcaster.exceptions import StorageError
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.options import PersistConfig
from logcaster.pipeline.batch import Batch
from logcaster.segments import SegmentWriter
from logcaster.segments.housekeeping import Housekeeper
from logcaster.segments.segment import StoredBatch, read_batches

logger = logging.getLogger("logcaster.sinks.file")

# Bytes of queued batches encoded and written per call to the writer thread.
WRITE_GROUP_BYTES = 8 * 1024 * 1024
# Seconds between housekeeping ticks (time rotation when idle, retention by age).
HOUSEKEEPING_TICK = 1.0
# After a failed housekeeping pass (a full disk, say): wait this long before retrying.
HOUSEKEEPING_RETRY = 30.0


class FileSink:
    name = "file"
    option = "persist.dir"
    endpoint = None

    def __init__(
        self,
        config: PersistConfig,
        on_durable: Callable[[], None] | None = None,
        on_segment_gone: Callable[[Path], None] | None = None,
        verified: asyncio.Event | None = None,
    ) -> None:
        """`on_durable` is called on the event loop after a timer fsync moved `durable_id`;
        `on_segment_gone` in a thread after housekeeping deleted or rewrote a segment;
        `verified` is set after the first housekeeping pass (the start-up verification)."""
        assert config.dir is not None
        self.verified = verified if verified is not None else asyncio.Event()
        self._on_durable = on_durable
        self._on_segment_gone = on_segment_gone
        self._final_durable_id = 0  # durable_id after stop (the writer is gone then)
        self._config = config
        self.directory = Path(config.dir)
        self._writer: SegmentWriter | None = None
        self._lock = asyncio.Lock()
        self._syncer: asyncio.Task[None] | None = None
        self._keeper = Housekeeper(
            self.directory,
            retention_files=config.retention_files,
            retention_age=config.retention_age,
            retention_bytes=config.retention_bytes,
            on_segment_gone=on_segment_gone,
        )
        self._housekeeping: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set after a size rotation: compress it now

    @property
    def durable_id(self) -> int:
        """The highest id on disk and fsynced as the policy asks (see SegmentWriter)."""
        writer = self._writer
        return writer.durable_id or 0 if writer is not None else self._final_durable_id

    @property
    def last_id(self) -> int:
        """The highest event id on disk (0 when empty): new ids continue after it."""
        writer = self._writer
        return writer.last_id or 0 if writer is not None else 0

    async def start(self) -> None:
        cfg = self._config
        self._writer = await asyncio.to_thread(self._open)
        recovered = self._writer.recovered
        if recovered is not None:
            log_event(logger, logging.WARNING, "segment_recovered", **recovered.fields())
            if recovered.kind == "repaired" and self._on_segment_gone is not None:
                # Its blocks moved: an index of active.log made before points at
                # old offsets. It goes before the store reads the index at start.
                await asyncio.to_thread(self._on_segment_gone, self._writer.active_path)
        if cfg.fsync == "interval":
            self._syncer = asyncio.create_task(self._sync_loop(), name="file-sink-fsync")
        self._housekeeping = asyncio.create_task(
            self._housekeeping_loop(), name="file-sink-housekeeping"
        )

    def _open(self) -> SegmentWriter:
        """Remove crash leftovers (so the writer never lists a segment twice), then open."""
        cfg = self._config
        if self.directory.is_dir():
            try:
                self._keeper.cleanup()
            except OSError:
                # Not fatal: listing prefers the .gz of a pair, leftovers only cost space.
                logger.exception("housekeeping_failed")
        return SegmentWriter(
            self.directory,
            max_bytes=cfg.max_file_bytes,
            fsync=cfg.fsync,
            fsync_interval=cfg.fsync_interval_ms / 1000,
            rotate_interval=cfg.rotate_interval,
        )

    def _tick(self) -> float:
        interval = self._config.rotate_interval
        if isinstance(interval, int):
            # Short test intervals: rotate within a quarter period of the boundary.
            return min(HOUSEKEEPING_TICK, interval / 4)
        return HOUSEKEEPING_TICK

    async def _housekeeping_loop(self) -> None:
        """Time rotation when idle, then (in a thread, outside the write lock) the
        start-up scan, compression and retention.

        The first pass at start also verifies every rotated segment and compresses
        those a previous run left uncompressed. Later passes run after a rotation,
        and every tick when files expire by age.
        """
        first, rotated, seen = True, False, -1
        retry_at = 0.0
        while (writer := self._writer) is not None:
            if writer.rotate_interval is not None:
                rotated |= await self._rotate_if_due(writer)
            if writer.rotations != seen:
                seen = writer.rotations
                rotated = True
            due = first or rotated or self._config.retention_age is not None
            if due and time.monotonic() >= retry_at:
                try:
                    await asyncio.to_thread(self._housekeep, first)
                    first = rotated = False
                except Exception:
                    logger.exception("housekeeping_failed")
                    retry_at = time.monotonic() + HOUSEKEEPING_RETRY
                self.verified.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick())
            self._wake.clear()

    async def _rotate_if_due(self, writer: SegmentWriter) -> bool:
        async with self._lock:
            try:
                rotated = await asyncio.to_thread(writer.rotate_if_due) is not None
            except (OSError, StorageError):  # retried at the next tick or write
                logger.exception("rotation_failed")
                return False
        if rotated and self._on_durable is not None:
            self._on_durable()  # a rotation fsyncs: acks for idle data go out now
        return rotated

    def _housekeep(self, first: bool) -> None:
        """One pass in a thread: verify (at start), compress, apply retention."""
        keeper = self._keeper
        if first:
            keeper.apply_retention()  # before the scan: no use verifying what goes
            keeper.verify()
        if self._config.compress:
            keeper.compress_pending()
        keeper.apply_retention()

    async def _sync_loop(self) -> None:
        """Idle data gets its fsync too, at most `fsync_interval_ms` after its write."""
        interval = self._config.fsync_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            writer = self._writer
            if writer is None:
                return
            async with self._lock:
                try:
                    synced = await asyncio.to_thread(writer.maybe_fsync)
                except (OSError, StorageError) as exc:
                    # The pipeline's retries of the next write report a lasting failure;
                    # this loop only keeps trying.
                    log_event(logger, logging.ERROR, "fsync_failed", error=str(exc))
                    continue
            if synced and self._on_durable is not None:
                self._on_durable()

    async def write(self, batches: list[Batch]) -> None:
        writer = self._writer
        assert writer is not None
        # In groups of at most WRITE_GROUP_BYTES: the encoded copy of a group
        # exists next to the queued texts, so this bounds the extra memory.
        group: list[Batch] = []
        size = 0
        # A retry after a failure: what a rotation already put on disk is skipped.
        done = writer.last_id or 0
        for batch in batches:
            if batch.last_id <= done:
                continue
            group.append(batch)
            size += batch.nbytes
            if size >= WRITE_GROUP_BYTES:
                await self._write_group(writer, group)
                group, size = [], 0
        if group:
            await self._write_group(writer, group)

    async def _write_group(self, writer: SegmentWriter, group: list[Batch]) -> None:
        # Encoding (in JSON mode: parsing every event not yet parsed) runs in the
        # writer thread too; it never fills the batches' parse cache, see write_many.
        async with self._lock:
            rotations = writer.rotations
            try:
                await asyncio.to_thread(writer.write_many, group, mode=self._config.format)
            finally:
                if writer.rotations != rotations:
                    self._wake.set()

    def replay(self, capacity: int) -> list[Batch]:
        """The newest events on disk, at least `capacity` if there are that many, oldest first."""
        writer = self._writer
        assert writer is not None
        kept: list[StoredBatch] = []
        total = 0
        for path in reversed(writer.segments()):
            need = capacity - total
            if need <= 0:
                break
            # Stream the file, keeping only its newest `need` events (plus one block).
            window: deque[StoredBatch] = deque()
            count = 0
            for block in _segment_blocks(path):
                window.append(block)
                count += len(block.texts)
                while count - len(window[0].texts) >= need:
                    count -= len(window.popleft().texts)
            kept[:0] = window
            total += count
        # Up to one block more than `capacity`: the memory sink evicts the excess.
        # Each batch gets back its receive time and source from the block header.
        return [Batch(b.first_id, b.received, b.source, b.texts) for b in kept]

    async def stop(self, deadline: float | None = None) -> None:
        # A compression in its thread stops at its next chunk (its .log stays, whole).
        self._keeper.stopping.set()
        for task in (self._syncer, self._housekeeping):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        writer, self._writer = self._writer, None
        if writer is not None:
            async with self._lock:
                await asyncio.to_thread(writer.close)
            self._final_durable_id = writer.durable_id or 0

    async def close(self) -> None:
        return None

    def readings(self, out: Readings) -> None:
        return None  # its write failures are the pipeline's to count (sink_errors)


def _segment_blocks(path: Path) -> Iterator[StoredBatch]:
    """The good blocks of one segment, for replay while housekeeping runs.

    A `.log` compressed since it was listed is read as its `.gz`; a file deleted by
    retention meanwhile is skipped; an unreadable one is reported and skipped (the
    start-up scan sets it aside).
    """
    gz = path.with_name(path.name + ".gz")
    for candidate in (path,) if path.name.endswith(".gz") else (path, gz):
        blocks = read_batches(candidate)
        try:
            first = next(blocks, None)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log_event(
                logger, logging.WARNING, "replay_skipped", path=str(candidate), reason=str(exc)
            )
            return
        if first is None:
            return
        yield first
        try:
            yield from blocks
        except OSError as exc:
            log_event(
                logger, logging.WARNING, "replay_skipped", path=str(candidate), reason=str(exc)
            )
        return
