"""Forward sink groups (SPEC §5, issue 6): failover, spool, breakers and dead letters.

Real servers (child processes) forward to real receivers the tests start,
stop, slow down and break: other LogCaster servers (acknowledged TCP) and an
aiohttp NDJSON receiver running in a thread.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from logcaster.config import load_config, validate
from logcaster.exceptions import ConfigError
from logcaster.sinks.resilience import Backoff, Breaker
from logcaster.testing import wait_for
from tests.conftest import ServerFactory


class HttpReceiver:
    """An NDJSON receiver in its own thread; the test changes how it answers."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.posts = 0
        self.delay = 0.0  # seconds before each answer
        self.reject_marker: bytes | None = None  # 400 for bodies holding this
        self.status = 200  # answer to everything else
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reject_marker is not None and self.reject_marker in body:
            return web.Response(status=400, text="bad event: marker found")
        if self.status >= 300:
            return web.Response(status=self.status, text="unavailable")
        self.events.extend(orjson.loads(line) for line in body.splitlines() if line)
        return web.Response(status=200)

    async def _start(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/ingest", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> None:
        """Listen (again, on the same port after the first start)."""
        asyncio.run_coroutine_threadsafe(self._start(self.port), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def texts(self) -> list[str]:
        return [e["body"] for e in self.events]

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    r.start()
    yield r
    r.close()


def write_config(tmp_path: Path, **config: Any) -> str:
    path = tmp_path / "upstream.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def group(name: str, primaries: list[str], backups: list[str] = (), **extra: Any) -> Any:  # type: ignore[assignment]
    return {
        "name": name,
        "primaries": [{"url": u, "write_timeout": 2.0} for u in primaries],
        "backups": [{"url": u, "write_timeout": 2.0} for u in backups],
        "open_s": 0.2,
        "max_open_s": 1.0,
        **extra,
    }


def stored_lines(data_dir: Path) -> list[bytes]:
    """Every event text a stopped server stored, in id order (`logcaster data cat`)."""
    if not data_dir.exists():
        return []
    out = subprocess.run(
        [sys.executable, "-m", "logcaster", "data", "cat", str(data_dir)],
        capture_output=True,
        check=True,
    )
    return out.stdout.splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def paced_send(port: int, lines: list[bytes], seconds: float, connections: int = 1) -> None:
    """Send `lines` spread over `seconds`; connection c sends lines[c::connections], in order."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    streams = [lines[c::connections] for c in range(connections)]
    steps = 200
    start = time.monotonic()
    for k in range(steps):
        for sock, stream in zip(socks, streams, strict=True):
            part = stream[len(stream) * k // steps : len(stream) * (k + 1) // steps]
            sock.sendall(b"".join(part))
        time.sleep(max(0.0, start + seconds * (k + 1) / steps - time.monotonic()))
    for sock in socks:
        sock.close()


def settled(stats: dict[str, float], total: int) -> bool:
    return (
        stats["Total"] >= total
        and stats["QueueEvents"] == 0
        and stats["ForwardBuffered"] == 0
        and stats["Spooled"] == 0
    )


# -- the parts, with their own clocks ---------------------------------------------


def test_breaker_opens_after_threshold_then_half_open_trial_closes_it() -> None:
    now = [0.0]
    b = Breaker(
        failure_threshold=3, open_s=1.0, max_open_s=4.0, clock=lambda: now[0], rng=lambda: 1
    )
    assert b.allows() and not b.failure() and not b.failure()
    assert b.failure() and b.state == "open" and not b.allows()
    now[0] = 1.0
    assert b.allows()
    assert b.state == "half_open"  # type: ignore[comparison-overlap]  # allows() moved it
    assert b.failure() and b.state == "open"  # a failed trial: open again, longer
    now[0] = 2.9
    assert not b.allows()
    now[0] = 3.0
    assert b.allows() and b.success() and b.state == "closed"
    assert (b.opens, b.closes) == (2, 1)
    assert not b.failure() and b.state == "closed"  # the count starts again


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    lo = Backoff(0.1, 1.0, rng=lambda: 0.0)
    hi = Backoff(0.1, 1.0, rng=lambda: 1.0)
    assert [round(lo.next(), 3) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert [round(hi.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    hi.reset()
    assert hi.next() == 0.1


def test_forward_config_errors_name_the_key() -> None:
    ok = {"name": "g", "primaries": [{"url": "tcp://127.0.0.1:1?ack=1"}]}
    assert validate({"forward": [ok]}).forward[0].min_success == 1
    cases = [
        ({**ok, "primaries": [{"url": "udp://x:1"}]}, "forward.0.primaries.0.url"),
        ({**ok, "primaries": [{"url": "tcp://x"}]}, "forward.0.primaries.0.url"),
        ({**ok, "primaries": [{"url": "tcp://x:1?acks=1"}]}, "forward.0.primaries.0.url"),
        ({**ok, "min_success": 2}, "forward.0.min_success"),
        ({**ok, "primaries": []}, "forward.0.primaries"),
        ({**ok, "name": "a b"}, "forward.0.name"),
        ({**ok, "spool_policy": "reject"}, "forward.0.spool_policy"),
    ]
    for bad, key in cases:
        with pytest.raises(ConfigError) as err:
            validate({"forward": [bad]})
        assert err.value.key == key, (bad, err.value)
    with pytest.raises(ConfigError) as err:
        validate({"forward": [ok, ok]})
    assert err.value.key == "forward.1.name"


def test_the_example_group_in_the_example_file_is_valid_and_all_defaults() -> None:
    example = Path(__file__).resolve().parent.parent / "logcaster.example.yaml"
    text = example.read_text(encoding="utf-8")
    block = text[text.index("# forward:\n") :]
    doc = yaml.safe_load("\n".join(line[2:] for line in block.splitlines()))
    config = validate(doc)
    g = config.forward[0]
    defaults = validate(
        {"forward": [{"name": g.name, "primaries": [{"url": g.primaries[0].url}]}]}
    ).forward[0]
    assert g.primaries[0] == defaults.primaries[0]
    fields = set(type(g).__struct_fields__) - {"primaries", "backups"}
    assert {f: getattr(g, f) for f in fields} == {f: getattr(defaults, f) for f in fields}
    assert load_config(example, environ={}).forward == []


# -- against real receivers ---------------------------------------------------------


def test_forward_to_logcaster_with_acks_in_order_once(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    down = server_factory("-P", str(tmp_path / "down"))
    url = f"tcp://127.0.0.1:{down.ingest_port}?ack=1"
    up = server_factory("--config", write_config(tmp_path, forward=[group("g", [url])]))
    lines = [b"event %06d payload\n" % i for i in range(30_000)]
    paced_send(up.ingest_port, lines, 1.0, connections=1)
    wait_for("forwarded", up.stats, lambda s: s["Forwarded"] == len(lines))
    down.stop()
    assert stored_lines(tmp_path / "down") == [line[:-1] for line in lines]


def test_primary_down_10s_backup_takes_over_and_failback(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    """100,000 events; the primary is down for 10 s in the middle; every event arrives."""
    primary_port = free_port()
    primary = server_factory("-P", str(tmp_path / "p1"), "--port", str(primary_port))
    backup = server_factory("-P", str(tmp_path / "b1"))
    cfg = group(
        "ha",
        [f"tcp://127.0.0.1:{primary_port}?ack=1"],
        [f"tcp://127.0.0.1:{backup.ingest_port}?ack=1"],
    )
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    n = 100_000
    lines = [b"seq %06d some payload text\n" % i for i in range(n)]
    sender = threading.Thread(target=paced_send, args=(up.ingest_port, lines, 16.0, 2))
    sender.start()
    time.sleep(3)
    primary.kill()  # kill -9: lines in flight to it may be stored and not acked
    down_at = time.monotonic()
    wait_for("failover", up.stats, lambda s: s["SinksDown"] >= 1)
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    primary2 = server_factory("-P", str(tmp_path / "p2"), "--port", str(primary_port))
    sender.join()
    stats = wait_for("drained", up.stats, lambda s: settled(s, n), timeout=60)
    assert stats["Forwarded"] == n and stats["SinksDown"] == 0
    assert stats["BreakerOpens"] >= 1
    for s in (primary2, backup):
        s.stop()
    parts = {name: stored_lines(tmp_path / name) for name in ("p1", "b1", "p2")}
    seen: dict[bytes, int] = {}
    for texts in parts.values():
        for t in texts:
            seen[t] = seen.get(t, 0) + 1
    assert set(seen) == {line[:-1] for line in lines}  # nothing lost
    duplicates = sum(seen.values()) - n
    # At least once: only events in flight when the primary died may arrive twice.
    assert duplicates <= stats["ForwardRetried"], (duplicates, stats)
    # The backup took over, and the primary got traffic again once it was back.
    assert parts["b1"] and parts["p2"] and parts["p1"]
    assert parts["p2"][-1] == lines[-1][:-1]
    print(
        f"duplicates={duplicates} retried={stats['ForwardRetried']}",
        {k: len(v) for k, v in parts.items()},
    )


def test_all_sinks_down_events_spool_then_drain_in_order(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    port = free_port()
    cfg = group("solo", [f"tcp://127.0.0.1:{port}?ack=1"])
    up_dir = tmp_path / "up"
    up = server_factory("-P", str(up_dir), "--config", write_config(tmp_path, forward=[cfg]))
    conns = 4
    per = 5_000
    lines = [b"conn %d seq %05d\n" % (c, i) for i in range(per) for c in range(conns)]
    paced_send(up.ingest_port, lines, 1.0, connections=conns)
    stats = wait_for("spooled", up.stats, lambda s: s["Spooled"] == len(lines))
    assert stats["Forwarded"] == 0 and stats["SpoolBytes"] > 0
    assert list((up_dir / "forward" / "solo" / "spool").glob("*.log"))
    # The upstream crashes with the spool full; its replacement sends the spool.
    up.kill()
    up = server_factory("-P", str(up_dir), "--config", write_config(tmp_path, forward=[cfg]))
    assert up.stats()["Spooled"] == len(lines)
    down = server_factory("-P", str(tmp_path / "down"), "--port", str(port))
    more = [b"conn 9 seq %05d\n" % i for i in range(1000)]
    up.send(b"".join(more))
    wait_for("drained", up.stats, lambda s: s["Spooled"] == 0 and s["Forwarded"] >= 1000)
    wait_for("all", down.stats, lambda s: s["Total"] >= len(lines) + len(more))
    down.stop()
    got = stored_lines(tmp_path / "down")
    assert sorted(got) == sorted(line[:-1] for line in lines + more)  # nothing lost, once
    for c in (*range(conns), 9):
        prefix = b"conn %d " % c
        mine = [t for t in got if t.startswith(prefix)]
        assert mine == sorted(mine), f"connection {c} out of order"
    assert got.index(more[0][:-1]) > max(got.index(line[:-1]) for line in lines)


def test_http_rejects_go_to_dead_letters_and_replay_delivers_them(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    receiver.reject_marker = b"POISON"
    gdir = tmp_path / "g"
    cfg = group("web", [receiver.url], dir=str(gdir))
    up = server_factory("--config", write_config(tmp_path, forward=[cfg]))
    lines = [
        (b"event %05d POISON\n" if i % 97 == 5 else b"event %05d fine\n") % i for i in range(3000)
    ]
    up.send(b"".join(lines))
    bad = [line[:-1].decode() for line in lines if b"POISON" in line]
    stats = wait_for(
        "resolved", up.stats, lambda s: s["Forwarded"] + s["DeadLettered"] == len(lines)
    )
    assert stats["DeadLettered"] == len(bad) and stats["SinksDown"] == 0
    assert sorted(receiver.texts()) == sorted(
        line[:-1].decode() for line in lines if b"POISON" not in line
    )
    letters = [orjson.loads(x) for x in (gdir / "dead-letters.ndjson").read_bytes().splitlines()]
    assert [x["text"] for x in letters] == bad
    assert {(x["status"], x["reason"], x["sink"]) for x in letters} == {
        (400, "bad event: marker found", receiver.url)
    }
    cli = [sys.executable, "-m", "logcaster", "dlq"]
    shown = subprocess.run([*cli, "inspect", str(gdir)], capture_output=True, text=True)
    assert shown.returncode == 0 and f"{len(bad)} dead letters" in shown.stdout
    assert "HTTP 400  bad event: marker found" in shown.stdout
    # Still refused: the letters stay (exit 1).
    again = subprocess.run([*cli, "replay", str(gdir), "--to", receiver.url], capture_output=True)
    assert again.returncode == 1
    assert len((gdir / "dead-letters.ndjson").read_bytes().splitlines()) == len(bad)
    receiver.reject_marker = None
    before = len(receiver.events)
    done = subprocess.run(
        [*cli, "replay", str(gdir), "--to", receiver.url], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"delivered {len(bad)}, left 0" in done.stdout
    assert [e["body"] for e in receiver.events[before:]] == bad
    assert not (gdir / "dead-letters.ndjson").exists()  # every letter delivered
    assert not (gdir / "dead-letters.replaying.ndjson").exists()


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
    # Bounded: the queue (2,000 events), the group's buffer and one read per connection.
    assert stats["QueuePeakEvents"] <= 2000 + 2 * 5000
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


def test_a_full_spool_with_drop_oldest_keeps_the_newest_and_counts_the_rest(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    port = free_port()  # nothing listens: every event spools
    cfg = group(
        "tight",
        [f"tcp://127.0.0.1:{port}?ack=1"],
        spool_max_bytes=1 << 20,
        spool_policy="drop_oldest",
    )
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    n = 60_000
    lines = [b"spool %06d %s\n" % (i, b"x" * 80) for i in range(n)]
    paced_send(up.ingest_port, lines, 1.0)
    stats = wait_for(
        "spooled",
        up.stats,
        lambda s: s["Total"] == n and s["Spooled"] + s.get("ForwardDroppedSpoolFullOldest", 0) == n,
    )
    dropped = stats["ForwardDroppedSpoolFullOldest"]
    # Lost after delivery to the group: apart from Dropped, so the identity holds.
    assert stats["Dropped"] == 0 and stats["ForwardDropped"] == dropped
    assert stats["Total"] == stats["Delivered"] + stats["QueueEvents"]
    assert dropped > 0 and stats["SpoolBytes"] <= 2 * (1 << 20)
    down = server_factory("-P", str(tmp_path / "down"), "--port", str(port))
    # Spooled reaches 0 while the last chunks are still in flight: wait for Forwarded.
    stats = wait_for(
        "drained", up.stats, lambda s: s["Spooled"] == 0 and s["Forwarded"] + dropped >= n
    )
    assert stats["Forwarded"] + dropped == n
    wait_for("all", down.stats, lambda s: s["Total"] == stats["Forwarded"])
    down.stop()
    got = stored_lines(tmp_path / "down")
    assert got == [line[:-1] for line in lines[int(dropped) :]]  # the newest, in order


def test_restart_with_a_group_dir_and_no_persist_dir_continues_ids_and_acks(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """The spool outlives the server: ids continue above it, acks flow after it drained."""
    from logcaster.client import LogCasterClient

    receiver.status = 503
    cfg = write_config(tmp_path, forward=[group("web", [receiver.url], dir=str(tmp_path / "g"))])
    up = server_factory("--config", cfg)
    up.send(b"".join(b"first %03d\n" % i for i in range(100)))
    wait_for("spooled", up.stats, lambda s: s["Spooled"] == 100)
    assert up.stop() == 0
    receiver.status = 200
    up = server_factory("--config", cfg)
    wait_for("drained", up.stats, lambda s: s["Forwarded"] == 100 and s["Spooled"] == 0)
    with LogCasterClient("127.0.0.1", up.ingest_port, timeout=10) as client:
        client.send(b"".join(b"second %03d\n" % i for i in range(100)))
        assert client.flush(timeout=15), "acks stopped after the spool drained"
    wait_for("forwarded", up.stats, lambda s: s["Forwarded"] == 200)
    assert receiver.texts() == [f"first {i:03d}" for i in range(100)] + [
        f"second {i:03d}" for i in range(100)
    ]
    ids = [e["id"] for e in receiver.events]
    assert ids == sorted(ids) and len(set(ids)) == 200


def test_http_posts_go_out_in_call_order(receiver: HttpReceiver) -> None:
    from logcaster.pipeline.batch import Batch
    from logcaster.sinks.forward import open_forward

    async def run() -> None:
        sink = open_forward(receiver.url, timeout=10)
        big = Batch(1, 0.0, "t", [b"big %05d" % i for i in range(20_000)])
        small = Batch(20_001, 0.0, "t", [b"small"])
        await asyncio.gather(sink.deliver([big]), sink.deliver([small]))
        await sink.close()

    asyncio.run(run())
    ids = [e["id"] for e in receiver.events]
    assert ids == list(range(1, 20_002))


def test_a_post_cancelled_before_its_turn_does_not_let_the_next_overtake(
    receiver: HttpReceiver,
) -> None:
    from logcaster.pipeline.batch import Batch
    from logcaster.sinks.forward import open_forward

    receiver.delay = 0.6

    async def run() -> None:
        sink = open_forward(receiver.url, timeout=10)
        first = asyncio.create_task(sink.deliver([Batch(1, 0.0, "t", [b"first"])]))
        await asyncio.to_thread(wait_for, "first POST", lambda: receiver.posts, bool)
        waiting = asyncio.create_task(sink.deliver([Batch(2, 0.0, "t", [b"cancelled"])]))
        await asyncio.sleep(0.05)
        waiting.cancel()
        last = asyncio.create_task(sink.deliver([Batch(3, 0.0, "t", [b"last"])]))
        await asyncio.sleep(0.3)
        assert receiver.posts == 1  # the first POST is still out: the last waits
        await asyncio.gather(first, last)
        await sink.close()

    asyncio.run(run())
    assert receiver.texts() == ["first", "last"]


def test_dlq_replay_with_repeated_ids_and_a_leftover_aside_file(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    from logcaster.sinks import deadletter
    from logcaster.sinks.forward import Rejection

    letters = deadletter.DeadLetters(tmp_path, 1 << 20)
    rejection = Rejection(7, 1.0, "tcp:t", b"seven POISON", 400, "bad")
    # Event 7 refused twice (a resent chunk), with a letter of event 8.
    letters.add([rejection, Rejection(8, 1.0, "tcp:t", b"eight", 400, "bad")], "s")
    letters.add([rejection], "s")
    # What an interrupted replay left aside is replayed too, and merged first.
    (tmp_path / deadletter.REPLAYING_NAME).write_bytes(
        deadletter.encode_letter(Rejection(3, 1.0, "tcp:t", b"three", 400, "bad"), "s", 0.0)
    )
    receiver.reject_marker = b"POISON"
    path = tmp_path / deadletter.FILE_NAME
    delivered, left = asyncio.run(deadletter.replay(path, receiver.url, 5.0, chunk_events=10))
    assert (delivered, left) == (2, 2)
    assert sorted(receiver.texts()) == ["eight", "three"]
    kept = list(deadletter.read_letters(path))
    assert [(x["id"], x["text"]) for x in kept] == [(7, "seven POISON")] * 2
    assert not (tmp_path / deadletter.REPLAYING_NAME).exists()
    assert not (tmp_path / deadletter.MERGING_NAME).exists()


def test_a_full_disk_under_the_spool_loses_nothing_and_recovers(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """The spool's writes fail (EFBIG past a file-size limit set on the running
    server, as on a full disk) while chunks are in flight, and the sink comes
    back meanwhile: every event arrives exactly once; once the disk has room the
    spool drains."""
    import resource

    receiver.status = 503
    receiver.delay = 0.05  # the window holds chunks in flight when a spool write fails
    cfg = group(
        "web", [receiver.url], dir=str(tmp_path / "g"), spool_max_bytes=1 << 20, batch_events=500
    )
    up = server_factory("--config", write_config(tmp_path, forward=[cfg]))
    soft, hard = resource.prlimit(up.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (48 * 1024, hard))
    lines = [b"event %05d\n" % i for i in range(20_000)]
    up.send(b"".join(lines))
    wait_for(
        "spool errors",
        lambda: [x for x in up.logs if x.get("event") == "forward_sender_error"],
        bool,
    )
    receiver.status = 200  # chunks still in flight are delivered now
    time.sleep(1.0)
    assert up.stats()["Spooled"] < 20_000
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (soft, hard))  # room again
    stats = wait_for("drained", up.stats, lambda s: settled(s, 20_000) and s["Forwarded"] >= 20_000)
    texts = receiver.texts()
    assert sorted(texts) == [line[:-1].decode() for line in lines]  # each once
    assert stats["Forwarded"] == 20_000 and stats["ForwardRetried"] == 0


def test_stop_with_a_full_disk_counts_what_it_could_not_spool_and_exits_cleanly(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    import resource

    receiver.status = 503
    cfg = group("web", [receiver.url], dir=str(tmp_path / "g"), spool_max_bytes=1 << 20)
    up = server_factory("--config", write_config(tmp_path, forward=[cfg]))
    _, hard = resource.prlimit(up.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (48 * 1024, hard))
    up.send(b"".join(b"event %05d\n" % i for i in range(20_000)))
    wait_for(
        "spool errors",
        lambda: [x for x in up.logs if x.get("event") == "forward_sender_error"],
        bool,
    )
    spooled = up.stats()["Spooled"]
    assert up.stop() == 0
    lost = [x for x in up.logs if x.get("event") == "forward_undelivered"]
    assert lost and spooled + lost[0]["events"] == 20_000, (spooled, lost)


def test_a_wrong_url_is_a_sink_failure_not_dead_letters(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    receiver.status = 404
    cfg = group("web", [receiver.url])
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    up.send(b"".join(b"event %04d\n" % i for i in range(500)))
    stats = wait_for("spooled", up.stats, lambda s: s["Spooled"] == 500 and s["SinksDown"] == 1)
    assert stats["DeadLettered"] == 0 and receiver.posts < 20  # no halving per event
    receiver.status = 200
    wait_for("drained", up.stats, lambda s: settled(s, 500) and s["Forwarded"] == 500)
    assert receiver.texts() == [f"event {i:04d}" for i in range(500)]


def test_min_success_two_copies_or_the_spool(tmp_path: Path, server_factory: ServerFactory) -> None:
    """min_success 2 of 2 primaries: each gets every event; with one down, events spool."""
    ports = [free_port(), free_port()]
    downs = [
        server_factory("-P", str(tmp_path / f"d{i}"), "--port", str(p)) for i, p in enumerate(ports)
    ]
    urls = [f"tcp://127.0.0.1:{p}?ack=1" for p in ports]
    cfg = group("both", urls, min_success=2)
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    first = [b"both %05d\n" % i for i in range(5000)]
    up.send(b"".join(first))
    wait_for("forwarded", up.stats, lambda s: s["Forwarded"] == 5000)
    downs[1].stop()
    second = [b"one %05d\n" % i for i in range(5000)]
    up.send(b"".join(second))
    stats = wait_for("spooled", up.stats, lambda s: s["Spooled"] == 5000)
    assert stats["Forwarded"] == 5000  # one copy is not enough
    downs[1] = server_factory("-P", str(tmp_path / "d1b"), "--port", str(ports[1]))
    stats = wait_for("drained", up.stats, lambda s: settled(s, 10_000) and s["Forwarded"] == 10_000)
    for d in downs:
        d.stop()
    want = {line[:-1] for line in first + second}
    d0 = stored_lines(tmp_path / "d0")
    d1 = stored_lines(tmp_path / "d1") + stored_lines(tmp_path / "d1b")
    assert set(d0) == want and set(d1) == want
    # Events the live sink took while the other was down were sent to it again.
    duplicates = len(d0) + len(d1) - 2 * len(want)
    assert duplicates <= stats["ForwardRetried"], (duplicates, stats["ForwardRetried"])
