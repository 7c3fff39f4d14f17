"""One source of truth: STATS (line protocol), GET /api/v1/stats and GET /metrics
show the same values, and promtool accepts the exposition.

A server with most of its parts on (the store, a forward group, syslog, HTTP),
in this process so the test can ask it which metric and labels each STATS name
is made of; every value compared is read over a real socket.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp

from logcaster.app import Server
from logcaster.config import load_config
from logcaster.metrics.registry import Readings, Value, stats_name
from logcaster.testing import parse_stats
from tests.forward_helpers import HttpReceiver, group
from tests.metrics_helpers import Samples, promtool_check, samples, value

# Values that move between two reads of a quiet server.
MOVING = {"Uptime"}


def _config(tmp_path: Path, receiver: HttpReceiver) -> Server:
    overrides = {
        "ingest.port": 0,
        "query.port": 0,
        "http.port": 0,
        "syslog.port": 0,
        "persist.dir": str(tmp_path / "data"),
        "store.index_delay_ms": 50,
        "forward": [group("copy", [receiver.url])],
        # The file-tail source's metrics too (docs/file-source.md): no file matches.
        "sources.files.inputs": [{"paths": [str(tmp_path / "*.log")], "service": "f"}],
    }
    return Server(load_config(None, environ={}, overrides=overrides))


async def _ask(port: int, command: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(command.encode() + b"\n")
    await writer.drain()
    reply = await reader.read()
    writer.close()
    return reply.decode()


def stats_from_metrics(readings: Readings, found: Samples) -> dict[str, Value]:
    """STATS rebuilt from /metrics' values: which family and labels make each STATS
    name comes from the server's declarations, every value from the exposition."""
    out: dict[str, Value] = {m.stats: 0 for m in readings.declared if m.stats is not None}
    for metric, labels, _ in readings.values:
        name = metric.family + ("_total" if metric.kind == "counter" else "")
        got = value(found, name, **dict(zip(metric.labels, labels, strict=True)))
        if metric.stats is not None:
            out[metric.stats] += got
        if metric.stats_by is not None:
            label, prefix = metric.stats_by
            by = stats_name(prefix, labels[metric.labels.index(label)])
            out[by] = out.get(by, 0) + got
    return out


async def _settled(server: Server, total: int) -> None:
    for _ in range(1000):
        s = server.stats_snapshot()
        if (
            s["Delivered"] == total
            and s["Forwarded"] == total
            and s["StoreIndexed"] == total
            and s["ForwardBuffered"] == 0
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not settled: {server.stats_snapshot()}")


def test_stats_json_and_metrics_agree_and_promtool_accepts(
    tmp_path: Path, receiver: HttpReceiver
) -> None:
    async def run() -> None:
        server = _config(tmp_path, receiver)
        await server.start()
        try:
            await _exercise(server)
        finally:
            await server.stop()

    async def _exercise(server: Server) -> None:
        ports = server.ports
        lines = b"".join(
            b"[WARN] 2026-01-19 10:00:00.000 api/v1 pod/a: slow %d\n" % i for i in range(500)
        )
        _, writer = await asyncio.open_connection("127.0.0.1", ports["ingest"])
        writer.write(lines + b"x" * 70_000 + b"\n")  # one line past ingest.max_line_bytes
        await writer.drain()
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"<14>Jan 19 10:00:00 host app: hello", ("127.0.0.1", ports["syslog"]))
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{ports['http']}"
            async with http.post(f"{base}/api/v1/logs", json=[{"msg": "a"}, "b"]) as r:
                assert r.status == 200
            await _settled(server, 504)
            for command in ("QUERY keyword=slow limit=5", "QUERY level=", "COUNT"):
                await _ask(ports["query"], command)
            # One session, one connection: HttpConnections is 1 for all three reads.
            async with http.get(f"{base}/api/v1/stats") as r:
                as_json = await r.json()
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
            line = parse_stats(await _ask(ports["query"], "STATS"))
        from_metrics = stats_from_metrics(server.readings(), samples(text))
        for moving in MOVING:
            as_json.pop(moving), from_metrics.pop(moving), line.pop(moving)
        assert as_json == from_metrics
        assert line == {k: float(v) for k, v in as_json.items()}
        # The parts this server has all counted something.
        assert as_json["Truncated"] == 1 and as_json["Forwarded"] == 504
        assert as_json["StoreIndexed"] > 0 and as_json["Queries"] == 3
        checked = await asyncio.to_thread(promtool_check, text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout == checked.stderr == ""  # no lint warnings either

    asyncio.run(run())
