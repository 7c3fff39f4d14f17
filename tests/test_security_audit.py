"""The audit log: exactly one entry per privileged action and per authentication
decision, refusals included; its format, rotation and retention (SPEC §9)."""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.security_helpers import AuthServer, start_auth_server, token_command

FIELDS = {"ts", "who", "how", "role", "action", "result", "from", "listener"}


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[AuthServer]:
    server = start_auth_server(tmp_path / "data")
    try:
        yield server
    finally:
        server.server.kill()


def _http(url: str, token: str | None, data: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=data)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _one_entry(auth: AuthServer, action: Callable[[], object]) -> list[dict[str, Any]]:
    """Run `action`; the audit entries it added."""
    before = len(auth.audit())
    action()
    return auth.audit()[before:]


def test_each_privileged_action_writes_exactly_one_entry(auth: AuthServer) -> None:
    t = auth.tokens
    http = auth.http
    bad = "lc_00000000_" + "C" * 43
    cases: list[tuple[str, Callable[[], object], dict[str, Any]]] = [
        (
            "line query",
            lambda: auth.query("QUERY keyword=x", t["viewer"]),
            {"action": "query", "result": "allowed", "who": "viewer-1", "role": "viewer"},
        ),
        (
            "line clear refused",
            lambda: auth.query("CLEAR", t["operator"]),
            {"action": "clear", "result": "denied", "reason": "role operator lacks DELETE_DATA"},
        ),
        (
            "line clear",
            lambda: auth.query("CLEAR", t["admin"]),
            {"action": "clear", "result": "allowed", "who": "admin-1"},
        ),
        (
            "line bad token",
            lambda: auth.query("COUNT", bad),
            {"action": "auth", "result": "denied", "reason": "bad token", "listener": "query"},
        ),
        (
            "line no token",
            lambda: auth.query("COUNT", None),
            {"action": "auth", "result": "denied", "reason": "no token"},
        ),
        (
            "line audit view",
            lambda: auth.query("AUDIT limit=3", t["admin"]),
            {"action": "audit", "result": "allowed"},
        ),
        (
            "line audit view refused",
            lambda: auth.query("AUDIT", t["viewer"]),
            {"action": "audit", "result": "denied"},
        ),
        (
            "line reload",
            lambda: auth.query("RELOAD", t["operator"]),
            {"action": "reload", "result": "ok", "who": "operator-1"},
        ),
        (
            "http query",
            lambda: _http(f"{http}/api/v1/query?keyword=x", t["viewer"]),
            {"action": "query", "result": "allowed", "listener": "http"},
        ),
        (
            "http query refused",
            lambda: _http(f"{http}/api/v1/query?keyword=x", t["ingest"]),
            {"action": "query", "result": "denied"},
        ),
        (
            "http no token",
            lambda: _http(f"{http}/api/v1/query?keyword=x", None),
            {"action": "auth", "result": "denied", "reason": "no token", "listener": "http"},
        ),
        (
            "http audit view",
            lambda: _http(f"{http}/api/v1/audit?limit=2", t["admin"]),
            {"action": "audit", "result": "allowed"},
        ),
        (
            "http reload",
            lambda: _http(f"{http}/api/v1/reload", t["admin"], b""),
            {"action": "reload", "result": "ok"},
        ),
        (
            "http reload refused",
            lambda: _http(f"{http}/api/v1/reload", t["viewer"], b""),
            {"action": "reload", "result": "denied"},
        ),
        (
            "tcp ingest connection",
            lambda: _ingest(auth, t["ingest"]),
            {"action": "auth", "result": "allowed", "listener": "ingest", "how": "token"},
        ),
        (
            "token create (CLI)",
            lambda: token_command("create", "--name", "n2", "--role", "viewer", data=auth.data),
            {"action": "token_create", "result": "ok", "how": "cli", "detail": "n2 (viewer)"},
        ),
        (
            "token revoke failed (CLI)",
            lambda: token_command("revoke", "nobody", data=auth.data),
            {"action": "token_revoke", "result": "failed", "reason": "no token named 'nobody'"},
        ),
    ]
    for name, action, expected in cases:
        added = _one_entry(auth, action)
        assert len(added) == 1, (name, added)
        (entry,) = added
        assert entry.keys() >= FIELDS, (name, entry)
        assert {k: entry.get(k) for k in expected} == expected, (name, entry)
        assert entry["ts"].endswith("Z")
        assert entry["from"].startswith("127.0.0.1:") or entry["from"] == "local"
    # Reads that are no privileged action, allowed: no entry.
    assert _one_entry(auth, lambda: auth.query("COUNT", t["viewer"])) == []
    assert _one_entry(auth, lambda: _http(f"{http}/healthz", None)) == []


def test_http_ingest_is_summarized_once_a_minute_per_client(auth: AuthServer) -> None:
    url = f"{auth.http}/api/v1/logs"
    first = _one_entry(auth, lambda: _http(url, auth.tokens["ingest"], b'{"message": "a"}'))
    assert [(e["action"], e["result"]) for e in first] == [("ingest", "allowed")]
    assert _one_entry(auth, lambda: _http(url, auth.tokens["ingest"], b'{"message": "b"}')) == []
    refused = _one_entry(auth, lambda: _http(url, auth.tokens["viewer"], b'{"message": "c"}'))
    assert [(e["action"], e["result"]) for e in refused] == [("ingest", "denied")]


def _ingest(auth: AuthServer, token: str) -> None:
    with socket.create_connection(("127.0.0.1", auth.server.ingest_port), 10) as sock:
        sock.sendall(f"#LOGCASTER AUTH {token}\n[INFO] audited\n".encode())
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass


def test_audit_rotates_and_keeps_retention_files_apart_from_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"LOGCASTER_AUDIT__MAX_FILE_BYTES": "4096", "LOGCASTER_AUDIT__RETENTION_FILES": "2"}
    auth = start_auth_server(data, env=env)
    try:
        for i in range(60):
            auth.query(f"QUERY keyword=rotation{i}", auth.tokens["viewer"])
        rotated = sorted((data / "audit").glob("audit-*.log"))
        assert len(rotated) == 2  # older ones deleted
        kept = [json.loads(line) for p in rotated for line in p.read_text().splitlines()]
        assert all(e["action"] == "query" for e in kept)
        # The admin view reads across files, newest first.
        view = auth.query("JSON AUDIT limit=30 action=query", auth.tokens["admin"])
        details = [e["detail"] for e in json.loads(view)["entries"]]
        assert details[0] == "QUERY keyword=rotation59" and len(details) == 30
        # Events never reach the audit directory, audit lines never the event store.
        assert not any("audited" in p.read_text() for p in (data / "audit").iterdir())
        reply = auth.query("QUERY keyword=rotation1", auth.tokens["viewer"])
        assert reply.startswith("FOUND: 0")
    finally:
        auth.server.kill()


def test_a_sighup_reload_is_audited(auth: AuthServer) -> None:
    before = len(auth.audit())
    os.kill(auth.server.pid, signal.SIGHUP)
    (entry,) = auth.wait_audit(before + 1)[before:]
    assert (entry["who"], entry["action"], entry["result"]) == ("signal:SIGHUP", "reload", "ok")
