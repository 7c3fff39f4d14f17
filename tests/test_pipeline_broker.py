"""The live fan-out (pipeline/broker.py) over real batches and a real memory ring.

`Feed.deliver` does what the pipeline's worker does with a delivered list:
the memory ring takes it (like every sink), then the broker publishes it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from logcaster.event import Event
from logcaster.options import QueryConfig
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.broker import (
    PARSE_WHOLE_MAX,
    STEP_EVENTS,
    Broker,
    Subscription,
    TooManySubscribers,
)
from logcaster.pipeline.share import LoopShare
from logcaster.pipeline.tail_items import Ended, Item, Live, Reset, Skipped
from logcaster.query.live import LiveFilter, live_filter
from logcaster.query.parser import build_query
from logcaster.sinks.memory import MemorySink

LEVELS = ("INFO", "ERROR", "WARN", "DEBUG")


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


class Feed:
    def __init__(self, capacity: int = 100_000, subscribers: int = 8, queue: int = 1000) -> None:
        self.memory = MemorySink(capacity)
        self.broker = Broker(self.memory, subscribers, queue)
        self.next_id = 1
        self.published = 0

    def batch(self, n: int) -> Batch:
        texts = [
            b"2026-01-01T10:00:00Z %s [svc%d] event number %d" % (LEVELS[i % 4].encode(), i % 3, i)
            for i in range(self.next_id, self.next_id + n)
        ]
        batch = Batch(self.next_id, time.time(), "test", texts)
        self.next_id += n
        return batch

    def take(self, *sizes: int) -> list[Batch]:
        """A delivered list the memory ring took and the broker has not published yet."""
        batches = [self.batch(n) for n in sizes]
        self.memory.append(batches)
        return batches

    def publish(self, batches: list[Batch]) -> None:
        events = sum(map(len, batches))
        self.broker.publish(batches, events)
        self.published += events

    def deliver(self, *sizes: int) -> list[Batch]:
        batches = self.take(*sizes)
        self.publish(batches)
        return batches


async def drain(sub: Subscription) -> list[Item]:
    """Every item available now."""
    items: list[Item] = []
    while more := await sub.get(0):
        items += more
    return items


def ids(items: list[Item]) -> list[int]:
    return [item.id for item in items if isinstance(item, Event)]


def test_live_events_in_id_order_after_the_live_marker() -> None:
    async def test() -> None:
        feed = Feed()
        feed.deliver(5)
        sub = feed.broker.subscribe()
        feed.deliver(3, 4)
        items = await drain(sub)
        assert items[0] == Live(5)
        assert ids(items) == list(range(6, 13))
        assert sub.position == 12

    run(test)


def test_publishing_neither_parses_nor_copies() -> None:
    async def test() -> None:
        feed = Feed(queue=100)
        sub = feed.broker.subscribe()
        kept = feed.deliver(50)
        skipped = feed.deliver(80)
        assert kept[0].cached_events is None and skipped[0].cached_events is None
        await drain(sub)
        assert kept[0].cached_events is not None
        assert skipped[0].cached_events is None  # never read, never parsed

    run(test)


def test_subscribers_share_one_parse() -> None:
    async def test() -> None:
        feed = Feed()
        subs = [feed.broker.subscribe() for _ in range(3)]
        feed.deliver(10)
        seen = [[i for i in await drain(sub) if isinstance(i, Event)] for sub in subs]
        assert all(a is b for a, b in zip(seen[0], seen[1], strict=True))
        assert all(a is b for a, b in zip(seen[0], seen[2], strict=True))

    run(test)


def test_a_full_queue_skips_and_says_so_before_the_next_events() -> None:
    async def test() -> None:
        feed = Feed(queue=100)
        sub = feed.broker.subscribe()
        assert await drain(sub) == [Live(0)]
        feed.deliver(60)  # ids 1-60
        feed.deliver(30)  # 61-90: fits (90 <= 100)
        feed.deliver(20)  # 91-110: over the bound, skipped
        feed.deliver(40)  # 111-150: skipped, the same run
        assert sub.skipped == 60 and feed.broker.skipped == 60
        items = await drain(sub)
        assert ids(items) == list(range(1, 91))
        assert items[-1] == Skipped(60, 91, 150, "slow")
        feed.deliver(5)  # room again
        assert ids(await drain(sub)) == list(range(151, 156))

    run(test)


def test_near_full_takes_the_batches_that_fit() -> None:
    async def test() -> None:
        feed = Feed(queue=100)
        sub = feed.broker.subscribe()
        await drain(sub)
        feed.deliver(80)  # 1-80
        feed.deliver(10, 10, 10)  # 81-90 and 91-100 fit, 101-110 does not
        items = await drain(sub)
        assert ids(items) == list(range(1, 101))
        assert items[-1] == Skipped(10, 101, 110, "slow")

    run(test)


def test_an_empty_queue_takes_a_list_larger_than_its_bound() -> None:
    async def test() -> None:
        feed = Feed(queue=100)
        sub = feed.broker.subscribe()
        await drain(sub)
        feed.deliver(300)
        assert sub.queued == 300 and sub.skipped == 0
        assert ids(await drain(sub)) == list(range(1, 301))
        assert sub.queued == 0

    run(test)


@pytest.mark.parametrize("seed", range(5))
def test_read_plus_skipped_equals_published(seed: int) -> None:
    """The accounting the docs promise, for a subscriber without filter: every
    event published while subscribed is read or counted in a Skipped notice,
    once, and the notices' id ranges are exactly the ids not read."""

    async def test() -> None:
        rng = random.Random(seed)
        feed = Feed(queue=rng.choice([100, 500, 2000]))
        feed.deliver(7)
        sub = feed.broker.subscribe()
        before = feed.published
        items: list[Item] = []
        for _ in range(300):
            if rng.random() < 0.6:
                feed.deliver(*[rng.randint(1, 90) for _ in range(rng.randint(1, 5))])
            else:
                items += await sub.get(0)
        items += await drain(sub)
        read = ids(items)
        notices = [i for i in items if isinstance(i, Skipped)]
        assert len(read) + sum(n.count for n in notices) == feed.published - before
        covered = sorted(read + [i for n in notices for i in range(n.first_id, n.last_id + 1)])
        assert covered == list(range(8, feed.next_id))
        assert notices, "the test should make the subscriber fall behind"

    run(test)


