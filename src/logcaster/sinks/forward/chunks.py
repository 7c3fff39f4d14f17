"""What a forward group holds in memory: its outbox and the chunks cut from it.

The pipeline hands a group batches; they wait in the `Outbox` (bounded by
`buffer_events`: a full outbox makes `write` wait, which is how a group pushes
back on the pipeline). The sender cuts `Chunk`s of at most `batch_events`
events from the outbox's head, or from batches read back from the spool, and
resolves them in id order (`sinks/forward/sender.py`). A chunk boundary may fall
inside a batch: `cut_batch` splits one at an event, keeping ids and parsed
events, and `batches_after` leaves out what a spool already holds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from logcaster.pipeline.batch import Batch
from logcaster.sinks.forward.transports import Rejection


class Outbox:
    """Batches handed to the group, not yet in a chunk, oldest first.

    Holds at most `limit` events plus one batch (the worker hands over the whole
    queue): `put` waits for room first, unless the group is closing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: deque[Batch] = deque()
        self.events = 0
        self._room = asyncio.Event()  # the outbox went below its bound
        self._closing = False  # stop() began: put no longer waits for room

    def __len__(self) -> int:
        return len(self.batches)

    async def put(self, batch: Batch) -> None:
        """Append one batch, waiting for room first (see the class docstring)."""
        while self.batches and self.events + len(batch) > self.limit:
            if self._closing:
                break
            self._room.clear()
            await self._room.wait()
        self.batches.append(batch)
        self.events += len(batch)

    def close(self) -> None:
        """The group is stopping: `put` no longer waits for room (nor do its waiters)."""
        self._closing = True
        self._room.set()

    def take(self, size: int) -> list[Batch]:
        """Batches from the head holding `size` events at most, for a new chunk."""
        batches = take_batches(self.batches, size)
        n = sum(map(len, batches))
        self.events -= n
        if self.events <= self.limit:
            self._room.set()
        return batches

    def remove(self, count: int) -> None:
        """The first `count` batches were written elsewhere (the spool): now they leave."""
        for _ in range(count):  # put() may have added more behind them
            self.events -= len(self.batches.popleft())
        self._room.set()

    def drain(self) -> list[Batch]:
        """Everything left, oldest first; the outbox is empty afterwards."""
        batches = list(self.batches)
        self.batches.clear()
        self.events = 0
        return batches


@dataclass(eq=False)
class Chunk:
    """Consecutive batches sent together; resolved in order."""

    batches: list[Batch]
    from_spool: bool
    task: asyncio.Task[tuple[int, list[Rejection]]] | None = None
    tried: set[int] = field(default_factory=set)  # indexes of members tried
    maybe_stored: bool = False  # a failed attempt may have left them with a receiver

    @property
    def first_id(self) -> int:
        return self.batches[0].first_id

    @property
    def last_id(self) -> int:
        return self.batches[-1].last_id

    @property
    def events(self) -> int:
        return sum(map(len, self.batches))


def take_batches(source: deque[Batch], size: int) -> list[Batch]:
    """Batches from the head of `source` holding `size` events at most (one is cut if needed)."""
    batches: list[Batch] = []
    n = 0
    while source and n < size:
        batch = source.popleft()
        room = size - n
        if len(batch) > room:
            head, rest = cut_batch(batch, room)
            source.appendleft(rest)
            batch = head
        batches.append(batch)
        n += len(batch)
    return batches


def batches_after(batches: list[Batch], written: int) -> tuple[list[Batch], int]:
    """The part of `batches` with ids above `written`, and how many events are not."""
    if not batches or batches[0].first_id > written:
        return batches, 0
    todo: list[Batch] = []
    skipped = 0
    for batch in batches:
        if batch.last_id <= written:
            skipped += len(batch)
        elif batch.first_id <= written:
            head, rest = cut_batch(batch, written - batch.first_id + 1)
            skipped += len(head)
            todo.append(rest)
        else:
            todo.append(batch)
    return todo, skipped


def cut_batch(batch: Batch, k: int) -> tuple[Batch, Batch]:
    """The first `k` events of `batch` and the rest, as batches with their ids."""
    return batch.cut(0, k), batch.cut(k)
