"""`GET /api/v1/tail` against real server processes: events sent over TCP arrive
as Server-Sent Events, filtered server-side like QUERY; replay with `since` /
`Last-Event-ID`; a reader that stops reading slows nothing and is told what it
missed; heartbeats; the subscriber cap; the drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.sender_helpers import tool
from tests.tail_helpers import Message, RawTail, SseParser, events, kinds, lines, skipped


def env(**options: str) -> dict[str, str]:
    return {**os.environ, **{f"LOGCASTER_HTTP__{k.upper()}": v for k, v in options.items()}}


OpenTail = Callable[..., RawTail]


@pytest.fixture
def open_tail() -> Iterator[OpenTail]:
    """Open `RawTail`s; every one is closed after the test, passed or not."""
    opened: list[RawTail] = []

    def make(*args: Any, **kwargs: Any) -> RawTail:
        tail = RawTail(*args, **kwargs)
        opened.append(tail)
        return tail

    yield make
    for tail in opened:
        tail.close()


def tail_url(server: ServerProcess, query: str = "") -> str:
    return f"http://127.0.0.1:{server.ports['http']}/api/v1/tail" + (f"?{query}" if query else "")


def json_query(server: ServerProcess, params: str) -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY {params} limit=10000 order=asc"))
    rows: list[dict[str, Any]] = answer["events"]
    return sorted(rows, key=lambda ev: ev["id"])


FILTERS: dict[str, list[tuple[str, str]]] = {
    "level": [("level", "ERROR")],
    "services": [("service", "db,auth")],
    "keyword": [("keyword", "event 1")],
    "or": [("keywords", "event 2,event 3"), ("operator", "OR"), ("level", "INFO")],
    "regex": [("regex", r"event \d*7 ")],
    "field": [("user", "alice"), ("level", "WARN")],
    "none": [],
}


def test_events_sent_over_tcp_arrive_filtered_as_query_would(
    server_factory: ServerFactory,
) -> None:
    """Each filter's live stream holds exactly the events JSON QUERY finds with the
    same parameters, in the same shape (read with aiohttp's client)."""
    server = server_factory()

    async def run() -> dict[str, list[Any]]:
        got: dict[str, list[Any]] = {}
        async with aiohttp.ClientSession() as session:
            responses = {
                name: await session.get(tail_url(server, urlencode(params)))
                for name, params in FILTERS.items()
            }
            parsers = {name: SseParser() for name in FILTERS}
            for name, response in responses.items():
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/event-stream")
                while not kinds(parsers[name].messages, "live"):  # subscribed
                    parsers[name].feed(await response.content.readany())
            await asyncio.to_thread(server.send, lines(0, 300))
            # Every stream ends at position 300: the last event, or an id-only
            # block for the events its filter left out.
            for name, response in responses.items():
                parser = parsers[name]
                while not parser.messages or parser.messages[-1].id != 300:
                    parser.feed(await response.content.readany())
                got[name] = events(parser.messages)
                response.close()
        return got

    got = asyncio.run(asyncio.wait_for(run(), 60))
    for name, params in FILTERS.items():
        expected = json_query(server, " ".join(f'{k}="{v}"' for k, v in params))
        assert got[name] == expected, name
        assert expected, name


def test_replay_since_and_last_event_id_have_no_gap_and_no_duplicate(
    server_factory: ServerFactory,
    open_tail: OpenTail,
) -> None:
    """Tails opened at moments spread over a flood, each with since=<the last id
    then>, get every id after it exactly once: replay, then live."""
    server = server_factory("--buffer-size", "200000", env=env(tail_queue_events="1000000"))
    port = server.ports["http"]
    total = 60_000
    opened: list[tuple[int, RawTail]] = []

    def send_all() -> None:
        for first in range(0, total, 2000):
            server.send(lines(first, 2000))

    flood = threading.Thread(target=send_all)
    flood.start()
    since = -1

    def delivered() -> int:
        return int(server.stats()["Delivered"])

    def moved(now: int) -> bool:
        return now > since or not flood.is_alive()

    while len(opened) < 2 or (flood.is_alive() and len(opened) < 12):
        # The next one once more events went through: spread over the flood.
        since = wait_for("more deliveries", delivered, moved)
        if len(opened) % 2:  # the header wins over the URL's since (a browser's reconnect)
            tail = open_tail(port, "since=0", headers={"Last-Event-ID": str(since)})
        else:
            tail = open_tail(port, f"since={since}")
        opened.append((since, tail))
        for _, each in opened:
            each.read(0.01)
    flood.join()
    server.wait_total(total)
    for since, tail in opened:
        tail.read_until("the last event", lambda m: bool(m) and m[-1].id == total)
        assert not skipped(tail.messages)
        assert [ev["id"] for ev in events(tail.messages)] == list(range(since + 1, total + 1))
        tail.close()
    assert len(opened) >= 2


def test_since_older_than_memory_says_how_many_ids_are_missing(
    server_factory: ServerFactory,
    open_tail: OpenTail,
) -> None:
    server = server_factory("--buffer-size", "100")
    server.send(lines(0, 500))
    server.wait_total(500)
    tail = open_tail(server.ports["http"], "since=10")
    messages = tail.read_until("the live marker", lambda m: bool(kinds(m, "live")))
    assert skipped(messages) == [
        {"count": 390, "first_id": 11, "last_id": 400, "reason": "not_in_memory"}
    ]
    assert [ev["id"] for ev in events(messages)] == list(range(401, 501))
    assert kinds(messages, "live")[0].doc == {"after_id": 500}
    # An id from another run (above every id): a reset, then live from the newest.
    again = open_tail(server.ports["http"], "since=9999")
    again.read_until("the live marker", lambda m: bool(kinds(m, "live")))
    assert kinds(again.messages, "reset")[0].doc == {"since": 9999, "last_id": 500}
    for t in (tail, again):
        t.close()


def test_a_reader_that_stops_reading_slows_nothing_and_is_told_what_it_missed(
    server_factory: ServerFactory,
    open_tail: OpenTail,
) -> None:
    """The reader stalls (a small receive buffer it does not read) while 100,000
    events go in. Every one is accepted and delivered meanwhile (STATS Total and
    Delivered, nothing dropped). When it reads again, it gets events and `skipped`
    notices: with no filter, events read + skipped counts == events published
    after it subscribed (its live marker), and the notices' id ranges are exactly
    the ids it did not get."""
    server = server_factory(env=env(tail_queue_events="1000"))
    slow = open_tail(server.ports["http"], rcvbuf=4096)
    slow.read_until("the live marker", lambda m: bool(kinds(m, "live")))
    total = 100_000
    for first in range(0, total, 10_000):
        server.send(lines(first, 10_000, pad=100))
    stats = wait_for(
        "every event delivered",
        server.stats,
        lambda s: s["Delivered"] >= total,
    )
    assert stats["Total"] == total and stats["Dropped"] == 0
    assert not slow.closed
    accounted = Accounted()
    slow.read_until("every published event accounted for", lambda m: accounted(m) >= total)
    got = [ev["id"] for ev in events(slow.messages)]
    notices = skipped(slow.messages)
    assert len(got) + sum(s["count"] for s in notices) == total
    assert notices and got, "the reader should have fallen behind, then caught up"
    assert all(s["reason"] == "slow" for s in notices)
    missed = [i for s in notices for i in range(s["first_id"], s["last_id"] + 1)]
    assert sorted(got + missed) == list(range(1, total + 1))
    assert got == sorted(set(got))
    stats = server.stats()  # the server counted what it skipped the same way
    assert (stats["TailSkipped"], stats["TailSubscribers"]) == (total - len(got), 1)
    slow.close()


class Accounted:
    """Events read + skipped counts so far, counted once per message."""

    def __init__(self) -> None:
        self.seen = 0
        self.total = 0

    def __call__(self, messages: list[Message]) -> int:
        for m in messages[self.seen :]:
            if m.event == "" and m.data is not None:
                self.total += 1
            elif m.event == "skipped":
                self.total += m.doc["count"]
        self.seen = len(messages)
        return self.total


def test_heartbeats_keep_an_idle_stream_talking_with_curl(server_factory: ServerFactory) -> None:
    curl = tool("curl")
    server = server_factory(env=env(tail_heartbeat_s="0.2"))
    proc = subprocess.Popen([curl, "-sN", tail_url(server, "level=ERROR")], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen: list[bytes] = []
        while seen.count(b": heartbeat\n") < 3:
            seen.append(proc.stdout.readline())
        assert b"event: live\n" in seen
    finally:
        proc.kill()
        proc.communicate()


def test_the_subscriber_cap_answers_503_and_a_disconnect_frees_a_place(
    server_factory: ServerFactory,
    open_tail: OpenTail,
) -> None:
    server = server_factory(env=env(tail_max_subscribers="2"))
    port = server.ports["http"]
    first, second = open_tail(port), open_tail(port)
    assert first.status == second.status == 200
    third = open_tail(port)
    assert third.status == 503
    assert "too many live tails" in orjson.loads(third.body)["error"]
    third.close()
    assert server.stats()["TailSubscribers"] == 2
    first.close()  # the server notices without writing to it
    wait_for("the unsubscribe", server.stats, lambda s: s["TailSubscribers"] == 1, timeout=5)

    def opened() -> int:
        tail = open_tail(port)
        tail.close()
        return tail.status

    wait_for("a free place", opened, lambda status: status == 200, timeout=10)
    second.close()


@pytest.mark.parametrize(
    "query",
    [
        "regex=(",
        "level=NOPE",
        "limit=5",
        "time_from=0",
        "order=asc",
        "keyword=",
        "since=-1",
        "since=abc",
        "since=20000000000000000000",  # past 64 bits (found by schemathesis)
        "since=1_0",
        "max_rate=99999999999999999999999",
        "backlog=99999999",
        "keywords=" + ",".join(["w"] * 100),
    ],
)
def test_bad_filters_are_a_400_before_any_stream(
    corpus_server: ServerProcess, query: str, open_tail: OpenTail
) -> None:
    tail = open_tail(corpus_server.ports["http"], query)
    assert tail.status == 400, tail.headers
    assert "application/json" in tail.headers
    assert orjson.loads(tail.body)["error"]
    tail.close()


def test_sigterm_ends_streams_cleanly_even_with_a_stalled_reader(
    server_factory: ServerFactory, open_tail: OpenTail, tmp_path: Path
) -> None:
    """curl (writing to a file: it keeps reading) sees `event: end`, then the
    chunked stream's proper end, and exits 0; a reader that stopped reading does
    not hold the drain: the server exits 0 without a drain timeout."""
    curl = tool("curl")
    server = server_factory()
    stalled = open_tail(server.ports["http"], rcvbuf=4096)
    out = tmp_path / "tail.txt"
    out.touch()
    proc = subprocess.Popen([curl, "-sSN", "-o", str(out), tail_url(server)])
    try:
        wait_for("curl's live marker", out.read_bytes, lambda text: b"event: live\n" in text)
        server.send(lines(0, 50_000, pad=100))
        server.wait_total(50_000)
        assert server.stop(signal.SIGTERM) == 0
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert out.read_bytes().endswith(b'event: end\ndata: {"reason":"shutdown"}\n\n')
    assert not [log for log in server.logs if log.get("event") == "http_drain_timeout"]
    stalled.read_to_eof()  # cut by the server


def test_one_line_sent_is_one_event_with_the_query_shape(
    corpus_server: ServerProcess, open_tail: OpenTail
) -> None:
    """Replay of the corpus server's memory: the same documents as JSON QUERY."""
    tail = open_tail(corpus_server.ports["http"], "since=0")
    tail.read_until("the live marker", lambda m: bool(kinds(m, "live")))
    assert events(tail.messages) == json_query(corpus_server, "")
    tail.close()


def test_max_rate_sends_at_most_that_and_says_what_it_left_out(
    server: ServerProcess, open_tail: OpenTail
) -> None:
    tail = open_tail(server.ports["http"], "max_rate=200")
    tail.read_until("live", lambda m: any(x.event == "live" for x in m))
    total = 20_000
    started = time.monotonic()
    server.send(lines(0, total))

    def reached(messages: list[Message]) -> bool:
        return bool(messages) and messages[-1].id == total

    tail.read_until("the last id", reached)
    seconds = time.monotonic() - started
    got = [ev["id"] for ev in events(tail.messages)]
    told = skipped(tail.messages)  # `rate`, and `slow` if the flood filled its queue first
    assert any(s["reason"] == "rate" for s in told)
    assert len(got) + sum(s["count"] for s in told) == total
    assert len(got) <= 200 * (seconds + 1) + 1  # one second saved up, then the rate
    covered = sorted(got + [i for s in told for i in range(s["first_id"], s["last_id"] + 1)])
    assert covered == list(range(1, total + 1))  # every id sent or told, once
    assert open_tail(server.ports["http"], "max_rate=x").status == 400
