"""Live subscribers' rate caps (pipeline/tail_rate.py) in the broker: one budget
per max_rate, spent as lists are delivered, and one parse of what is kept."""

from __future__ import annotations

from logcaster.event import Event
from logcaster.pipeline.tail_items import Skipped
from tests.test_pipeline_broker import Feed, drain, ids, run


def test_capped_subscribers_share_the_parse_of_what_they_keep() -> None:
    """Rate-capped readers of everything keep each delivered batch's first events:
    one parse of that head serves them all, and nothing past it is parsed."""

    async def test() -> None:
        feed = Feed(queue=100_000)
        subs = [
            feed.broker.subscribe(max_rate=120) for _ in range(3)
        ]  # saves 30 (tail_rate.BURST_S)
        (batch,) = feed.deliver(100)
        seen = [[i for i in await drain(sub) if isinstance(i, Event)] for sub in subs]
        assert [ev.id for ev in seen[0]] == list(range(1, 31))
        assert all(a is b for a, b in zip(seen[0], seen[1], strict=True))
        assert all(a is b for a, b in zip(seen[0], seen[2], strict=True))
        assert batch.cached_events is None  # only the head was parsed
        whole = batch.events()  # a later reader of the whole batch reuses the head
        assert whole[:30] == seen[0] and whole[0] is seen[0][0]
        assert [ev.id for ev in whole] == list(range(1, 101))

    run(test)


def test_each_rate_has_its_bucket_spent_once_per_delivered_list() -> None:
    async def test() -> None:
        feed = Feed(queue=100_000)
        low = [feed.broker.subscribe(max_rate=120) for _ in range(2)]
        high = feed.broker.subscribe(max_rate=200)
        feed.deliver(40, 40)  # one list of two batches: the cap counts from its start
        seen = [await drain(sub) for sub in (*low, high)]
        assert ids(seen[0]) == ids(seen[1]) == list(range(1, 31))
        assert ids(seen[2]) == list(range(1, 41)) + list(range(41, 51))
        told = [i for i in seen[0] if isinstance(i, Skipped)]
        assert [(s.count, s.first_id, s.last_id, s.reason) for s in told] == [(50, 31, 80, "rate")]
        for sub in (*low, high):
            feed.broker.unsubscribe(sub)
        assert not feed.broker._rate_caps  # a bucket lives as long as a reader of its rate

    run(test)
