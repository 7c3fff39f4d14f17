"""The file sink wired into the server: restarts keep the history, kill -9 is survived (issue 4)."""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from logcaster.segments import SegmentWriter, read_batches, read_blocks, scan_segment
from logcaster.testing import ServerProcess, run_threads, wait_for
from tests.conftest import ServerFactory
from tests.test_data_cli import run_data


def _send_lines(server: ServerProcess, prefix: str, n: int) -> None:
    server.send(b"".join(b"%s line %05d\n" % (prefix.encode(), i) for i in range(n)))


def _recent(server: ServerProcess, n: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(server.query(f"JSON RECENT {n}"))["events"]
    return events


def test_restart_keeps_count_recent_and_query(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data))
    _send_lines(first, "one", 300)
    first.send(b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: Connection refused\n")
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 301)
    # Whole events and text rows: receive times and sources come back from the headers.
    before = _recent(first, 20)
    before_rows = first.query("RECENT 20")
    assert first.stop() == 0

    second = server_factory("-P", str(data))
    assert second.query("COUNT") == "COUNT: 301\n"
    assert _recent(second, 20) == before
    assert second.query("RECENT 20") == before_rows
    assert second.query("QUERY level=ERROR service=payment-api").startswith("FOUND: 1 matches\n")
    replayed = [log for log in second.logs if log.get("event") == "replayed"]
    assert replayed and replayed[0]["events"] == 301 and replayed[0]["last_id"] == 301

    # New events continue the ids: nothing on disk is ever reused.
    _send_lines(second, "two", 5)
    wait_for("delivery", second.stats, lambda stats: stats["Delivered"] == 5)
    ids = [int(str(ev["id"])) for ev in _recent(second, 306)]
    # Newest first by event time: event 301 carries its own older time (January).
    assert ids == [*range(306, 301, -1), *range(300, 0, -1), 301]


def _mode_env(mode: str) -> dict[str, str]:
    return {**os.environ, "LOGCASTER_PERSIST__FORMAT": mode}


def _stored_modes(data: Path) -> list[str]:
    writer = SegmentWriter(data)
    try:
        return [b.mode for path in writer.segments() for b in read_batches(path)]
    finally:
        writer.close()


@pytest.mark.parametrize("mode", ["raw", "json"])
def test_restart_keeps_receive_times_in_each_mode(
    server_factory: ServerFactory, tmp_path: Path, mode: str
) -> None:
    """Events without their own timestamp show their receive time; after a restart
    they still do (not the replay time), in either payload mode."""
    data = tmp_path / "data"
    first = server_factory("-P", str(data), env=_mode_env(mode))
    _send_lines(first, "a", 40)
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 40)
    time.sleep(0.05)  # a second batch with a later receive time
    first.send(b"[WARN] 2026-01-19 15:30:01.234 cart/v1 pod/c-1: slow user_id=u-1\nb line 1\n")
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 42)
    before = _recent(first, 42)
    assert first.stop() == 0
    restarted_at = time.time()

    second = server_factory("-P", str(data), env=_mode_env(mode))
    after = _recent(second, 42)
    assert after == before
    plain = [ev for ev in after if str(ev["body"]).startswith(("a line", "b line"))]
    assert len(plain) == 41
    for ev in plain:  # no timestamp of its own: its time is the receive time
        assert ev["ts"] == ev["received_at"]
        assert isinstance(ev["ts"], float) and ev["ts"] < restarted_at
        assert str(ev["source"]).startswith("tcp:127.0.0.1:")
    # Each batch keeps its own receive time: the later send is later.
    b_time = next(ev["received_at"] for ev in plain if ev["body"] == "b line 1")
    assert all(ev["received_at"] < b_time for ev in plain if ev["body"] != "b line 1")
    warn = next(ev for ev in after if ev["level"] == "WARN")
    assert warn["service"] == "cart" and warn["fields"] == {"user_id": "u-1"}
    assert second.stop() == 0
    assert set(_stored_modes(data)) == {mode}


