"""One timed HTTP ingest run against a fresh `logcaster serve` (bench/http).

The server is started and stopped as bench/ingest does (bench/_ingest_run.py),
so both transports run the same build with the same settings. `clients`
aiohttp connections POST the prepared bodies (bench/_http_bodies.py), each
taking the next body when its answer is in; the clock starts just before the
first request and stops as bench/ingest's does, at the STATS reply that shows
every event delivered. The events the answers accepted are summed and checked
against the corpus and against the server's final STATS Total.

With subscribers (the fan-out part), bench/_http_tail.py runs in its own
process with that many `GET /api/v1/tail` streams open before the clock
starts, and reports what each stream got once ingest is over.
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

import _corpus
from _common import BENCH_DIR, CHILDREN, BenchError, cpu_seconds, vm_hwm
from _http_bodies import Bodies
from _ingest_run import finish_logcaster, settle, start_logcaster, stop_logcaster, wait_total
from _query_port import stat_int, total_of

try:
    import uvloop
except ImportError:  # the sender then runs on asyncio's own loop
    uvloop = None  # type: ignore[assignment]

RETRY_AFTER_MAX_S = 5.0  # a 503/429 answer is retried after its Retry-After, at most this
TAIL_READY_S = 60.0
TAIL_REPORT_S = 120.0


@dataclass
class HttpRun:
    seconds: float
    events_per_s: float
    lines_per_s: float
    body_mb_per_s: float
    sent_s: float
    accepted: int
    requests: int
    retried: int  # requests answered 503/429 and sent again
    peak_rss_bytes: int | None
    cpu_s: float | None  # the server's CPU seconds over the timed part
    total: int
    stats: dict[str, str]
    exit_code: int | None
    subscribers: int = 0
    tail: dict[str, object] = field(default_factory=dict)  # bench/_http_tail.py's report
    warnings: list[str] = field(default_factory=list)


@dataclass
class Posted:
    t0: float
    sent_s: float
    accepted: int
    requests: int
    retried: int


async def _post_all(port: int, bodies: Bodies, clients: int, timeout_s: float) -> Posted:
    url = f"http://127.0.0.1:{port}{bodies.path}"
    headers = {"Content-Type": bodies.content_type}
    items = bodies.bodies
    state = {"next": 0, "accepted": 0, "requests": 0, "retried": 0}

    async def client(session: aiohttp.ClientSession) -> None:
        while state["next"] < len(items):
            index = state["next"]
            body = items[index]
            state["next"] += 1
            while True:
                async with session.post(url, data=body, headers=headers) as resp:
                    text = await resp.read()
                    state["requests"] += 1
                    if resp.status in (200, 204):  # Loki answers 204
                        state["accepted"] += _accepted(bodies, index, text)
                        break
                    if resp.status not in (429, 503):
                        raise BenchError(f"POST {url}: HTTP {resp.status} {text[:200]!r}")
                    state["retried"] += 1
                    wait = float(resp.headers.get("Retry-After", "1"))
                await asyncio.sleep(min(wait, RETRY_AFTER_MAX_S))

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Every connection is open before the clock starts, as with bench/ingest.
        await asyncio.gather(*(_touch(session, port) for _ in range(clients)))
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        sent_s = time.perf_counter() - t0
    return Posted(t0, sent_s, state["accepted"], state["requests"], state["retried"])


def _accepted(bodies: Bodies, index: int, answer: bytes) -> int:
    """Events a 2xx answer says were taken: LogCaster's `accepted`; for OTLP the
    body's records less partialSuccess' rejectedLogRecords; for Elasticsearch
    bulk the whole body when the answer's head says `"errors":false`, else the
    items without an error (Fluent Bit reads it so, looking only for
    `"errors":true`); for Loki (204, no body) the whole body. The senders share
    the server's two cores: parsing all 2,000 items of every bulk answer (with
    the stdlib, at first) was what held the bulk runs back."""
    if bodies.kind == "otlp":
        reply = ExportLogsServiceResponse.FromString(answer)
        return bodies.counts[index] - int(reply.partial_success.rejected_log_records)
    if bodies.kind == "loki":
        return bodies.counts[index]
    if bodies.kind == "esbulk":
        head = orjson.loads(answer[: answer.find(b',"items"')] + b"}")
        if head.get("errors") is False:
            return bodies.counts[index]
        items = orjson.loads(answer)["items"]
        return sum(1 for item in items if "error" not in next(iter(item.values())))
    return int(orjson.loads(answer)["accepted"])


async def _touch(session: aiohttp.ClientSession, port: int) -> None:
    async with session.get(f"http://127.0.0.1:{port}/api/v1/openapi.json") as resp:
        await resp.read()  # any answer will do (404 included): the connection is open


class Subscribers:
    """bench/_http_tail.py with `n` open streams."""

    def __init__(self, port: int, n: int) -> None:
        script = str(BENCH_DIR / "_http_tail.py")
        cmd = [sys.executable, script, "--port", str(port), "--subscribers", str(n)]
        self.proc = CHILDREN.spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        doc = self._line(TAIL_READY_S)
        if "ready" not in doc:
            self.close()
            raise BenchError(f"live-tail subscribers: {doc.get('error', doc)}")

    def _line(self, timeout_s: float) -> dict[str, object]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            raise BenchError("the live-tail subscriber process said nothing")
        doc: dict[str, object] = json.loads(line)
        return doc

    def report(self) -> dict[str, object]:
        """Stop reading once every stream is quiet; what each one got."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        self.proc.stdin.flush()
        return self._line(TAIL_REPORT_S)

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        CHILDREN.kill(self.proc)


