"""Field encryption through a real server (docs/encryption.md): events sent over
TCP and HTTP are stored with their user_id and email sealed (the segment files
on disk hold no clear value), equality queries find them from memory and from
the store, `decrypt=1` shows them in clear, a rotated key (SIGHUP) encrypts
new events while old ones stay readable, and a bad keys file stops the start
with one line."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet, InvalidToken

from logcaster.security import keys as field_keys
from logcaster.testing import ServerProcess, start_server, wait_for
from tests.http_query_helpers import get, http_query
from tests.store_server_helpers import wait_indexed
from tests.tail_helpers import Message, SseParser, events
from tests.test_cli import clean_env, run_cli
from tests.test_operator_errors import assert_one_line_failure, serve

FIELDS = "[user_id, email]"
CLEAR = (b"alice", b"alice@example.com", b"bob@example.org")
# Over TCP: a JSON line, logfmt with a quoted value, key=value in a syslog line.
TCP_EVENTS = [
    b'{"level":"info","msg":"login ok","user_id":"alice","email":"alice@example.com"}',
    b'level=info msg="password reset" user_id=alice email="bob@example.org"',
    b"<13>1 2026-01-19T08:00:00.000Z web-1 auth - - - denied user_id=alice",
]
FILLER = 120  # lines of padding: with 4 KiB segments they rotate into the store


def env_for(**extra: str) -> dict[str, str]:
    return clean_env(
        LOGCASTER_ENCRYPT__FIELDS=FIELDS,
        LOGCASTER_PERSIST__MAX_FILE_BYTES="4096",
        LOGCASTER_PERSIST__FSYNC="never",
        **extra,
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def server(data: Path) -> Iterator[ServerProcess]:
    with start_server("-P", str(data), env=env_for()) as srv:
        yield srv


def post(server: ServerProcess, body: bytes, content_type: str) -> int:
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/logs"

    async def once() -> int:
        headers = {"Content-Type": content_type}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as r,
        ):
            return r.status

    return asyncio.run(once())


def send_all(server: ServerProcess) -> int:
    """TCP events, filler, and two HTTP events (NDJSON and text), delivered; their count."""
    filler = b"".join(
        b"INFO filler line %d with some padding to fill segments\n" % i for i in range(FILLER)
    )
    server.send(b"\n".join(TCP_EVENTS) + b"\n" + filler)
    ndjson = b'{"msg":"checkout","user_id":"alice","email":"alice@example.com","n":3}\n'
    assert post(server, ndjson, "application/x-ndjson") == 200
    assert post(server, b"audit user_id=alice email=alice@example.com done\n", "text/plain") == 200
    total = len(TCP_EVENTS) + FILLER + 2
    wait_for("delivery", server.stats, lambda s: s["Delivered"] >= total)
    return total


def stored_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data.iterdir()) if p.is_file())


def jquery(server: ServerProcess, params: str) -> dict[str, object]:
    reply = server.query(f"JSON QUERY {params} limit=100")
    doc: dict[str, object] = json.loads(reply)
    assert "error" not in doc, doc
    return doc


def test_sent_events_are_stored_sealed_and_found_by_equality(
    server: ServerProcess, data: Path
) -> None:
    send_all(server)
    disk = stored_bytes(data)
    for clear in CLEAR:
        assert clear not in disk, clear
    assert disk.count(b"enc:v1:") == 9  # 5 user_id, 4 email values
    assert server.stats()["FieldsEncrypted"] == 9

    # Equality through the index, memory and store together.
    doc = jquery(server, "user_id=alice")
    assert doc["found"] == 5
    doc = jquery(server, 'email="alice@example.com"')
    assert doc["found"] == 3
    assert jquery(server, "email=bob@example.org")["found"] == 1
    assert jquery(server, "user_id=mallory")["found"] == 0
    # Without decrypt: marked ciphertext in fields and rows, no clear value.
    events = jquery(server, "user_id=alice")["events"]
    assert isinstance(events, list)
    for ev in events:
        assert ev["fields"]["user_id"].startswith("enc:v1:")
        assert b"alice" not in json.dumps(ev).encode()
    text = server.query("QUERY user_id=alice")
    assert text.startswith("FOUND: 5 matches") and "user_id=enc:v1:" in text
    assert "alice" not in text


def test_decrypt_shows_clear_values_over_both_protocols(server: ServerProcess) -> None:
    send_all(server)
    doc = jquery(server, "user_id=alice decrypt=1")
    assert doc["found"] == 5
    events = doc["events"]
    assert isinstance(events, list)
    assert {ev["fields"]["user_id"] for ev in events} == {"alice"}
    emails = {ev["fields"].get("email") for ev in events}
    assert emails == {"alice@example.com", "bob@example.org", None}
    json_line = [ev for ev in events if ev["body"].startswith('{"level"')]
    assert json.loads(json_line[0]["body"])["email"] == "alice@example.com"
    text = server.query("QUERY user_id=alice decrypt=1")
    assert 'email="bob@example.org"' in text and "enc:v1:" not in text

    reply = http_query(server, [("email", "alice@example.com"), ("decrypt", "1")])
    assert reply.status == 200, reply.body
    assert {ev["fields"]["email"] for ev in reply.json()["events"]} == {"alice@example.com"}
    plain = http_query(server, [("email", "alice@example.com")]).json()
    assert all(ev["fields"]["email"].startswith("enc:v1:") for ev in plain["events"])
    assert get(server, "/api/v1/query", [("decrypt", "maybe")]).status == 400


def test_a_live_tail_filters_on_an_encrypted_field(server: ServerProcess) -> None:
    send_all(server)
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/tail"

    async def replay() -> list[Message]:
        parser = SseParser()
        params = {"since": "0", "user_id": "alice"}
        async with aiohttp.ClientSession() as session, session.get(url, params=params) as r:
            assert r.status == 200
            async for chunk in r.content.iter_any():
                if any(m.event == "live" for m in parser.feed(chunk)):
                    return parser.messages
        raise AssertionError("the tail ended before its replay did")

    found = events(asyncio.run(asyncio.wait_for(replay(), 20)))
    assert len(found) == 5
    assert all(ev["fields"]["user_id"].startswith("enc:v1:") for ev in found)
    assert get(server, "/api/v1/tail", [("decrypt", "1")]).status == 400


def test_equality_is_answered_by_the_store(server: ServerProcess, data: Path) -> None:
    total = send_all(server)
    high_water = wait_indexed(server, data, total)
    assert high_water >= len(TCP_EVENTS)  # the TCP events are in rotated, indexed segments
    doc = jquery(server, "user_id=alice source=store decrypt=1")
    assert doc["found"] == 3
    events = doc["events"]
    assert isinstance(events, list)
    assert {ev["fields"]["user_id"] for ev in events} == {"alice"}


def test_rotation_keeps_old_events_readable_and_seals_new_ones_with_the_new_key(
    server: ServerProcess, data: Path
) -> None:
    keys_file = data / "security" / "field-keys.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    old_key = json.loads(keys_file.read_text())["fernet"][0]["key"]
    server.send(b"first user_id=alice\n")
    wait_for("delivery", server.stats, lambda s: s["Delivered"] >= 1)
    result = run_cli("keys", "rotate", "--file", str(keys_file))
    assert result.returncode == 0, result.stderr
    new_key = json.loads(keys_file.read_text())["fernet"][0]["key"]
    assert new_key != old_key
    server.proc.send_signal(signal.SIGHUP)
    wait_for(
        "keys reload", lambda: [d for d in server.logs if d["event"] == "field_keys_loaded"], bool
    )
    server.send(b"second user_id=alice\n")
    wait_for("delivery", server.stats, lambda s: s["Delivered"] >= 2)
    doc = jquery(server, "user_id=alice order=asc")
    assert doc["found"] == 2
    events = doc["events"]
    assert isinstance(events, list)
    tokens = [ev["fields"]["user_id"].rsplit(":", 1)[1] for ev in events]
    padded = [(t + "=" * (-len(t) % 4)).encode() for t in tokens]
    assert Fernet(old_key).decrypt(padded[0]) == b"alice"
    assert Fernet(new_key).decrypt(padded[1]) == b"alice"
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(padded[1])
    clear = jquery(server, "user_id=alice decrypt=1")["events"]
    assert isinstance(clear, list)
    assert [ev["body"] for ev in clear] == ["second user_id=alice", "first user_id=alice"]


def test_decrypt_without_field_keys_is_an_error(tmp_path: Path) -> None:
    with start_server(env=clean_env()) as srv:
        assert srv.query("QUERY decrypt=1").startswith("ERROR: decrypt=1: this server holds no")
        reply = http_query(srv, [("decrypt", "1")])
        assert reply.status == 400 and "no field keys" in reply.json()["error"]


def test_a_keys_file_without_fields_still_reads_what_was_sealed(data: Path) -> None:
    with start_server("-P", str(data), env=env_for()) as srv:
        srv.send(b"pay user_id=alice\n")
        srv.wait_total(1)
        srv.stop()
    keys_file = str(data / "security" / "field-keys.json")
    env = clean_env(LOGCASTER_ENCRYPT__KEYS_FILE=keys_file)
    with start_server("-P", str(data), env=env) as srv:
        srv.send(b"later user_id=alice\n")  # not sealed: no fields configured
        # Delivered to memory (not only received): both events answer.
        reply = wait_for(
            "both events",
            lambda: srv.query("QUERY keyword=user_id decrypt=1 order=asc"),
            lambda r: r.startswith("FOUND: 2 matches"),
        )
        rows = reply.splitlines()
        assert rows[1].endswith("] pay user_id=alice") and rows[2].endswith("] later user_id=alice")
        sealed = srv.query("QUERY keyword=user_id order=asc").splitlines()
        assert "pay user_id=enc:v1:" in sealed[1]


# --- start-up errors: one line, exit 2 ---------------------------------------------------


def test_fields_without_a_keys_file_or_persist_dir_are_a_config_error() -> None:
    result = serve(env=clean_env(LOGCASTER_ENCRYPT__FIELDS=FIELDS))
    assert_one_line_failure(result, "encrypt.keys_file", "persist.dir")


@pytest.mark.parametrize(
    ("content", "mode", "words"),
    [
        (b"not json", 0o600, ("not JSON",)),
        (b'{"format": "something else"}', 0o600, ("not a keys file",)),
        (None, 0o644, ("readable by others", "chmod 600")),
        (b"", 0o700, ("not a regular file",)),
    ],
    ids=["garbage", "other-format", "world-readable", "a-directory"],
)
def test_a_bad_keys_file_stops_the_start_with_one_line(
    tmp_path: Path, content: bytes | None, mode: int, words: tuple[str, ...]
) -> None:
    path = tmp_path / "keys.json"
    if content is None:
        field_keys.create(path)
    elif content:
        path.write_bytes(content)
    else:
        path.mkdir()
    path.chmod(mode)
    env = clean_env(LOGCASTER_ENCRYPT__FIELDS=FIELDS, LOGCASTER_ENCRYPT__KEYS_FILE=str(path))
    result = serve(env=env)
    assert_one_line_failure(result, "cannot start", "encrypt.keys_file", *words)


def test_keys_cli_create_rotate_list_prints_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env()
    created = run_cli("keys", "create", "-P", str(data), env=env)
    assert created.returncode == 0, created.stderr
    path = data / "security" / "field-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = run_cli("keys", "create", "-P", str(data), env=env)
    assert again.returncode == 2 and "exists already" in again.stderr
    rotated = run_cli("keys", "rotate", "-P", str(data), env=env)
    assert rotated.returncode == 0, rotated.stderr
    listed = run_cli("keys", "list", "-P", str(data), env=env)
    assert listed.returncode == 0, listed.stderr
    doc = json.loads(path.read_text())
    secrets = [doc["hmac"]["key"], *(k["key"] for k in doc["fernet"])]
    for output in (created.stdout, rotated.stdout, listed.stdout):
        for secret in secrets:
            assert secret not in output
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [k["id"] for k in doc["fernet"]]
    assert lines[1].endswith("primary") and lines[2].endswith("decrypt only")
    missing = run_cli("keys", "list", "--file", str(tmp_path / "none.json"), env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    nowhere = run_cli("keys", "list", env=env)
    assert nowhere.returncode == 2 and "no keys file" in nowhere.stderr
