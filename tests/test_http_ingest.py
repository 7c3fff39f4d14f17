"""POST /api/v1/logs over real sockets: each body kind, gzip, every error status,
acks against fsync, and the drain. Clients: aiohttp's and curl."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.conftest import ServerFactory

NDJSON = "application/x-ndjson"


def url(server: ServerProcess, path: str = "/api/v1/logs") -> str:
    return f"http://127.0.0.1:{server.ports['http']}{path}"


def post(
    target: str, body: bytes, content_type: str | None = None, **headers: str
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One POST; (status, JSON answer, headers)."""

    async def go() -> tuple[int, dict[str, Any], dict[str, str]]:
        sent = dict(headers)
        if content_type is not None:
            sent["Content-Type"] = content_type
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=body, headers=sent) as resp,
        ):
            return resp.status, orjson.loads(await resp.read()), dict(resp.headers)

    return asyncio.run(go())


def events(server: ServerProcess, params: str = "") -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def test_a_json_object_is_one_event_parsed_like_a_json_line(server: ServerProcess) -> None:
    doc = {"level": "error", "service": "billing", "message": "card declined", "user_id": "u-1"}
    status, answer, headers = post(url(server), orjson.dumps(doc), "application/json")
    assert (status, answer) == (200, {"accepted": 1})
    assert headers["Content-Type"].startswith("application/json")
    [ev] = events(server)
    assert (ev["level"], ev["service"], ev["message"]) == ("ERROR", "billing", "card declined")
    assert ev["fields"]["user_id"] == "u-1"
    assert ev["source"].startswith("http:127.0.0.1:")


def test_an_array_takes_objects_and_strings(server: ServerProcess) -> None:
    body = orjson.dumps([{"level": "WARN", "message": "slow"}, "[ERROR] plain text line", "a\nb"])
    assert post(url(server), body, "application/json")[:2] == (200, {"accepted": 3})
    rows = events(server)
    assert [ev["level"] for ev in rows] == ["WARN", "ERROR", None]
    assert rows[2]["body"] == "a\nb"  # a string with newlines stays one event


def test_ndjson_keeps_each_line_and_skips_blank_ones(server: ServerProcess) -> None:
    body = b'{"message": "one"}\r\n\n{"message": "two", "level": "debug"}\n'
    assert post(url(server), body, NDJSON)[:2] == (200, {"accepted": 2})
    assert [ev["message"] for ev in events(server)] == ["one", "two"]


def test_ndjson_labelled_application_json_is_taken_as_ndjson(server: ServerProcess) -> None:
    body = b'{"message": "one"}\n{"message": "two"}\n'
    assert post(url(server), body, "application/json")[:2] == (200, {"accepted": 2})


def test_text_lines_group_a_stack_trace_as_on_tcp(server: ServerProcess) -> None:
    body = (
        b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: charge failed\n"
        b"java.lang.IllegalStateException: pool exhausted\n"
        b"\tat com.pay.Pool.take(Pool.java:42)\n"
        b"\tat com.pay.Api.charge(Api.java:7)\n"
        b"[INFO] 2026-01-19 15:30:02.000 payment-api/v2.3.1 pod/p-1: next\n"
    )
    assert post(url(server), body, "text/plain")[:2] == (200, {"accepted": 2})
    first, second = events(server)
    assert first["body"].count("\n") == 3 and "Pool.java:42" in first["body"]
    assert second["message"] == "next"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies(server: ServerProcess, encoding: str) -> None:
    raw = b"".join(b'{"message": "zipped %d"}\n' % i for i in range(500))
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    status, answer, _ = post(url(server), body, NDJSON, **{"Content-Encoding": encoding})
    assert (status, answer) == (200, {"accepted": 500})
    server.wait_total(500)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"message": "ok"}\n{"message": \n', NDJSON, "line 2: invalid JSON"),
        (b'{"message": "ok"}\n\n[1, 2]\n', NDJSON, "line 3: expected a JSON object"),
        (b'[{"message": "ok"}, "fine", null]', "application/json", "element 2: expected"),
        (b"42", "application/json", "expected a JSON object or an array"),
        (b'{"message": "unterminated', "application/json", "invalid JSON"),
    ],
)
def test_a_bad_element_refuses_the_whole_request(
    server: ServerProcess, body: bytes, content_type: str, reason: str
) -> None:
    status, answer, _ = post(url(server), body, content_type)
    assert status == 400
    assert answer["error"].startswith(reason), answer
    assert server.stats()["Total"] == 0  # nothing of the request was taken


