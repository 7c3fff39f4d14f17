"""`logcaster tail` against real servers: the newest events and exit, `-f` that
follows, and a follow that survives a server restart (`-P`: ids go on) with
nothing lost or repeated, resuming with Last-Event-ID."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.conftest import ServerFactory
from tests.tail_helpers import lines


def tail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", "tail", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def url(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.ports['http']}"


def rows(server: ServerProcess, params: str = "") -> list[str]:
    """The line protocol's text rows, oldest first."""
    answer = server.query(f"QUERY {params} limit=10000 order=asc").splitlines()
    assert answer[0].startswith("FOUND:")
    return answer[1:]


class Follower:
    """`logcaster tail -f` in a child process; its output lines as they come."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "logcaster", "tail", "-f", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for text in stream:
            into.append(text.rstrip("\n"))  # noqa: PERF401 - each line as it comes

    def wait_lines(self, n: int) -> list[str]:
        return wait_for(f"{n} lines", lambda: list(self.out), lambda out: len(out) >= n)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        for thread in self._threads:
            thread.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def follower() -> Iterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for f in started:
        f.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    s = start_server()
    try:
        s.send(lines(0, 40))
        s.wait_total(40)
        yield s
    finally:
        s.kill()


def test_newest_events_as_rows_then_exit(server: ServerProcess) -> None:
    done = tail("--url", url(server), "-n", "3", "level=ERROR")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == rows(server, "level=ERROR")[-3:]


def test_newest_events_as_json(server: ServerProcess) -> None:
    done = tail("--url", url(server), "-n", "4", "--json", "service=db", "user=bob")
    assert done.returncode == 0, done.stderr
    answer = orjson.loads(server.query("JSON QUERY service=db user=bob limit=1000 order=asc"))
    assert [orjson.loads(text) for text in done.stdout.splitlines()] == answer["events"][-4:]


def test_a_bare_word_is_a_keyword(server: ServerProcess) -> None:
    done = tail("--url", url(server), "-n", "100", "event 3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == rows(server, 'keyword="event 3"')


def test_refusals_and_unreachable_servers(server: ServerProcess) -> None:
    refused = tail("--url", url(server), "regex=(")
    assert refused.returncode == 2
    assert "HTTP 400: bad regex" in refused.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens there
    down = tail("-f", "--url", f"http://127.0.0.1:{port}")
    assert down.returncode == 1
    assert "Connection refused" in down.stderr


def test_follow_prints_live_events(server_factory: ServerFactory, follower: list[Follower]) -> None:
    s = server_factory()
    s.send(lines(0, 3))
    s.wait_total(3)
    f = Follower("--url", url(s), "-n", "2", "level=INFO,ERROR")
    follower.append(f)
    f.wait_lines(2)  # the backlog: events 0 (INFO) and 1 (ERROR)
    s.send(lines(3, 12))
    s.wait_total(15)
    expected = rows(s, "level=INFO,ERROR")
    assert len(expected) == 8
    f.wait_lines(8)
    assert f.out == expected
    assert f.proc.poll() is None


def test_follow_resumes_after_a_restart_without_gap_or_duplicate(
    tmp_path: Path, follower: list[Follower]
) -> None:
    """The server stops (the stream's `end`), restarts on the same port with the
    same data directory (ids go on), and takes events before the follower is
    back: it resumes with Last-Event-ID, gets those from memory, then live ones.
    Every event is printed once, in order, as the line protocol's rows."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    args = ("-P", str(tmp_path / "data"), "--http-port", port)
    first = start_server(*args)
    try:
        first.send(lines(0, 5))
        first.wait_total(5)
        f = Follower("--url", f"http://127.0.0.1:{port}", "-n", "5")
        follower.append(f)
        f.wait_lines(5)
        first.send(lines(5, 5))
        f.wait_lines(10)
        assert first.stop(signal.SIGTERM) == 0
        wait_for("the reconnect notice", lambda: list(f.err), lambda err: bool(err))
    finally:
        first.kill()
    second = start_server(*args)
    try:
        second.send(lines(10, 5))  # while the follower is still away (backoff)
        second.wait_total(5)
        f.wait_lines(15)
        second.send(lines(15, 5))
        f.wait_lines(20)
        expected = rows(second)
        assert len(expected) == 20
        assert f.out == expected
        assert any("reconnecting" in text for text in f.err)
        assert any("reconnected, resuming after id 10" in text for text in f.err)
    finally:
        second.kill()
