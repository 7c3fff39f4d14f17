"""/metrics, /api/v1/stats and /healthz of a real server (a child process), over
real sockets: events counted by listener, level and component; drops by reason;
the level tally's `untallied` share; the histograms."""

from __future__ import annotations

import asyncio
import os
import socket

import aiohttp
import orjson
import pytest

from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.metrics_helpers import get_json, metrics_text, samples, value

PAY = b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: card declined %d\n"
USER = b"[INFO] 2026-01-19 15:30:02.000 user-service/v1.0.0 pod/u-1: login ok %d\n"


def _post_ndjson(port: int, docs: list[dict[str, object]]) -> dict[str, object]:
    async def post() -> dict[str, object]:
        body = b"".join(orjson.dumps(d) + b"\n" for d in docs)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/api/v1/logs",
                data=body,
                headers={"Content-Type": "application/x-ndjson"},
            ) as response,
        ):
            assert response.status == 200
            doc = await response.json()
            assert isinstance(doc, dict)
            return doc

    return asyncio.run(post())


def test_events_by_listener_level_and_component(server_factory: ServerFactory) -> None:
    server = server_factory("--syslog-port", "0")
    http = server.ports["http"]
    tcp = b"".join(PAY % i for i in range(30)) + b"".join(USER % i for i in range(20))
    tcp += b"a plain line without level\n"
    server.send(tcp)
    docs: list[dict[str, object]] = [
        {"level": "warn", "service": "gateway", "msg": f"slow {i}"} for i in range(7)
    ]
    assert _post_ndjson(http, docs) == {"accepted": 7}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        message = b"<11>1 2026-01-19T15:30:03Z host sshd 42 - - failed login"
        sock.sendto(message, ("127.0.0.1", server.ports["syslog"]))
    total = 51 + 7 + 1
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == total)
    # The tally runs once a second: poll until it has seen every event.
    found = wait_for(
        "the tally",
        lambda: samples(metrics_text(http)),
        lambda f: value(f, "logcaster_logging_entries_total") == total,
    )
    entries = "logcaster_logging_entries_total"
    assert value(found, entries, level="ERROR", component="payment-api") == 30
    assert value(found, entries, level="INFO", component="user-service") == 20
    assert value(found, entries, level="WARN", component="gateway") == 7
    assert value(found, entries, level="ERROR", component="sshd") == 1  # <11>: severity 3
    assert value(found, entries, level="none", component="none") == 1
    assert value(found, entries, level="untallied") == 0
    received = "logcaster_events_received_total"
    assert value(found, received, listener="tcp") == 51
    assert value(found, received, listener="http") == 7
    assert value(found, received, listener="syslog-udp") == 1
    assert value(found, "logcaster_events_accepted_total") == total
    # The texts' bytes, without the newlines that framed them.
    assert value(found, "logcaster_received_bytes_total", listener="tcp") == len(tcp) - 51
    assert value(found, "logcaster_received_bytes_total", listener="syslog-udp") == len(message)
    assert value(found, "logcaster_events_delivered_total") == total
    # Receive to durable, per event: every delivered event observed once.
    duration = "logcaster_logging_processing_duration_seconds"
    assert value(found, duration + "_count") == total
    assert value(found, duration + "_bucket", le="+Inf") == total
    assert value(found, "logcaster_queue_capacity_events") == 50_000
    # One gauge family for every listener's connections.
    listeners = {labels["listener"] for labels, _ in found["logcaster_connections"]}
    assert listeners == {"tcp", "syslog-tcp", "http"}
    assert value(found, "logcaster_memory_usage_bytes") > 10 << 20
    assert value(found, "process_resident_memory_bytes") > 0
    assert value(found, "logcaster_system_health_score") == 100
    assert value(found, "logcaster_ready") == 1


