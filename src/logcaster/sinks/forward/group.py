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

The group's parts: `sinks/forward/chunks.py` (the outbox and chunks),
`sinks/forward/members.py` (the sinks, their breakers, one attempt),
`sinks/forward/sender.py` (the sender task: window, failover, spool and dead
letters) and `sinks/forward/group_spool.py` (the spool's calls, under one lock). This
module wires them and is the pipeline's side: `write`, `durable_id`, `stop`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from logcaster.log import error_text, log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import ForwardGroupConfig, ForwardSinkConfig
from logcaster.pipeline.batch import Batch
from logcaster.sinks.forward.chunks import Outbox, batches_after
from logcaster.sinks.forward.deadletter import DeadLetters
from logcaster.sinks.forward.group_spool import GroupSpool
from logcaster.sinks.forward.members import Members
from logcaster.sinks.forward.sender import Sender
from logcaster.sinks.forward.spool import Spool
from logcaster.sinks.forward.transports import ForwardSink

logger = logging.getLogger("logcaster.sinks.group")

_GROUP = ("group",)
FORWARDED = Metric(
    "forward_events", "counter", "Events a forward group delivered", _GROUP, stats="Forwarded"
)
FORWARD_DROPPED = Metric(
    "forward_dropped_events",
    "counter",
    # Not part of events_dropped: Total = Delivered + queued + Dropped + Sampled holds.
    "Events a forward group lost after taking them (a spool or dead-letter bound)",
    ("group", "reason"),
    stats="ForwardDropped",
    stats_by=("reason", "ForwardDropped"),
)
BUFFERED = Metric(
    "forward_buffered_events",
    "gauge",
    "Events a forward group holds in memory (outbox and chunks in flight)",
    _GROUP,
    stats="ForwardBuffered",
)
RETRIED = Metric(
    "forward_retried_events",
    "counter",
    "Events a forward group sent again after an attempt failed",
    _GROUP,
    stats="ForwardRetried",
)
SPOOL_EVENTS = Metric(
    "forward_spool_events",
    "gauge",
    "Events in a forward group's disk spool",
    _GROUP,
    stats="Spooled",
)
SPOOL_BYTES = Metric(
    "forward_spool_bytes",
    "gauge",
    "Bytes of a forward group's disk spool",
    _GROUP,
    stats="SpoolBytes",
)
DEAD_LETTERED = Metric(
    "forward_dead_lettered_events",
    "counter",
    "Events a forward sink refused for good, written to the dead-letter file",
    _GROUP,
    stats="DeadLettered",
)


class SinkGroup:
    """See the module docstring."""

    def __init__(
        self,
        config: ForwardGroupConfig,
        directory: Path | None = None,
        on_durable: Callable[[], None] | None = None,
        open_sink: Callable[[ForwardSinkConfig], ForwardSink] | None = None,
    ) -> None:
        self.config = config
        self.name = f"forward:{config.name}"
        self.option = self.name  # a start-up failure names the group
        self.endpoint = None
        self._directory = directory
        self._on_durable = on_durable
        self._members = Members(config, open_sink)
        self.members = self._members.all
        self._outbox = Outbox(config.buffer_events)
        # counters, for STATS (the sender counts)
        self.delivered = 0  # events delivered (min_success sinks took them)
        self.retried = 0  # events sent again after an attempt failed
        self.dead_lettered = 0
        self.spooled = 0  # events written to the spool (all time)
        self.drops: dict[str, int] = {}  # delivered to the group, lost here (by reason)
        self._sender = Sender(
            config, self._members, self._outbox, self, self._advance, self._durable_moved
        )
        self.spool: Spool | None = None
        self._spool: GroupSpool | None = None
        self.dead_letters: DeadLetters | None = None
        self._through = 0  # every id up to this is resolved (see durable_id)
        self._taken_through = 0  # the highest id handed to write()
        self._syncer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the pipeline's side ---------------------------------------------------

    @property
    def last_id(self) -> int:
        """The spool's highest id (from an earlier run too): the spool takes increasing
        ids only, also without persist.dir."""
        return self.spool.last_id if self.spool is not None else 0

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
        return self._sender.buffered

    @property
    def sinks_up(self) -> int:
        """Sinks whose breaker is closed; the group is healthy with `min_success` up."""
        return self._members.up

    def readings(self, out: Readings) -> None:
        name = self.config.name
        spool = self.spool
        out.add(FORWARDED, self.delivered, name)
        out.each(FORWARD_DROPPED, dict(sorted(self.drops.items())), name)
        out.add(BUFFERED, self.buffered, name)
        out.add(RETRIED, self.retried, name)
        out.add(SPOOL_EVENTS, spool.events if spool is not None else 0, name)
        out.add(SPOOL_BYTES, spool.nbytes if spool is not None else 0, name)
        out.add(DEAD_LETTERED, self.dead_lettered, name)
        self._members.readings(out)

    def forward_drop(self, reason: str, n: int) -> None:
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
            self._spool = GroupSpool(self.spool)
            self.dead_letters = DeadLetters(self._directory, c.dead_letter_max_bytes)
            self._sender.use_spool(self._spool, self.dead_letters)
            if not self.spool.empty:  # what an earlier run spooled goes first
                log_event(
                    logger, logging.INFO, "spool_resumed", group=c.name, events=self.spool.events
                )
            self._syncer = asyncio.create_task(self._sender.sync_loop(), name=self.name + ":fsync")
        self._task = asyncio.create_task(self._sender.run(), name=self.name)

    async def write(self, batches: list[Batch]) -> None:
        if self._through >= self._taken_through:
            # Everything written before is resolved: the ids between (gaps left by
            # policies and sampling, earlier runs) are settled too.
            self._advance(batches[0].first_id - 1)
        self._taken_through = batches[-1].last_id
        # Batch by batch, waiting for room first: the outbox holds at most
        # buffer_events plus one batch (the worker hands over the whole queue).
        for batch in batches:
            await self._outbox.put(batch)
            self._sender.wake.set()

    async def stop(self, deadline: float | None = None) -> None:
        """Deliver what is buffered by `deadline` (monotonic; None: 5 s from now, and
        at least 0.1 s even when the drain used the deadline up); spool (or count)
        the rest."""
        self._outbox.close()
        now = time.monotonic()
        deadline = now + 5.0 if deadline is None else max(deadline, now + 0.1)
        task = self._task
        pending = self._sender.pending
        while (self._outbox or pending) and time.monotonic() < deadline:
            if task is None or task.done():
                break
            await asyncio.sleep(0.05)
        # The sender stops between steps (never inside a spool call, which runs
        # in a thread and cannot be cancelled); sends still in flight are.
        self._sender.halt()
        for chunk in pending:
            if chunk.task is not None:
                chunk.task.cancel()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        # Sends the sender started after the first cancel (it was in a spool call).
        tasks = [c.task for c in pending if c.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._syncer is not None:
            await asyncio.gather(self._syncer, return_exceptions=True)
        left = [c for c in pending if not c.from_spool]
        batches = [b for c in left for b in c.batches] + self._outbox.drain()
        pending.clear()
        try:
            if batches and self.spool is not None:
                batches = await self._spool_at_stop(batches)
            if batches:
                n = sum(map(len, batches))
                self.forward_drop("undelivered", n)
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
            await self._sender.to_spool(batches)
            return []
        except Exception as exc:  # a full disk: the caller counts the rest, the shutdown goes on
            log_event(
                logger,
                logging.ERROR,
                "forward_spool_failed",
                group=self.config.name,
                error=error_text(exc),
            )
            return batches_after(batches, self.spool.written_id)[0]

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
                    error=error_text(exc),
                )
        if self._spool is not None:
            try:
                await self._spool.close()
            except Exception as exc:
                log_event(
                    logger,
                    logging.ERROR,
                    "spool_close_failed",
                    group=self.config.name,
                    error=error_text(exc),
                )

    def _advance(self, through: int) -> None:
        if through > self._through:
            self._through = through
            self._durable_moved()

    def _durable_moved(self) -> None:
        if self._on_durable is not None:
            self._on_durable()
