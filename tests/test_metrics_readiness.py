"""GET /readyz over real sockets: a forward group without a sink up, a queue past
its high watermark and a draining server each make it 503, naming the failing
check; it recovers when the cause goes away."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp

from logcaster.app import Server
from logcaster.config import load_config
from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group, write_config
from tests.metrics_helpers import get_json, metrics_text, samples, value


def _ready(port: int) -> tuple[int, dict[str, object]]:
    return get_json(port, "/readyz")


def test_a_group_without_a_sink_up_is_not_ready_until_it_recovers(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    config = write_config(tmp_path, forward=[group("out", [receiver.url])])
    server = server_factory("--config", config)
    http = server.ports["http"]
    assert _ready(http)[0] == 200  # no traffic yet: the breaker is closed
    receiver.status = 503
    server.send(b"".join(b"event %d\n" % i for i in range(100)))
    _, doc = wait_for("not ready", lambda: _ready(http), lambda r: r[0] == 503)
    assert doc["failing"] == ["forward:out"] and doc["status"] == "not ready"
    checks = doc["checks"]
    assert isinstance(checks, dict)
    assert checks["forward:out"] == {"ok": False, "up": 0, "min_success": 1}
    assert doc["score"] == 100 - 30 * 1 / 2  # one sink of two (memory, the receiver) down
    found = samples(metrics_text(http))
    assert value(found, "logcaster_forward_sink_up", group="out") == 0
    assert value(found, "logcaster_forward_sink_breaker_state", state="closed") == 0
    assert value(found, "logcaster_forward_sinks_down", group="out") == 1
    assert value(found, "logcaster_ready") == 0
    assert value(found, "logcaster_forward_sink_errors_total", group="out") >= 3
    receiver.status = 200  # the breaker's next trial succeeds: failback
    _, doc = wait_for("ready again", lambda: _ready(http), lambda r: r[0] == 200)
    assert doc["failing"] == [] and doc["score"] == 100
    wait_for("forwarded", server.stats, lambda s: s["Forwarded"] == 100)
    found = samples(metrics_text(http))
    assert value(found, "logcaster_forward_sink_up", group="out") == 1
    assert value(found, "logcaster_forward_sink_events_total", group="out") == 100


def test_a_queue_past_its_high_watermark_is_not_ready(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """The only receiver is down and the group has no spool: its buffer fills, the
    pipeline waits for it, and the queue fills behind (block)."""
    receiver.status = 503
    cfg = group("out", [receiver.url], buffer_events=1000, batch_events=100)
    env = {**os.environ, "LOGCASTER_QUEUE__MAX_EVENTS": "2000"}
    server = server_factory("--config", write_config(tmp_path, forward=[cfg]), env=env)
    http = server.ports["http"]
    server.send(b"".join(b"event %d\n" % i for i in range(20_000)))
    status, doc = wait_for(
        "the queue past its watermark, the sink down",
        lambda: _ready(http),
        lambda r: r[1]["failing"] == ["queue", "forward:out"],
    )
    assert status == 503
    checks = doc["checks"]
    assert isinstance(checks, dict) and checks["queue"]["fill"] >= 0.8
    receiver.status = 200
    wait_for("forwarded", server.stats, lambda s: s["Forwarded"] == 20_000, timeout=60)
    assert wait_for("ready", lambda: _ready(http), lambda r: r[0] == 200)[1]["failing"] == []


def test_a_draining_server_is_not_ready() -> None:
    """`Server.stop` sets the flag first; HTTP stops accepting right after, so
    the test sets it on a running server to see the answer a probe gets then."""

    async def run() -> None:
        overrides = {"ingest.port": 0, "query.port": 0, "http.port": 0}
        server = Server(load_config(None, environ={}, overrides=overrides))
        await server.start()
        url = f"http://127.0.0.1:{server.ports['http']}/readyz"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(url) as r:
                    assert r.status == 200
                server.draining = True
                async with http.get(url) as r:
                    doc = await r.json()
                    assert r.status == 503
                assert doc["failing"] == ["draining"] and doc["score"] == 0
                server.draining = False
        finally:
            await server.stop()
        assert server.draining  # stop() set it before anything stopped

    asyncio.run(run())