def test_replay_since_then_live_without_gap_or_duplicate() -> None:
    async def test() -> None:
        feed = Feed()
        feed.deliver(10, 10, 10)  # ids 1-30
        sub = feed.broker.subscribe(since=12)
        feed.deliver(5)  # 31-35
        items = await drain(sub)
        assert ids(items) == list(range(13, 36))
        assert Live(30) in items

    run(test)


def test_a_list_in_memory_but_not_yet_published_comes_once() -> None:
    """The worker publishes after every sink took the list: a subscriber arriving
    in between gets it from the memory snapshot, and not again when published."""

    async def test() -> None:
        feed = Feed()
        feed.deliver(10)
        pending = feed.take(5)  # the memory ring has 11-15, the broker not yet
        replaying = feed.broker.subscribe(since=3)
        live_only = feed.broker.subscribe()
        feed.publish(pending)
        feed.deliver(2)  # 16-17
        assert ids(await drain(replaying)) == list(range(4, 18))
        live = await drain(live_only)
        assert live[0] == Live(15)
        assert ids(live) == [16, 17]

    run(test)


def test_since_older_than_memory_reports_the_missing_ids() -> None:
    async def test() -> None:
        feed = Feed(capacity=10)
        feed.deliver(10, 10, 10)  # memory keeps 21-30
        items = await drain(feed.broker.subscribe(since=5))
        assert items[0] == Skipped(15, 6, 20, "not_in_memory")
        assert ids(items) == list(range(21, 31))

    run(test)


def test_since_after_clear_reports_the_cleared_ids() -> None:
    async def test() -> None:
        feed = Feed()
        feed.deliver(10)
        feed.memory.clear()
        feed.deliver(3)
        items = await drain(feed.broker.subscribe(since=4))
        assert items[0] == Skipped(6, 5, 10, "not_in_memory")
        assert ids(items) == [11, 12, 13]

    run(test)


def test_since_above_every_id_resets_and_replays_the_whole_ring() -> None:
    """A reader from before a memory-only restart: every event the new server
    holds is new to it, so it gets all of them, then live ones."""

    async def test() -> None:
        feed = Feed()
        feed.deliver(10)
        sub = feed.broker.subscribe(since=5000)
        feed.deliver(2)
        items = await drain(sub)
        assert items[0] == Reset(5000, 10)
        assert Live(10) in items
        assert ids(items) == list(range(1, 13))

    run(test)


def test_backlog_is_the_newest_matching_events_oldest_first() -> None:
    async def test() -> None:
        feed = Feed(capacity=5000)
        feed.deliver(*[100] * 30)  # more than one step of scanning per match set
        errors = live_filter([("level", "ERROR")], QueryConfig())
        items = await drain(feed.broker.subscribe(errors, backlog=7))
        expected = [i for i in range(1, 3001) if i % 4 == 1][-7:]
        assert ids(items) == expected
        assert items[-1] == Live(3000)

    run(test)


def test_filters_match_like_query() -> None:
    async def test() -> None:
        feed = Feed()
        feed.deliver(40, 40)
        config = QueryConfig()
        cases = [
            [("level", "ERROR,WARN")],
            [("keyword", "number 1")],
            [("keywords", "number 2,number 3"), ("operator", "OR"), ("level", "INFO")],
            [("regex", r"svc[12]\] event number \d*7$")],
            [("service", "nope")],
        ]
        everything = [
            ev for batch, _ in [feed.memory.snapshot()] for b in batch for ev in b.events()
        ]
        for params in cases:
            sub = feed.broker.subscribe(live_filter(params, config), since=0)
            match = build_query(params, config)[0].matcher()
            assert ids(await drain(sub)) == [ev.id for ev in everything if match(ev)], params
            feed.broker.unsubscribe(sub)

    run(test)


