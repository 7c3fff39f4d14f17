"""The live fan-out: delivered batches, handed to every subscriber at once.

The pipeline's worker hands the broker each list of batches it delivered to
the sinks (`publish`); subscribers (the HTTP live tail today, the IRC
channels and the dashboard later) each get an async stream of items: events
that pass their filter, and notices (`Skipped`, `Live`, `Reset`, `Ended`).

**Who pays for what.** Publishing costs the worker O(1) per subscriber per
delivered list: it appends a reference to the list to each subscriber's queue,
nothing is copied, parsed or filtered (with no subscriber, one attribute test
in the worker). Parsing and filtering happen when a subscriber reads
(`Subscription.get`), on the shared `Batch`: `Batch.events()` caches, so many
subscribers share one parse, and text tests run on the raw text first
(`EventFilter`, query/live.py). All subscribers' reading together uses what
the rest of the server leaves of the loop, and at least a share of it
(pipeline/share.py), so many busy tails cannot starve ingest, which runs on
the same loop.

**A slow subscriber never slows ingest.** Each subscriber's queue is bounded
in events (`http.tail_queue_events`; a list is taken whole while the queue is
empty, so it overshoots by at most one delivered list). When it is full, what
does not fit is skipped for that subscriber alone and counted, and it reads a
`Skipped` notice (count, first and last id, reason `slow`) in its place,
before its next events. The count is of events before filtering: the broker
does not parse what a subscriber will never read. So for a subscriber without
filter, events read + `Skipped` counts == events published while subscribed.

**Replay with no gap and no duplicate.** `subscribe(since=ID)` takes the memory
ring's snapshot and registers the subscriber in one synchronous step, and the
worker publishes a list only after every sink (the memory ring too) took it: a
list is either in the snapshot or published later. Ids only grow, so the
subscription drops anything at or below the last id it covered (a list the
memory ring took but the worker had not published yet). Ids older than the
ring holds are reported as one `Skipped` notice (reason `not_in_memory`; a
count of ids, which `drop_oldest` and tail sampling may have left unused);
an id above any delivered one (a server restarted without `-P` numbers from 1
again) gets `Reset`, then everything the ring holds. (A restarted server that
has already numbered past the reader's id cannot be told apart: with `-P` ids
continue across restarts, so only a memory-only server has this blind spot.)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from logcaster.event import Event
from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.share import LoopShare
from logcaster.pipeline.tail_items import Ended, Item, Live, Reset, Skipped
from logcaster.pipeline.tail_rate import RateCap

# Events a subscriber scans per step, between checks of the loop share.
STEP_EVENTS = 1024
# A batch up to this size is parsed whole on first read (cached for everyone: a
# TCP read's batch, ~40 ms at most); a larger one (an HTTP bulk request) a step
# at a time, per reader, so no step blocks the loop for long.
PARSE_WHOLE_MAX = 4096

TAIL_SUBSCRIBERS = Metric(
    "tail_subscribers", "gauge", "Live subscribers (SSE live tails)", stats="TailSubscribers"
)
TAIL_SKIPPED = Metric(
    "tail_skipped_events",
    "counter",
    "Events skipped for live subscribers whose queue was full, summed over subscribers",
    stats="TailSkipped",
)


class EventFilter(Protocol):
    """What a subscriber wants; query/live.py builds one from a query."""

    def select(self, batch: Batch, start: int, stop: int) -> list[Event]:
        """The events of `batch.texts[start:stop]` that pass, in id order."""
        ...


class AllEvents:
    """The filter that passes every event."""

    selects_all = True  # a rate cap may skip its steps unparsed (tail_rate.py)

    def select(self, batch: Batch, start: int, stop: int) -> list[Event]:
        return batch.events_between(start, stop, PARSE_WHOLE_MAX)


class History(Protocol):
    """The newest delivered events (the memory ring, sinks/memory.py)."""

    @property
    def durable_id(self) -> int:
        """The last id delivered to it."""
        ...

    @property
    def hidden_through(self) -> int:
        """Ids up to this one are hidden (CLEAR): not replayed."""
        ...

    def snapshot(self) -> tuple[list[Batch], int]:
        """The batches held, oldest first, and how many events of the first are gone."""
        ...


class TooManySubscribers(Exception):
    """`subscribe` past the broker's bound."""


