"""What a backup takes from outside the data directory (issue 23): the token
file, the audit log, a forward group's spool and dead letters, found through
the server's configuration (`backup -c`), restored under DIR/restored/."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from logcaster.segments import read_batches
from logcaster.testing import free_port, parse_stats, query, wait_for
from tests.backup_helpers import run_backup, run_restore, validate
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group
from tests.security_helpers import token_command
from tests.store_server_helpers import segments


def test_tokens_audit_spool_and_dead_letters_round_trip(
    server_factory: ServerFactory, receiver: HttpReceiver, tmp_path: Path
) -> None:
    data, outside = tmp_path / "data", tmp_path / "elsewhere"
    tokens, audit = outside / "etc" / "tokens.json", outside / "audit"
    letters_dir, spool_dir = outside / "letters", outside / "spooled"
    receiver.reject_marker = b"POISON"
    config = {
        "auth": {"enabled": True, "tokens_file": str(tokens)},
        "audit": {"dir": str(audit)},
        "forward": [
            group("letters", [receiver.url], dir=str(letters_dir)),
            group("spooled", [f"tcp://127.0.0.1:{free_port()}"], dir=str(spool_dir)),
        ],
    }
    config_path = tmp_path / "server.yaml"
    config_path.write_text(yaml.safe_dump(config))
    tokens.parent.mkdir(parents=True)
    made = token_command(
        "create", "--name", "app", "--role", "admin", "--config", str(config_path), data=data
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    server = server_factory("-P", str(data), "--config", str(config_path))
    lines = [b"event %04d %s\n" % (i, b"POISON" if i % 10 == 0 else b"fine") for i in range(1, 501)]
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        sock.sendall(b"#LOGCASTER AUTH %s\n" % token.encode() + b"".join(lines))

    def stats() -> dict[str, float]:
        return parse_stats(query("127.0.0.1", server.query_port, f"AUTH {token}\nSTATS"))

    wait_for("dead letters", stats, lambda s: s["DeadLettered"] == 50)
    wait_for("spooled", stats, lambda s: s["Spooled"] == 500)

    archive = tmp_path / "b.tar.zst"  # zstd by the name
    manifest = run_backup(data, archive, "-c", str(config_path))
    assert {e["name"]: e["original"] for e in manifest["external"]} == {
        "external/audit": str(audit),
        "external/forward-letters": str(letters_dir),
        "external/forward-spooled": str(spool_dir),
        "external/tokens": str(tokens),
    }
    restored = tmp_path / "restored"
    out = run_restore(archive, restored)
    validate(restored)
    back = restored / "restored"
    assert f"tokens: {back / 'tokens'} (was {tokens})" in out
    assert (back / "tokens" / "tokens.json").read_bytes() == tokens.read_bytes()
    assert (back / "tokens" / "tokens.json").stat().st_mode & 0o777 == 0o600
    # Appended files come whole lines up to the backup: a prefix of the live file.
    for copy, live in (
        (back / "audit" / "audit.log", audit / "audit.log"),
        (back / "forward-letters" / "dead-letters.ndjson", letters_dir / "dead-letters.ndjson"),
    ):
        got = copy.read_bytes()
        assert got and got.endswith(b"\n") and live.read_bytes().startswith(got), copy
    assert (back / "forward-letters" / "dead-letters.ndjson").read_bytes().count(b"\n") == 50
    assert b'"action":"auth"' in (back / "audit" / "audit.log").read_bytes()
    # The spool: every event the group had not sent, in order, cut at a whole block.
    spool_id = manifest["segment_dirs"]["external/forward-spooled/spool"]
    spooled = [
        text
        for path in segments(back / "forward-spooled" / "spool")
        if path.exists()
        for batch in read_batches(path)
        for text in batch.texts
    ]
    assert spool_id == 500 and spooled == [x[:-1] for x in lines]
    effective = yaml.safe_load((back / "config" / "effective.yaml").read_text())
    assert effective["persist"]["dir"] == str(data) and effective["auth"]["enabled"] is True
