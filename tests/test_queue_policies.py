"""Queue policies (SPEC §4, issue 6 step 1): what a full queue does with new events.

The real queue, admission and counters in-process (the test takes the worker's
place, so it decides when the queue drains), then one real server per policy
flooded by reads larger than its queue: the counters add up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from logcaster.options import QueueConfig
from logcaster.pipeline.admission import Admission
from logcaster.pipeline.queue import BatchQueue
from logcaster.stats import Stats
from logcaster.testing import wait_for
from tests.conftest import ServerFactory

MIN_BYTES = 64 * 1024  # queue.max_bytes' lower bound


def setup(
    policy: str, max_events: int = 10, **extra: object
) -> tuple[BatchQueue, Admission, Stats]:
    queue = BatchQueue(max_events, MIN_BYTES)
    stats = Stats()
    config = QueueConfig(policy=policy, max_events=max_events, **extra)  # type: ignore[arg-type]
    return queue, Admission(queue, config, stats), stats


def lines(prefix: str, n: int) -> list[bytes]:
    return [b"%s %d" % (prefix.encode(), i) for i in range(n)]


def put(queue: BatchQueue, texts: list[bytes], first_id: int = 1) -> None:
    from logcaster.pipeline.batch import Batch

    queue.put(Batch(first_id, 0.0, "t", texts))


def test_block_accepts_everything_and_asks_to_pause() -> None:
    _, admission, stats = setup("block")
    kept, pause = admission.admit(lines("a", 15), "tcp")
    assert len(kept) == 15 and pause  # pause once the queue reports full after the put
    assert stats.dropped == 0


def test_drop_newest_keeps_what_fits_of_a_read() -> None:
    queue, admission, stats = setup("drop_newest")
    kept, pause = admission.admit(lines("a", 15), "tcp")
    assert kept == lines("a", 10) and not pause
    put(queue, kept)
    kept, _ = admission.admit(lines("b", 3), "tcp")
    assert kept == [] and stats.drops == {"queue_full_newest": 8}
    queue.done([queue._batches.popleft()])  # the worker took and delivered it
    kept, _ = admission.admit(lines("c", 3), "tcp")
    assert kept == lines("c", 3)


def test_drop_oldest_evicts_queued_batches_for_new_ones() -> None:
    queue, admission, stats = setup("drop_oldest")
    put(queue, lines("old", 6), 1)
    put(queue, lines("mid", 4), 7)
    kept, pause = admission.admit(lines("new", 5), "tcp")
    assert kept == lines("new", 5) and not pause
    assert stats.drops == {"queue_full_oldest": 6}  # the whole oldest batch
    assert (queue.events, [b.first_id for b in queue._batches]) == (4, [7])
    # A read larger than the whole queue keeps its newest events.
    kept, _ = admission.admit(lines("huge", 25), "tcp")
    assert kept == lines("huge", 25)[-10:]
    assert stats.drops == {"queue_full_oldest": 6 + 4 + 15}


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest", "reject", "sample"])
def test_file_reads_wait_for_room_whatever_the_policy(policy: str) -> None:
    """The file source has no sender to push back on: admitted whole, asked to pause."""
    _, admission, stats = setup(policy)
    kept, pause = admission.admit(lines("f", 15), "file")
    assert kept == lines("f", 15) and pause
    assert stats.dropped == 0


def test_drop_oldest_spares_file_batches() -> None:
    from logcaster.pipeline.batch import Batch

    queue, admission, stats = setup("drop_oldest")
    queue.put(Batch(1, 0.0, "file:app", lines("file", 4)))
    put(queue, lines("tcp", 6), 5)
    kept, _ = admission.admit(lines("new", 5), "tcp")
    assert kept == lines("new", 5)
    assert stats.drops == {"queue_full_oldest": 6}
    assert [b.first_id for b in queue._batches] == [1]  # the file's batch stays, first


def test_reject_refuses_a_read_that_does_not_fit() -> None:
    queue, admission, stats = setup("reject")
    put(queue, lines("a", 8))
    kept, _ = admission.admit(lines("b", 2), "tcp")
    assert kept == lines("b", 2)
    put(queue, kept, 9)
    kept, _ = admission.admit(lines("c", 1), "tcp")
    assert kept == [] and stats.drops == {"rejected": 1}


def test_sample_keeps_every_error_and_thins_the_rest_above_the_watermark() -> None:
    queue, admission, stats = setup("sample", 1000, high_watermark=0.5, sample_max_n=10)
    put(queue, lines("x", 900))  # 99.1% full with the read: N = 1 + int(0.982 * 9) = 9
    texts = [
        b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: declined %d" % i
        if i % 3 == 0
        else b"[INFO] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: ok %d" % i
        for i in range(90)
    ]
    texts.append(b'{"level":"fatal","msg":"boom"}')
    kept, pause = admission.admit(texts, "tcp")
    assert isinstance(kept, list)
    errors = [t for t in texts if b"[ERROR]" in t or b"fatal" in t]
    assert pause  # when still full, sample blocks rather than drop an error
    assert all(t in kept for t in errors)
    others = [t for t in kept if t not in errors]
    assert len(others) == 60 // 9 + 1  # 1 in 9 of the 60 INFO events, the first one kept
    assert stats.sampled == len(texts) - len(kept) and stats.dropped == 0


def test_sample_below_the_watermark_keeps_everything() -> None:
    _, admission, stats = setup("sample", 1000, high_watermark=0.8)
    kept, _ = admission.admit(lines("a", 100), "tcp")
    assert len(kept) == 100 and stats.sampled == 0


def test_high_watermark_counts_each_upward_crossing() -> None:
    queue, admission, stats = setup("drop_newest", 100, high_watermark=0.5)
    put(queue, lines("a", 60))
    admission.watch()  # the pipeline watches after each put
    admission.watch()
    assert stats.high_watermark == 1
    queue.done([queue._batches.popleft()])
    admission.watch()  # re-armed below 0.9 * watermark
    put(queue, lines("e", 70))
    admission.watch()
    assert stats.high_watermark == 2


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest", "reject", "sample"])
def test_counters_add_up_in_a_flooded_server(server_factory: ServerFactory, policy: str) -> None:
    """Reads larger than the queue (64 events) force the policy on every read; at the
    end every event is delivered, dropped by a named reason, or sampled."""
    env = {
        **os.environ,
        "LOGCASTER_QUEUE__POLICY": policy,
        "LOGCASTER_QUEUE__MAX_EVENTS": "64",
        "LOGCASTER_QUEUE__HIGH_WATERMARK": "0.5",
    }
    server = server_factory("--buffer-size", "100000", env=env)  # holds all delivered
    n = 50_000
    body = b"".join(
        (b"[ERROR] boom %d\n" if i % 50 == 0 else b"[INFO] line %d\n") % i for i in range(n)
    )
    server.send(body)
    stats = wait_for(
        "every event accounted for",
        server.stats,
        lambda s: s["Total"] == n and s["Delivered"] + s["Dropped"] + s["Sampled"] == n,
    )
    assert stats["QueueEvents"] == 0
    # By reason, e.g. DroppedQueueFullNewest; they sum to Dropped.
    reasons = {k: v for k, v in stats.items() if k.startswith("Dropped") and k != "Dropped"}
    assert sum(reasons.values()) == stats["Dropped"]
    assert bool(reasons) == (policy != "sample")
    assert stats["HighWatermark"] >= 1
    if policy == "sample":
        assert stats["Dropped"] == 0 and stats["Sampled"] > 0
        # Every ERROR event survives sampling.
        errors = server.query("QUERY keyword=boom limit=1 max_count=100000").splitlines()[0]
        assert errors == f"FOUND: {n // 50} matches"
        assert stats["Current"] == stats["Delivered"]
    else:
        assert stats["Dropped"] > 0
    assert server.stop() == 0


def test_reject_sends_a_negative_ack_and_the_client_resends() -> None:
    """`reject` with acknowledged delivery: the client hears `NACK <n>` after the acks
    of what was accepted, backs off, reconnects and resends the rest; every line is
    stored exactly once. In-process, so the test decides when the worker drains."""
    asyncio.run(_reject_with_acks())


async def _reject_with_acks() -> None:
    from logcaster.client import LogCasterClient
    from logcaster.config import load_config
    from logcaster.pipeline.pipeline import Pipeline
    from logcaster.sinks.memory import MemorySink
    from logcaster.sources.stream_listener import line_ingest

    config = load_config(
        None,
        environ={},
        overrides={"ingest.port": 0, "query.port": 0, "queue.policy": "reject"},
    )
    stats = Stats()
    queue = BatchQueue(1000, 64 * 1024 * 1024)
    memory = MemorySink(10_000)
    pipeline = Pipeline(queue, [memory], stats)  # the worker is not started yet
    pipeline.admission = Admission(queue, QueueConfig(policy="reject", max_events=1000), stats)
    ingest = line_ingest(config, pipeline, stats)
    await ingest.start()
    loop = asyncio.get_running_loop()
    client = LogCasterClient("127.0.0.1", ingest.port, timeout=10.0)
    first = [b"accepted %04d\n" % i for i in range(800)]
    second = [b"refused then resent %04d\n" % i for i in range(300)]

    async def until(what: str, done: Callable[[], bool]) -> None:
        deadline = loop.time() + 15.0
        while not done():
            assert loop.time() < deadline, what
            await asyncio.sleep(0.01)

    try:
        await asyncio.to_thread(client.send, b"".join(first))
        await until("the first 800 lines read", lambda: stats.received == 800)
        await asyncio.to_thread(client.send, b"".join(second))
        await until("the next read refused", lambda: stats.drops.get("rejected", 0) > 0)
        assert queue.events == 800  # nothing of the refused read was queued
        pipeline.start()  # the queue drains: ACK 800, then NACK 800
        flushed = await asyncio.to_thread(client.flush, 10.0)
        assert flushed and client.rejections >= 1
        texts = [ev.body.encode() + b"\n" for ev in memory.oldest_first()]
        assert texts == first + second  # once each, in order
        assert stats.received == len(texts) + stats.drops["rejected"]
    finally:
        client.close()
        await ingest.stop()
        await pipeline.drain(1.0)
        await ingest.close()
