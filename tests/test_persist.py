"""The file sink wired into the server: restarts keep the history, kill -9 is survived (issue 4)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from logcaster.storage import scan_segment
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory


def _send_lines(server: ServerProcess, prefix: str, n: int) -> None:
    server.send(b"".join(b"%s line %05d\n" % (prefix.encode(), i) for i in range(n)))


def _recent(server: ServerProcess, n: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(server.query(f"JSON RECENT {n}"))["events"]
    return events


def test_restart_keeps_count_recent_and_query(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data))
    _send_lines(first, "one", 300)
    first.send(b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: Connection refused\n")
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 301)
    # Bodies and ids, not text rows: a line without its own time shows its receive
    # time, which replay does not restore yet (the block format has no receive time).
    before = [(ev["id"], ev["body"]) for ev in _recent(first, 20)]
    assert first.stop() == 0

    second = server_factory("-P", str(data))
    assert second.query("COUNT") == "COUNT: 301\n"
    assert [(ev["id"], ev["body"]) for ev in _recent(second, 20)] == before
    assert second.query("QUERY level=ERROR service=payment-api").startswith("FOUND: 1 matches\n")
    replayed = [log for log in second.logs if log.get("event") == "replayed"]
    assert replayed and replayed[0]["events"] == 301 and replayed[0]["last_id"] == 301

    # New events continue the ids: nothing on disk is ever reused.
    _send_lines(second, "two", 5)
    wait_for("delivery", second.stats, lambda stats: stats["Delivered"] == 5)
    ids = [int(str(ev["id"])) for ev in _recent(second, 306)]
    assert ids == list(range(306, 0, -1))


def test_replay_fills_only_the_buffer(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data))
    _send_lines(first, "x", 500)
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 500)
    assert first.stop() == 0
    second = server_factory("-P", str(data), "--buffer-size", "50")
    assert second.query("COUNT") == "COUNT: 50\n"
    newest = _recent(second, 50)
    assert newest[0]["body"] == "x line 00499" and newest[-1]["body"] == "x line 00450"


def test_kill_9_then_restart(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "LOGCASTER_PERSIST__FSYNC": "always"}
    first = server_factory("-P", str(data), env=env)
    _send_lines(first, "k", 1000)
    # Delivered counts events every sink has taken: with fsync "always" the file
    # sink has written and fsynced them (Total only says they were read).
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 1000)
    first.stop(signal.SIGKILL)
    # A crash mid-write leaves a torn last block: simulate one on top.
    with open(data / "active.log", "ab") as f:
        f.write(b"#LC1 1001 3 30 deadbeef\nk line 01000\nk li")
    second = server_factory("-P", str(data), env=env)
    assert second.query("COUNT") == "COUNT: 1000\n"
    recovered = [log for log in second.logs if log.get("event") == "segment_recovered"]
    assert recovered and recovered[0]["kind"] == "torn_tail"
    scan = scan_segment(data / "active.log")
    assert scan.problem is None and scan.event_count == 1000
