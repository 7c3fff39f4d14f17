"""Acknowledged delivery (issue 4, SPEC §2): the handshake, ACK counts, the client
library, the simulator, and kill -9 crash cycles with `fsync: always`."""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from logcaster.client import BufferFull, LogCasterClient, LogCasterHandler
from logcaster.segments import parse_segment_name, read_blocks
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory

HANDSHAKE = b"#LOGCASTER ACK 1\n"
ACCEPTED = b"#OK ACK 1\n"
ALWAYS = {**os.environ, "LOGCASTER_PERSIST__FSYNC": "always"}


class Replies:
    """Reads a raw socket's replies line by line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self, timeout: float = 10.0) -> bytes:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def until_ack(self, n: int, timeout: float = 10.0) -> list[int]:
        """Every ACK count up to and including `n`."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] < n:
            line = self.line(max(0.01, deadline - time.monotonic()))
            m = re.fullmatch(rb"ACK (\d+)\n", line)
            assert m, line
            seen.append(int(m[1]))
        return seen


def _lines(prefix: bytes, start: int, n: int) -> bytes:
    return b"".join(b"%s %08d\n" % (prefix, i) for i in range(start, start + n))


def _on_disk(data: Path) -> list[bytes]:
    """Every event text in the data directory, in id order (read-only: the server may run)."""
    out: list[bytes] = []
    rotated = sorted(p for p in data.iterdir() if parse_segment_name(p.name) is not None)
    for path in [*rotated, data / "active.log"]:
        for _, texts in read_blocks(path):
            out.extend(texts)
    return out