class _SkipRun:
    """Consecutive lists skipped for a slow subscriber; one `Skipped` notice."""

    __slots__ = ("count", "first_id", "last_id")

    def __init__(self, count: int, first_id: int, last_id: int) -> None:
        self.count = count
        self.first_id = first_id
        self.last_id = last_id


class _Delivery:
    """A delivered list queued for one subscriber, and its events (the queue's bound);
    for a rate-capped reader of everything, how many of its first events it keeps."""

    __slots__ = ("batches", "events", "keep")

    def __init__(self, batches: list[Batch], events: int, keep: int | None) -> None:
        self.batches = batches
        self.events = events
        self.keep = keep


@dataclass(frozen=True, slots=True)
class _Replay:
    """The memory snapshot's batches, read after the subscription's `since`."""

    batches: list[Batch]


@dataclass(frozen=True, slots=True)
class _Backlog:
    """Replay the newest `n` passing events of a memory snapshot."""

    batches: list[Batch]
    after_id: int
    n: int


_Unit = _Delivery | _SkipRun | _Replay | _Backlog | Skipped | Live | Reset


class Broker:
    """Subscriptions to delivered events; bounded in subscribers and per-subscriber queue."""

    def __init__(self, history: History, max_subscribers: int, queue_events: int) -> None:
        self.history = history
        self.max_subscribers = max_subscribers
        self.queue_events = queue_events
        self.subscribers: set[Subscription] = set()
        self.skipped = 0  # events skipped for slow subscribers, all of them together
        self.share = LoopShare()  # of the event loop, for all subscribers together
        # One bucket per max_rate of capped readers of everything, spent once per
        # delivered list: readers with the same cap keep the same first events of
        # each list, so they share one parse of them (Batch.events_between).
        self._rate_caps: dict[int, RateCap] = {}

    def publish(self, batches: list[Batch], events: int) -> None:
        """The worker delivered `batches` (`events` events) to every sink. Never waits."""
        granted: dict[int, int] = {}
        for sub in self.subscribers:
            rate = sub.shared_rate
            if rate:
                keep = granted.get(rate)
                if keep is None:
                    keep = granted[rate] = self._rate_caps[rate].take(events)
                sub.offer(batches, events, keep)
            else:
                sub.offer(batches, events)

    def subscribe(
        self,
        what: EventFilter | None = None,
        *,
        since: int | None = None,
        backlog: int = 0,
        max_rate: int = 0,
    ) -> Subscription:
        """A new subscription: with `since`, the events after that id still in
        memory first; else with `backlog`, the newest `backlog` passing events in
        memory; then live ones; with `max_rate`, at most that many events a
        second (tail_rate.py). TooManySubscribers past the bound."""
        if len(self.subscribers) >= self.max_subscribers:
            raise TooManySubscribers(
                f"{len(self.subscribers)} subscribers, the most allowed (http.tail_max_subscribers)"
            )
        history = self.history
        batches, skip = history.snapshot()
        last = history.durable_id
        units: deque[_Unit] = deque()
        after = last
        if since is not None:
            oldest = batches[0].first_id + skip if batches else last + 1
            oldest = max(oldest, history.hidden_through + 1)
            if since > last:
                # Numbering restarted: all the ring holds is new to this reader.
                units.append(Reset(since, last))
                since = oldest - 1
            after = since
            if oldest > since + 1:
                gone = Skipped(oldest - since - 1, since + 1, oldest - 1, "not_in_memory")
                units.append(gone)
                after = oldest - 1
            units.append(_Replay(batches))
        elif backlog > 0 and batches:
            start = max(batches[0].first_id + skip - 1, history.hidden_through)
            units.append(_Backlog(batches, start, backlog))
            after = start
        units.append(Live(last))
        sub = Subscription(self, what or AllEvents(), units, after, last)
        if max_rate:
            sub.cap = RateCap(max_rate)  # its own, for what `since` or `backlog` replay
            if sub.shared_rate and max_rate not in self._rate_caps:
                self._rate_caps[max_rate] = RateCap(max_rate)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription, reason: str = "unsubscribed") -> None:
        self.subscribers.discard(sub)
        sub.close(reason)
        rate = sub.shared_rate
        if rate and not any(other.shared_rate == rate for other in self.subscribers):
            self._rate_caps.pop(rate, None)

    def close_all(self, reason: str) -> None:
        for sub in list(self.subscribers):
            self.unsubscribe(sub, reason)

    def spend(self, seconds: float) -> None:
        """A subscriber's own work on its items (rendering, writing), against the share."""
        self.share.spend(seconds)

    def readings(self, out: Readings) -> None:
        out.add(TAIL_SUBSCRIBERS, len(self.subscribers))
        out.add(TAIL_SKIPPED, self.skipped)


