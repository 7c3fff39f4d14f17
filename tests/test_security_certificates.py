"""Client certificates as identities (mTLS): with auth.enabled, syslog over TLS
takes a certificate whose subject maps to a role (auth.certificate_roles), and
a mapped certificate authenticates TCP ingest without an AUTH line."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from logcaster.testing import wait_for
from tests.security_helpers import AuthServer, make_token, start_auth_server
from tests.tls_helpers import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


@pytest.fixture
def mtls(pki: Pki, tmp_path: Path) -> Iterator[AuthServer]:
    pair = pki.server()
    config = {
        "tls": {
            "enabled": True,
            "cert_file": str(pair.cert),
            "key_file": str(pair.key),
            "ca_file": str(pki.ca_file),
            "client_auth": "optional",
        },
        "query": {"tls": {"enabled": False}},  # the test reads counts in plain text
        "syslog": {"port": 0},
        "auth": {
            "certificate_roles": [
                {"subject": "CN=relay", "role": "ingest"},
                {"subject": "CN=reader", "role": "viewer"},
            ]
        },
    }
    path = tmp_path / "logcaster.yaml"
    path.write_text(yaml.safe_dump(config))
    data = tmp_path / "data"
    env = {**os.environ, "LOGCASTER_CONFIG": str(path)}
    server = start_auth_server(data, env=env)
    try:
        yield server
    finally:
        server.server.kill()


def _send(port: int, data: bytes, ctx: ssl.SSLContext, wait_s: float = 2.0) -> bytes:
    """Send over TLS, then read what the server says until it closes (or `wait_s`:
    an accepted sender is not closed by the server)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(data)
        chunks = []
        sock.settimeout(wait_s)
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ssl.SSLError, ConnectionError):
            pass
    return b"".join(chunks)


def _found(auth: AuthServer, word: str) -> str:
    return auth.query(f"QUERY keyword={word}", auth.tokens["viewer"])


def test_syslog_over_tls_takes_a_mapped_certificate(mtls: AuthServer, pki: Pki) -> None:
    port = mtls.server.ports["syslog"]
    line = b"<13>1 2026-01-19T08:00:00Z web app - - - %s\n"
    relay = pki.client_context(pki.client("relay"))
    reader = pki.client_context(pki.client("reader"))  # a viewer may not send
    stranger = pki.client_context(pki.client("stranger"))  # signed, but not mapped
    none = pki.client_context()
    for ctx, sender in ((reader, b"byreader"), (stranger, b"bystranger"), (none, b"bynone")):
        assert _send(port, line % sender, ctx) == b"ERROR: unauthorized\n"
    assert _send(port, line % b"byrelay", relay, 0.3) == b""
    wait_for("the relay's", lambda: _found(mtls, "byrelay"), lambda r: r.startswith("FOUND: 1"))
    for word in ("byreader", "bystranger", "bynone"):
        assert _found(mtls, word).startswith("FOUND: 0")
    subjects = {e["who"] for e in mtls.audit() if e["how"] == "certificate"}
    assert {s.split(",")[0] for s in subjects} == {"CN=relay", "CN=reader"}


def test_tcp_ingest_takes_a_mapped_certificate_or_a_token(mtls: AuthServer, pki: Pki) -> None:
    port = mtls.server.ingest_port
    relay = pki.client_context(pki.client("relay"))
    assert _send(port, b"[INFO] certsent\n", relay, 0.3) == b""
    # Without a mapped certificate, the AUTH line as over plain TCP.
    token = make_token(mtls.data, "tls-sender", "ingest")
    plain = pki.client_context()
    reply = _send(port, f"#LOGCASTER AUTH {token}\n[INFO] tokensent\n".encode(), plain, 0.5)
    assert reply == b"#OK AUTH\n"
    assert _send(port, b"[INFO] nothingsent\n", plain) == b"ERROR: unauthorized\n"
    wait_for("both", lambda: _found(mtls, "certsent"), lambda r: r.startswith("FOUND: 1"))
    wait_for("both", lambda: _found(mtls, "tokensent"), lambda r: r.startswith("FOUND: 1"))
    assert _found(mtls, "nothingsent").startswith("FOUND: 0")
