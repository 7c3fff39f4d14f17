"""A forward group's access to its spool, from the event loop.

The spool (`sinks/forward/spool.py`) is synchronous and not thread-safe. A group calls
it in threads from three places: the sender task, the spool's fsync timer and
stop(). `GroupSpool` is the one way those calls go: each holds one lock. It
also owns the read-ahead, the batches read from the spool's head that the
sender's window has not taken yet, and how far the window has taken them (the
spool's `drop_oldest` spares those, `held_through`). After a failure the
sender releases them, and the spool is read again from its cursor.
"""

from __future__ import annotations

import asyncio
from collections import deque

from logcaster.pipeline.batch import Batch
from logcaster.sinks.forward.chunks import Chunk, batches_after, take_batches
from logcaster.sinks.forward.spool import Spool, SpoolAppend


class GroupSpool:
    """The spool of one group, its lock and its read-ahead (see the module docstring)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        # Every spool call holds this (the spool is not thread-safe; its calls run
        # in threads): the sender's, the fsync timer's and stop()'s.
        self._lock = asyncio.Lock()
        self._sent_through = 0  # spooled ids already taken into a chunk
        self._ahead: deque[Batch] = deque()  # read from the spool, not yet in a chunk

    @property
    def wants_read(self) -> bool:
        """Does the spool hold data while nothing read from it waits for a chunk?"""
        return not self.spool.empty and not self._ahead

    async def read_ahead(self, size: int) -> None:
        """Read the next spooled batches (in a thread), `size` events, for the window."""
        spool = self.spool
        after = self._sent_through
        async with self._lock:
            read = await asyncio.to_thread(spool.read, size + (after and size))
        for batch in read:
            if batch.last_id <= after:
                continue
            if batch.first_id <= after:
                cut = after - batch.first_id + 1
                batch = batch.cut(cut)
            self._ahead.append(batch)

    def release_reads(self) -> None:
        """Forget what was taken from the spool: it is read again from its cursor."""
        self._sent_through = 0
        self._ahead.clear()
        self.spool.held_through = -1

    def next_chunk(self, size: int) -> Chunk | None:
        """A chunk of at most `size` events from the read-ahead, or None if it is empty."""
        if not self._ahead:
            return None
        batches = take_batches(self._ahead, size)
        self._sent_through = batches[-1].last_id
        self.spool.held_through = self._sent_through  # drop_oldest spares them
        return Chunk(batches, from_spool=True)

    async def append(self, batches: list[Batch]) -> tuple[int, SpoolAppend]:
        """Append `batches`: the events an earlier, failed call already wrote, and the result."""
        spool = self.spool
        async with self._lock:
            # After an append that raised, part of it may be on disk: not again.
            todo, already = batches_after(batches, spool.written_id)
            result = await asyncio.to_thread(spool.append, todo)
        if result.dropped_oldest:
            self._ahead.clear()  # read again: some of it may be gone
        return already, result

    async def commit(self, through_id: int) -> None:
        """Every id up to `through_id` was delivered: the spool may let it go."""
        async with self._lock:
            await asyncio.to_thread(self.spool.commit, through_id)

    async def maybe_sync(self) -> bool | None:
        """The fsync timer's step (`Spool.maybe_sync`); None once the spool is closed."""
        async with self._lock:
            if self.spool.closed:
                return None
            return await asyncio.to_thread(self.spool.maybe_sync)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.spool.close)