def test_queries_by_frontend_and_outcome(server_factory: ServerFactory) -> None:
    server = server_factory()
    http = server.ports["http"]
    server.send(b"".join(PAY % i for i in range(5)))
    server.wait_total(5)
    assert server.query("QUERY level=ERROR limit=3").startswith("FOUND: 5")
    assert server.query("QUERY level=").startswith("ERROR")  # does not parse
    assert server.query("QUERY regex=" + "(" * 40 + "a" + ")" * 40).startswith("ERROR")
    found = samples(metrics_text(http))
    queries = "logcaster_queries_total"
    # COUNT by wait_total and the search above, then one error and one cost limit
    assert value(found, queries, frontend="line", outcome="ok") >= 2
    assert value(found, queries, frontend="line", outcome="error") == 1
    assert value(found, queries, frontend="line", outcome="limit") == 1
    assert value(found, "logcaster_query_duration_seconds_count", frontend="line") == value(
        found, queries, frontend="line"
    )
    # The rows came from memory (no store): all of them.
    assert value(found, "logcaster_query_rows_total", source="memory") == 3
    assert value(found, "logcaster_cache_hit_ratio", cache="memory") == 1.0


@pytest.mark.parametrize("policy", ["drop_newest", "reject"])
def test_drops_by_listener_and_reason(server_factory: ServerFactory, policy: str) -> None:
    """A tiny queue drops on every read; /metrics names the listener and reason,
    and the tally accounts for every delivered event (most evicted unseen)."""
    env = {
        **os.environ,
        "LOGCASTER_QUEUE__POLICY": policy,
        "LOGCASTER_QUEUE__MAX_EVENTS": "64",
    }
    server = server_factory("--buffer-size", "100", env=env)
    n = 50_000
    server.send(b"".join(USER % i for i in range(n)))
    stats = wait_for(
        "every event accounted for",
        server.stats,
        lambda s: s["Total"] == n and s["Delivered"] + s["Dropped"] == n,
    )
    reason = "queue_full_newest" if policy == "drop_newest" else "rejected"
    stats_name = "DroppedQueueFullNewest" if policy == "drop_newest" else "DroppedRejected"
    assert stats["Dropped"] == stats[stats_name] > 0
    found = wait_for(
        "the tally",
        lambda: samples(metrics_text(server.ports["http"])),
        lambda f: value(f, "logcaster_logging_entries_total") == stats["Delivered"],
    )
    dropped = "logcaster_events_dropped_total"
    assert value(found, dropped, listener="tcp", reason=reason) == stats["Dropped"]
    assert value(found, dropped) == stats["Dropped"]
    assert value(found, "logcaster_events_received_total", listener="tcp") == n
    assert value(found, "logcaster_events_accepted_total", listener="tcp") == stats["Delivered"]
    entries = "logcaster_logging_entries_total"
    tallied = value(found, entries, level="INFO", component="user-service")
    untallied = value(found, entries, level="untallied", component="untallied")
    assert tallied > 0 and tallied + untallied == stats["Delivered"]
    assert value(found, "logcaster_queue_high_watermark_crossings_total") >= 1


def test_events_memory_evicted_before_the_tally_are_untallied(
    server_factory: ServerFactory,
) -> None:
    """100 events of memory and 100,000 sent at once: the ring evicts most of them
    before the tally's next run; they count as `untallied`, so the sum over the
    labels is still every delivered event."""
    server = server_factory("--buffer-size", "100")
    n = 100_000
    server.send(b"".join(USER % i for i in range(n)))
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == n)
    found = wait_for(
        "the tally",
        lambda: samples(metrics_text(server.ports["http"])),
        lambda f: value(f, "logcaster_logging_entries_total") == n,
    )
    entries = "logcaster_logging_entries_total"
    tallied = value(found, entries, level="INFO", component="user-service")
    untallied = value(found, entries, level="untallied", component="untallied")
    assert 100 <= tallied < n // 2 and tallied + untallied == n


def test_stats_json_and_health(server_factory: ServerFactory) -> None:
    server = server_factory()
    http = server.ports["http"]
    server.send(b"".join(USER % i for i in range(3)))
    server.wait_total(3)
    status, doc = get_json(http, "/api/v1/stats")
    assert (
        status == 200
        and doc["Total"] == 3
        and list(doc)[:4]
        == [
            "Total",
            "Dropped",
            "Current",
            "Clients",
        ]
    )
    assert get_json(http, "/healthz") == (200, {"status": "ok"})
    status, ready = get_json(http, "/readyz")
    assert status == 200 and ready["status"] == "ready" and ready["failing"] == []
    assert ready["score"] == 100
