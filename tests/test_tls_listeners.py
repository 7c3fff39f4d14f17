"""TLS on every listener, with real clients: `openssl s_client` (ingest and query
ports), `curl` (HTTPS with mTLS required), Python's `ssl`, our own client in ack
mode. Clients without a valid certificate are refused where one is required;
plain-text clients to a TLS port fail cleanly and the listener goes on."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from logcaster.client import LogCasterClient
from logcaster.testing import ServerProcess, parse_stats, start_server, wait_for
from tests.sender_helpers import tool
from tests.tls_helpers import Pki, tls_query, tls_send


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _serve(directory: Path, config: dict[str, Any], *args: str) -> ServerProcess:
    path = directory / "logcaster.yaml"
    path.write_text(yaml.safe_dump(config))
    return start_server("--config", str(path), *args)


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """TLS on every listener; client certificates optional (checked when sent)."""
    server_pair = pki.server()
    config = {
        "tls": {
            "enabled": True,
            "cert_file": str(server_pair.cert),
            "key_file": str(server_pair.key),
            "ca_file": str(pki.ca_file),
            "client_auth": "optional",
        },
        "syslog": {"port": 0},
    }
    server = _serve(tmp_path_factory.mktemp("server"), config)
    yield server
    server.kill()


def _stats(server: ServerProcess, pki: Pki) -> dict[str, float]:
    return parse_stats(tls_query(server.query_port, "STATS", pki.client_context()))


def _wait_total(server: ServerProcess, pki: Pki, total: int) -> None:
    wait_for("Total", lambda: _stats(server, pki)["Total"], lambda t: t >= total)


def test_ready_line_names_the_tls_listeners(tls_server: ServerProcess) -> None:
    ready = next(doc for doc in tls_server.logs if doc.get("event") == "ready")
    assert ready["tls"] == ["http", "ingest", "query", "syslog"]


def test_openssl_s_client_to_ingest_and_query(tls_server: ServerProcess, pki: Pki) -> None:
    openssl = tool("openssl")
    before = _stats(tls_server, pki)["Total"]
    base = [openssl, "s_client", "-CAfile", str(pki.ca_file), "-verify_return_error", "-quiet"]
    sent = subprocess.run(
        [*base, "-no_ign_eof", "-connect", f"127.0.0.1:{tls_server.ingest_port}"],
        input=b"tls line one\ntls line two\n",
        capture_output=True,
        timeout=20,
    )
    assert sent.returncode == 0, sent.stderr
    _wait_total(tls_server, pki, int(before) + 2)
    asked = subprocess.run(
        [*base, "-connect", f"127.0.0.1:{tls_server.query_port}"],
        input=b"QUERY keyword=tls\n",
        capture_output=True,
        timeout=20,
    )
    assert asked.returncode == 0, asked.stderr
    assert b"tls line one" in asked.stdout and b"tls line two" in asked.stdout
    # With a client certificate (client_auth optional: checked, accepted).
    client = pki.client("s-client")
    counted = subprocess.run(
        [
            *base,
            "-cert",
            str(client.cert),
            "-key",
            str(client.key),
            "-connect",
            f"127.0.0.1:{tls_server.query_port}",
        ],
        input=b"COUNT\n",
        capture_output=True,
        timeout=20,
    )
    assert counted.stdout.startswith(b"COUNT: "), counted.stderr


def test_python_ssl_and_our_client_with_acks(tls_server: ServerProcess, pki: Pki) -> None:
    before = int(_stats(tls_server, pki)["Total"])
    tls_send(tls_server.ingest_port, b"python ssl line\n", pki.client_context())
    client = pki.client("app1")
    with LogCasterClient(
        "127.0.0.1",
        tls_server.ingest_port,
        ack=True,
        ca_file=str(pki.ca_file),
        cert_file=str(client.cert),
        key_file=str(client.key),
    ) as sender:
        sender.send(b"".join(b"acked over tls %d\n" % i for i in range(500)))
        assert sender.flush(10)
        assert sender.acking and sender.acked == 500
    _wait_total(tls_server, pki, before + 501)


def test_backpressure_over_tls_loses_nothing(
    pki: Pki, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A queue far smaller than the burst: reading pauses and resumes over TLS."""
    pair = pki.server("bp")
    config = {
        "ingest": {
            "tls": {"enabled": True, "cert_file": str(pair.cert), "key_file": str(pair.key)}
        },
        "queue": {"max_events": 500},
    }
    with _serve(tmp_path, config) as server:
        lines = 100_000
        tls_send(
            server.ingest_port,
            b"".join(b"burst %d\n" % i for i in range(lines)),
            pki.client_context(),
        )
        stats = server.wait_total(lines)  # the query port stays plain here
        assert stats["Dropped"] == 0


