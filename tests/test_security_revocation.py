"""Tokens over time: a revoked token cuts the connections and live tails it
opened; a client that never authenticates is cut; a token file broken while
the server runs changes nothing; a fleet reconnecting with one token is let in
whole; refused work is not audited as done."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

from logcaster.testing import wait_for
from tests.security_helpers import make_token, start_auth_server, token_command


def _read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    sock.settimeout(within_s)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionError):
        chunks.append(b"<still open>")
    return b"".join(chunks)


def test_revoking_a_token_cuts_its_connection_and_its_live_tail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = start_auth_server(data)
    try:
        sender = make_token(data, "sender2", "ingest")
        tailer = make_token(data, "tailer", "viewer")
        sock = socket.create_connection(("127.0.0.1", auth.server.ingest_port), 10)
        sock.sendall(f"#LOGCASTER AUTH {sender}\n[INFO] before revoke\n".encode())
        assert sock.recv(100) == b"#OK AUTH\n"
        tail = http.client.HTTPConnection("127.0.0.1", auth.server.ports["http"], timeout=10)
        tail.request("GET", "/api/v1/tail", headers={"Authorization": f"Bearer {tailer}"})
        stream = tail.getresponse()
        assert stream.status == 200
        for name in ("sender2", "tailer"):
            assert token_command("revoke", name, data=data).returncode == 0
        started = time.monotonic()
        assert _read_until_closed(sock, 5.0) == b"ERROR: unauthorized\n"
        body = stream.read()  # the stream ends
        assert b"event: end" in body and b"unauthorized" in body, body[-300:]
        assert time.monotonic() - started < 4.0
        sock.close()
        tail.close()
        cut = [e for e in auth.audit() if e.get("reason") == "token revoked or expired"]
        assert sorted(e["who"] for e in cut) == ["sender2", "tailer"]
    finally:
        auth.server.kill()


def test_a_connection_that_never_authenticates_is_cut(tmp_path: Path) -> None:
    auth = start_auth_server(tmp_path / "data", env={"LOGCASTER_AUTH__LOGIN_TIMEOUT": "1"})
    try:
        with socket.create_connection(("127.0.0.1", auth.server.ingest_port), 10) as sock:
            started = time.monotonic()
            sock.sendall(b"#LOGCASTER AUTH ")
            reply = b""
            sock.settimeout(0.3)
            for _ in range(20):  # one byte of a token every 0.3 s: a slowloris
                try:
                    sock.sendall(b"x")
                    reply += sock.recv(100)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if reply:
                    break
            assert reply.startswith(b"ERROR: unauthorized"), reply
            assert time.monotonic() - started < 3.0
    finally:
        auth.server.kill()


def test_a_token_file_broken_while_running_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = start_auth_server(data)
    try:
        viewer = auth.tokens["viewer"]
        assert auth.query("COUNT", viewer) == "COUNT: 0\n"
        (data / "security" / "tokens.json").write_text("{broken")
        time.sleep(1.2)  # the file is looked at once a second
        assert auth.query("COUNT", viewer) == "COUNT: 0\n"
        status = http.client.HTTPConnection("127.0.0.1", auth.server.ports["http"], timeout=10)
        status.request("GET", "/api/v1/stats", headers={"Authorization": f"Bearer {viewer}"})
        assert status.getresponse().status == 200
        status.close()
        # the log line crosses a pipe and a reader thread: wait for it, not a race
        failed = wait_for(
            "tokens_reload_failed logged",
            lambda: [d for d in auth.server.logs if d.get("event") == "tokens_reload_failed"],
            lambda found: len(found) > 0,
            timeout=10,
        )
        assert len(failed) == 1 and "kept" in failed[0]
        assert not any(
            d.get("level") == "error" and "Traceback" in str(d) for d in auth.server.logs
        )
    finally:
        auth.server.kill()


def test_a_fleet_reconnecting_with_one_token_is_let_in_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = start_auth_server(data)
    try:
        fleet = make_token(data, "fleet", "ingest")
        replies: list[bytes] = []
        lock = threading.Lock()

        def connect() -> None:
            with socket.create_connection(("127.0.0.1", auth.server.ingest_port), 20) as sock:
                sock.sendall(f"#LOGCASTER AUTH {fleet}\n".encode())
                reply = sock.recv(100)
                with lock:
                    replies.append(reply)

        threads = [threading.Thread(target=connect) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert replies == [b"#OK AUTH\n"] * 100
    finally:
        auth.server.kill()


def test_work_refused_by_a_rate_limit_or_a_role_is_not_audited_as_done(tmp_path: Path) -> None:
    env = {"LOGCASTER_RATE_LIMIT__QUERIES_PER_S": "0.1", "LOGCASTER_RATE_LIMIT__QUERIES_BURST": "1"}
    auth = start_auth_server(tmp_path / "data", env=env)
    try:
        viewer = auth.tokens["viewer"]
        before = len(auth.audit())
        replies = [auth.query("QUERY keyword=x", viewer) for _ in range(3)]
        assert [r.startswith("FOUND") for r in replies] == [True, False, False]
        added = auth.audit()[before:]
        assert [(e["action"], e["result"]) for e in added] == [("query", "allowed")]
        admin = auth.tokens["admin"]
        assert auth.query("QUERY keyword=x decrypt=1", viewer).startswith("ERROR: rate limited")
        refused = auth.query("QUERY keyword=x decrypt=1", auth.tokens["operator"])
        assert refused == "ERROR: unauthorized\n"
        (entry,) = auth.audit()[before + 1 :]
        assert (entry["action"], entry["result"], entry["who"]) == ("query", "denied", "operator-1")
        assert entry["reason"] == "role operator lacks DECRYPT"
        wait_for("admin", lambda: auth.query("COUNT", admin), lambda r: r == "COUNT: 0\n")
    finally:
        auth.server.kill()
