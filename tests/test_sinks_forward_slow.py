"""Slow and flapping sinks (SPEC §5, issue 6): breakers, the spool, push back.

A sink that flaps or answers past its timeout opens the breaker and events
spool while ingest goes on; without a spool, a slow group fills its buffer and
the queue policy acts, with memory bounded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group, paced_send, settled, write_config


def test_flapping_sink_opens_and_closes_the_breaker_and_ingest_never_stalls(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    cfg = group("flap", [receiver.url], failure_threshold=1, batch_events=200)
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    n = 40_000
    lines = [b"flap %06d\n" % i for i in range(n)]
    stop = threading.Event()

    def flap() -> None:
        while not stop.is_set():
            time.sleep(1.0)
            receiver.stop()
            time.sleep(1.0)
            receiver.start()

    flapper = threading.Thread(target=flap)
    flapper.start()
    started = time.monotonic()
    try:
        paced_send(up.ingest_port, lines, 5.0, connections=2)
        sent = time.monotonic() - started
        # Ingest kept up with the sender: everything was taken in as it came.
        stats = wait_for("received", up.stats, lambda s: s["Total"] == n, timeout=5)
        assert sent < 8.0
    finally:
        stop.set()
        flapper.join()
    if receiver._runner is None:
        receiver.start()
    stats = wait_for("drained", up.stats, lambda s: settled(s, n), timeout=60)
    assert stats["BreakerOpens"] >= 2 and stats["SinksDown"] == 0
    texts = receiver.texts()
    assert set(texts) == {line[:-1].decode() for line in lines}
    assert len(texts) - n <= stats["ForwardRetried"]


@pytest.mark.parametrize("policy", ["block", "drop_newest", "drop_oldest", "reject", "sample"])
def test_slow_sink_without_spool_pushes_back_on_the_queue_policy(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver, policy: str
) -> None:
    """No spool: a slow group fills its buffer, then the queue, and the policy acts.

    Memory stays bounded, the counters add up, and `sample` keeps every ERROR."""
    import psutil

    receiver.delay = 0.02  # per 200-event POST: about 10k events/s
    cfg = group("slow", [receiver.url], batch_events=200, max_in_flight=1, buffer_events=1000)
    queue = {"max_events": 2000, "policy": policy}
    up = server_factory("--config", write_config(tmp_path, forward=[cfg], queue=queue))
    proc = psutil.Process(up.pid)
    start_rss = proc.memory_info().rss
    n = 20_000 if policy == "block" else 60_000
    lines = [b"%s slow %06d\n" % (b"ERROR" if i % 10 == 0 else b"INFO", i) for i in range(n)]
    peak = [start_rss]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        paced_send(up.ingest_port, lines, 0.5, connections=2)
        stats = wait_for("settled", up.stats, lambda s: settled(s, n), timeout=90)
    finally:
        done.set()
        watcher.join()
    delivered = stats["Delivered"]
    assert stats["Total"] == n == delivered + stats["Dropped"] + stats["Sampled"]
    assert stats["Forwarded"] == delivered == len(receiver.events)
    if policy == "block":
        assert stats["Dropped"] == stats["Sampled"] == 0
    else:
        assert delivered < n  # the sender outran the sink: the policy acted
    reasons = {k: v for k, v in stats.items() if k.startswith("Dropped") and k != "Dropped"}
    assert sum(reasons.values()) == stats["Dropped"]
    if policy == "sample":
        errors = {t for t in receiver.texts() if t.startswith("ERROR")}
        assert len(errors) == n // 10  # every ERROR survived
    # Bounded: the queue (2,000 events), the group's buffer and one read per
    # connection: a read is up to 256 KiB (uvloop's buffer), ~15,000 of these
    # 17-byte lines (a loaded machine gets reads that full: 15,002 was seen).
    assert stats["QueuePeakEvents"] <= 2000 + 2 * (256 * 1024 // len(lines[0]))
    assert peak[0] - start_rss < 64 * 1024 * 1024, (peak[0] - start_rss) / 1e6


def test_a_sink_slower_than_its_timeout_opens_the_breaker_and_events_spool(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    receiver.delay = 3.0  # past write_timeout (2 s): every attempt times out
    cfg = group("slow", [receiver.url], batch_events=500)
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    n = 20_000
    lines = [b"late %06d\n" % i for i in range(n)]
    started = time.monotonic()
    paced_send(up.ingest_port, lines, 2.0)
    wait_for("received", up.stats, lambda s: s["Total"] == n, timeout=5)
    assert time.monotonic() - started < 5.0  # ingest went on while the sink hung
    stats = wait_for(
        "spooled, breaker open",
        up.stats,
        lambda s: s["Spooled"] + s["Forwarded"] == n and s["BreakerOpens"] >= 1,
        timeout=30,
    )
    assert stats["Spooled"] > 0
    receiver.delay = 0.0
    stats = wait_for("drained", up.stats, lambda s: settled(s, n), timeout=60)
    assert stats["SinksDown"] == 0
    texts = receiver.texts()
    assert set(texts) == {line[:-1].decode() for line in lines}
    assert len(texts) - n <= stats["ForwardRetried"]
