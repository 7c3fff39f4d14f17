"""Slow clients on every listener (slowloris) and size limits on every input.

Real sockets against a real server with short limits: clients that trickle a
line, a command, headers or a body are cut within the configured time while a
normal client is served meanwhile; over-long lines, messages, commands,
headers and bodies get their bound.
"""

from __future__ import annotations

import os
import select
import socket
import time
import urllib.request
from collections.abc import Callable

import orjson

from logcaster.testing import ServerProcess, query, wait_for
from tests.conftest import ServerFactory

SLOW = 5  # slowloris connections per test
LIMIT_S = 1.0  # each timeout under test
SLACK_S = 1.5  # the sweep's period, a loaded machine


def _env(**options: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"LOGCASTER_{key.upper()}": value for key, value in options.items()})
    return env


def _closed(sock: socket.socket, got: bytearray | None = None) -> bool:
    """Whether the server closed `sock` (EOF or reset); what it sent goes to `got`."""
    while True:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            data = sock.recv(65536)
        except OSError:
            return True
        if not data:
            return True
        if got is not None:
            got += data


def _trickle(
    socks: list[socket.socket],
    payload: bytes,
    every: float,
    within: float,
    normal: Callable[[], None],
    got: list[bytearray] | None = None,
) -> list[float]:
    """Send `payload` a byte at a time on every socket, `every` s apart, until the
    server closes each; call `normal` (a well-behaved client) in between. The
    seconds each lasted (AssertionError if one outlives `within`); what the server
    sent each goes to `got`."""
    started = time.monotonic()
    lasted: dict[int, float] = {}
    got = got if got is not None else [bytearray() for _ in socks]
    i = 0
    while len(lasted) < len(socks):
        elapsed = time.monotonic() - started
        assert elapsed < within, f"{len(socks) - len(lasted)} slow clients still open"
        for n, sock in enumerate(socks):
            if n in lasted:
                continue
            if _closed(sock, got[n]):
                lasted[n] = elapsed
                continue
            try:
                sock.sendall(payload[i % len(payload) : i % len(payload) + 1])
            except OSError:
                lasted[n] = elapsed
        normal()
        i += 1
        time.sleep(every)
    for sock in socks:
        sock.close()
    return [lasted[n] for n in range(len(socks))]


def _connect(port: int, count: int = SLOW) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def _http(server: ServerProcess, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{server.ports['http']}{path}"
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


# -- slowloris, port by port ---------------------------------------------------


def test_trickled_lines_are_cut_on_tcp_and_syslog(server_factory: ServerFactory) -> None:
    server = server_factory("--syslog-port", "0", env=_env(ingest__line_timeout=str(LIMIT_S)))
    served = 0

    def normal() -> None:
        nonlocal served
        served += 1
        server.send(b"normal line %d\n" % served)

    for port in (server.ingest_port, server.ports["syslog"]):
        lasted = _trickle(_connect(port), b"<13>slow", 0.1, LIMIT_S + SLACK_S + 2, normal)
        assert all(LIMIT_S - 0.2 <= t <= LIMIT_S + SLACK_S for t in lasted), lasted
    stats = wait_for("the counts", server.stats, lambda s: s["SlowClosed"] >= 2 * SLOW)
    assert stats["SlowClosed"] == 2 * SLOW
    # The normal client was served throughout, and what the slow ones sent is kept.
    wait_for("every event", server.stats, lambda s: s["Total"] >= served + 2 * SLOW)
    assert server.query("QUERY keyword=normal limit=1").startswith(f"FOUND: {served} ")
    assert server.query("QUERY keyword=slow limit=1").startswith(f"FOUND: {2 * SLOW} ")


def test_a_client_that_sends_lines_slowly_is_not_cut(server_factory: ServerFactory) -> None:
    """Slow but whole lines are a quiet client, not a slow one."""
    server = server_factory(env=_env(ingest__line_timeout="0.5"))
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        for i in range(6):
            sock.sendall(b"quiet %d\n" % i)
            time.sleep(0.25)
        assert not _closed(sock)
    assert server.stats()["SlowClosed"] == 0


def test_a_dribbled_query_command_is_cut(server_factory: ServerFactory) -> None:
    server = server_factory(env=_env(query__timeout=str(LIMIT_S)))
    socks = _connect(server.query_port)
    answered: list[str] = []
    replies = [bytearray() for _ in socks]
    told: dict[int, float] = {}  # when each slow client got its ERROR line
    started = time.monotonic()

    def normal() -> None:
        answered.append(server.query("COUNT", timeout=2))
        for n, reply in enumerate(replies):
            if reply and n not in told:
                told[n] = time.monotonic() - started

    # A byte every 0.2 s (the brief's client sends one a second: the same, sooner).
    # After its ERROR line the server reads and drops input for at most 2 s, then closes.
    _trickle(socks, b"COUNT", 0.2, LIMIT_S + SLACK_S + 2.5, normal, replies)
    assert all(r == b"ERROR: No command received within 1 s\n" for r in replies), replies
    assert all(LIMIT_S - 0.2 <= t <= LIMIT_S + SLACK_S for t in told.values()), told
    assert answered and all(a.startswith("COUNT: ") for a in answered)


def test_slow_http_headers_are_cut_with_408(server_factory: ServerFactory) -> None:
    server = server_factory(env=_env(http__header_timeout=str(LIMIT_S)))
    port = server.ports["http"]
    statuses: list[int] = []

    def normal() -> None:
        statuses.append(_http(server, "/api/v1/stats")[0])

    request = b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    socks = _connect(port)
    lasted = _trickle(socks, request, 0.1, LIMIT_S + SLACK_S + 2, normal)
    assert all(LIMIT_S - 0.2 <= t <= LIMIT_S + SLACK_S for t in lasted), lasted
    assert statuses and set(statuses) == {200}
    # A connection that sends nothing at all is cut the same way, and told why.
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT_S + SLACK_S) as sock:
        started = time.monotonic()
        answer = sock.recv(65536)
        assert time.monotonic() - started <= LIMIT_S + SLACK_S
    assert answer.startswith(b"HTTP/1.1 408 ")
    stats = _http(server, "/api/v1/stats")[1]
    assert orjson.loads(stats)["HttpSlowClosed"] == SLOW + 1


