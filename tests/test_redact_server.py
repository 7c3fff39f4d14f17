"""Redaction over a real server: secrets sent over TCP ingest, syslog (Python's
SysLogHandler over TCP) and HTTP (`POST /api/v1/logs`, aiohttp) come back
redacted from QUERY and are nowhere in the segment files on disk; Luhn-invalid
numbers and innocent text are untouched; JSON lines stay JSON with their other
fields queryable; an operator's rule works; STATS, /api/v1/stats and /metrics
count by rule."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from logcaster.testing import ServerProcess, start_server, wait_for

SECRETS = [
    "4111111111111111",
    "5555 5555 5555 4444",
    "hunter2",
    "s3cr3t-json",
    "eyJhbGciOiJIUzI1NiJ9.sig",
    "AKIAIOSFODNN7EXAMPLE",
    "bob@example.com",
    "123-45-6789",
    "syslog-pw-1",
    "http-pw-2",
    "6011111111111117",
]
CONFIG = """
redact:
  enabled: true
  builtins: [card, password, bearer, aws_key, email]
  rules:
    - name: ssn
      pattern: '\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b'
"""
TCP_LINES = [
    "pay card=4111111111111111 amount=12",
    "pay card 5555 5555 5555 4444 declined",
    "login user=alice password=hunter2 ok",
    '{"level":"info","service":"auth","message":"login","user":"carol","password":"s3cr3t-json"}',
    "call Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.sig done",
    "key AKIAIOSFODNN7EXAMPLE rotated",
    "mail to bob@example.com queued",
    "ssn 123-45-6789 checked",
    "order 4111111111111112 not a card",
    "plain innocent line 12345",
]


@pytest.fixture(scope="module")
def redacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    base = tmp_path_factory.mktemp("redact")
    config = base / "logcaster.yaml"
    config.write_text(CONFIG)
    data = base / "data"
    server = start_server("--config", str(config), "--persist", str(data), "--syslog-port", "0")
    try:
        server.send(("\n".join(TCP_LINES) + "\n").encode())
        # Before the others: QUERY's order is the order of arrival.
        wait_for("the TCP lines", lambda: len(_events(server)), lambda n: n == len(TCP_LINES))
        _syslog(server, "syslog login password=syslog-pw-1 from 10.0.0.1")
        status = _post(
            server,
            [
                {
                    "level": "warn",
                    "service": "shop",
                    "message": "paid",
                    "card": "6011111111111117",
                    "order_id": "o-7",
                },
                {"level": "info", "service": "shop", "message": "login token=http-pw-2"},
            ],
        )
        assert status == 200
        # An event is in memory (QUERY) once the file sink holds it, after Total counts it.
        wait_for("every event", lambda: len(_events(server)), lambda n: n == len(TCP_LINES) + 3)
        yield server, data
    finally:
        server.kill()


def _syslog(server: ServerProcess, message: str) -> None:
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", server.ports["syslog"]), socktype=socket.SOCK_STREAM
    )
    log = logging.getLogger(f"test_redact.{server.pid}")
    log.propagate = False
    log.addHandler(handler)
    try:
        log.warning(message)
    finally:
        log.removeHandler(handler)
        handler.close()


def _post(server: ServerProcess, docs: list[dict[str, Any]]) -> int:
    body = b"\n".join(orjson.dumps(d) for d in docs) + b"\n"
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/logs"

    async def go() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers={"Content-Type": "application/x-ndjson"}) as resp,
        ):
            return resp.status

    return asyncio.run(go())


def _events(server: ServerProcess, params: str = "") -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def test_secrets_come_back_redacted_from_every_listener(
    redacting: tuple[ServerProcess, Path],
) -> None:
    server, _ = redacting
    bodies = [ev["body"] for ev in _events(server)]
    text = "\n".join(bodies)
    for secret in SECRETS:
        assert secret not in text, secret
    assert bodies[: len(TCP_LINES)] == [
        "pay card=[REDACTED:card] amount=12",
        "pay card [REDACTED:card] declined",
        "login user=alice password=[REDACTED:password] ok",
        '{"level":"info","service":"auth","message":"login","user":"carol",'
        '"password":"[REDACTED:password]"}',
        "call Authorization: Bearer [REDACTED:bearer] done",
        "key [REDACTED:aws_key] rotated",
        "mail to [REDACTED:email] queued",
        "ssn [REDACTED:ssn] checked",
        "order 4111111111111112 not a card",
        "plain innocent line 12345",
    ]
    assert any("password=[REDACTED:password] from 10.0.0.1" in b for b in bodies)  # syslog
    assert any("token=[REDACTED:password]" in b for b in bodies)  # HTTP


def test_json_events_stay_json_and_their_other_fields_queryable(
    redacting: tuple[ServerProcess, Path],
) -> None:
    server, _ = redacting
    [carol] = _events(server, "user=carol")
    assert json.loads(carol["body"])["password"] == "[REDACTED:password]"
    assert (carol["service"], carol["fields"]["password"]) == ("auth", "[REDACTED:password]")
    [paid] = _events(server, "order_id=o-7")
    assert paid["fields"]["card"] == "[REDACTED:card]" and paid["level"] == "WARN"
    assert json.loads(paid["body"])["card"] == "[REDACTED:card]"


def test_no_secret_reaches_the_segment_files(redacting: tuple[ServerProcess, Path]) -> None:
    data = redacting[1]
    files = [p for p in data.rglob("*") if p.is_file()]
    wait_for(
        "the events on disk",
        lambda: b"".join(p.read_bytes() for p in files if p.suffix == ".log"),
        lambda raw: b"plain innocent line 12345" in raw and b"http-pw" not in raw,
    )
    raw = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
    assert b"[REDACTED:card]" in raw and b"order 4111111111111112 not a card" in raw


def test_redactions_are_counted_by_rule_in_stats_and_metrics(
    redacting: tuple[ServerProcess, Path],
) -> None:
    server, _ = redacting
    want = {
        "RedactedCard": 3,
        "RedactedPassword": 4,
        "RedactedBearer": 1,
        "RedactedAwsKey": 1,
        "RedactedEmail": 1,
        "RedactedSsn": 1,
    }
    stats = server.stats()
    assert {k: stats[k] for k in want} == want
    assert stats["Redacted"] == sum(want.values())
    base = f"http://127.0.0.1:{server.ports['http']}"

    async def get(path: str) -> str:
        async with aiohttp.ClientSession() as session, session.get(base + path) as resp:
            return await resp.text()

    api = json.loads(asyncio.run(get("/api/v1/stats")))
    assert {k: api[k] for k in want} == want
    metrics = asyncio.run(get("/metrics"))
    assert 'logcaster_redactions_total{rule="card"} 3.0' in metrics
    assert 'logcaster_redactions_total{rule="ssn"} 1.0' in metrics


def test_off_by_default(server_factory: Any) -> None:
    server = server_factory()
    server.send(b"password=hunter2\n")
    server.wait_total(1)
    assert _events(server)[0]["body"] == "password=hunter2"
    assert "Redacted" not in server.stats()