def test_directory_written_raw_then_json(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A data dir written in raw mode, then restarted in JSON mode: replay, validate and
    inspect decode each block by the mode in its own header."""
    data = tmp_path / "data"
    first = server_factory("-P", str(data))  # raw, the default
    _send_lines(first, "raw", 30)
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 30)
    assert first.stop() == 0

    second = server_factory("-P", str(data), env=_mode_env("json"))
    assert second.query("COUNT") == "COUNT: 30\n"
    second.send(b"json line 1\n\\ back\\slash\n#hash\n")
    wait_for("delivery", second.stats, lambda stats: stats["Delivered"] == 3)
    before = _recent(second, 33)
    assert second.stop() == 0
    modes = _stored_modes(data)
    assert modes[0] == "raw" and modes[-1] == "json"

    third = server_factory("-P", str(data), env=_mode_env("raw"))
    assert _recent(third, 33) == before
    assert [ev["body"] for ev in before[:3]] == ["#hash", "\\ back\\slash", "json line 1"]
    assert third.stop() == 0

    result = run_data("validate", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mode=raw+json" in result.stdout and "OK: 1 file(s), 33 events" in result.stdout
    inspect = run_data("inspect", str(data))
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    assert re.search(r"payload modes: raw \d+ block\(s\), json \d+ block\(s\)", inspect.stdout)
    doc = json.loads(run_data("inspect", "--json", str(data)).stdout)
    assert doc["modes"] == doc["files"][0]["modes"]
    assert set(doc["modes"]) == {"raw", "json"} and sum(doc["modes"].values()) == len(modes)
    assert doc["first_received_utc"] < doc["last_received_utc"]


def test_replay_fills_only_the_buffer(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Without the store: with it, replay also keeps the events not yet indexed.
    env = {**os.environ, "LOGCASTER_STORE__ENABLED": "false"}
    first = server_factory("-P", str(data), env=env)
    _send_lines(first, "x", 500)
    wait_for("delivery", first.stats, lambda stats: stats["Delivered"] == 500)
    assert first.stop() == 0
    second = server_factory("-P", str(data), "--buffer-size", "50", env=env)
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
        f.write(b"#LC2 1001 3 30 0 r - deadbeef\nk line 01000\nk li")
    second = server_factory("-P", str(data), env=env)
    assert second.query("COUNT") == "COUNT: 1000\n"
    recovered = [log for log in second.logs if log.get("event") == "segment_recovered"]
    assert recovered and recovered[0]["kind"] == "torn_tail"
    scan = scan_segment(data / "active.log")
    assert scan.problem is None and scan.event_count == 1000


def test_rotation_under_load(server_factory: ServerFactory, tmp_path: Path) -> None:
    """Issue 4: rotate every 256 KiB while 8 clients send 200,000 numbered lines, with
    background gzip of the rotated files (the default); afterwards the union of all
    segment files (read through gzip) holds each line exactly once."""
    data = tmp_path / "data"
    # With gzip on, so the store (which turns it off) is off.
    env = {
        **os.environ,
        "LOGCASTER_PERSIST__MAX_FILE_BYTES": "262144",
        "LOGCASTER_STORE__ENABLED": "false",
    }
    server = server_factory("-P", str(data), env=env)
    clients, per_client = 8, 25_000
    total = clients * per_client
    # ~90 bytes a line: 200,000 lines make ~18 MB, i.e. about 70 rotations at 256 KiB.
    pad = b"x" * 80

    def line(c: int, i: int) -> bytes:
        return b"c%d-%06d %s" % (c, i, pad)

    def client(c: int) -> None:
        lines = b"".join(line(c, i) + b"\n" for i in range(per_client))
        with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
            # In pieces, so the clients interleave with each other and the rotations.
            for start in range(0, len(lines), 16_384):
                sock.sendall(lines[start : start + 16_384])

    run_threads([functools.partial(client, c) for c in range(clients)])
    wait_for("delivery", server.stats, lambda stats: stats["Delivered"] == total, timeout=60)
    wait_for("compression", lambda: sorted(data.glob("logcaster-*.log")), lambda left: not left)
    assert server.stop() == 0
    assert not list(data.glob("*.tmp"))

    writer = SegmentWriter(data)
    try:
        segments = writer.segments()
    finally:
        writer.close()
    assert len(segments) > 50
    assert all(p.name.endswith(".log.gz") for p in segments[:-1])
    compressed = [log for log in server.logs if log.get("event") == "segment_compressed"]
    assert len(compressed) == len(segments) - 1
    assert not [log for log in server.logs if log.get("level") == "error"]
    seen: list[bytes] = []
    last_id = 0
    for path in segments:
        for first_id, texts in read_blocks(path):
            assert first_id > last_id  # ids strictly increase across files
            last_id = first_id + len(texts) - 1
            seen.extend(texts)
    assert len(seen) == total
    expected = {line(c, i) for c in range(clients) for i in range(per_client)}
    assert len(set(seen)) == total
    assert set(seen) == expected


def test_disk_full_blocks_intake_and_resumes(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A failing disk (here EFBIG past a file-size limit, as with ENOSPC) is reported,
    the queue blocks the sender instead of dropping, queries keep working, and every
    line is written once the disk takes writes again."""
    data = tmp_path / "data"
    env = {**os.environ, "LOGCASTER_QUEUE__MAX_EVENTS": "2000"}
    server = server_factory("-P", str(data), env=env)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (64 * 1024, hard))
    total = 200_000  # ~15 MB: more than the kernel socket buffers can hide
    payload = b"".join(b"full %06d %s\n" % (i, b"x" * 60) for i in range(total))
    sender = threading.Thread(target=server.send, args=(payload,))
    sender.start()
    try:
        wait_for(
            "a failed write",
            lambda: [log for log in server.logs if log.get("event") == "sink_write_failed"],
            bool,
        )
        stats = wait_for("the queue to fill", server.stats, lambda s: s["QueueEvents"] >= 2000)
        assert stats["Delivered"] < total and stats["Dropped"] == 0
        assert server.query("COUNT").startswith("COUNT: ")  # queries keep working
        assert sender.is_alive()  # the sender is held back, not dropped
    finally:
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (hard, hard))
    sender.join(30)
    assert not sender.is_alive()
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == total)
    assert any(log.get("event") == "sink_recovered" for log in server.logs)
    assert server.stop() == 0
    writer = SegmentWriter(data)
    try:
        lines = [t for path in writer.segments() for _, texts in read_blocks(path) for t in texts]
    finally:
        writer.close()
    assert len(lines) == total and len(set(lines)) == total
