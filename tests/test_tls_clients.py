"""Our own outgoing connections over TLS, each verifying the server and showing a
client certificate to a server that requires one: forward sinks (tls:// with
acks, https://), the logging handler, and the CLI's query, tail and simulate."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from logcaster.client import LogCasterHandler
from logcaster.testing import ServerProcess, parse_stats, start_server, wait_for
from tests.tls_helpers import Pair, Pki, tls_query


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client(pki: Pki) -> Pair:
    return pki.client("logcaster-client")


@pytest.fixture(scope="module")
def secure(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Every listener TLS, client certificates required."""
    pair = pki.server()
    directory = tmp_path_factory.mktemp("secure")
    tls = {
        "enabled": True,
        "cert_file": str(pair.cert),
        "key_file": str(pair.key),
        "ca_file": str(pki.ca_file),
        "client_auth": "required",
    }
    config = directory / "logcaster.yaml"
    config.write_text(yaml.safe_dump({"tls": tls, "syslog": {"port": 0}}))
    server = start_server("--config", str(config))
    yield server
    server.kill()


def _total(server: ServerProcess, pki: Pki, client: Pair) -> int:
    answer = tls_query(server.query_port, "STATS", pki.client_context(client))
    return int(parse_stats(answer)["Total"])


def _wait(server: ServerProcess, pki: Pki, client: Pair, total: int) -> None:
    wait_for("Total", lambda: _total(server, pki, client), lambda t: t >= total)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", *args], capture_output=True, text=True, timeout=60
    )


def _tls_args(pki: Pki, client: Pair) -> list[str]:
    return ["--ca-file", str(pki.ca_file), "--cert", str(client.cert), "--key", str(client.key)]


def test_forward_sinks_over_tls_and_https(
    secure: ServerProcess, pki: Pki, client: Pair, tmp_path: Path
) -> None:
    before = _total(secure, pki, client)
    files = {
        "ca_file": str(pki.ca_file),
        "cert_file": str(client.cert),
        "key_file": str(client.key),
    }
    groups = [
        {
            "name": "over-tls",
            "primaries": [{"url": f"tls://127.0.0.1:{secure.ingest_port}?ack=1", **files}],
        },
        {
            "name": "over-https",
            "primaries": [
                {"url": f"https://localhost:{secure.ports['http']}/api/v1/logs", **files}
            ],
        },
    ]
    config = tmp_path / "upstream.yaml"
    config.write_text(yaml.safe_dump({"forward": groups}))
    with start_server("--config", str(config)) as upstream:
        upstream.send(b"".join(b"forwarded over tls %d\n" % i for i in range(200)))
        _wait(secure, pki, client, before + 400)
        stats = wait_for("forwarded", upstream.stats, lambda s: s.get("Forwarded", 0) >= 400)
        assert stats.get("ForwardFailed", 0) == 0


def test_cli_query_over_tls(secure: ServerProcess, pki: Pki, client: Pair) -> None:
    port = str(secure.query_port)
    done = _cli("query", "--tls", *_tls_args(pki, client), "--query-port", port, "COUNT")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("COUNT: ")
    # Not verified without our CA (the system's CAs do not know it).
    refused = _cli("query", "--tls", "--query-port", port, "COUNT")
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    https = f"https://127.0.0.1:{secure.ports['http']}"
    done = _cli("query", "--http", https, *_tls_args(pki, client), "STATS")
    assert done.returncode == 0 and done.stdout.startswith("STATS: "), done.stderr


def test_handler_and_cli_tail_and_simulate_over_tls(
    secure: ServerProcess, pki: Pki, client: Pair
) -> None:
    before = _total(secure, pki, client)
    handler = LogCasterHandler(
        "127.0.0.1",
        secure.ingest_port,
        tls=True,
        ca_file=str(pki.ca_file),
        cert_file=str(client.cert),
        key_file=str(client.key),
        close_timeout=10.0,
    )
    log = logging.getLogger("tls-handler-test")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(20):
            log.warning("handler over tls %d", i)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert handler.dropped == {}
    _wait(secure, pki, client, before + 20)
    tls = _tls_args(pki, client)
    for output in (
        f"tls://127.0.0.1:{secure.ingest_port}?ack=1",
        f"tls://127.0.0.1:{secure.ingest_port}",
        f"syslog+tls://127.0.0.1:{secure.ports['syslog']}",
        f"https://127.0.0.1:{secure.ports['http']}",
    ):
        done = _cli(
            "simulate", "--count", "30", "--interval", "0", "--seed", "7", "--output", output, *tls
        )
        assert done.returncode == 0, (output, done.stderr)
    _wait(secure, pki, client, before + 20 + 4 * 30)
    url = f"https://127.0.0.1:{secure.ports['http']}"
    done = _cli("tail", "--url", url, "-n", "3", *tls)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) >= 3
    refused = _cli("tail", "--url", url, "-n", "3", "--ca-file", str(pki.ca_file))
    assert refused.returncode != 0  # no client certificate: the server refuses
