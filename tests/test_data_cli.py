"""`logcaster data validate` and `data inspect` as subprocesses (issue 4)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from logcaster.segments import SegmentWriter, scan_segment


def run_data(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", "data", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def make_dir(path: Path, batches: int = 30, per_batch: int = 10) -> list[Path]:
    """A data dir with several rotated files and an active.log; its segments in order."""
    with SegmentWriter(path, max_bytes=2048, fsync="never") as writer:
        next_id = 1
        for b in range(batches):
            texts = [b"batch %03d line %03d" % (b, i) for i in range(per_batch)]
            writer.write(next_id, texts, received=1_700_000_000 + b, source="tcp:10.0.0.1:99")
            next_id += per_batch
        return writer.segments()


def test_clean_dir_validates(tmp_path: Path) -> None:
    segments = make_dir(tmp_path / "data")
    assert len(segments) > 3
    result = run_data("validate", str(tmp_path / "data"))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for seg in segments:
        assert seg.name in out
    assert f"OK: {len(segments)} file(s), 300 events, ids 1..300" in out
    assert out.count("mode=raw ") == len(segments)

    doc = json.loads(run_data("validate", "--json", str(tmp_path / "data")).stdout)
    assert doc["ok"] is True and doc["problems"] == 0
    assert doc["events"] == 300 and doc["first_id"] == 1 and doc["last_id"] == 300
    assert [Path(f["path"]).name for f in doc["segments"]] == [s.name for s in segments]
    assert sum(f["blocks"] for f in doc["segments"]) == 30
    assert doc["segments"][-1]["kind"] == "active"
    assert doc["id_issues"] == []


def test_flipped_byte_in_rotated_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    victim = segments[1]
    scan = scan_segment(victim)
    assert len(scan.blocks) >= 2
    block = scan.blocks[0]
    raw = bytearray(victim.read_bytes())
    pos = block.end - 5  # inside the first block's payload
    raw[pos] ^= 0x01
    victim.write_bytes(bytes(raw))

    result = run_data("validate", str(data))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "checksum mismatch" in line]
    assert len(lines) == 1
    assert victim.name in lines[0]
    assert f"offset {block.offset}" in lines[0]
    assert "corruption" in lines[0]
    assert "FAILED" in result.stdout

    doc = json.loads(run_data("validate", "--json", str(data)).stdout)
    assert doc["ok"] is False and doc["problems"] == 1
    bad = [f for f in doc["segments"] if f["problems"]]
    assert [Path(f["path"]).name for f in bad] == [victim.name]
    problem = bad[0]["problems"][0]
    assert problem == {
        "kind": "corruption",
        "offset": block.offset,
        "bytes": block.length,
        "reason": "checksum mismatch",
    }
    assert doc["events"] == 300 - block.count


def test_torn_tail_of_active(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dir(data)
    active = data / "active.log"
    good_size = active.stat().st_size
    with open(active, "ab") as f:
        f.write(b"#LC2 301 3 30 0 r - deadbeef\nbatch 030 line 000\nbatch")
    result = run_data("validate", str(data))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "torn tail" in line]
    assert len(lines) == 1
    assert "active.log" in lines[0] and f"offset {good_size}" in lines[0]
    assert "short payload" in lines[0] and "(53 bytes)" in lines[0]
    # Validation never repairs: the torn bytes are still there.
    assert active.stat().st_size == good_size + 53


def test_id_overlap_is_a_problem(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    last_rotated = scan_segment(segments[-2]).last_id
    assert last_rotated is not None
    with SegmentWriter(tmp_path / "other", fsync="never") as writer:
        writer.write(last_rotated - 5, [b"again"])
    (tmp_path / "other" / "active.log").replace(data / "active.log")
    result = run_data("validate", str(data))
    assert result.returncode == 1, result.stdout
    assert "id overlap" in result.stdout
    assert f"id {last_rotated - 5} follows {last_rotated}" in result.stdout


def test_gap_is_reported_but_not_a_failure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    segments[1].unlink()
    result = run_data("validate", str(data))
    assert result.returncode == 0, result.stdout
    assert "id gap" in result.stdout


def test_quarantine_is_listed_separately(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    qdir = data / "quarantine"
    qdir.mkdir()
    moved = qdir / segments[0].name
    segments[0].replace(moved)
    raw = bytearray(moved.read_bytes())
    raw[30] ^= 0x01
    moved.write_bytes(bytes(raw))
    result = run_data("validate", "--json", str(data))
    doc: dict[str, Any] = json.loads(result.stdout)
    assert [f["path"] for f in doc["quarantined"]] == [f"quarantine/{moved.name}"]
    assert doc["quarantined"][0]["problems"]
    assert all(f["kind"] != "quarantined" for f in doc["segments"])
    assert result.returncode == 0  # set aside already: a gap, not a failure
    human = run_data("validate", str(data)).stdout
    assert "quarantined (1 file(s)" in human and moved.name in human


def test_missing_or_foreign_dir_exits_2(tmp_path: Path) -> None:
    result = run_data("validate", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such directory" in result.stderr
    assert run_data("inspect", str(tmp_path / "nope")).returncode == 2
    (tmp_path / "empty").mkdir()
    result = run_data("validate", str(tmp_path / "empty"))
    assert result.returncode == 2 and "not a LogCaster data directory" in result.stderr
    (tmp_path / "file").write_text("x")
    assert run_data("validate", str(tmp_path / "file")).returncode == 2


def test_inspect(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    result = run_data("inspect", str(data))
    assert result.returncode == 0, result.stderr
    assert "events: 300  ids 1..300" in result.stdout
    assert "payload modes: raw 30 block(s)\n" in result.stdout
    assert (
        "received: first block 2023-11-14T22:13:20.000000Z, "
        "last block 2023-11-14T22:13:49.000000Z" in result.stdout
    )
    assert f"rotated files: {len(segments) - 1}" in result.stdout
    for seg in segments:
        assert seg.name in result.stdout

    result = run_data("inspect", "--json", str(data))
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert doc["events"] == 300 and doc["first_id"] == 1 and doc["last_id"] == 300
    assert doc["rotated_files"] == len(segments) - 1
    assert len(doc["rotation_times_utc"]) == len(segments) - 1
    assert doc["total_bytes"] == sum(s.stat().st_size for s in segments)
    assert 0 < doc["largest_rotated_bytes"] <= 2048
    assert doc["problems"] == 0
    assert doc["modes"] == {"raw": 30}
    assert doc["first_received_utc"] == "2023-11-14T22:13:20.000000Z"
    assert doc["files"][0]["first_received_utc"] == "2023-11-14T22:13:20.000000Z"
    assert [f["size"] for f in doc["files"]] == [s.stat().st_size for s in segments]


def test_gzip_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    segments = make_dir(data)
    for seg in segments[:2]:
        (data / (seg.name + ".gz")).write_bytes(gzip.compress(seg.read_bytes()))
        seg.unlink()
    result = run_data("validate", "--json", str(data))
    assert result.returncode == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["events"] == 300
    assert [f["compressed"] for f in doc["segments"][:3]] == [True, True, False]

    # A cut-off gzip stream: the rest cannot be read, reported as a torn tail.
    gz = data / (segments[1].name + ".gz")
    gz.write_bytes(gz.read_bytes()[:-20])
    result = run_data("validate", str(data))
    assert result.returncode == 1
    assert any(
        gz.name in line and "torn tail" in line and "bad gzip stream" in line
        for line in result.stdout.splitlines()
    ), result.stdout


def test_interrupted_compression_is_read_once(tmp_path: Path) -> None:
    """An X.log next to its complete X.log.gz (killed before the unlink) is not
    counted twice: validate reads the .gz, as the server does."""
    data = tmp_path / "data"
    segments = make_dir(data)
    (data / (segments[0].name + ".gz")).write_bytes(gzip.compress(segments[0].read_bytes()))
    doc = json.loads(run_data("validate", "--json", str(data)).stdout)
    assert doc["ok"] is True and doc["events"] == 300
    assert doc["segments"][0]["path"] == segments[0].name + ".gz"


def test_cat_prints_every_event_in_id_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_dir(data)
    with SegmentWriter(data, fsync="never") as writer:
        writer.write(301, [b"ERROR boom\n    at a.b(C.java:1)", b"#hash \\ backslash"])
    segments = sorted(data.glob("logcaster-*.log"))
    with gzip.open(segments[0].with_name(segments[0].name + ".gz"), "wb") as gz:
        gz.write(segments[0].read_bytes())
    segments[0].unlink()  # a compressed segment is read like the others

    out = subprocess.run(
        [sys.executable, "-m", "logcaster", "data", "cat", str(data)],
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    expected = [b"batch %03d line %03d" % (b, i) for b in range(30) for i in range(10)]
    expected += [b"ERROR boom", b"    at a.b(C.java:1)", b"#hash \\ backslash"]
    assert out.stdout.split(b"\n")[:-1] == expected

    docs = [
        json.loads(line)
        for line in run_data("cat", "--json", "--from-id", "299", str(data)).stdout.splitlines()
    ]
    assert [d["id"] for d in docs] == [299, 300, 301, 302]
    assert docs[0] == {
        "id": 299,
        "received": 1_700_000_029,
        "source": "tcp:10.0.0.1:99",
        "text": "batch 029 line 008",
    }
    assert docs[2]["text"] == "ERROR boom\n    at a.b(C.java:1)"
