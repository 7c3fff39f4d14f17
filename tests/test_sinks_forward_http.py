"""Forwarding over HTTP (NDJSON POSTs, SPEC §5) and dead letters (issue 6).

POSTs go out in call order; events the receiver refuses become dead letters
that `logcaster dlq` inspects and replays; a wrong URL is a sink failure, not
dead letters. Against an aiohttp receiver running in a thread
(tests/forward_helpers.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson

from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group, settled, write_config


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


def test_http_posts_go_out_in_call_order(receiver: HttpReceiver) -> None:
    from logcaster.pipeline.batch import Batch
    from logcaster.sinks.forward.transports import open_forward

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
    from logcaster.sinks.forward.transports import open_forward

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
    from logcaster.sinks.forward import deadletter
    from logcaster.sinks.forward.transports import Rejection

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
