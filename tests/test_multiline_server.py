"""Multi-line events through a real server (SPEC §2, §3): the seed-002 error blocks sent
over concurrent connections in random chunks, and the idle flush of a held event."""

from __future__ import annotations

import functools
import random
import socket
import time
from collections import Counter
from typing import Any

import orjson

from logcaster.testing import ServerProcess, run_threads
from tests.test_framing import SEED_JAVA_BLOCK, SEED_JAVA_BLOCK_2, SEED_PYTHON_BLOCK

SENDERS = 6
BLOCKS_PER_SENDER = 50

# Per block: (its body, the first line's level/service, its message, fields it must carry).
EXPECTED: dict[str, tuple[str, str, dict[str, str]]] = {
    SEED_JAVA_BLOCK: (
        "payment-api",
        "Connection pool exhausted: unable to acquire connection within 30s timeout",
        {"thread": "http-nio-8080-exec-23", "method": "POST", "route": "/api/v1/payments/8472"},
    ),
    SEED_PYTHON_BLOCK: (
        "auth-service",
        "JWT token validation failed: signature verification error",
        {
            "request_id": "req-842951",
            "user_id": "user-7234",
            "correlation_id": "a3f8b2c1-4d5e-6f7g",
        },
    ),
    SEED_JAVA_BLOCK_2: (
        "inventory-service",
        "Stock synchronization failed: pessimistic lock timeout after 10s",
        {"thread": "http-nio-8080-exec-17", "method": "POST", "route": "/api/v1/inventory/4829"},
    ),
}
BLOCKS = list(EXPECTED)


def single_line(rng: random.Random, tag: str) -> str:
    """A one-line event of some other format; none of them is ERROR or joins a neighbour."""
    templates = (
        "[INFO] 2026-01-19 15:30:01.234 order-service/v1.8.4: "
        "Order processed successfully: ORDER-{tag} ($234.56, 3 items)",
        "[WARN] 2026-01-19 15:30:05.456 payment-api/v2.3.1: "
        "Response time degraded: p95=1250ms (SLA: 500ms) {tag}",
        '{{"level": "info", "service": "notification-service", "msg": "email sent {tag}"}}',
        "INFO: user-profile-api/v1.2.0 pod/user-profile-api-1a2b3c-xyz789 profile {tag} saved",
        "2026-01-19 15:30:01 DEBUG cache warmed {tag}",
        "plain text line {tag} without a level",
    )
    return rng.choice(templates).format(tag=tag)


def sender_texts(sender: int) -> list[str]:
    """One connection's events: blocks, each after one or two single lines."""
    rng = random.Random(sender)
    texts: list[str] = []
    for i in range(BLOCKS_PER_SENDER):
        texts.extend(single_line(rng, f"{sender}-{i}-{j}") for j in range(rng.randint(1, 2)))
        texts.append(BLOCKS[(sender + i) % len(BLOCKS)])
    texts.append(single_line(rng, f"{sender}-end"))
    return texts


def send_in_random_chunks(port: int, data: bytes, seed: int) -> None:
    rng = random.Random(seed)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        i = 0
        while i < len(data):
            size = rng.randint(1, 16) if rng.random() < 0.3 else rng.randint(1, 3000)
            sock.sendall(data[i : i + size])
            i += size
            if rng.random() < 0.1:
                time.sleep(0.001)  # let the other senders' chunks in between


def query_json(server: ServerProcess, command: str) -> dict[str, Any]:
    doc = orjson.loads(server.query(f"JSON {command}"))
    assert isinstance(doc, dict), doc
    return doc