def test_keep_alive_idles_but_the_next_slow_request_is_cut(server_factory: ServerFactory) -> None:
    server = server_factory(env=_env(http__header_timeout=str(LIMIT_S)))
    with socket.create_connection(("127.0.0.1", server.ports["http"]), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(LIMIT_S + 0.5)  # idle between requests: keepalive_timeout's, not cut
        assert not _closed(sock)
        lasted = _trickle([sock], b"GET /api/v1/stats HTTP/1.1\r\n", 0.1, 5, lambda: None)
    assert LIMIT_S - 0.2 <= lasted[0] <= LIMIT_S + SLACK_S


def _post_slowly(port: int, length: int, piece: bytes, every: float, within: float) -> bytes:
    """POST a body of `length` bytes, `piece` every `every` s, until the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % length
        )
        started = time.monotonic()
        while True:
            assert time.monotonic() - started < within, "the slow body was not cut"
            readable, _, _ = select.select([sock], [], [], every)
            if readable:
                return sock.recv(65536)
            try:
                sock.sendall(piece)
            except OSError:
                return b""


def test_a_trickled_body_is_cut_with_408(server_factory: ServerFactory) -> None:
    env = _env(http__header_timeout="0.5", http__min_body_rate="1000")
    server = server_factory(env=env)
    port = server.ports["http"]
    started = time.monotonic()
    answer = _post_slowly(port, 100_000, b"slow body\n", 0.1, 5)  # 100 B/s
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"min_body_rate" in answer
    assert time.monotonic() - started <= 0.5 + SLACK_S
    # A body at the rate is taken, whole.
    body = b"fast enough line\n" * 500  # 8.5 KB in about 0.5 s
    answer = _post_slowly(port, len(body), body[:850], 0.05, 5)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    stats = orjson.loads(_http(server, "/api/v1/stats")[1])
    assert stats["HttpSlowClosed"] == 1


def test_a_body_past_request_timeout_is_cut(server_factory: ServerFactory) -> None:
    env = _env(http__request_timeout="1.5", http__min_body_rate="0")
    server = server_factory(env=env)
    started = time.monotonic()
    answer = _post_slowly(server.ports["http"], 100_000, b"x" * 50, 0.1, 5)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    assert 1.4 <= time.monotonic() - started <= 1.5 + SLACK_S


# -- size limits, input by input -----------------------------------------------


def test_size_limits_hold_on_every_input(server_factory: ServerFactory) -> None:
    env = _env(
        ingest__max_line_bytes="1024",
        syslog__max_message_bytes="1024",
        http__max_header_bytes="1024",
        http__max_body_bytes="2048",
    )
    server = server_factory("--syslog-port", "0", env=env)
    # TCP line: cut at the bound, marked, counted; the connection goes on.
    server.send(b"long " + b"a" * 5000 + b"\nafter the long line\n")
    # Syslog over TCP: the same for a message.
    server.send(b"<13>syslog " + b"b" * 5000 + b"\n", port=server.ports["syslog"])
    stats = wait_for("3 events", server.stats, lambda s: s["Current"] >= 3 and s["Truncated"] >= 2)
    assert stats["Truncated"] == 2
    doc = orjson.loads(server.query("JSON QUERY limit=10"))
    bodies = sorted(ev["body"] for ev in doc["events"])  # <13>syslog, after, long
    assert len(bodies[2]) == 1024 and bodies[2].startswith("long a")
    assert bodies[2].endswith("...")
    assert bodies[1] == "after the long line"
    assert bodies[0].startswith("<13>syslog b") and bodies[0].endswith("...")
    assert len(bodies[0].encode()) <= 1024
    # Query command: past 64 KiB, an error line.
    reply = query("127.0.0.1", server.query_port, "SEARCH " + "c" * 70_000)
    assert reply.startswith("ERROR: Command too long")
    # HTTP header and body.
    with socket.create_connection(("127.0.0.1", server.ports["http"]), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/stats HTTP/1.1\r\nX-Big: " + b"d" * 2000 + b"\r\n\r\n")
        assert sock.recv(65536).split(b" ", 2)[1] == b"400"  # aiohttp says HTTP/1.0
    status, body = _http(server, "/api/v1/logs", b"e" * 3000)
    assert status == 413 and b"max_body_bytes" in body
    assert _http(server, "/api/v1/stats")[0] == 200  # and the server goes on
