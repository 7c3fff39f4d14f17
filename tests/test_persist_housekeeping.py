"""Housekeeping in the running server (issue 4): time rotation when idle, gzip,
retention, start-up clean-up and quarantine of damaged rotated segments."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from logcaster.datadir.marker import write_marker
from logcaster.datadir.versions import CURRENT, FORMAT_KEY
from logcaster.segments import SegmentWriter, read_blocks, scan_segment
from logcaster.segments.names import list_rotated
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.test_data_cli import run_data


def persist_env(**options: str) -> dict[str, str]:
    # Compression is what these tests watch: the store (which turns it off) stays off.
    env = {**os.environ, "LOGCASTER_STORE__ENABLED": "false"}
    for key, value in options.items():
        env[f"LOGCASTER_PERSIST__{key.upper()}"] = value
    return env


def send_lines(server: ServerProcess, prefix: str, n: int) -> None:
    server.send(b"".join(b"%s line %05d\n" % (prefix.encode(), i) for i in range(n)))


def wait_delivered(server: ServerProcess, n: int) -> None:
    wait_for(f"{n} delivered", server.stats, lambda stats: stats["Delivered"] == n)


def logs_of(server: ServerProcess, event: str) -> list[dict[str, Any]]:
    return [log for log in server.logs if log.get("event") == event]


def bodies(server: ServerProcess, n: int) -> list[str]:
    events = json.loads(server.query(f"JSON RECENT {n}"))["events"]
    return [str(ev["body"]) for ev in events]


def all_texts(data: Path) -> list[bytes]:
    with SegmentWriter(data) as writer:
        paths = writer.segments()
    return [t for p in paths for _, texts in read_blocks(p) for t in texts]


def make_dir(data: Path, files: int, per_file: int = 30) -> list[Path]:
    """Rotated segments of `per_file` events in 3 blocks each (bodies "old line N"),
    then 10 events in active.log; the rotated paths. Marked as the current
    format, as a server of this version would have (docs/data-format.md)."""
    data.mkdir(parents=True, exist_ok=True)
    write_marker(data, FORMAT_KEY, CURRENT)
    with SegmentWriter(data, fsync="never") as writer:
        next_id = 1
        for _ in range(files):
            step = per_file // 3
            for _ in range(3):
                writer.write(
                    next_id, [b"old line %05d" % i for i in range(next_id, next_id + step)]
                )
                next_id += step
            writer.rotate()
        writer.write(next_id, [b"old line %05d" % i for i in range(next_id, next_id + 10)])
        return writer.rotated_segments()


def active_size(data: Path) -> int:
    """active.log's size; -1 in the instant of a rotation (renamed, not yet reopened)."""
    try:
        return (data / "active.log").stat().st_size
    except FileNotFoundError:
        return -1


def test_time_rotation_when_idle_then_compression(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """`rotate_interval: 1`: each second's data gets its own file without any further
    write, and every rotated file is gzipped in the background."""
    data = tmp_path / "data"
    server = server_factory("-P", str(data), env=persist_env(rotate_interval="1"))
    send_lines(server, "a", 100)
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == 100)
    # (The lines may arrive in two batches on both sides of a second boundary.)
    wait_for("idle rotation", lambda: active_size(data), lambda n: n == 0)
    first = list_rotated(data)
    assert first
    send_lines(server, "b", 100)
    wait_delivered(server, 200)
    wait_for(
        "second rotation, all compressed",
        lambda: list_rotated(data),
        lambda paths: len(paths) > len(first) and all(p.name.endswith(".gz") for p in paths),
    )
    wait_for("an empty active.log", lambda: active_size(data), lambda n: n == 0)
    assert server.stop() == 0
    texts = all_texts(data)
    assert texts == [b"a line %05d" % i for i in range(100)] + [
        b"b line %05d" % i for i in range(100)
    ]