def test_bodies_over_the_bound_get_413_before_and_after_decoding(
    server_factory: ServerFactory,
) -> None:
    env = {**os.environ, "LOGCASTER_HTTP__MAX_BODY_BYTES": "65536"}
    server = server_factory(env=env)
    status, answer, _ = post(url(server), b"x" * 70_000, "text/plain")
    assert status == 413 and "http.max_body_bytes=65536" in answer["error"]
    bomb = gzip.compress(b"\n" * 50_000_000)  # 48 KiB that inflate to 50 MB
    assert len(bomb) < 65536
    status, answer, _ = post(url(server), bomb, "text/plain", **{"Content-Encoding": "gzip"})
    assert status == 413 and answer["error"].startswith("decoded body over")
    status, answer, _ = post(url(server), b"abc", "text/plain", **{"Content-Encoding": "br"})
    assert status == 415 and "Content-Encoding" in answer["error"]
    status, answer, _ = post(url(server), b"not gzip", "text/plain", **{"Content-Encoding": "gzip"})
    assert status == 400 and "compressed body" in answer["error"]
    assert server.stats()["Total"] == 0


def test_long_lines_are_cut_and_counted_as_on_tcp(server_factory: ServerFactory) -> None:
    env = {**os.environ, "LOGCASTER_INGEST__MAX_LINE_BYTES": "100"}
    server = server_factory(env=env)
    body = orjson.dumps([{"message": "m" * 300}, "t" * 300])
    assert post(url(server), body, "application/json")[:2] == (200, {"accepted": 2})
    assert post(url(server), b"u" * 300 + b"\n", "text/plain")[:2] == (200, {"accepted": 1})
    rows = events(server)
    assert all(len(ev["body"]) == 100 and ev["body"].endswith("...") for ev in rows)
    assert server.stats()["Truncated"] == 3


def test_unknown_paths_and_methods_answer_json(server: ServerProcess) -> None:
    async def go() -> list[tuple[int, Any, str | None]]:
        out = []
        async with aiohttp.ClientSession() as session:
            for method, path in (("GET", "/nowhere"), ("GET", "/api/v1/logs")):
                async with session.request(method, url(server, path)) as resp:
                    out.append((resp.status, await resp.json(), resp.headers.get("Allow")))
        return out

    (missing, _, _), (wrong, answer, allow) = asyncio.run(go())
    assert (missing, wrong, allow) == (404, 405, "POST")
    assert answer == {"error": "Method Not Allowed"}


