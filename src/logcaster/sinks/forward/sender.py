"""The sender task of a forward group: chunks out, resolved in id order.

`sinks/forward/group.py` describes the group as a whole; this module is the part that
runs in its one sender task (and the spool's fsync timer). `Sender` owns the
window: the chunks sent or to resend, oldest first (`pending`), at most
`max_in_flight` of them out at once, one after a failure (probing). It cuts
chunks from the outbox or, while the group is spooling, from the spool's head;
sends each to the members' targets; resolves the oldest first, failing over
to the other allowed sinks one by one when it fell short of `min_success`;
and hands what no sink took to the spool (it, then the chunks after it, then
the outbox, in id order) and what a sink refused for good to the dead
letters. It counts in the group's counters. What it resolved moves the
group's `durable_id` through the `advance` callback.

Every step removes a chunk or batches only after their spool or dead-letter
write succeeded, so after an error (a full disk) the next step tries again and
loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from logcaster.log import error_text, log_event
from logcaster.options import ForwardGroupConfig
from logcaster.pipeline.batch import Batch
from logcaster.sinks.forward.chunks import Chunk, Outbox
from logcaster.sinks.forward.deadletter import DeadLetters
from logcaster.sinks.forward.group_spool import GroupSpool
from logcaster.sinks.forward.members import Members
from logcaster.sinks.forward.transports import Rejection

# A group's events keep the group's logger, whichever of its modules logs them.
logger = logging.getLogger("logcaster.sinks.group")

SPOOL_SYNC_S = 0.2  # the spool's fsync timer with fsync: interval
SPOOL_RETRY_MAX_S = 5.0  # the sender's pause after repeated errors (a full disk)
IDLE_WAKE_S = 1.0  # the sender re-checks breakers and the spool at least this often


class GroupCounts(Protocol):
    """Where the sender counts: the group's counters, for STATS."""

    delivered: int  # events delivered (min_success sinks took them)
    retried: int  # events sent again after an attempt failed
    dead_lettered: int
    spooled: int  # events written to the spool (all time)

    def forward_drop(self, reason: str, n: int) -> None:
        """`n` delivered events lost (a spool or dead-letter bound)."""


