"""The metric parts on their own: declarations, STATS rendering, families,
weighted histograms, receive-to-durable records, the level tally's counts."""

from __future__ import annotations

import asyncio

import pytest

from logcaster.metrics.histogram import Histogram
from logcaster.metrics.latency import MAX_PENDING, DurableLatency
from logcaster.metrics.prometheus import families
from logcaster.metrics.registry import Metric, Readings, stats_values
from logcaster.metrics.tally import LevelTally
from logcaster.pipeline.batch import Batch
from logcaster.sinks.memory import MemorySink

DROPS = Metric("drops", "counter", "d", ("listener", "reason"), "Dropped", ("reason", "Dropped"))
CONNS = Metric("conns", "gauge", "c", ("listener",), stats="Clients")
TOTAL = Metric("received", "counter", "r", ("listener",), stats="Total")


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="no _total"):
        Metric("x_total", "counter", "h")
    with pytest.raises(ValueError, match="CamelCase"):
        Metric("x", "counter", "h", stats="lower")
    with pytest.raises(ValueError, match="stats_by"):
        Metric("x", "counter", "h", ("a",), stats_by=("b", "X"))
    with pytest.raises(ValueError, match="labels"):
        Readings().add(DROPS, 1, "tcp")


def test_stats_sums_labels_names_reasons_and_puts_the_headline_first() -> None:
    out = Readings()
    out.add(CONNS, 2, "tcp")
    out.pairs(DROPS, {("tcp", "queue_full_newest"): 3, ("http", "queue_full_newest"): 1})
    out.pairs(DROPS, {("syslog-udp", "udp_queue_full"): 5})
    out.each(TOTAL, {"tcp": 10, "http": 4})
    out.add(CONNS.also("HttpConnections"), 7, "http")
    assert list(stats_values(out).items()) == [
        ("Total", 14),
        ("Dropped", 9),
        ("Clients", 2),
        ("HttpConnections", 7),
        ("DroppedQueueFullNewest", 4),
        ("DroppedUdpQueueFull", 5),
    ]
    empty = Readings()
    empty.each(TOTAL, {})
    assert stats_values(empty) == {"Total": 0}  # declared, nothing counted yet


def test_families_keep_labels_apart_and_merge_twins() -> None:
    out = Readings()
    out.add(CONNS, 2, "tcp")
    out.add(CONNS.also("HttpConnections"), 7, "http")
    out.add(CONNS, 1, "tcp")  # the same labels twice: one sample, summed
    (family,) = families(out)
    assert family.name == "logcaster_conns" and family.type == "gauge"
    assert sorted((s.labels["listener"], s.value) for s in family.samples) == [
        ("http", 7),
        ("tcp", 3),
    ]
    clash = Readings()
    clash.add(CONNS, 1, "tcp")
    clash.add(Metric("conns", "counter", "c", ("listener",)), 1, "tcp")
    with pytest.raises(ValueError, match="different shapes"):
        families(clash)


def test_a_histogram_counts_weights_in_le_buckets() -> None:
    h = Histogram((0.1, 1.0))
    h.observe(0.1, 3)  # on a bound: in it (le)
    h.observe(0.5, 2)
    h.observe(7.0)
    assert h.cumulative() == [(0.1, 3), (1.0, 5), (float("inf"), 6)]
    assert h.count == 6 and h.sum == pytest.approx(0.3 + 1.0 + 7.0)


def test_durable_latency_observes_each_batch_once_by_its_events() -> None:
    now = [100.0]
    latency = DurableLatency(clock=lambda: now[0])
    latency.delivered([Batch(1, 99.0, "tcp", [b"a", b"b"]), Batch(3, 99.5, "tcp", [b"c"])])
    latency.durable(2)
    assert latency.histogram.count == 2 and latency.histogram.sum == pytest.approx(2.0)
    latency.durable(2)  # the watermark did not pass the next batch
    assert latency.histogram.count == 2
    latency.durable(3)
    assert latency.histogram.count == 3 and latency.waiting == 0


def test_durable_latency_stays_bounded_while_the_watermark_stalls() -> None:
    latency = DurableLatency(clock=lambda: 10.0)
    batches = [
        Batch(i + 1, 8.0 if i < MAX_PENDING else 9.0, "tcp", [b"x"])
        for i in range(MAX_PENDING + 100)
    ]
    latency.delivered(batches)
    assert latency.waiting == MAX_PENDING
    latency.durable(len(batches))
    h = latency.histogram
    assert h.count == len(batches)  # exact count; the merged run at its mean time
    # The merged record: one event waited 2 s, a hundred 1 s, observed at their mean.
    assert h.sum == pytest.approx(2.0 * (MAX_PENDING - 1) + 2.0 + 100 * 1.0)


def test_the_tally_counts_what_it_sees_and_the_rest_as_untallied() -> None:
    async def run() -> None:
        memory = MemorySink(capacity=4)
        memory.append([Batch(1, 1.0, "tcp", [b"[INFO] replayed before start"])])
        tally = LevelTally(memory, max_services=1)
        await tally.start()
        try:
            texts = [
                b'{"level":"error","service":"pay","msg":"a"}',
                b'{"level":"error","service":"pay","msg":"b"}',
                b'{"level":"warn","service":"users","msg":"c"}',  # a second service: other
                b"no level here",
            ]
            memory.append([Batch(2, 2.0, "tcp", texts[:2]), Batch(4, 2.0, "tcp", texts[2:])])
            await tally.tally()
            assert tally.counts == {("ERROR", "pay"): 2, ("WARN", "other"): 1, ("none", "none"): 1}
            # Six more into a ring of four: two were evicted before the next run.
            memory.append([Batch(6, 3.0, "tcp", [b"[DEBUG] x"] * 6)])
            await tally.tally()
            assert tally.counts[("DEBUG", "none")] == 4
            assert tally.counts[("untallied", "untallied")] == 2
            assert sum(tally.counts.values()) == memory.received - 1  # the replayed one
        finally:
            await tally.stop()

    asyncio.run(run())