@pytest.mark.parametrize("port_name", ["ingest", "query", "http", "syslog"])
def test_plain_text_to_a_tls_port_fails_cleanly(
    tls_server: ServerProcess, pki: Pki, port_name: str
) -> None:
    port = tls_server.ports[port_name]
    before = _stats(tls_server, pki)["Total"]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\nplain text line\nCOUNT\n")
        got = b""
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
    # At most a TLS alert record (content type 21), never a protocol answer.
    assert not got or got[0] == 0x15, got[:40]
    # The listener still serves TLS, and nothing of the plain text was stored.
    tls_send(tls_server.ingest_port, b"after the plain client\n", pki.client_context())
    _wait_total(tls_server, pki, int(before) + 1)
    assert "plain text line" not in tls_query(
        tls_server.query_port, "QUERY keyword=plain", pki.client_context()
    )


def test_a_certificate_from_another_ca_is_refused(tls_server: ServerProcess, pki: Pki) -> None:
    """client_auth optional still checks a certificate that is sent."""
    stranger = pki.issue("stranger", "stranger", self_signed=True)
    assert _refused(tls_server.query_port, pki.client_context(stranger))
    assert not _refused(tls_server.query_port, pki.client_context(pki.client("known")))


def _refused(port: int, ctx: ssl.SSLContext) -> bool:
    """The handshake failed, or (TLS 1.3: the client's certificate is checked after
    the client finished) the server closed without an answer."""
    try:
        return tls_query(port, "COUNT", ctx) == ""
    except (ssl.SSLError, ConnectionError):
        return True


def test_https_with_client_certificates_required(pki: Pki, tmp_path: Path) -> None:
    """HTTP alone serves TLS (the global files), and requires a client certificate."""
    curl = tool("curl")
    pair = pki.server("https")
    config = {
        "tls": {
            "cert_file": str(pair.cert),
            "key_file": str(pair.key),
            "ca_file": str(pki.ca_file),
        },
        "http": {"tls": {"enabled": True, "client_auth": "required"}},
    }
    good = pki.client("curl-app")
    expired = pki.issue("expired", "old-app", expired=True)
    stranger = pki.issue("curl-stranger", "curl-stranger", self_signed=True)
    with _serve(tmp_path, config) as server:
        server.send(b"plain ingest still\n")  # the ingest port stays plain
        server.wait_total(1)
        url = f"https://127.0.0.1:{server.ports['http']}/api/v1/stats"
        base = [curl, "-sS", "--max-time", "10", "--cacert", str(pki.ca_file)]
        ok = subprocess.run(
            [*base, "--cert", str(good.cert), "--key", str(good.key), url],
            capture_output=True,
            timeout=20,
        )
        assert ok.returncode == 0, ok.stderr
        assert b'"Total":1' in ok.stdout
        for refused in (
            [],
            ["--cert", str(expired.cert), "--key", str(expired.key)],
            ["--cert", str(stranger.cert), "--key", str(stranger.key)],
        ):
            done = subprocess.run([*base, *refused, url], capture_output=True, timeout=20)
            assert done.returncode != 0, (refused, done.stdout)
        # Python's ssl without a certificate: refused too; the server goes on.
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx = pki.client_context()
            with (
                socket.create_connection(("127.0.0.1", server.ports["http"]), timeout=10) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                sock.sendall(b"GET /api/v1/stats HTTP/1.0\r\n\r\n")
                if not sock.recv(100):  # TLS 1.3: the refusal comes after the handshake
                    raise ConnectionResetError("closed")
        again = subprocess.run(
            [*base, "--cert", str(good.cert), "--key", str(good.key), url],
            capture_output=True,
            timeout=20,
        )
        assert again.returncode == 0, again.stderr


def test_min_version_1_3_refuses_tls_1_2(pki: Pki, tmp_path: Path) -> None:
    pair = pki.server("v13")
    config = {
        "query": {
            "tls": {
                "enabled": True,
                "cert_file": str(pair.cert),
                "key_file": str(pair.key),
                "min_version": "1.3",
            }
        }
    }
    with _serve(tmp_path, config) as server:
        old = pki.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        assert _refused(server.query_port, old)
        assert tls_query(server.query_port, "COUNT", pki.client_context()) == "COUNT: 0\n"
