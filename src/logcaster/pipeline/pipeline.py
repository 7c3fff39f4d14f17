"""The pipeline: sources submit event texts, one worker delivers them to the sinks.

Owns the event id counter (ids are allocated in submit order, so they increase
monotonically across all sources), the bounded queue, and the durable
watermark: the highest id that every sink holds durably. Sinks take batches in
id order, so every id up to the watermark is durable; acknowledged-delivery
connections subscribe to it (`on_durable`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from logcaster.log import log_event
from logcaster.metrics.latency import DurableLatency
from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.admission import Admission
from logcaster.pipeline.batch import (
    EVENT_OVERHEAD,
    Batch,
    StreamMark,
    Texts,
    text_list,
    texts_size,
)
from logcaster.pipeline.broker import Broker
from logcaster.pipeline.queue import BatchQueue
from logcaster.pipeline.tail_sampler import TailSampler
from logcaster.pipeline.turns import IntakeBudget
from logcaster.sinks.base import Sink
from logcaster.stats import Stats, listener_of

logger = logging.getLogger("logcaster.pipeline")

RETRY_FIRST_S = 0.1  # backoff of a failing sink: doubling, with jitter, up to RETRY_MAX_S
RETRY_MAX_S = 5.0

SINK_UP = Metric(
    "sink_up", "gauge", "1 while a local sink takes writes, 0 while its writes fail", ("sink",)
)


class Rewriter(Protocol):
    """Rewrites event texts before they get ids, in batches: redaction, field
    encryption (security/). Nothing downstream (sinks, live tail, forward
    groups) ever sees the texts as they came."""

    def rewrite(self, texts: list[bytes]) -> list[bytes]:
        """The texts to keep, one for one (a new list, or `texts` unchanged)."""
        ...

    def readings(self, out: Readings) -> None: ...


class Offered(NamedTuple):
    pause: bool  # the queue is full: pause reading (block, sample)
    refused: bool = False  # the reject policy refused the texts (no ids, not stored)
    kept: int = 0  # texts that got ids (the others were dropped or sampled by the policy)


class Pipeline:
    def __init__(self, queue: BatchQueue, sinks: Sequence[Sink], stats: Stats) -> None:
        self.queue = queue
        self._sinks = list(sinks)
        self._stats = stats
        self._next_id = 1
        self._task: asyncio.Task[None] | None = None
        self.durable_id = 0
        self._durable_listeners: set[Callable[[int], None]] = set()
        self.admission: Admission | None = None  # the queue policy (None: block)
        self.tail_sampler: TailSampler | None = None  # tail-aware sampling (None: off)
        self.broker: Broker | None = None  # the live fan-out, given what every sink took
        self.rewriters: list[Rewriter] = []  # run in order on admitted texts (security/)
        self._delivered_through = 0  # the last id handed to the sinks
        self._sampled_through = 0  # the last id the tail sampler released or cut
        # Sources process at most this many bytes per event-loop turn (turns.py).
        self.intake = IntakeBudget()
        # wait_durable's futures by the id they wait for (a heap); the counter breaks ties.
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = itertools.count()
        self.latency = DurableLatency()  # receive-to-durable times (metrics/latency.py)
        self.on_durable(self.latency.durable)
        self.failing: set[str] = set()  # local sinks whose last write failed

    def submit(self, texts: list[bytes], source: str) -> bool:
        """Enqueue event texts from one source; True when the caller should pause reading.

        The queue policy decides first (admission.py): what it leaves out gets no id.
        """
        return self.offer(texts, source).pause

    def offer(self, texts: Texts, source: str, stream: StreamMark | None = None) -> Offered:
        """`submit`, also saying whether the `reject` policy refused the texts.

        Counted per call, by listener (stats.py): received, bytes, accepted.
        `stream`: where the texts start in a client's named stream; kept only when
        every text is (a policy that left some out would shift the lines after).
        """
        listener = listener_of(source)
        n = len(texts)
        admission = self.admission
        if admission is None:
            batch = self._batch(self._rewrite(texts), source, stream)
            nbytes = batch.nbytes - EVENT_OVERHEAD * n
            if self.rewriters:
                nbytes = texts_size(texts)  # received: the texts as they came
            self._stats.offered(listener, n, nbytes, n)
            return Offered(self.queue.put(batch), kept=n)
        if admission.policy != "block":
            # The other policies may keep some of them; decoded here, so that an
            # admission that keeps them all returns this very list (`kept is texts`).
            texts = text_list(texts)
        kept, pause = admission.admit(texts, listener)
        if not kept:
            self._stats.offered(listener, n, texts_size(texts), 0)
            return Offered(False, refused=bool(texts) and admission.rejects)
        batch = self._batch(self._rewrite(kept), source, stream if kept is texts else None)
        # The batch summed its texts' sizes already; a policy that cut some, or a
        # rewriter, has to sum them again.
        k = len(kept)
        if kept is texts and not self.rewriters:
            nbytes = batch.nbytes - EVENT_OVERHEAD * k
        else:
            nbytes = texts_size(texts)
        self._stats.offered(listener, n, nbytes, k)
        full = self.queue.put(batch)
        if admission.policy == "block":
            admission.watch()  # the other policies weighed the read's demand already
        return Offered(full and pause, kept=k)

    def _rewrite(self, texts: Texts) -> Texts:
        if not self.rewriters:
            return texts
        listed = text_list(texts)
        for rewriter in self.rewriters:
            listed = rewriter.rewrite(listed)
        return listed

    def discard(self, texts: list[bytes], source: str, reason: str) -> None:
        """A source has `texts` it cannot offer (UDP past its bound): they count as
        received like every other, and as dropped by `reason`."""
        listener = listener_of(source)
        n = len(texts)
        self._stats.offered(listener, n, sum(map(len, texts)), 0)
        if self.admission is not None:
            self.admission.drop(listener, reason, n)
        else:
            self._stats.drop(listener, reason, n)

    def readings(self, out: Readings) -> None:
        """The queue's, tail sampling's, the local sinks' and the live fan-out's
        metrics, and the processing-time histogram."""
        self.queue.readings(out)
        if self.tail_sampler is not None:
            self.tail_sampler.readings(out)
        for sink in self._sinks:
            if not sink.name.startswith("forward:"):  # a group reports its own sinks
                out.add(SINK_UP, int(sink.name not in self.failing), sink.name)
        self.latency.readings(out)
        for rewriter in self.rewriters:
            rewriter.readings(out)
        if self.broker is not None:
            self.broker.readings(out)

    def _batch(self, texts: Texts, source: str, stream: StreamMark | None) -> Batch:
        # Whole microseconds, as the file sink's block header stores them: a replayed
        # batch gets back exactly this float.
        batch = Batch(self._next_id, time.time_ns() // 1000 / 1e6, source, texts, stream)
        self._next_id += len(texts)
        return batch

    @property
    def last_id(self) -> int:
        """The last id allocated (0 before the first event)."""
        return self._next_id - 1

    def on_durable(self, listener: Callable[[int], None]) -> None:
        """Call `listener(durable_id)` on the event loop each time the watermark moves."""
        self._durable_listeners.add(listener)

    def remove_durable_listener(self, listener: Callable[[int], None]) -> None:
        self._durable_listeners.discard(listener)

    def wait_durable(self, last_id: int) -> asyncio.Future[None]:
        """A future done once every id up to `last_id` is durable (HTTP `?ack=1`).

        One watermark listener serves every waiter, oldest first; a caller that
        stops waiting cancels its future and it is dropped at the next move.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if last_id <= self.durable_id:
            future.set_result(None)
            return future
        if not self._waiters:
            self.on_durable(self._wake_waiters)
        heapq.heappush(self._waiters, (last_id, next(self._waiter_seq), future))
        return future

    def _wake_waiters(self, durable_id: int) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= durable_id:
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)
        if not waiters:
            self.remove_durable_listener(self._wake_waiters)

    def refresh_durable(self) -> None:
        """Move the watermark to what every sink now holds durably; notify listeners."""
        durable = min(sink.durable_id for sink in self._sinks) if self._sinks else self.last_id
        if durable >= self._delivered_through:
            # Ids tail sampling cut after the last delivered one are settled too:
            # their lines are acked, not waited for.
            durable = max(durable, self._sampled_through)
        if durable <= self.durable_id:
            return
        self.durable_id = durable
        for listener in list(self._durable_listeners):
            listener(durable)

    def continue_after(self, last_id: int) -> None:
        """Allocate ids after `last_id`, the highest on disk: ids stay unique across restarts."""
        self._next_id = max(self._next_id, last_id + 1)
        self.durable_id = max(self.durable_id, last_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pipeline")

    async def _run(self) -> None:
        queue = self.queue
        sampler = self.tail_sampler
        while True:
            if sampler is None:
                batches = await queue.get_all()
                if not batches:
                    return
                await self._deliver_all(batches)
                queue.done(batches)
                self.refresh_durable()
                continue
            # Tail sampling holds batches for its window: wake up when one is due.
            due = sampler.next_release()
            wait = None if due is None else max(0.0, due - time.monotonic())
            try:
                taken = await asyncio.wait_for(queue.get_all(), wait)
            except TimeoutError:
                taken = None
            if taken:
                sampler.accept(taken)
                queue.done(taken)  # held by the sampler now, within its own bound
            if self.admission is not None:
                sampler.pressure(self.admission.fill(), self.admission.high_watermark)
            closed = taken == []
            released = sampler.release(everything=closed)
            if released:
                await self._deliver_all(released)
            self._sampled_through = sampler.released_through
            self.refresh_durable()
            if closed:
                return

    async def _deliver_all(self, batches: list[Batch]) -> None:
        for sink in self._sinks:
            await self._deliver(sink, batches)
        events = sum(map(len, batches))
        self._stats.delivered += events
        self._delivered_through = batches[-1].last_id
        self.latency.delivered(batches)
        broker = self.broker
        if broker is not None and broker.subscribers:
            broker.publish(batches, events)  # after the memory ring took them: broker.py

    async def _deliver(self, sink: Sink, batches: list[Batch]) -> None:
        """Write to one sink, retrying with backoff until it takes the batches.

        Meanwhile the queue fills and the `block` policy pauses the sources: a
        full disk stops intake instead of losing events. The one place retries
        live (sinks stay simple); spooling and dead letters come with issue 6.
        """
        delay = RETRY_FIRST_S
        failures = 0
        while True:
            try:
                await sink.write(batches)
            except Exception as exc:
                failures += 1
                self._stats.sink_error(sink.name)
                self.failing.add(sink.name)
                if failures == 1 or failures % 10 == 0:
                    log_event(
                        logger,
                        logging.ERROR,
                        "sink_write_failed",
                        sink=sink.name,
                        error=str(exc),
                        attempt=failures,
                        retry_in_s=round(delay, 2),
                    )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if failures:
                self.failing.discard(sink.name)
                log_event(logger, logging.WARNING, "sink_recovered", sink=sink.name, after=failures)
            return

    async def drain(self, within_s: float) -> bool:
        """Deliver everything queued, then stop the worker. False if the deadline passed."""
        self.queue.close()
        if self._task is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within_s)
        except TimeoutError:
            log_event(logger, logging.ERROR, "drain_timeout", queued=self.queue.events)
            self._task.cancel()
            return False
        return True
