"""Our own clients present tokens: the Python client and logging handler (AUTH
line), `logcaster query` (AUTH line; Bearer with --http) and `logcaster tail`
(Bearer), with --token or $LOGCASTER_TOKEN."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from logcaster.client import LogCasterClient, LogCasterHandler
from logcaster.testing import start_server, wait_for
from tests.security_helpers import AuthServer, start_auth_server


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path_factory.mktemp("auth") / "data")
    try:
        yield server
    finally:
        server.server.kill()


def _cli(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOGCASTER_TOKEN"}
    if token is not None:
        env["LOGCASTER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "logcaster", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _found(auth: AuthServer, word: str) -> str:
    return auth.query(f"QUERY keyword={word}", auth.tokens["viewer"])


def test_the_python_client_sends_its_token(auth: AuthServer) -> None:
    port = auth.server.ingest_port
    client = LogCasterClient("127.0.0.1", port, ack=True, token=auth.tokens["ingest"])
    client.send(b"".join(b"[INFO] clientsent %d\n" % i for i in range(50)))
    assert client.close(timeout=10)
    assert client.acked == 50
    refused = LogCasterClient("127.0.0.1", port, ack=True, token="lc_bad", timeout=1.0)
    refused.send(b"[INFO] never\n")
    assert not refused.close(timeout=1.0)  # nothing was accepted
    assert "did not accept the token" in str(refused.last_error)
    assert _found(auth, "clientsent").startswith("FOUND: 50")


def test_the_logging_handler_sends_its_token(auth: AuthServer) -> None:
    handler = LogCasterHandler(
        "127.0.0.1", auth.server.ingest_port, service="tokened", token=auth.tokens["ingest"]
    )
    log = logging.getLogger("tests.security.handler")
    log.addHandler(handler)
    try:
        log.warning("handlersent with a token")
    finally:
        log.removeHandler(handler)
        handler.close()
    wait_for("the record", lambda: _found(auth, "handlersent"), lambda r: r.startswith("FOUND: 1"))


def test_the_cli_presents_tokens(auth: AuthServer, tmp_path: Path) -> None:
    port = str(auth.server.query_port)
    http = auth.http
    viewer = auth.tokens["viewer"]
    assert _cli("query", "--port", port, "COUNT").stdout == "ERROR: unauthorized\n"
    assert _cli("query", "--port", port, "--token", viewer, "COUNT").stdout.startswith("COUNT:")
    assert _cli("query", "--port", port, "COUNT", token=viewer).stdout.startswith("COUNT:")
    assert _cli("query", "--http", http, "QUERY keyword=x").stdout == "ERROR: unauthorized\n"
    done = _cli("query", "--http", http, "QUERY keyword=x", token=viewer)
    assert done.stdout.startswith("FOUND: "), done
    refused = _cli("tail", "--url", http, "-n", "1")
    assert refused.returncode == 2 and "unauthorized" in refused.stderr
    assert _cli("tail", "--url", http, "-n", "1", "--token", viewer).returncode == 0


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_a_forward_sink_presents_its_token(auth: AuthServer, tmp_path: Path, scheme: str) -> None:
    """Another LogCaster forwards to this one (auth on) with an ingest token."""
    if scheme == "tcp":
        url = f"tcp://127.0.0.1:{auth.server.ingest_port}?ack=1"
    else:
        url = f"{auth.http}/api/v1/logs"
    group = {"name": "central", "primaries": [{"url": url, "token": auth.tokens["ingest"]}]}
    env = {**os.environ, "LOGCASTER_FORWARD": json.dumps([group])}
    word = f"forwarded{scheme}"
    with start_server("-P", str(tmp_path / "edge"), env=env) as edge:
        edge.send(b"".join(b"[INFO] %s %d\n" % (word.encode(), i) for i in range(20)))
        edge.wait_total(20)
        wait_for("the copies", lambda: _found(auth, word), lambda r: r.startswith("FOUND: 20"))