class Subscription:
    """One subscriber's bounded queue and its reading position.

    The queue holds references to delivered lists and skip runs; `get` turns
    them into items, `STEP_EVENTS` at a time within the broker's loop share.
    """

    def __init__(
        self, broker: Broker, what: EventFilter, units: deque[_Unit], after: int, floor: int
    ) -> None:
        self._broker = broker
        self._filter = what
        self._units = units  # replay and notices first, then what `offer` queues
        self._after = after  # the last id read or skipped: anything up to it is dropped
        self._floor = floor  # lists up to this id came with the replay snapshot
        self._limit = broker.queue_events
        self.queued = 0  # events in queued lists (the bound), replay aside
        self.skipped = 0  # events skipped because the queue was full
        self._steps: Iterator[list[Item]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._poked = False
        self.ended: str | None = None
        self.cap: RateCap | None = None  # max_rate (tail_rate.py); None: every event
        self._all = bool(getattr(what, "selects_all", False))

    @property
    def shared_rate(self) -> int:
        """The max_rate of a capped reader of everything (whose live lists the
        broker's shared bucket cuts), else 0."""
        return self.cap.rate if self.cap is not None and self._all else 0

    @property
    def position(self) -> int:
        """The last id read (passed on or left out by the filter) or skipped."""
        return self._after

    def offer(self, batches: list[Batch], events: int, keep: int | None = None) -> None:
        """Queue a delivered list, or skip what does not fit (the worker calls this);
        `keep`: how many of its first events a capped reader of everything keeps."""
        if self.ended is not None or not batches or batches[-1].last_id <= self._floor:
            return
        if self.queued == 0 or self.queued + events <= self._limit:
            self._units.append(_Delivery(batches, events, keep))
            self.queued += events
        elif self.queued >= self._limit:
            self._skip(batches[0].first_id, batches[-1].last_id, events)
        else:
            # Near full: take the batches that fit, skip the rest.
            room = self._limit - self.queued
            fit = 0
            taken = 0
            while fit < len(batches) and taken + len(batches[fit]) <= room:
                taken += len(batches[fit])
                fit += 1
            if fit:
                self._units.append(_Delivery(batches[:fit], taken, keep))
                self.queued += taken
            self._skip(batches[fit].first_id, batches[-1].last_id, events - taken)
        self._wake()

    def _skip(self, first_id: int, last_id: int, events: int) -> None:
        self.skipped += events
        self._broker.skipped += events
        tail = self._units[-1] if self._units else None
        if isinstance(tail, _SkipRun):
            tail.count += events
            tail.last_id = last_id
        else:
            self._units.append(_SkipRun(events, first_id, last_id))

    def close(self, reason: str) -> None:
        """End the subscription: what it holds is dropped, `get` answers `Ended`."""
        if self.ended is None:
            self.ended = reason
            self._units.clear()
            self._steps = None
            self.queued = 0
            self._wake()

    def poke(self) -> None:
        """Make a waiting `get` return [] (its owner has something else to do)."""
        self._poked = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, within_s: float | None = None) -> list[Item]:
        """The next items, oldest first; [] once `within_s` passed without any,
        or after `poke`. After `close`, `[Ended(reason)]`."""
        broker = self._broker
        deadline = None if within_s is None else time.monotonic() + within_s
        while True:
            if self.ended is not None:
                return [Ended(self.ended)]
            if self._steps is None and self._units:
                self._steps = self._unit_steps(self._units.popleft())
            if self._steps is None:
                if self._poked or not await self._wait(deadline):
                    self._poked = False
                    return []
                continue
            await broker.share.wait()
            if self._steps is None:  # closed while waiting for its share
                continue
            started = time.perf_counter()
            try:
                items = next(self._steps)
            except StopIteration:
                self._steps = None
                items = []
            finally:
                broker.spend(time.perf_counter() - started)
            if items:
                return items

    async def _wait(self, deadline: float | None) -> bool:
        """Wait for an offer or the end; False when the deadline passed first."""
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return False
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            if wait is None:
                await waiter  # no timer: the cheap wait, once per delivery
            else:
                await asyncio.wait_for(waiter, wait)
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True

    def _unit_steps(self, unit: _Unit) -> Iterator[list[Item]]:
        """The items of one queued unit, a step (at most STEP_EVENTS scanned) at a time."""
        if isinstance(unit, _Delivery):
            self.queued -= unit.events  # its room is free: the reference moves here
            yield from self._read(unit.batches, unit.keep)
        elif isinstance(unit, _Replay):
            yield from self._read(unit.batches, None)
        elif isinstance(unit, _SkipRun):
            first = max(unit.first_id, self._after + 1)
            self._after = max(self._after, unit.last_id)
            yield [Skipped(unit.count, first, unit.last_id, "slow")]
        elif isinstance(unit, _Backlog):
            yield from self._backlog(unit)
        else:
            if isinstance(unit, Live):
                self._after = max(self._after, unit.after_id)
            yield [unit]

    def _read(self, batches: list[Batch], keep: int | None) -> Iterator[list[Item]]:
        """The passing events of `batches` after the last id covered."""
        cap = self.cap
        if cap is not None and self._all:
            yield from self._read_capped(batches, cap, keep)
            return
        out: list[Item] = []
        scanned = 0
        select = self._filter.select
        for batch in batches:
            first = batch.first_id
            start = max(0, self._after - first + 1)
            while start < len(batch):
                stop = min(len(batch), start + STEP_EVENTS - scanned)
                if cap is None:
                    out.extend(select(batch, start, stop))
                else:
                    passed = select(batch, start, stop)
                    kept = cap.take(len(passed))
                    out.extend(passed[:kept])
                    if kept < len(passed):
                        _rate_skip(out, len(passed) - kept, passed[kept].id, passed[-1].id)
                scanned += stop - start
                self._after = first + stop - 1
                start = stop
                if scanned >= STEP_EVENTS:
                    yield out
                    out, scanned = [], 0
        if out:
            yield out

    def _read_capped(
        self, batches: list[Batch], cap: RateCap, keep: int | None
    ) -> Iterator[list[Item]]:
        """`_read` for a subscriber of every event under a max_rate: the budget
        decides before anything is parsed, for the whole list at once (one step,
        not one per STEP_EVENTS), and only the kept events are parsed. A live
        list comes with `keep`, the first events the broker's shared bucket let
        through; a replay spends the subscriber's own bucket."""
        spans = []  # (batch, first index not read yet, index past the kept ones)
        if keep is None:
            waiting = sum(max(0, len(b) - max(0, self._after - b.first_id + 1)) for b in batches)
            budget = cap.take(waiting)
        for batch in batches:
            start = max(0, self._after - batch.first_id + 1)
            if keep is None:
                kept = start + max(0, min(budget, len(batch) - start))
                budget -= kept - start
            else:
                kept = max(start, min(len(batch), keep))
                keep = max(0, keep - len(batch))
            if start < len(batch):
                spans.append((batch, start, kept))
        out: list[Item] = []
        for batch, start, kept in spans:
            if kept > start:
                out.extend(batch.events_between(start, kept, 0))
            if kept < len(batch):
                _rate_skip(out, len(batch) - kept, batch.first_id + kept, batch.last_id)
            self._after = batch.last_id
        if out:
            yield out

    def _backlog(self, unit: _Backlog) -> Iterator[list[Item]]:
        """Scan newest first until `n` events pass, then hand them over oldest first."""
        found: list[list[Event]] = []
        count = 0
        scanned = 0
        select = self._filter.select
        for batch in reversed(unit.batches):
            low = max(0, unit.after_id - batch.first_id + 1)
            stop = len(batch)
            while stop > low and count < unit.n:
                start = max(low, stop - STEP_EVENTS)
                passed = select(batch, start, stop)
                found.append(passed)
                count += len(passed)
                scanned += stop - start
                stop = start
                if scanned >= STEP_EVENTS:
                    yield []  # a checkpoint for the share: nothing to hand over yet
                    scanned = 0
            if count >= unit.n:
                break
        events = [ev for part in reversed(found) for ev in part]
        yield list(events[-unit.n :])


def _rate_skip(out: list[Item], count: int, first_id: int, last_id: int) -> None:
    """Events past a subscriber's max_rate, told in their place: one notice per run."""
    tail = out[-1] if out else None
    if isinstance(tail, Skipped) and tail.reason == "rate":
        out[-1] = Skipped(tail.count + count, tail.first_id, last_id, "rate")
    else:
        out.append(Skipped(count, first_id, last_id, "rate"))