def run_http(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    bodies: Bodies,
    clients: int,
    timeout_s: float,
    subscribers: int = 0,
) -> HttpRun:
    server = start_logcaster(server_cmd)
    tail: Subscribers | None = None
    failed = True
    try:
        if subscribers:
            tail = Subscribers(server.http_port, subscribers)
        expected = corpus.events
        warnings: list[str] = []
        cpu0 = cpu_seconds(server.proc.pid)
        posted = _run_loop(_post_all(server.http_port, bodies, clients, timeout_s))
        server.check()
        stats, end = wait_total(
            server.query_port, posted.t0, expected, timeout_s, server.check, warnings
        )
        seconds = end - posted.t0
        cpu1 = cpu_seconds(server.proc.pid)
        # Untimed from here.
        stats = settle(server.query_port, stats, server.check)
        report = tail.report() if tail is not None else {}
        _check(corpus, bodies, posted, stats, subscribers, report, warnings)
        rss = vm_hwm(server.proc.pid)
        code = stop_logcaster(server, warnings)
        failed = False
        return HttpRun(
            seconds=seconds,
            events_per_s=corpus.events / seconds,
            lines_per_s=corpus.lines / seconds,
            body_mb_per_s=bodies.nbytes / seconds / 1e6,
            sent_s=posted.sent_s,
            accepted=posted.accepted,
            requests=posted.requests,
            retried=posted.retried,
            peak_rss_bytes=rss,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            total=total_of(stats),
            stats=stats,
            exit_code=code,
            subscribers=subscribers,
            tail=report,
            warnings=warnings,
        )
    finally:
        if tail is not None:
            tail.close()
        finish_logcaster(server, failed)


def _run_loop(coro: Coroutine[Any, Any, Posted]) -> Posted:
    """The sender on uvloop when it is there (less client CPU beside the server)."""
    if uvloop is None:
        return asyncio.run(coro)
    result: Posted = uvloop.run(coro)
    return result


def _check(
    corpus: _corpus.CorpusInfo,
    bodies: Bodies,
    posted: Posted,
    stats: dict[str, str],
    subscribers: int,
    report: dict[str, object],
    warnings: list[str],
) -> None:
    """Answers, STATS and the subscribers' counts against what was sent."""
    if posted.accepted != bodies.events:
        warnings.append(f"the answers accepted {posted.accepted:,} of {bodies.events:,} events")
    if bodies.events != corpus.events:
        warnings.append(f"{bodies.events:,} events framed, the corpus holds {corpus.events:,}")
    received = stat_int(stats, "Total")
    if received != posted.accepted:
        warnings.append(f"STATS Total={received}, the answers accepted {posted.accepted:,}")
    dropped = stat_int(stats, "Dropped")
    if dropped:
        warnings.append(f"server dropped {dropped:,} events")
    if subscribers:
        events = report.get("events", [])
        skipped = report.get("skipped", [])
        assert isinstance(events, list) and isinstance(skipped, list)
        short = [e + s for e, s in zip(events, skipped, strict=True) if e + s != posted.accepted]
        if short:
            warnings.append(
                f"{len(short)} of {subscribers} streams got events + skipped != "
                f"{posted.accepted:,} (e.g. {short[0]:,})"
            )