def test_handshake_then_cumulative_acks(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        sock.sendall(HANDSHAKE)
        assert replies.line() == ACCEPTED
        sock.sendall(_lines(b"a", 0, 10))
        acks = replies.until_ack(10)
        assert acks == sorted(acks) and acks[-1] == 10
        sock.sendall(_lines(b"a", 10, 5000))
        assert replies.until_ack(5010)[-1] == 5010
    wait_for("delivery", server.stats, lambda stats: stats["Delivered"] == 5010)
    assert server.query("COUNT") == "COUNT: 5010\n"  # the handshake is not an event


def test_handshake_in_pieces_and_lookalikes(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        for byte in HANDSHAKE:  # one byte per segment
            sock.sendall(bytes([byte]))
            time.sleep(0.002)
        assert replies.line() == ACCEPTED
        sock.sendall(b"one\n")
        assert replies.until_ack(1) == [1]
    # A plain client whose first line only looks like the handshake: ingested as text,
    # and it gets no bytes back.
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        sock.sendall(b"#LOGCASTER ACK 2\n#LOG\n")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        assert sock.recv(100) == b""
    server.send(b"#LOGC")  # a prefix, then the end of the stream: still an event
    wait_for("delivery", server.stats, lambda stats: stats["Delivered"] == 4)
    assert "#LOGCASTER ACK 2" in server.query("SEARCH LOGCASTER")


def test_held_multiline_event_is_acked_after_release(server_factory: ServerFactory) -> None:
    server = server_factory()
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        sock.sendall(HANDSHAKE + b"first\nERROR boom\n    at a.b(C.java:1)\n    at c.d(E.java:2)\n")
        assert replies.line() == ACCEPTED
        # "first" is out at once; the trace waits for the idle flush (1 s) as a whole.
        assert replies.until_ack(1) == [1]
        started = time.monotonic()
        assert replies.until_ack(4) == [4]
        assert time.monotonic() - started > 0.3
    assert server.query("COUNT") == "COUNT: 2\n"


def test_half_close_releases_the_held_event_and_gets_the_last_ack(
    server_factory: ServerFactory,
) -> None:
    # An idle flush this long would fail the test: the ack must come from the EOF.
    env = {**os.environ, "LOGCASTER_MULTILINE__IDLE_TIMEOUT": "60"}
    server = server_factory(env=env)
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        sock.sendall(HANDSHAKE + b"first\nERROR boom\n    at a.b(C.java:1)\n")
        assert replies.line() == ACCEPTED
        assert replies.until_ack(1) == [1]
        sock.shutdown(socket.SHUT_WR)
        assert replies.until_ack(3) == [3]
        with pytest.raises(EOFError):
            replies.line()  # then the server closes
    assert server.query("COUNT") == "COUNT: 2\n"


def test_ack_means_fsynced(server_factory: ServerFactory, tmp_path: Path) -> None:
    """With fsync always, what was acked is on disk even after kill -9 right after the ack."""
    data = tmp_path / "data"
    server = server_factory("-P", str(data), env=ALWAYS)
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        sock.sendall(HANDSHAKE)
        assert replies.line() == ACCEPTED
        sock.sendall(_lines(b"d", 0, 20_000))
        acked = replies.until_ack(1)[-1]
        server.stop(signal.SIGKILL)
    on_disk = _on_disk(data)
    assert len(on_disk) >= acked
    assert on_disk[:acked] == _lines(b"d", 0, acked).splitlines()


def test_graceful_stop_sends_the_last_acks(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory("-P", str(tmp_path / "data"))
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        replies = Replies(sock)
        sock.sendall(HANDSHAKE)
        assert replies.line() == ACCEPTED
        sock.sendall(_lines(b"g", 0, 3000) + b"ERROR last\n    at x.y(Z.java:1)\n")
        wait_for("reading", server.stats, lambda stats: stats["Total"] >= 3000)
        assert server.stop() == 0
        # Every line, the held trace included, is confirmed before the server closes.
        acks = replies.until_ack(3002)
        assert acks[-1] == 3002
        with pytest.raises(EOFError):
            replies.line()


def test_client_reconnects_and_resends(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data), env=ALWAYS)
    client = LogCasterClient("127.0.0.1", first.ingest_port, timeout=5)
    client.send(_lines(b"c", 0, 1000))
    assert client.flush(10) and client.acked == 1000
    first.stop(signal.SIGKILL)
    client.send(_lines(b"c", 1000, 1000))  # the server is gone: kept, not lost
    assert client.pending_lines == 1000
    second = server_factory("-P", str(data), env=ALWAYS)
    client.address = ("127.0.0.1", second.ingest_port)
    assert client.flush(10), client.pending_lines
    assert client.acked == 2000 and client.connects == 2
    assert client.close()
    assert second.stop() == 0
    texts = _on_disk(data)
    wanted = _lines(b"c", 0, 2000).splitlines()
    assert set(texts) == set(wanted)
    # The second batch may have reached the dead server's socket before the kill;
    # then it is on disk twice (at-least-once), never missing.
    assert len(texts) - len(wanted) <= 1000


def test_client_buffer_is_bounded() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens here
    client = LogCasterClient("127.0.0.1", port, max_pending_lines=100, timeout=0.2)
    client.send(_lines(b"b", 0, 100))
    with pytest.raises(BufferFull):
        client.send(_lines(b"b", 100, 1))
    assert client.pending_lines == 100 and not client.close(timeout=0.1)
    with pytest.raises(ValueError):
        LogCasterClient("127.0.0.1", port).send(b"no newline")


def test_logging_handler_with_a_text_formatter(server: ServerProcess, tmp_path: Path) -> None:
    """A formatter of one's own sends text lines; the server groups the traceback."""
    log = logging.getLogger("test_acks.handler")
    log.propagate = False
    handler = LogCasterHandler("127.0.0.1", server.ingest_port, fallback_path=tmp_path / "fb")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        log.warning("disk almost full")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("payment failed")
        assert handler.drain(10)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert server.query("COUNT") == "COUNT: 2\n"
    answer = server.query("JSON QUERY level=ERROR")
    assert "payment failed" in answer and "RuntimeError: boom" in answer  # one event


def test_simulator_with_acks(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory("-P", str(tmp_path / "data"), "--buffer-size", "100000")
    target = f"tcp://127.0.0.1:{server.ingest_port}?ack=1"
    cmd = [sys.executable, "-m", "logcaster", "simulate", "--interval", "0", "--count", "2000"]
    done = subprocess.run(
        [*cmd, "--seed", "3", "--output", target], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "sent=2000 unsent=0" in done.stderr
    # Acked means delivered: no waiting needed before counting.
    assert server.query("COUNT") == "COUNT: 2000\n"


def test_crash_cycles_lose_no_acknowledged_line(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Issue 4: kill -9 mid-ingest and restart, 20 times, acks on, fsync always.

    Lines are numbered; acks confirm a prefix of them (the client resends in
    order), so after the last restart lines 0..acked-1 must all be on disk. Then
    the client delivers the rest: at-least-once, with duplicates counted.
    """
    data = tmp_path / "data"
    rng = random.Random(4)
    client: LogCasterClient | None = None
    sent = 0
    acked_before_kill: list[int] = []
    in_flight: list[int] = []  # unconfirmed lines at each kill
    for _ in range(20):
        server = server_factory("-P", str(data), env=ALWAYS)  # raises if start-up fails
        if client is None:
            client = LogCasterClient(
                "127.0.0.1", server.ingest_port, max_pending_lines=50_000, timeout=1
            )
        client.address = ("127.0.0.1", server.ingest_port)
        killer = threading.Timer(rng.uniform(0.05, 0.4), server.stop, (signal.SIGKILL,))
        killer.start()
        while killer.is_alive():
            # Paced (~100k lines/s): the kill lands mid-stream with lines in flight,
            # and the directory stays small enough for quick restarts.
            time.sleep(0.003)
            try:
                client.send(_lines(b"n", sent, 500))
            except BufferFull:
                continue
            sent += 500
        killer.join()
        acked_before_kill.append(client.acked)
        in_flight.append(client.pending_lines)
    assert client is not None
    # The kills landed mid-stream: lines were sent but not yet confirmed.
    assert sum(1 for n in in_flight if n) >= 10, in_flight
    assert acked_before_kill[-1] > 0 and sent > acked_before_kill[-1]

    final = server_factory("-P", str(data), env=ALWAYS)
    texts = _on_disk(data)
    numbers = {int(t.split()[1]) for t in texts}
    missing = set(range(acked_before_kill[-1])) - numbers
    assert not missing, f"{len(missing)} acknowledged lines lost, e.g. {sorted(missing)[:5]}"

    client.address = ("127.0.0.1", final.ingest_port)
    assert client.close(timeout=30)
    assert final.stop() == 0
    texts = _on_disk(data)
    assert {int(t.split()[1]) for t in texts} == set(range(sent))
    duplicates = len(texts) - sent
    print(f"crash cycles: sent={sent} duplicates={duplicates}")
