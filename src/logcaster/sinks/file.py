"""The file sink (SPEC §5, issue 4): batches into checksummed segment files.

The disk work (encode, write, fsync, rotate) runs in a worker thread through
`asyncio.to_thread`, one call at a time under a lock: the event loop never
waits on the disk, and while a write is in flight the pipeline worker waits
for it, so the bounded queue fills and the `block` policy pauses sources —
a slow disk pushes back on senders instead of growing memory.
See docs/persistence-design.md for the format and the rotation order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from logcaster.config import PersistConfig
from logcaster.event import Batch
from logcaster.exceptions import StorageError
from logcaster.log import log_event
from logcaster.storage import SegmentWriter
from logcaster.storage.segment import StoredBatch, read_batches

logger = logging.getLogger("logcaster.sinks.file")

# Bytes of queued batches encoded and written per call to the writer thread.
WRITE_GROUP_BYTES = 8 * 1024 * 1024


class FileSink:
    name = "file"

    def __init__(self, config: PersistConfig, on_durable: Callable[[], None] | None = None) -> None:
        """`on_durable` is called on the event loop after a timer fsync moved `durable_id`."""
        assert config.dir is not None
        self._on_durable = on_durable
        self._final_durable_id = 0  # durable_id after stop (the writer is gone then)
        self._config = config
        self.directory = Path(config.dir)
        self._writer: SegmentWriter | None = None
        self._lock = asyncio.Lock()
        self._syncer: asyncio.Task[None] | None = None

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
        self._writer = await asyncio.to_thread(
            SegmentWriter,
            self.directory,
            max_bytes=cfg.max_file_bytes,
            fsync=cfg.fsync,
            fsync_interval=cfg.fsync_interval_ms / 1000,
        )
        recovered = self._writer.recovered
        if recovered is not None:
            log_event(
                logger,
                logging.WARNING,
                "segment_recovered",
                kind=recovered.kind,
                path=str(recovered.path),
                offset=recovered.offset,
                reason=recovered.reason,
                torn_bytes=recovered.torn_bytes,
                quarantined_to=str(recovered.quarantined_to or ""),
            )
        if cfg.fsync == "interval":
            self._syncer = asyncio.create_task(self._sync_loop(), name="file-sink-fsync")

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
            await asyncio.to_thread(writer.write_many, group, mode=self._config.format)

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
            for block in read_batches(path):
                window.append(block)
                count += len(block.texts)
                while count - len(window[0].texts) >= need:
                    count -= len(window.popleft().texts)
            kept[:0] = window
            total += count
        # Up to one block more than `capacity`: the memory sink evicts the excess.
        # Each batch gets back its receive time and source from the block header.
        return [Batch(b.first_id, b.received, b.source, b.texts) for b in kept]

    async def stop(self) -> None:
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
        writer, self._writer = self._writer, None
        if writer is not None:
            async with self._lock:
                await asyncio.to_thread(writer.close)
            self._final_durable_id = writer.durable_id or 0
