"""A client's outgoing lines (frontends/irc/sendq.py): bounded, throttled, replies first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from logcaster.frontends.irc.sendq import Output


def _output(written: list[bytes], **kw: float) -> Output:
    return Output(
        written.append,
        rate=kw.get("rate", 100.0),
        burst=int(kw.get("burst", 10)),
        max_logs=int(kw.get("max_logs", 20)),
        max_replies=int(kw.get("max_replies", 100)),
        skipped_notice=lambda n: b"NOTICE skipped %d\r\n" % n,
    )


async def _until(done: Callable[[], object]) -> None:
    """Poll: the writer works by time (its rate), nothing signals the test."""
    async with asyncio.timeout(5.0):
        while not done():  # noqa: ASYNC110 - nothing signals the test
            await asyncio.sleep(0.005)


def _lines(written: list[bytes]) -> list[bytes]:
    return [line for chunk in written for line in chunk.splitlines(keepends=True)]


def test_replies_go_before_log_lines_at_the_rate() -> None:
    async def test() -> None:
        written: list[bytes] = []
        out = _output(written, rate=200.0, burst=10)
        for i in range(30):
            out.log(b"log %d\r\n" % i)
        out.reply(b"reply\r\n")
        task = asyncio.get_running_loop().create_task(out.run())
        started = time.monotonic()
        await _until(lambda: not out.queued)
        took = time.monotonic() - started
        task.cancel()
        lines = _lines(written)
        assert lines[0] == b"reply\r\n"
        assert lines[1:21] == [b"log %d\r\n" % i for i in range(20)]  # 10 skipped past max_logs
        assert lines[21:] == [b"NOTICE skipped 10\r\n"]  # told once drained
        # 10 at once (the burst), the other 11 at 200 a second: about 55 ms.
        assert took >= 0.04
        assert out.sent == 22

    asyncio.run(test())


def test_a_full_log_queue_skips_and_says_how_many_once_drained() -> None:
    async def test() -> None:
        written: list[bytes] = []
        out = _output(written, rate=10_000.0, burst=1000, max_logs=8)
        for i in range(20):
            out.log(b"log %d\r\n" % i)
        assert (out.skipped, out.unreported) == (12, 12)
        task = asyncio.get_running_loop().create_task(out.run())
        await _until(lambda: not (out.queued or out.unreported))
        task.cancel()
        lines = _lines(written)
        assert lines[-1] == b"NOTICE skipped 12\r\n"
        assert lines.count(b"NOTICE skipped 12\r\n") == 1
        assert out.skipped == 12 and out.unreported == 0

    asyncio.run(test())


def test_replies_are_never_skipped_but_bounded() -> None:
    written: list[bytes] = []
    out = _output(written, max_replies=100)
    for _ in range(150):
        out.reply(b"x\r\n")
    assert out.overflowed  # the server cuts such a client (SendQ exceeded)
    kept = out.close()
    assert len(kept) == 20 and out.queued == 0  # a few still go with the closing ERROR
    assert not out.log(b"late\r\n")


def test_a_blocked_socket_is_waited_for_and_timed() -> None:
    async def test() -> None:
        written: list[bytes] = []
        out = _output(written)
        out.blocked(True)
        out.reply(b"x\r\n")
        task = asyncio.get_running_loop().create_task(out.run())
        await asyncio.sleep(0.05)
        assert written == [] and out.stuck_for(time.monotonic()) >= 0.04
        out.blocked(False)
        await _until(lambda: written)
        assert out.stuck_for(time.monotonic()) == 0.0
        task.cancel()

    asyncio.run(test())