def wait_until(predicate: Any, timeout: float, what: str) -> float:
    """Poll `predicate()` until true; return the time it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def send_streams(server: ServerProcess, streams: list[list[str]], seed: int) -> None:
    """Each stream's texts over a connection of its own, all at once, in random
    chunks; returns once every connection has ended (and so its last held event
    has been submitted too)."""

    def run(sender: int) -> None:
        data = "".join(text + "\n" for text in streams[sender]).encode()
        send_in_random_chunks(server.ingest_port, data, seed=seed + sender)

    run_threads([functools.partial(run, sender) for sender in range(len(streams))])
    wait_until(lambda: server.stats()["Clients"] == 0, 15, "every connection to end")


def test_seed_blocks_over_concurrent_connections_become_one_event_each(
    server: ServerProcess,
) -> None:
    streams = [sender_texts(sender) for sender in range(SENDERS)]
    expected_total = sum(map(len, streams))
    send_streams(server, streams, seed=100)
    stats = server.stats()
    assert stats["Total"] == expected_total
    assert stats["Dropped"] == 0
    wait_until(
        lambda: query_json(server, "COUNT")["count"] == expected_total, 15, "the memory buffer"
    )

    errors_doc = query_json(server, "QUERY level=ERROR limit=10000 max_count=10000")
    blocks_sent = Counter(text for stream in streams for text in stream if text in EXPECTED)
    assert errors_doc["found"] == sum(blocks_sent.values()) == SENDERS * BLOCKS_PER_SENDER
    assert Counter(ev["body"] for ev in errors_doc["events"]) == blocks_sent
    for ev in errors_doc["events"]:
        service, message, fields = EXPECTED[ev["body"]]
        assert ev["level"] == "ERROR"
        assert ev["service"] == service
        assert ev["message"] == message
        assert ev["fields"].items() >= fields.items(), ev

    # Every event, not only the blocks: each text sent is exactly one event.
    everything = query_json(server, "QUERY limit=10000 max_count=10000")
    assert everything["found"] == expected_total
    sent = Counter(text for stream in streams for text in stream)
    assert Counter(ev["body"] for ev in everything["events"]) == sent

    # The fields are queryable; the text rows show each block's header, then its
    # message (on the block's second line: the header carries none).
    python_blocks = query_json(server, "QUERY request_id=req-842951 user_id=user-7234 limit=1")
    assert python_blocks["found"] == blocks_sent[SEED_PYTHON_BLOCK]
    rows = server.query("QUERY route=/api/v1/payments/8472 limit=3").splitlines()
    assert rows[0] == f"FOUND: {blocks_sent[SEED_JAVA_BLOCK]} matches"
    header, message = SEED_JAVA_BLOCK.split("\n")[:2]
    assert rows[1:] == [f"[2026-01-19 15:30:01] {header.rstrip()} {message}"] * 3


def test_idle_flush_releases_a_held_block_without_closing_the_connection(
    server: ServerProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        sock.sendall((SEED_PYTHON_BLOCK + "\n").encode())
        sent_at = time.monotonic()
        # The block is held: the next line could still continue it.
        count = query_json(server, "COUNT")["count"]
        if time.monotonic() - sent_at < 0.5:  # (unless this machine stalled)
            assert count == 0
        wait_until(lambda: query_json(server, "COUNT")["count"] == 1, 10, "the idle flush")
        # Not before the 1 s idle timeout (counted from the server's last read).
        assert time.monotonic() - sent_at >= 0.9
        recent = query_json(server, "RECENT 5")
        assert [ev["body"] for ev in recent["events"]] == [SEED_PYTHON_BLOCK]
        event = recent["events"][0]
        assert event["level"] == "ERROR"
        assert event["fields"]["correlation_id"] == "a3f8b2c1-4d5e-6f7g"
        assert server.stats()["Clients"] == 1  # still connected

        # The same connection goes on: a new block, flushed by the end of the stream.
        sock.sendall((SEED_JAVA_BLOCK + "\n").encode())
    wait_until(lambda: query_json(server, "COUNT")["count"] == 2, 10, "the second block")
    bodies = [ev["body"] for ev in query_json(server, "RECENT 5")["events"]]
    # By event time: the Java block carries its own (older) time, the Python one
    # is timed by its receive time.
    assert bodies == [SEED_PYTHON_BLOCK, SEED_JAVA_BLOCK]
    assert server.stats()["Total"] == 2