class Sender:
    """See the module docstring. The sender task owns the spool (all its calls are serial)."""

    def __init__(
        self,
        config: ForwardGroupConfig,
        members: Members,
        outbox: Outbox,
        counts: GroupCounts,
        advance: Callable[[int], None],
        durable_moved: Callable[[], None],
    ) -> None:
        self.config = config
        self._members = members
        self.members = members.all
        self._outbox = outbox
        self._counts = counts
        self._advance = advance  # every id up to this is resolved
        self._durable_moved = durable_moved  # the spool's fsync moved durable_id
        self.pending: deque[Chunk] = deque()  # sent or to resend, oldest first
        self.wake = asyncio.Event()  # new batches, or a reason to look again
        self._spool: GroupSpool | None = None
        self._dead_letters: DeadLetters | None = None
        self._spooling = False
        self._stop_now = False  # the sender ends at its next step
        self._probing = False  # since the last failure: one chunk in flight
        self._logged: dict[str, float] = {}

    def use_spool(self, spool: GroupSpool, dead_letters: DeadLetters) -> None:
        """Before the sender runs: the group's spool and dead letters (it has a directory)."""
        self._spool = spool
        self._dead_letters = dead_letters
        if not spool.spool.empty:
            self._spooling = True  # what an earlier run spooled goes first

    @property
    def buffered(self) -> int:
        """Events in memory: the outbox and chunks not yet resolved."""
        return self._outbox.events + sum(c.events for c in self.pending if not c.from_spool)

    def halt(self) -> None:
        """The sender (and the fsync timer) end at their next step."""
        self._stop_now = True
        self.wake.set()

    async def run(self) -> None:
        failures = 0
        while not self._stop_now:
            try:
                await self._step()
                failures = 0
            except Exception as exc:
                # A full disk under the spool or the dead letters, say. Every step
                # removes a chunk or batches only after their spool or dead-letter
                # write succeeded, so trying again loses nothing.
                failures += 1
                self._forget_spool_chunks()  # read again from the spool's cursor
                self._log_once(
                    "forward_sender_error",
                    error=error_text(exc),
                    attempt=failures,
                    exc_info=failures == 1,
                )
                await asyncio.sleep(min(SPOOL_RETRY_MAX_S, 0.1 * 2**failures))

    async def _step(self) -> None:
        if self._spooling:
            # What an error interrupted in `_failed` goes first (id order).
            if not await self._spool_tail():
                return  # stop() cancelled a send
            await self._read_spool_ahead()
        self._launch()
        head = self.pending[0] if self.pending else None
        if head is not None and head.task is not None:
            await self._resolve_head()
        elif self._spool is not None and not self._spooling and not self._members.can_deliver():
            # Too few sinks up for min_success: spool rather than hold it in memory.
            if head is not None:
                await self._failed(head)
            elif self._outbox:
                self._spooling = True
                await self._outbox_to_spool()
            else:
                await self._idle()
        else:
            await self._idle()
        spool = self._spool
        if self._spooling and spool is not None and spool.spool.empty and not self.pending:
            self._spooling = False
            spool.release_reads()
            log_event(logger, logging.INFO, "spool_drained", group=self.config.name)

    async def sync_loop(self) -> None:
        """The spool's fsync timer (interval policy) and its cursor's persistence."""
        spool = self._spool
        assert spool is not None
        while not self._stop_now:
            await asyncio.sleep(SPOOL_SYNC_S)
            try:
                synced = await spool.maybe_sync()
            except Exception as exc:
                self._log_once("spool_sync_failed", error=error_text(exc))
                continue
            if synced is None:
                return  # the spool is closed
            if synced:
                self._durable_moved()

    def _launch(self) -> None:
        """Send chunks while the window has room: retries first, then new data."""
        if self._stop_now:
            return
        # After a failure one chunk probes (a sink that took chunks while another
        # failed would get the whole window again on each retry); a delivery
        # opens the window again.
        window = 1 if self._probing else self.config.max_in_flight
        for chunk in self.pending:
            if chunk.task is None and not self._start(chunk):
                return  # no sink allowed: keep order, launch nothing after it
        while len(self.pending) < window:
            new = self._next_chunk()
            if new is None:
                return
            self.pending.append(new)
            if not self._start(new):
                return

    def _next_chunk(self) -> Chunk | None:
        size = self.config.batch_events
        if self._spooling:
            return self._spool.next_chunk(size) if self._spool is not None else None
        if not self._outbox:
            return None
        return Chunk(self._outbox.take(size), from_spool=False)

    async def _read_spool_ahead(self) -> None:
        """Read the next spooled batches (in a thread) for the window to send."""
        spool = self._spool
        if spool is None or not spool.wants_read:
            return
        if not self._members.can_deliver():
            return
        await spool.read_ahead(self.config.batch_events * self.config.max_in_flight)

    def _forget_spool_chunks(self) -> None:
        """Drop the chunks taken from the spool (it keeps them) and read it again."""
        for chunk in [c for c in self.pending if c.from_spool]:
            # Sent again from the cursor: a duplicate if it was delivered.
            task = chunk.task
            if task is not None and task.done() and not task.cancelled():
                chunk.maybe_stored |= task.result()[0] > 0  # some sink took it
            self._count_resend(chunk)
            if task is not None:
                task.cancel()
            self.pending.remove(chunk)
        if self._spool is not None:
            self._spool.release_reads()

    def _start(self, chunk: Chunk) -> bool:
        targets = [i for i in self._members.targets(chunk) if i not in chunk.tried]
        if len(targets) < self.config.min_success:
            return False  # it could not be delivered: wait (or spool) instead
        chunk.tried.update(targets)
        self._count_resend(chunk)
        chunk.task = asyncio.create_task(self._members.attempt(chunk, targets))
        return True

    def _count_resend(self, chunk: Chunk) -> None:
        """Sending again what a receiver may already hold: a possible duplicate each."""
        if chunk.maybe_stored:
            self._counts.retried += chunk.events
            chunk.maybe_stored = False

    async def _resolve_head(self) -> None:
        chunk = self.pending[0]
        assert chunk.task is not None
        done = await asyncio.gather(chunk.task, return_exceptions=True)
        if isinstance(done[0], BaseException):
            return  # cancelled by stop()
        took, rejected = done[0]
        need = self.config.min_success
        while took < need:
            # Short: the allowed sinks not tried yet, one by one (failover).
            more = [i for i in self._members.targets(chunk) if i not in chunk.tried]
            if not more:
                more = [
                    i
                    for i, m in enumerate(self.members)
                    if i not in chunk.tried and m.breaker.allows()
                ]
            if not more:
                break
            chunk.tried.add(more[0])
            self._count_resend(chunk)
            got = await self._members.try_one(self.members[more[0]], chunk)
            if got is not None:
                took += 1
                rejected = rejected or got
        if took >= need:
            await self._delivered(chunk, rejected)
            self.pending.popleft()
            return
        # Short of min_success: the sinks that took it will get it again.
        chunk.maybe_stored |= took > 0
        await self._failed(chunk)

    async def _delivered(self, chunk: Chunk, rejected: list[Rejection]) -> None:
        """Count a delivered chunk (its caller removes it once this returned)."""
        # Either write may raise (a full disk): then nothing is counted and the
        # chunk is sent again (from the spool's cursor, a counted duplicate).
        chunk.maybe_stored = True
        if rejected:
            await self._dead_letter(rejected, chunk)
        if chunk.from_spool:
            assert self._spool is not None
            await self._spool.commit(chunk.last_id)
        self._counts.delivered += chunk.events - len(rejected)
        chunk.maybe_stored = False
        self._probing = False
        if not chunk.from_spool:
            self._advance(chunk.last_id)

    async def _failed(self, chunk: Chunk) -> None:
        """No sink took the head chunk: spool it (and what follows), or keep it to resend."""
        self._probing = True
        chunk.task = None
        chunk.tried.clear()
        if chunk.from_spool or self._spool is not None:
            self._count_resend(chunk)  # it will be sent again from the spool
        if chunk.from_spool:
            # It stays in the spool; everything in flight after it is re-read later.
            self._forget_spool_chunks()
            assert self._spool is not None
            self._log_once("forward_waiting", events=self._spool.spool.events)
            return
        if self._spool is None:
            self._log_once("forward_waiting", events=self.buffered)
            return  # resent in order once a breaker allows (the outbox fills meanwhile)
        # Spooling from here: it, then each later chunk as it resolves, then the outbox.
        self._spooling = True
        await self._spool_tail()

    async def _spool_tail(self) -> bool:
        """Spool the chunks from memory at the head of `pending`, then the outbox.

        Chunks still sending are waited for: one delivered is counted, the others
        are spooled, in id order. Each leaves `pending` only once written, so
        after an error (a full disk) the next step calls this again and nothing
        is lost or sent twice uncounted. False: stop() cancelled a send.
        """
        while self.pending and not self.pending[0].from_spool:
            chunk = self.pending[0]
            if chunk.task is not None:
                done = await asyncio.gather(chunk.task, return_exceptions=True)
                if isinstance(done[0], BaseException):
                    return False  # stop() spools what is left
                took, rejected = done[0]
                if took >= self.config.min_success:
                    await self._delivered(chunk, rejected)
                    self.pending.popleft()
                    continue
                chunk.maybe_stored |= took > 0  # a sink that took it gets it again
                chunk.task = None  # its outcome is counted: not again after an error
            self._count_resend(chunk)
            await self.to_spool(chunk.batches)
            self.pending.popleft()
        if self._outbox:  # newer than every chunk left (those came from the spool)
            await self._outbox_to_spool()
        return True

    async def _outbox_to_spool(self) -> None:
        spool = self._spool
        assert spool is not None
        if self.config.spool_policy == "block" and spool.spool.full:
            return  # the outbox keeps them; when it is full the pipeline waits
        batches = list(self._outbox.batches)
        await self.to_spool(batches)
        self._outbox.remove(len(batches))  # written: now they leave

    async def to_spool(self, batches: list[Batch]) -> None:
        """Write `batches` to the spool, counting what its policy dropped."""
        spool = self._spool
        assert spool is not None
        if not batches:
            return
        already, result = await spool.append(batches)
        self._counts.spooled += already + result.appended
        for reason, n in (
            ("spool_full_newest", result.dropped_newest),
            ("spool_full_oldest", result.dropped_oldest),
        ):
            if n:
                self._counts.forward_drop(reason, n)
                self._log_once(reason, events=n, level=logging.WARNING)
        self._advance(batches[-1].last_id)

    async def _dead_letter(self, rejected: list[Rejection], chunk: Chunk) -> None:
        sink = next(
            (self.members[i].sink.name for i in sorted(chunk.tried)), self.members[0].sink.name
        )
        dead = self._dead_letters
        lost = len(rejected)
        if dead is not None:
            lost = await asyncio.to_thread(dead.add, rejected, sink)
            self._counts.dead_lettered += len(rejected) - lost
        if lost:
            self._counts.forward_drop(
                "dead_letter_full" if dead is not None else "rejected_no_dlq", lost
            )
        first = rejected[0]
        self._log_once(
            "forward_rejected",
            level=logging.WARNING,
            events=len(rejected),
            status=first.status,
            reason=first.reason,
            sink=sink,
        )

    async def _idle(self) -> None:
        """Nothing to resolve: wait for data, or for a breaker to allow a trial."""
        waits = [m.breaker.retry_in for m in self.members if m.breaker.state == "open"]
        timeout = min([IDLE_WAKE_S, *(max(0.01, w) for w in waits)])
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)

    def _log_once(
        self, event: str, level: int = logging.ERROR, exc_info: bool = False, **fields: Any
    ) -> None:
        now = time.monotonic()
        if now - self._logged.get(event, 0.0) >= 1.0:
            self._logged[event] = now
            if exc_info:
                logger.exception(event)
            log_event(logger, level, event, group=self.config.name, **fields)