def test_retention_by_files_in_the_server(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = persist_env(max_file_bytes="4096", retention_files="3")
    server = server_factory("-P", str(data), env=env)
    for end in range(250, 3001, 250):  # ~4.5 KiB a round: one rotation each
        server.send(b"".join(b"r line %05d\n" % i for i in range(end - 250, end)))
        wait_delivered(server, end)
    wait_for(
        "retention",
        lambda: list_rotated(data),
        lambda paths: len(paths) == 3 and all(p.name.endswith(".gz") for p in paths),
    )
    deleted = wait_for("deletion logs", lambda: logs_of(server, "segment_deleted"), bool)
    assert all(log["reason"] == "retention_files" and log["bytes"] > 0 for log in deleted)
    assert server.query("COUNT") == "COUNT: 3000\n"  # memory keeps what disk let go
    assert server.stop() == 0
    texts = all_texts(data)
    assert texts == [b"r line %05d" % i for i in range(3000 - len(texts), 3000)]


def test_crash_leftovers_are_cleaned_without_doubling(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    rotated = make_dir(data, 3)  # 90 + 10 events
    # Killed between rename and unlink: X.log and a complete X.log.gz.
    pair = rotated[0].with_name(rotated[0].name + ".gz")
    pair.write_bytes(gzip.compress(rotated[0].read_bytes()))
    # Killed while writing: a partial .gz.tmp.
    tmp = rotated[1].with_name(rotated[1].name + ".gz.tmp")
    tmp.write_bytes(gzip.compress(rotated[1].read_bytes())[:40])

    server = server_factory("-P", str(data), env=persist_env())
    assert server.query("COUNT") == "COUNT: 100\n"
    removed = {Path(log["path"]).name for log in logs_of(server, "leftover_removed")}
    assert removed == {rotated[0].name, tmp.name}
    # The uncompressed ones left by the "crash" are compressed after the start.
    wait_for("compression", lambda: sorted(data.glob("logcaster-*.log")), lambda left: not left)
    assert server.stop() == 0
    assert not tmp.exists()
    assert all_texts(data) == [b"old line %05d" % i for i in range(1, 101)]


def test_damaged_rotated_segments_are_quarantined_and_the_rest_served(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    rotated = make_dir(data, 4)  # ids 1..120 rotated, 121..130 active
    # A flipped byte in the middle block of segment 1 (ids 41..50 lost).
    blocks = scan_segment(rotated[1]).blocks
    raw = bytearray(rotated[1].read_bytes())
    raw[blocks[1].end - 5] ^= 0x01
    rotated[1].write_bytes(bytes(raw))
    # Segment 2 as a .gz cut in the middle: nothing of it can be decompressed here.
    gz = rotated[2].with_name(rotated[2].name + ".gz")
    packed = gzip.compress(rotated[2].read_bytes())
    gz.write_bytes(packed[: len(packed) // 2])
    rotated[2].unlink()

    before = run_data("validate", str(data))
    assert before.returncode == 1
    assert f"{rotated[1].name}: corruption at offset {blocks[1].offset}" in before.stdout
    assert f"{gz.name}: torn tail" in before.stdout and "bad gzip stream" in before.stdout

    server = server_factory("-P", str(data))
    quarantined = wait_for(
        "quarantine logs", lambda: logs_of(server, "segment_quarantined"), lambda q: len(q) == 2
    )
    assert {Path(q["path"]).name: q["kept_events"] for q in quarantined} == {
        rotated[1].name: 20,
        gz.name: 0,
    }
    assert {q["reason"] for q in quarantined} == {"checksum mismatch", "torn tail: bad gzip stream"}
    survivors = [*range(1, 41), *range(51, 61), *range(91, 131)]
    assert server.query("COUNT") == f"COUNT: {len(survivors)}\n"
    assert bodies(server, 3) == ["old line 00130", "old line 00129", "old line 00128"]
    send_lines(server, "new", 5)
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == 5)
    assert bodies(server, 1) == ["new line 00004"]
    assert server.stop() == 0

    # Set aside and reported; the served files are clean, and so is the directory.
    after = run_data("validate", str(data))
    assert after.returncode == 0, after.stdout
    assert "quarantined (2 file(s)" in after.stdout
    assert f"damaged bytes of {rotated[1].name} at offset {blocks[1].offset}" in after.stdout
    second = server_factory("-P", str(data))
    assert second.query("COUNT") == f"COUNT: {len(survivors) + 5}\n"
    assert logs_of(second, "segment_quarantined") == []


def test_garbage_in_the_data_dir_never_stops_the_start(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    make_dir(data, 2)  # 60 + 10 events
    stamp = "logcaster-20260119T100000.000000Z-"
    (data / f"{stamp}00000000000000000500.log").write_bytes(os.urandom(4000))
    (data / f"{stamp}00000000000000000600.log.gz").write_bytes(os.urandom(4000))
    (data / f"{stamp}00000000000000000700.log").write_bytes(b"")
    (data / f"{stamp}00000000000000000800.log").mkdir()

    server = server_factory("-P", str(data))
    assert server.query("COUNT") == "COUNT: 70\n"
    wait_for("reports", lambda: logs_of(server, "segment_quarantined"), lambda q: len(q) == 2)
    assert [log["path"] for log in logs_of(server, "segment_ignored")] == [
        str(data / f"{stamp}00000000000000000800.log")
    ]
    # Ids go on after the highest first id named on disk (the empty file's 700).
    send_lines(server, "new", 1)
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == 1)
    assert json.loads(server.query("JSON RECENT 1"))["events"][0]["id"] == 701
