"""Syslog daemons forwarding over TLS to LogCaster's syslog-tcp and ingest ports:
rsyslog's gtls driver (StreamDriverMode=1, x509/name with a permitted peer) and
syslog-ng's `network(transport(tls))`, both presenting client certificates to a
listener that requires them (tests/sender_helpers.py runs the daemons)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from logcaster.testing import ServerProcess, start_server, wait_for
from tests.sender_helpers import Rsyslogd, SyslogNg
from tests.tls_helpers import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _server(pki: Pki, directory: Path) -> ServerProcess:
    pair = pki.server()
    tls: dict[str, Any] = {
        "enabled": True,
        "cert_file": str(pair.cert),
        "key_file": str(pair.key),
        "ca_file": str(pki.ca_file),
        "client_auth": "required",
    }
    config = directory / "logcaster.yaml"
    config.write_text(yaml.safe_dump({"syslog": {"port": 0, "tls": tls}}))
    return start_server("--config", str(config))


def _stored(server: ServerProcess, word: str, expect: int) -> str:
    """Wait until `expect` events hold `word` (the query port stays plain here)."""
    return wait_for(
        f"{expect} events with {word}",
        lambda: server.query(f"QUERY keyword={word} limit=100"),
        lambda answer: answer.count(word) >= expect,
    )


def test_rsyslog_forwards_over_tls_with_a_permitted_peer(pki: Pki, tmp_path: Path) -> None:
    client = pki.client("rsyslog-sender")
    with _server(pki, tmp_path) as server:
        port = server.ports["syslog"]
        globals_ = (
            f'DefaultNetstreamDriverCAFile="{pki.ca_file}" '
            f'DefaultNetstreamDriverCertFile="{client.cert}" '
            f'DefaultNetstreamDriverKeyFile="{client.key}"'
        )
        action = (
            'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" '
            'StreamDriverPermittedPeers="localhost"'
        )
        with Rsyslogd(
            tmp_path / "rsyslog",
            port,
            "tcp",
            "RSYSLOG_SyslogProtocol23Format",
            globals=globals_,
            action=action,
        ) as rsyslog:
            rsyslog.send(*(f"<14>Jan  1 00:00:00 host app: rsyslogtls {i}" for i in range(5)))
            answer = _stored(server, "rsyslogtls", 5)
        assert "rsyslogtls 4" in answer
        assert server.ports["syslog"] == port


def test_rsyslog_with_a_wrong_permitted_peer_sends_nothing(pki: Pki, tmp_path: Path) -> None:
    """x509/name: a server whose name is not permitted is refused by the sender."""
    client = pki.client("rsyslog-strict")
    with _server(pki, tmp_path) as server:
        globals_ = (
            f'DefaultNetstreamDriverCAFile="{pki.ca_file}" '
            f'DefaultNetstreamDriverCertFile="{client.cert}" '
            f'DefaultNetstreamDriverKeyFile="{client.key}"'
        )
        action = (
            'StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" '
            'StreamDriverPermittedPeers="someone-else.example"'
        )
        with Rsyslogd(
            tmp_path / "rsyslog",
            server.ports["syslog"],
            "tcp",
            "RSYSLOG_SyslogProtocol23Format",
            globals=globals_,
            action=action,
        ) as rsyslog:
            rsyslog.send("<14>Jan  1 00:00:00 host app: notpermitted")
            wait_for(
                "rsyslog's complaint",
                lambda: (
                    (rsyslog.dir / "internal.log").read_text(errors="replace")
                    if (rsyslog.dir / "internal.log").exists()
                    else ""
                ),
                lambda text: "not permitted" in text or "permitted" in text,
            )
        assert "notpermitted" not in server.query("QUERY keyword=notpermitted")


def test_syslog_ng_network_transport_tls(pki: Pki, tmp_path: Path) -> None:
    client = pki.client("syslog-ng-sender")
    with _server(pki, tmp_path) as server:
        port = server.ports["syslog"]
        destination = (
            f'network("127.0.0.1" port({port}) transport("tls") '
            f'tls(ca-file("{pki.ca_file}") cert-file("{client.cert}") '
            f'key-file("{client.key}") peer-verify(required-trusted)))'
        )
        with SyslogNg(tmp_path / "syslog-ng", destination) as syslog_ng:
            syslog_ng.send(*(f"<14>Jan  1 00:00:00 app[1]: syslogngtls {i}" for i in range(5)))
            answer = _stored(server, "syslogngtls", 5)
        assert "syslogngtls 0" in answer
