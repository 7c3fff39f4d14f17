"""A forward sink group: primaries, backups, breakers, spool and dead letters (SPEC §5).

To the pipeline a group is one sink. `write` hands batches to the group's
outbox (memory, bounded by `buffer_events`) and returns; when the outbox is
full it waits, so a group that cannot keep up pushes back on the pipeline and
the queue policy decides (docs/overload-design.md). One sender task moves
chunks (`batch_events`) from the outbox to the sinks:

- **Targets.** Every primary whose breaker allows a write gets each chunk
  (copies); when fewer than `min_success` primaries are allowed, backups are
  added in order. A chunk is delivered once `min_success` sinks took it; if
  the chosen ones fell short, the remaining allowed sinks are tried one by
  one. Failback is the breaker's half-open trial: the next chunk after the
  open period goes to the primary again.
- **Window.** Up to `max_in_flight` chunks are out at once (acknowledged TCP
  needs the next chunk to release the last line of the one before); chunks
  are resolved strictly in id order, so `durable_id` only ever covers a
  contiguous prefix.
- **Spool.** When a chunk found no sink, it and everything after it (the
  chunks in flight as they resolve, then the outbox) go to the group's disk
  spool, in id order, and the group is *spooling*: new batches follow them
  into the spool until it is empty again, so a destination sees events in
  order. While a sink is allowed the spool is sent from its head and
  committed as chunks are delivered. Without a spool a failed chunk waits in
  memory for a sink (the outbox then fills and the pipeline blocks).
- **Dead letters.** Events a sink refused for good (HTTP 4xx other than 408
  and 429) are written to the dead-letter file, and count as resolved.
- **Durable.** `durable_id`: every id up to it was delivered, dead-lettered,
  dropped by a counted policy, or written to the spool and fsynced. Ack
  clients of the ingest port wait for it like for the file sink.

Delivery is at least once: a chunk whose acks were lost with a connection is
sent again (`retried`, an upper bound on the duplicates a receiver may hold).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logcaster.component import Counters, by_reason
from logcaster.config import ForwardGroupConfig, ForwardSinkConfig
from logcaster.log import log_event
from logcaster.pipeline.batch import Batch
from logcaster.sinks.deadletter import DeadLetters
from logcaster.sinks.forward import ForwardSink, Rejection, open_forward
from logcaster.sinks.resilience import Breaker
from logcaster.sinks.spool import Spool
from logcaster.stats import Stats

logger = logging.getLogger("logcaster.sinks.group")

SPOOL_SYNC_S = 0.2  # the spool's fsync timer with fsync: interval
SPOOL_RETRY_MAX_S = 5.0  # the sender's pause after repeated errors (a full disk)
IDLE_WAKE_S = 1.0  # the sender re-checks breakers and the spool at least this often


@dataclass(eq=False)
class Member:
    """One sink of a group with its breaker and counters."""

    sink: ForwardSink
    breaker: Breaker
    primary: bool
    delivered: int = 0  # events this sink took
    failures: int = 0  # failed attempts


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


class SinkGroup:
    """See the module docstring. The sender task owns the spool (all its calls are serial)."""

    def __init__(
        self,
        config: ForwardGroupConfig,
        stats: Stats,
        directory: Path | None = None,
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.name = f"forward:{config.name}"
        self.option = self.name  # a start-up failure names the group
        self._stats = stats
        self._directory = directory
        self._on_durable = on_durable
        self.members = [self._member(s, True) for s in config.primaries] + [
            self._member(s, False) for s in config.backups
        ]
        self._outbox: deque[Batch] = deque()
        self._outbox_events = 0
        self._wake = asyncio.Event()  # new batches, or a reason to look again
        self._room = asyncio.Event()  # the outbox went below its bound
        self._pending: deque[Chunk] = deque()  # sent or to resend, oldest first
        self.spool: Spool | None = None
        self.dead_letters: DeadLetters | None = None
        self._spooling = False
        self._spool_sent_through = 0  # spooled ids already taken into a chunk
        self._spool_ahead: deque[Batch] = deque()  # read from the spool, not yet in a chunk
        self._through = 0  # every id up to this is resolved (see durable_id)
        self._taken_through = 0  # the highest id handed to write()
        # Every spool call holds this (the spool is not thread-safe; its calls run
        # in threads): the sender's, the fsync timer's and stop()'s.
        self._spool_lock = asyncio.Lock()
        self._syncer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False  # stop() began: write no longer waits for room
        self._stop_now = False  # the sender ends at its next step
        self._probing = False  # since the last failure: one chunk in flight
        self._logged: dict[str, float] = {}
        # counters, for STATS
        self.delivered = 0  # events delivered (min_success sinks took them)
        self.retried = 0  # events sent again after an attempt failed
        self.dead_lettered = 0
        self.spooled = 0  # events written to the spool (all time)
        self.drops: dict[str, int] = {}  # delivered to the group, lost here (by reason)

    def _member(self, cfg: ForwardSinkConfig, primary: bool) -> Member:
        c = self.config
        sink = open_forward(
            cfg.url, name=cfg.name or cfg.url, timeout=cfg.write_timeout, health_url=cfg.health_url
        )
        return Member(sink, Breaker(c.failure_threshold, c.open_s, c.max_open_s), primary)

    # -- the pipeline's side ---------------------------------------------------

    @property
    def durable_id(self) -> int:
        through = self._through
        spool = self.spool
        if spool is not None and spool.unsynced:
            through = min(through, spool.durable_id)
        return through

    @property
    def buffered(self) -> int:
        """Events in memory: the outbox and chunks not yet resolved."""
        return self._outbox_events + sum(c.events for c in self._pending if not c.from_spool)

    endpoint = None

    def counters(self) -> Counters:
        spool = self.spool
        members = self.members
        return {
            "Forwarded": self.delivered,
            # Lost after delivery (a spool or dead-letter bound): not part of Dropped,
            # so Total = Delivered + queued + Dropped + Sampled holds with groups too.
            "ForwardDropped": sum(self.drops.values()),
            **by_reason("ForwardDropped", self.drops),
            "ForwardBuffered": self.buffered,
            "ForwardRetried": self.retried,
            "Spooled": spool.events if spool is not None else 0,
            "SpoolBytes": spool.nbytes if spool is not None else 0,
            "DeadLettered": self.dead_lettered,
            "BreakerOpens": sum(m.breaker.opens for m in members),
            "SinksDown": sum(m.breaker.state != "closed" for m in members),
        }

    def _forward_drop(self, reason: str, n: int) -> None:
        """`n` delivered events lost here (a spool or dead-letter bound)."""
        self.drops[reason] = self.drops.get(reason, 0) + n

    async def start(self) -> None:
        if self._directory is not None:
            c = self.config
            self.spool = await asyncio.to_thread(
                Spool,
                self._directory / "spool",
                max_bytes=c.spool_max_bytes,
                fsync=c.spool_fsync,
                policy=c.spool_policy,
            )
            self.dead_letters = DeadLetters(self._directory, c.dead_letter_max_bytes)
            if not self.spool.empty:
                self._spooling = True  # what an earlier run spooled goes first
                log_event(
                    logger, logging.INFO, "spool_resumed", group=c.name, events=self.spool.events
                )
            self._syncer = asyncio.create_task(self._sync_loop(), name=self.name + ":fsync")
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def write(self, batches: list[Batch]) -> None:
        if self._through >= self._taken_through:
            # Everything written before is resolved: the ids between (gaps left by
            # policies and sampling, earlier runs) are settled too.
            self._advance(batches[0].first_id - 1)
        self._taken_through = batches[-1].last_id
        # Batch by batch, waiting for room first: the outbox holds at most
        # buffer_events plus one batch (the worker hands over the whole queue).
        limit = self.config.buffer_events
        for batch in batches:
            while self._outbox and self._outbox_events + len(batch) > limit:
                if self._closing:
                    break
                self._room.clear()
                await self._room.wait()
            self._outbox.append(batch)
            self._outbox_events += len(batch)
            self._wake.set()

    async def stop(self, deadline: float | None = None) -> None:
        """Deliver what is buffered by `deadline` (monotonic; None: 5 s from now);
        spool (or count) the rest."""
        self._closing = True
        self._room.set()
        if deadline is None:
            deadline = time.monotonic() + 5.0
        task = self._task
        while (self._outbox or self._pending) and time.monotonic() < deadline:
            if task is None or task.done():
                break
            await asyncio.sleep(0.05)
        # The sender stops between steps (never inside a spool call, which runs
        # in a thread and cannot be cancelled); sends still in flight are.
        self._stop_now = True
        self._wake.set()
        for chunk in self._pending:
            if chunk.task is not None:
                chunk.task.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        # Sends the sender started after the first cancel (it was in a spool call).
        tasks = [c.task for c in self._pending if c.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._syncer is not None:
            await asyncio.gather(self._syncer, return_exceptions=True)
        left = [c for c in self._pending if not c.from_spool]
        batches = [b for c in left for b in c.batches] + list(self._outbox)
        self._pending.clear()
        self._outbox.clear()
        self._outbox_events = 0
        try:
            if batches and self.spool is not None:
                batches = await self._spool_at_stop(batches)
            if batches:
                n = sum(map(len, batches))
                self._forward_drop("undelivered", n)
                log_event(
                    logger, logging.ERROR, "forward_undelivered", group=self.config.name, events=n
                )
        finally:
            await self._close_all()

    async def close(self) -> None:
        return None  # stop() closed the members and the spool

    async def _spool_at_stop(self, batches: list[Batch]) -> list[Batch]:
        """Spool what stop() found undelivered; returns what did not reach the spool."""
        assert self.spool is not None
        try:
            await self._to_spool(batches)
            return []
        except Exception as exc:  # a full disk: the caller counts the rest, the shutdown goes on
            log_event(
                logger,
                logging.ERROR,
                "forward_spool_failed",
                group=self.config.name,
                error=_error(exc),
            )
            return _after(batches, self.spool.written_id)[0]

    async def _close_all(self) -> None:
        for member in self.members:
            try:
                await member.sink.close()
            except Exception as exc:
                log_event(
                    logger,
                    logging.WARNING,
                    "forward_close_failed",
                    sink=member.sink.name,
                    error=_error(exc),
                )
        if self.spool is not None:
            async with self._spool_lock:
                try:
                    await asyncio.to_thread(self.spool.close)
                except Exception as exc:
                    log_event(
                        logger,
                        logging.ERROR,
                        "spool_close_failed",
                        group=self.config.name,
                        error=_error(exc),
                    )

    # -- the sender ------------------------------------------------------------

    async def _run(self) -> None:
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
                    error=_error(exc),
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
        head = self._pending[0] if self._pending else None
        if head is not None and head.task is not None:
            await self._resolve_head()
        elif self.spool is not None and not self._spooling and not self._can_deliver():
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
        spool = self.spool
        if self._spooling and spool is not None and spool.empty and not self._pending:
            self._spooling = False
            self._release_spool_reads()
            log_event(logger, logging.INFO, "spool_drained", group=self.config.name)

    async def _sync_loop(self) -> None:
        """The spool's fsync timer (interval policy) and its cursor's persistence."""
        spool = self.spool
        assert spool is not None
        while not self._stop_now:
            await asyncio.sleep(SPOOL_SYNC_S)
            async with self._spool_lock:
                if spool.closed:
                    return
                try:
                    synced = await asyncio.to_thread(spool.maybe_sync)
                except Exception as exc:
                    self._log_once("spool_sync_failed", error=_error(exc))
                    continue
            if synced:
                self._durable_moved()

    def _targets(self, chunk: Chunk) -> list[int]:
        """Allowed members for a new attempt: primaries, then backups up to min_success."""
        need = self.config.min_success
        allowed = [i for i, m in enumerate(self.members) if m.breaker.allows()]
        chosen = [i for i in allowed if self.members[i].primary]
        for i in allowed:
            if len(chosen) >= need:
                break
            if not self.members[i].primary:
                chosen.append(i)
        return chosen

    def _launch(self) -> None:
        """Send chunks while the window has room: retries first, then new data."""
        if self._stop_now:
            return
        # After a failure one chunk probes (a sink that took chunks while another
        # failed would get the whole window again on each retry); a delivery
        # opens the window again.
        window = 1 if self._probing else self.config.max_in_flight
        for chunk in self._pending:
            if chunk.task is None and not self._start(chunk):
                return  # no sink allowed: keep order, launch nothing after it
        while len(self._pending) < window:
            new = self._next_chunk()
            if new is None:
                return
            self._pending.append(new)
            if not self._start(new):
                return

    def _next_chunk(self) -> Chunk | None:
        size = self.config.batch_events
        if self._spooling:
            return self._next_spool_chunk(size)
        if not self._outbox:
            return None
        batches = _take(self._outbox, size)
        n = sum(map(len, batches))
        self._outbox_events -= n
        if self._outbox_events <= self.config.buffer_events:
            self._room.set()
        return Chunk(batches, from_spool=False)

    async def _read_spool_ahead(self) -> None:
        """Read the next spooled batches (in a thread) for the window to send."""
        spool = self.spool
        if spool is None or spool.empty or self._spool_ahead:
            return
        if not self._can_deliver():
            return
        size = self.config.batch_events * self.config.max_in_flight
        after = self._spool_sent_through
        async with self._spool_lock:
            read = await asyncio.to_thread(spool.read, size + (after and size))
        for batch in read:
            if batch.last_id <= after:
                continue
            if batch.first_id <= after:
                cut = after - batch.first_id + 1
                batch = Batch(after + 1, batch.received_at, batch.source, batch.texts[cut:])
            self._spool_ahead.append(batch)

    def _forget_spool_chunks(self) -> None:
        """Drop the chunks taken from the spool (it keeps them) and read it again."""
        for chunk in [c for c in self._pending if c.from_spool]:
            # Sent again from the cursor: a duplicate if it was delivered.
            task = chunk.task
            if task is not None and task.done() and not task.cancelled():
                chunk.maybe_stored |= task.result()[0] > 0  # some sink took it
            self._count_resend(chunk)
            if task is not None:
                task.cancel()
            self._pending.remove(chunk)
        self._release_spool_reads()

    def _release_spool_reads(self) -> None:
        """Forget what was taken from the spool: it is read again from its cursor."""
        self._spool_sent_through = 0
        self._spool_ahead.clear()
        if self.spool is not None:
            self.spool.held_through = -1

    def _next_spool_chunk(self, size: int) -> Chunk | None:
        if not self._spool_ahead:
            return None
        batches = _take(self._spool_ahead, size)
        self._spool_sent_through = batches[-1].last_id
        if self.spool is not None:
            self.spool.held_through = self._spool_sent_through  # drop_oldest spares them
        return Chunk(batches, from_spool=True)

    def _can_deliver(self) -> bool:
        """Are enough sinks allowed to reach min_success (closed or due a trial)?"""
        allowed = sum(m.breaker.allows() for m in self.members)
        return allowed >= self.config.min_success

    def _start(self, chunk: Chunk) -> bool:
        targets = [i for i in self._targets(chunk) if i not in chunk.tried]
        if len(targets) < self.config.min_success:
            return False  # it could not be delivered: wait (or spool) instead
        chunk.tried.update(targets)
        self._count_resend(chunk)
        chunk.task = asyncio.create_task(self._attempt(chunk, targets))
        return True

    async def _attempt(self, chunk: Chunk, targets: list[int]) -> tuple[int, list[Rejection]]:
        results = await asyncio.gather(*(self._try(self.members[i], chunk) for i in targets))
        took = [r for r in results if r is not None]
        return len(took), (took[0] if took else [])

    async def _try(self, member: Member, chunk: Chunk) -> list[Rejection] | None:
        """One sink, one attempt; the breaker learns the outcome."""
        try:
            if member.breaker.state == "half_open":
                await member.sink.check()
            rejected = await member.sink.deliver(chunk.batches)
        except Exception as exc:  # SendError, or anything else a sink raised: a failure
            chunk.maybe_stored |= getattr(exc, "maybe_stored", True)
            member.failures += 1
            self._stats.sink_errors += 1
            if member.breaker.failure():
                log_event(
                    logger,
                    logging.ERROR,
                    "forward_sink_down",
                    group=self.config.name,
                    sink=member.sink.name,
                    error=str(exc),
                    retry_in_s=round(member.breaker.retry_in, 2),
                )
            return None
        if member.breaker.success():
            log_event(
                logger,
                logging.WARNING,
                "forward_sink_recovered",
                group=self.config.name,
                sink=member.sink.name,
            )
        member.delivered += chunk.events - len(rejected)
        return rejected

    def _count_resend(self, chunk: Chunk) -> None:
        """Sending again what a receiver may already hold: a possible duplicate each."""
        if chunk.maybe_stored:
            self.retried += chunk.events
            chunk.maybe_stored = False

    async def _resolve_head(self) -> None:
        chunk = self._pending[0]
        assert chunk.task is not None
        done = await asyncio.gather(chunk.task, return_exceptions=True)
        if isinstance(done[0], BaseException):
            return  # cancelled by stop()
        took, rejected = done[0]
        need = self.config.min_success
        while took < need:
            # Short: the allowed sinks not tried yet, one by one (failover).
            more = [i for i in self._targets(chunk) if i not in chunk.tried]
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
            got = await self._try(self.members[more[0]], chunk)
            if got is not None:
                took += 1
                rejected = rejected or got
        if took >= need:
            await self._delivered(chunk, rejected)
            self._pending.popleft()
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
            assert self.spool is not None
            async with self._spool_lock:
                await asyncio.to_thread(self.spool.commit, chunk.last_id)
        self.delivered += chunk.events - len(rejected)
        chunk.maybe_stored = False
        self._probing = False
        if not chunk.from_spool:
            self._advance(chunk.last_id)

    async def _failed(self, chunk: Chunk) -> None:
        """No sink took the head chunk: spool it (and what follows), or keep it to resend."""
        self._probing = True
        chunk.task = None
        chunk.tried.clear()
        if chunk.from_spool or self.spool is not None:
            self._count_resend(chunk)  # it will be sent again from the spool
        if chunk.from_spool:
            # It stays in the spool; everything in flight after it is re-read later.
            self._forget_spool_chunks()
            assert self.spool is not None
            self._log_once("forward_waiting", events=self.spool.events)
            return
        if self.spool is None:
            self._log_once("forward_waiting", events=self.buffered)
            return  # resent in order once a breaker allows (the outbox fills meanwhile)
        # Spooling from here: it, then each later chunk as it resolves, then the outbox.
        self._spooling = True
        await self._spool_tail()

    async def _spool_tail(self) -> bool:
        """Spool the chunks from memory at the head of `_pending`, then the outbox.

        Chunks still sending are waited for: one delivered is counted, the others
        are spooled, in id order. Each leaves `_pending` only once written, so
        after an error (a full disk) the next step calls this again and nothing
        is lost or sent twice uncounted. False: stop() cancelled a send.
        """
        while self._pending and not self._pending[0].from_spool:
            chunk = self._pending[0]
            if chunk.task is not None:
                done = await asyncio.gather(chunk.task, return_exceptions=True)
                if isinstance(done[0], BaseException):
                    return False  # stop() spools what is left
                took, rejected = done[0]
                if took >= self.config.min_success:
                    await self._delivered(chunk, rejected)
                    self._pending.popleft()
                    continue
                chunk.maybe_stored |= took > 0  # a sink that took it gets it again
                chunk.task = None  # its outcome is counted: not again after an error
            self._count_resend(chunk)
            await self._to_spool(chunk.batches)
            self._pending.popleft()
        if self._outbox:  # newer than every chunk left (those came from the spool)
            await self._outbox_to_spool()
        return True

    async def _outbox_to_spool(self) -> None:
        spool = self.spool
        assert spool is not None
        if self.config.spool_policy == "block" and spool.full:
            return  # the outbox keeps them; when it is full the pipeline waits
        batches = list(self._outbox)
        await self._to_spool(batches)
        for _ in batches:  # written: now they leave (write() may have added more)
            self._outbox_events -= len(self._outbox.popleft())
        self._room.set()

    async def _to_spool(self, batches: list[Batch]) -> None:
        spool = self.spool
        assert spool is not None
        if not batches:
            return
        async with self._spool_lock:
            # After an append that raised, part of it may be on disk: not again.
            todo, already = _after(batches, spool.written_id)
            result = await asyncio.to_thread(spool.append, todo)
        self.spooled += already + result.appended
        if result.dropped_oldest:
            self._spool_ahead.clear()  # read again: some of it may be gone
        for reason, n in (
            ("spool_full_newest", result.dropped_newest),
            ("spool_full_oldest", result.dropped_oldest),
        ):
            if n:
                self._forward_drop(reason, n)
                self._log_once(reason, events=n, level=logging.WARNING)
        self._advance(batches[-1].last_id)

    async def _dead_letter(self, rejected: list[Rejection], chunk: Chunk) -> None:
        sink = next(
            (self.members[i].sink.name for i in sorted(chunk.tried)), self.members[0].sink.name
        )
        dead = self.dead_letters
        lost = len(rejected)
        if dead is not None:
            lost = await asyncio.to_thread(dead.add, rejected, sink)
            self.dead_lettered += len(rejected) - lost
        if lost:
            self._forward_drop("dead_letter_full" if dead is not None else "rejected_no_dlq", lost)
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
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _advance(self, through: int) -> None:
        if through > self._through:
            self._through = through
            self._durable_moved()

    def _durable_moved(self) -> None:
        if self._on_durable is not None:
            self._on_durable()

    def _log_once(
        self, event: str, level: int = logging.ERROR, exc_info: bool = False, **fields: Any
    ) -> None:
        now = time.monotonic()
        if now - self._logged.get(event, 0.0) >= 1.0:
            self._logged[event] = now
            if exc_info:
                logger.exception(event)
            log_event(logger, level, event, group=self.config.name, **fields)


def _take(source: deque[Batch], size: int) -> list[Batch]:
    """Batches from the head of `source` holding `size` events at most (one is cut if needed)."""
    batches: list[Batch] = []
    n = 0
    while source and n < size:
        batch = source.popleft()
        room = size - n
        if len(batch) > room:
            head, rest = _cut(batch, room)
            source.appendleft(rest)
            batch = head
        batches.append(batch)
        n += len(batch)
    return batches


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _after(batches: list[Batch], written: int) -> tuple[list[Batch], int]:
    """The part of `batches` with ids above `written`, and how many events are not."""
    if not batches or batches[0].first_id > written:
        return batches, 0
    todo: list[Batch] = []
    skipped = 0
    for batch in batches:
        if batch.last_id <= written:
            skipped += len(batch)
        elif batch.first_id <= written:
            head, rest = _cut(batch, written - batch.first_id + 1)
            skipped += len(head)
            todo.append(rest)
        else:
            todo.append(batch)
    return todo, skipped


def _cut(batch: Batch, k: int) -> tuple[Batch, Batch]:
    """The first `k` events of `batch` and the rest, as batches with their ids."""
    head = Batch(batch.first_id, batch.received_at, batch.source, batch.texts[:k])
    rest = Batch(batch.first_id + k, batch.received_at, batch.source, batch.texts[k:])
    events = batch.cached_events
    if events is not None:
        head.set_events(events[:k])
        rest.set_events(events[k:])
    return head, rest
