"""SIGHUP re-reads certificates into the live contexts: open connections stay,
new handshakes get the new certificate, a bad file keeps the old one. And the
peer-subject helper, under uvloop as the server runs it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import ssl
import threading
from pathlib import Path

import uvloop
import yaml
from cryptography import x509

from logcaster.options import TlsConfig, TlsOverride
from logcaster.security.tls import TlsContexts, peer_subject
from logcaster.testing import start_server, wait_for
from tests.tls_helpers import Pki, peer_certificate


def test_sighup_reloads_the_certificate_without_dropping_connections(
    tmp_path: Path,
) -> None:
    pki = Pki(tmp_path / "pki")
    first = pki.server("first")
    live_cert, live_key = tmp_path / "server.crt", tmp_path / "server.key"
    shutil.copy(first.cert, live_cert)
    shutil.copy(first.key, live_key)
    config = tmp_path / "logcaster.yaml"
    tls = {"enabled": True, "cert_file": str(live_cert), "key_file": str(live_key)}
    config.write_text(yaml.safe_dump({"ingest": {"tls": tls}}))
    with start_server("--config", str(config)) as server:
        port = server.ingest_port
        old_serial = peer_certificate(port, pki.ca_file).serial_number
        ctx = pki.client_context()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as kept,
        ):
            kept.sendall(b"before reload\n")
            server.wait_total(1)
            second = pki.server("second")
            shutil.copy(second.cert, live_cert)
            shutil.copy(second.key, live_key)
            server.proc.send_signal(signal.SIGHUP)
            wait_for(
                "tls_reloaded",
                lambda: [d for d in server.logs if d.get("event") == "tls_reloaded"],
                bool,
            )
            new = peer_certificate(port, pki.ca_file)
            assert new.serial_number != old_serial
            assert new.serial_number == _serial(second.cert)
            kept.sendall(b"after reload, same connection\n")  # not dropped
            server.wait_total(2)
            # A bad key: the reload is refused (logged), the running certificate kept.
            live_key.write_text("not a key\n")
            server.proc.send_signal(signal.SIGHUP)
            failed = wait_for(
                "config_reload_failed",
                lambda: [d for d in server.logs if d.get("event") == "config_reload_failed"],
                bool,
            )
            assert "ingest.tls.key_file" in failed[0]["error"]
            assert peer_certificate(port, pki.ca_file).serial_number == new.serial_number
            kept.sendall(b"still here\n")
            server.wait_total(3)
        reloaded = [d for d in server.logs if d.get("event") == "config_reloaded"]
        assert reloaded and reloaded[0]["needs_restart"] == []


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_reload_keeps_the_old_context_when_the_new_files_fail(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pair = pki.server()
    base = TlsConfig(enabled=True, cert_file=str(pair.cert), key_file=str(pair.key))
    contexts = TlsContexts(base, {"query": TlsOverride()})
    ctx = contexts.server("query")
    assert ctx is not None and contexts.listeners == ["query"]
    broken = TlsConfig(enabled=True, cert_file=str(pair.cert), key_file=str(tmp_path / "x"))
    reloaded, failed = contexts.reload(broken, {"query": TlsOverride()})
    assert reloaded == [] and "query.tls.key_file" not in failed["query"]
    assert failed["query"].startswith("tls.key_file: cannot read")
    assert contexts.server("query") is ctx  # the same live object, still serving


def test_peer_subject_under_uvloop(tmp_path: Path) -> None:
    """The verified client certificate's subject, from a uvloop transport."""
    pki = Pki(tmp_path / "pki")
    pair = pki.server()
    base = TlsConfig(
        enabled=True,
        cert_file=str(pair.cert),
        key_file=str(pair.key),
        ca_file=str(pki.ca_file),
        client_auth="required",
    )
    server_ctx = TlsContexts(base, {"ingest": TlsOverride()}).server("ingest")
    client = pki.client("app1", org="Payments")
    seen: list[str | None] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            seen.append(peer_subject(transport))
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            Probe, "127.0.0.1", 0, ssl=server_ctx
        )
        port = server.sockets[0].getsockname()[1]
        ctx = pki.client_context(client)

        def connect() -> None:
            with (
                contextlib.suppress(ssl.SSLError, OSError),
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                sock.recv(10)

        thread = threading.Thread(target=connect)
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        server.close()
        await server.wait_closed()

    uvloop.run(main())
    assert seen == ["CN=app1,O=Payments"]


def test_peer_subject_is_none_without_a_checked_certificate() -> None:
    class Plain:
        def get_extra_info(self, name: str) -> object:
            return None

    assert peer_subject(Plain()) is None