def test_curl_posts_a_file_of_lines(server: ServerProcess, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (scripts/test-deps installs it)")
    lines = tmp_path / "app.log"
    lines.write_bytes(b"".join(b"[INFO] from curl %d\n" % i for i in range(100)))
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--data-binary", f"@{lines}", url(server)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert orjson.loads(out.stdout) == {"accepted": 100}
    gz = tmp_path / "app.log.gz"
    gz.write_bytes(gzip.compress(lines.read_bytes()))
    out = subprocess.run(
        ["curl", "-sS", "-H", "Content-Encoding: gzip", "--data-binary", f"@{gz}", url(server)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert orjson.loads(out.stdout) == {"accepted": 100}
    server.wait_total(200)


def test_acked_events_survive_a_kill(tmp_path: Path) -> None:
    """?ack=1 answers once the events are fsynced: a kill -9 right after the answer
    loses none of them (a one-second fsync interval would lose them otherwise)."""
    env = {
        **os.environ,
        "LOGCASTER_PERSIST__FSYNC": "interval",
        "LOGCASTER_PERSIST__FSYNC_INTERVAL_MS": "1000",
    }
    data = str(tmp_path / "data")
    server = start_server("-P", data, env=env)
    try:
        body = b"".join(b'{"message": "durable %d"}\n' % i for i in range(1000))
        status, answer, _ = post(url(server, "/api/v1/logs?ack=1"), body, NDJSON)
        assert (status, answer) == (200, {"accepted": 1000})
        status, answer, _ = post(
            url(server), b"[INFO] acked by header\n", None, **{"X-LogCaster-Ack": "1"}
        )
        assert (status, answer) == (200, {"accepted": 1})
    finally:
        server.kill()
    again = start_server("-P", data, env=env)
    try:
        assert again.query("QUERY keyword=durable limit=1").startswith("FOUND: 100+ matches")
        assert again.query("COUNT") == "COUNT: 1001\n"
    finally:
        again.kill()


def test_ack_compat_makes_every_answer_wait_for_durability(tmp_path: Path) -> None:
    """http.ack_compat: a request without ?ack=1 (a shipper cannot add one) is
    answered once durable too: killed right after, nothing is lost."""
    env = {
        **os.environ,
        "LOGCASTER_PERSIST__FSYNC": "interval",
        "LOGCASTER_PERSIST__FSYNC_INTERVAL_MS": "1000",
        "LOGCASTER_HTTP__ACK_COMPAT": "true",
    }
    data = str(tmp_path / "data")
    server = start_server("-P", data, env=env)
    try:
        body = b"".join(b'{"message": "compat %d"}\n' % i for i in range(500))
        status, answer, _ = post(url(server), body, NDJSON)
        assert (status, answer) == (200, {"accepted": 500})
    finally:
        server.kill()
    again = start_server("-P", data, env=env)
    try:
        assert again.query("COUNT") == "COUNT: 500\n"
    finally:
        again.kill()


def test_sigterm_answers_ack_waiters_after_the_drain(tmp_path: Path) -> None:
    """A request waiting for its fsync when SIGTERM comes is answered 200 once the
    drain made it durable, and the server exits cleanly."""
    env = {
        **os.environ,
        "LOGCASTER_PERSIST__FSYNC": "interval",
        "LOGCASTER_PERSIST__FSYNC_INTERVAL_MS": "60000",
    }
    server = start_server("-P", str(tmp_path / "data"), env=env)

    async def go() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            pending = asyncio.ensure_future(
                session.post(url(server, "/api/v1/logs?ack=1"), data=b"[WARN] last words\n")
            )
            await asyncio.sleep(0.5)
            assert not pending.done()  # waiting for an fsync a minute away
            server.proc.terminate()
            async with await pending as resp:
                return resp.status, await resp.json()

    try:
        assert asyncio.run(go()) == (200, {"accepted": 1})
        assert server.proc.wait(20) == 0
    finally:
        server.kill()


def test_block_waits_for_room_without_reading_the_body() -> None:
    """In-process, with the pipeline's worker not started yet: a full queue makes a
    request wait before its body is read (the kernel holds it, not the server), then
    answer 503 at the request timeout; once the worker drains, requests go through."""
    asyncio.run(_block_waits())


async def _block_waits() -> None:
    from logcaster.config import load_config
    from logcaster.frontends.http.ingest import IngestEndpoints
    from logcaster.frontends.http.server import Access, HttpServer
    from logcaster.pipeline.admission import Admission
    from logcaster.pipeline.pipeline import Pipeline
    from logcaster.pipeline.queue import BatchQueue
    from logcaster.security.roles import Permission
    from logcaster.sinks.memory import MemorySink
    from logcaster.stats import Stats

    config = load_config(
        None,
        environ={},
        overrides={
            "http.port": 0,
            "http.request_timeout": 1.0,
            "http.max_body_bytes": 256 << 20,
            "queue.max_events": 1000,
        },
    )
    stats = Stats()
    queue = BatchQueue(config.queue.max_events, config.queue.max_bytes)
    memory = MemorySink(100_000)
    pipeline = Pipeline(queue, [memory], stats)  # the worker is not started yet
    pipeline.admission = Admission(queue, config.queue, stats)
    http = HttpServer(config.http)
    http.mount(IngestEndpoints(config, pipeline, stats, http), Access(Permission.SEND, "ingest"))
    await http.start()
    target = f"http://127.0.0.1:{http.port}/api/v1/logs"
    try:
        async with aiohttp.ClientSession() as session:
            fill = b"".join(b"[INFO] fill %d\n" % i for i in range(1000))
            async with session.post(target, data=fill) as resp:
                assert (resp.status, await resp.json()) == (200, {"accepted": 1000})
            assert queue.full
            for _ in range(3):
                async with session.post(target, data=b"[INFO] waits\n") as resp:
                    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
                    assert "queue is full" in (await resp.json())["error"]
            # Requests that gave up leave nothing behind: one callback serves them all.
            assert len(queue._space_waiters) <= 1
            # A big body is left in the socket buffers while the request waits.
            sent = await _bytes_taken_while_waiting(http.port, 128 << 20)
            assert sent < 32 << 20, f"the server read {sent} bytes of a waiting body"
            waiting = asyncio.ensure_future(session.post(target, data=b"[INFO] goes through\n"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            pipeline.start()
            async with await waiting as resp:
                assert (resp.status, await resp.json()) == (200, {"accepted": 1})
            assert stats.received == 1001
    finally:
        await http.stop()
        await http.close()
        await pipeline.drain(5.0)


async def _bytes_taken_while_waiting(port: int, size: int) -> int:
    """Send a request of `size` body bytes until the socket stops taking them (or
    the server answers); return how many it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    writer.write(head)
    chunk = b"[INFO] x\n" * (1 << 16)
    sent = 0
    try:
        while sent < size:
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 0.3)
            except TimeoutError:
                break  # the kernel's buffers are full: the server is not reading
    finally:
        writer.transport.abort()
        await asyncio.sleep(0)
    del reader
    return sent - writer.transport.get_write_buffer_size()


def test_reject_policy_answers_503_and_takes_nothing(server_factory: ServerFactory) -> None:
    env = {
        **os.environ,
        "LOGCASTER_QUEUE__POLICY": "reject",
        "LOGCASTER_QUEUE__MAX_EVENTS": "64",
    }
    server = server_factory(env=env)
    body = b"".join(b"[INFO] too many at once %d\n" % i for i in range(100))
    status, answer, headers = post(url(server), body, "text/plain")
    assert status == 503 and headers["Retry-After"] == "1"
    assert "reject" in answer["error"]
    small = b"".join(b"[INFO] fits %d\n" % i for i in range(10))
    assert post(url(server), small, "text/plain")[:2] == (200, {"accepted": 10})
    wait_for("the fitting request stored", server.stats, lambda s: s["Delivered"] == 10)


def test_ndjson_lines_valid_only_together_are_refused(server: ServerProcess) -> None:
    """Each line must be one object on its own: lines that only parse joined (an
    object split over two lines, two objects on one line) are a 400, not stored."""
    for body in (b'{"a": [{}\n{}]}\n', b'{"x": 1},{"y": 2}\n', b'{"a": 1}\n{"b": 2} {"c": 3}\n'):
        status, answer, _ = post(url(server), body, NDJSON)
        assert status == 400, (body, answer)
        assert answer["error"].startswith("line "), answer
    assert server.stats()["Total"] == 0


def test_a_huge_array_of_tiny_objects_costs_its_size_not_more(server: ServerProcess) -> None:
    """349,523 `{}` in one 1 MiB body: each event keeps an exact-size text (an
    orjson buffer kept per event once took 1.4 GB here), and the request goes to
    the queue in bounded batches, so the memory ring keeps only what it holds."""
    import psutil

    proc = psutil.Process(server.pid)
    before = proc.memory_info().rss
    body = b"[" + b",".join([b"{}"] * 349_523) + b"]"
    assert post(url(server), body, "application/json")[:2] == (200, {"accepted": 349_523})
    server.wait_total(349_523)
    grown = proc.memory_info().rss - before
    assert grown < 300 << 20, f"RSS grew by {grown >> 20} MiB"
    assert server.query("COUNT") == "COUNT: 10000\n"
    answer = orjson.loads(server.query("JSON QUERY limit=1"))
    assert answer["returned"] == 1  # the ring answers without parsing the whole request


def test_deep_nesting_is_a_400_or_kept_in_the_body(server: ServerProcess) -> None:
    """Past orjson's 255 levels a body cannot be re-written: 400. A line nested
    300 deep is stored, and its deep field is a marker, so queries and the live
    tail can still render it (they once failed with a 500)."""
    deep = b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    status, answer, _ = post(url(server), b"[" + deep + b"]", "application/json")
    assert status == 400 and "nested too deeply" in answer["error"], answer
    line = b'{"message": "deep300", "x": ' + b"[" * 300 + b"]" * 300 + b"}\n"
    assert post(url(server), line, NDJSON)[:2] == (200, {"accepted": 1})

    async def query_and_tail() -> tuple[dict[str, Any], bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.get(url(server, "/api/v1/query?keyword=deep300")) as resp:
                assert resp.status == 200
                found = await resp.json()
            async with session.get(url(server, "/api/v1/tail?backlog=1&keyword=deep300")) as resp:
                assert resp.status == 200
                head = await resp.content.readuntil(b"\n\n")
                while b"data:" not in head:
                    head = await resp.content.readuntil(b"\n\n")
        return found, head

    found, head = asyncio.run(query_and_tail())
    assert found["found"] == 1
    assert found["events"][0]["fields"]["x"].startswith("[nested deeper than")
    assert b"deep300" in head


def test_multipart_uploads_are_refused_with_a_hint(server: ServerProcess, tmp_path: Path) -> None:
    upload = tmp_path / "app.log"
    upload.write_bytes(b"[INFO] one\n")
    out = subprocess.run(
        ["curl", "-sS", "-w", "\\n%{http_code}", "-F", f"file=@{upload}", url(server)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    answer, status = out.stdout.rsplit(b"\n", 1)
    assert status == b"415" and b"send the file itself" in answer
    assert server.stats()["Total"] == 0


def test_connections_past_the_cap_get_a_readable_503(server_factory: ServerFactory) -> None:
    env = {**os.environ, "LOGCASTER_HTTP__MAX_CONNECTIONS": "2"}
    server = server_factory(env=env)

    async def go() -> tuple[int, str]:
        held = [await asyncio.open_connection("127.0.0.1", server.ports["http"]) for _ in range(2)]
        await asyncio.sleep(0.2)
        try:
            out = await asyncio.create_subprocess_exec(
                "curl",
                "-sS",
                "-w",
                "\n%{http_code}",
                url(server, "/healthz"),
                stdout=asyncio.subprocess.PIPE,
            )
            stdout, _ = await out.communicate()
            body, status = stdout.decode().rsplit("\n", 1)
            return int(status), body
        finally:
            for _, writer in held:
                writer.close()
                await writer.wait_closed()

    status, body = asyncio.run(go())
    assert (status, orjson.loads(body)) == (503, {"error": "too many connections"})
    wait_for("the refusal counted", server.stats, lambda s: s["HttpConnectionsRefused"] >= 1)


def test_the_body_budget_makes_a_second_large_body_wait() -> None:
    from logcaster.frontends.http.ingest import BodyBudget

    async def go() -> None:
        budget = BodyBudget(100)
        async with budget.hold(80, 1.0):
            async with budget.hold(20, 1.0):  # fits beside it
                assert budget.held == 100
            with pytest.raises(Exception) as refused:
                async with budget.hold(30, 0.2):  # would pass the budget: waits, gives up
                    pass
            assert type(refused.value).__name__ == "_BudgetFull"
        async with budget.hold(500, 0.1):  # alone, any size proceeds
            assert budget.held == 500
        assert budget.held == 0

    asyncio.run(go())