def test_text_filters_do_not_parse_what_they_rule_out() -> None:
    async def test() -> None:
        feed = Feed()
        sub = feed.broker.subscribe(LiveFilter(build_query([("keyword", "7")], QueryConfig())[0]))
        batches = feed.deliver(20)
        assert ids(await drain(sub)) == [7, 17]
        assert batches[0].cached_events is None

    run(test)


def test_subscribers_are_bounded_and_unsubscribing_frees_a_place() -> None:
    async def test() -> None:
        feed = Feed(subscribers=2)
        first = feed.broker.subscribe()
        feed.broker.subscribe()
        with pytest.raises(TooManySubscribers):
            feed.broker.subscribe()
        feed.broker.unsubscribe(first)
        feed.broker.subscribe()
        assert len(feed.broker.subscribers) == 2

    run(test)


def test_close_ends_a_waiting_reader_and_drops_what_it_held() -> None:
    async def test() -> None:
        feed = Feed()
        sub = feed.broker.subscribe()
        await drain(sub)
        waiting = asyncio.ensure_future(sub.get())
        await asyncio.sleep(0)
        feed.broker.close_all("shutdown")
        assert await waiting == [Ended("shutdown")]
        feed.deliver(5)  # no longer offered
        assert sub.queued == 0 and not feed.broker.subscribers

    run(test)


def test_readers_yield_to_the_loop_between_steps() -> None:
    """Busy readers never hold the loop for more than a step: another task runs
    between their steps."""

    async def test() -> None:
        feed = Feed(queue=100_000)
        subs = [feed.broker.subscribe() for _ in range(4)]
        for sub in subs:
            await drain(sub)
        feed.deliver(*[1000] * 20)
        turns = 0
        stop = asyncio.Event()

        async def count_turns() -> None:
            nonlocal turns
            while not stop.is_set():
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.ensure_future(count_turns())
        results = await asyncio.gather(*(drain(sub) for sub in subs))
        stop.set()
        await counter
        assert all(ids(r) == list(range(1, 20_001)) for r in results)
        assert turns >= 20  # at least once between one reader's steps (a list each)

    run(test)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_share_backs_off_when_saturated_and_grows_into_idle_time() -> None:
    wall, cpu = Clock(), Clock()
    share = LoopShare(share=0.25, burst=0.05, clock=wall, cpu=cpu)
    share.spend(0.2)
    assert share.delay() == pytest.approx(0.15)  # 0.2 spent, 0.05 of burst, at a whole core
    for expected in (0.5, 0.25, 0.25):  # a saturated core: halved, down to the share
        wall.now += 0.1
        cpu.now += 0.1
        share.delay()
        assert share.rate == expected
    share.spend(0.45)
    # 0.15 owed, 0.1 refilled over the three windows, 0.45 more: 0.5 at 25%.
    assert share.delay() == pytest.approx(0.5 / 0.25)
    wall.now += 0.1
    cpu.now += 0.04  # 60% idle: added
    share.delay()
    assert share.rate == pytest.approx(0.85)
    wall.now += 0.1
    cpu.now += 0.0
    share.delay()
    assert share.rate == 1.0


def test_a_huge_batch_is_parsed_a_step_at_a_time() -> None:
    """An HTTP bulk batch past PARSE_WHOLE_MAX: no read parses it whole on the loop."""

    async def test() -> None:
        feed = Feed(queue=100_000)
        everything = feed.broker.subscribe()
        errors = feed.broker.subscribe(live_filter([("level", "ERROR")], QueryConfig()))
        (huge,) = feed.deliver(PARSE_WHOLE_MAX * 3)
        first = await everything.get(0)
        assert first == [Live(0)]
        step = await everything.get(0)
        assert len(step) == STEP_EVENTS
        assert huge.cached_events is None
        rest = step + await drain(everything)
        assert ids(rest) == list(range(1, PARSE_WHOLE_MAX * 3 + 1))
        assert ids(await drain(errors)) == list(range(1, PARSE_WHOLE_MAX * 3 + 1, 4))
        assert huge.cached_events is None

    run(test)


def test_keyword_shortcut_agrees_with_query_on_odd_texts() -> None:
    """The step-wide keyword search (query/live.py) never rules out a match:
    non-ASCII words, invalid UTF-8, words spanning what the join puts between."""

    async def test() -> None:
        feed = Feed()
        texts = [b"caf\xc3\xa9 ok", b"bad \xff byte caf", b"plain", b"\xc3\xa9t\xc3\xa9", b"ok"]
        texts = texts * 60
        batch = Batch(1, time.time(), "test", texts)
        feed.memory.append([batch])
        config = QueryConfig()
        cases = [
            [("keyword", "café")],
            [("keyword", "\ufffd")],
            [("keywords", "ok,été"), ("operator", "OR")],
            [("keywords", "caf,byte")],
            [("keyword", "ok\ncaf")],
            [("keyword", "absent")],
        ]
        everything = batch.events()
        for params in cases:
            sub = feed.broker.subscribe(live_filter(params, config), since=0)
            match = build_query(params, config)[0].matcher()
            assert ids(await drain(sub)) == [ev.id for ev in everything if match(ev)], params
            feed.broker.unsubscribe(sub)

    run(test)
