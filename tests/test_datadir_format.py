"""Format markers and refusals: a new directory is marked, a newer one refused,
a held one not migrated, usage errors are one line; LC1 damage and gzip."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logcaster.datadir.versions import CURRENT, segment_files
from logcaster.exceptions import StorageError
from logcaster.segments.lock import DataDirLock
from logcaster.sinks.forward.spool import Spool
from logcaster.testing import start_server
from tests.datadir_helpers import (
    copy_fixture,
    expected_events,
    lc1_block,
    logcaster,
    serve_args,
    snapshot,
    stored_events,
)


def test_a_new_directory_is_marked_current_and_restarts(tmp_path: Path) -> None:
    data = tmp_path / "new"
    server = start_server("-P", str(data))
    server.send(b"one\ntwo\n")
    server.wait_total(2)
    assert server.stop() == 0
    assert json.loads((data / "FORMAT").read_text()) == {"format": CURRENT}
    assert json.loads((data / "index" / "FORMAT").read_text()) == {"index": 2}
    again = start_server("-P", str(data))  # v3 with data: not refused
    assert again.stop() == 0
    checked = logcaster("data", "validate", str(data))
    assert "format: v3 (FORMAT marker): current" in checked.stdout


def test_a_newer_directory_is_refused_by_server_and_migrate(tmp_path: Path) -> None:
    data = copy_fixture("v2", tmp_path)
    (data / "FORMAT").write_text('{"format": 4}\n')
    before = snapshot(data)
    refused = logcaster(*serve_args(data))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"logcaster: data directory {data} is format v4, newer than v3 which this version "
        "reads: run the LogCaster release that wrote it (no downgrade)\n"
    )
    migrated = logcaster("migrate", str(data))
    assert migrated.returncode == 2
    assert migrated.stderr == (
        f"logcaster migrate: {data} is format v4, newer than v3 which this version reads: "
        "a directory is never downgraded\n"
    )
    assert (
        "format: v4 (FORMAT marker): newer than v3"
        in logcaster("data", "validate", str(data)).stdout
    )
    assert snapshot(data) == before


def test_a_broken_marker_is_one_line(tmp_path: Path) -> None:
    data = copy_fixture("v2", tmp_path)
    (data / "FORMAT").write_text("v3\n")
    refused = logcaster(*serve_args(data))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"logcaster: cannot start: persist.dir: {data}/FORMAT is not a format marker "
        "(expected {\"format\": N}, found 'v3\\n')\n"
    )
    migrated = logcaster("migrate", str(data))
    assert (migrated.returncode, migrated.stderr.count("\n")) == (2, 1)
    assert "is not a format marker" in migrated.stderr


def test_a_directory_in_use_is_not_migrated(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    with DataDirLock(data):
        before = snapshot(data)
        for args in (["migrate", str(data)], ["migrate", "--dry-run", str(data)]):
            refused = logcaster(*args)
            assert refused.returncode == 2
            assert refused.stderr.startswith(
                f"logcaster migrate: data directory {data} is in use by process {os.getpid()}"
            )
            assert snapshot(data) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a data directory DIR or --postgres URL"),
        (["@", "--postgres", "postgresql://x@127.0.0.1:1/x"], "not both"),
        (["--postgres", "postgresql://x@127.0.0.1:1/x", "--dry-run"], "--dry-run is for a data"),
        (["@", "--days-ahead", "2"], "--days-ahead is for --postgres, not DIR"),
        (["@/missing"], "@/missing: no such directory"),
        (["@/empty"], "@/empty: not a LogCaster data directory"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [a.replace("@", str(tmp_path)) if a.startswith("@") else a for a in args]
    done = logcaster("migrate", *argv)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message.replace("@", str(tmp_path)) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing made


def test_an_index_of_another_version_stops_the_server_with_one_line(tmp_path: Path) -> None:
    data = copy_fixture("v2", tmp_path)
    assert logcaster("migrate", str(data)).returncode == 0
    (data / "index" / "FORMAT").write_text('{"index": 1}\n')
    refused = logcaster(*serve_args(data))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "index format 1, this version reads index format 2" in refused.stderr


def test_a_spool_of_another_version_is_refused(tmp_path: Path) -> None:
    Spool(tmp_path / "a", max_bytes=1 << 20).close()
    assert (tmp_path / "a" / "FORMAT").read_bytes() == b'{"spool":1}\n'
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "FORMAT").write_text('{"spool": 2}\n')
    with pytest.raises(StorageError, match="spool format 2, this version reads spool format 1"):
        Spool(tmp_path / "b", max_bytes=1 << 20)


def test_damaged_lc1_bytes_are_skipped_and_the_original_kept(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    active = data / "active.log"
    original = active.read_bytes()
    torn = b"#LC1 103 2 40 0000"  # a block cut off mid-header by a crash
    flipped = bytearray(original)
    flipped[flipped.index(b"fixture line 050")] ^= 0x20  # one bit in one event of a block
    active.write_bytes(bytes(flipped) + torn)
    done = logcaster("migrate", str(data))
    assert done.returncode == 0, done.stderr
    assert "damaged bytes skipped; keep the original as quarantine/active.log.lc1" in done.stdout
    assert (data / "quarantine" / "active.log.lc1").read_bytes() == bytes(flipped) + torn
    stored = stored_events(data)
    lost = {i for i, _ in expected_events("v1")} - {i for i, _ in stored}
    assert lost and all(i >= 23 for i in lost)  # only the flipped block's events
    assert [e for e in expected_events("v1") if e[0] not in lost] == stored
    assert logcaster("data", "validate", str(data)).returncode == 0


def test_a_gzipped_lc1_segment_stays_gzipped(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    rotated = segment_files(data)[0]
    with open(rotated, "rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()
    assert logcaster("migrate", str(data)).returncode == 0
    with gzip.open(f"{rotated}.gz", "rb") as f:
        assert f.read(5) == b"#LC2 "
    assert stored_events(data) == expected_events("v1")


def _migrate_peak_kib(directory: Path) -> tuple[str, int]:
    """`logcaster migrate DIR` in a process of its own; (its output, its peak RSS in KiB)."""
    code = (
        "import resource, sys\n"
        "from logcaster.cli import main\n"
        "rc = main(['migrate', sys.argv[1]])\n"
        "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out, _, peak = done.stdout.rstrip("\n").rpartition("\n")
    return out, int(peak.removeprefix("peak "))


def test_a_large_lc1_segment_streams_in_bounded_memory(tmp_path: Path) -> None:
    """~96 MiB of LC1 blocks of 64 KiB: the migration's peak RSS grows by far
    less than the file over a tiny directory's (one block in memory, not the file)."""
    small = copy_fixture("v1", tmp_path)
    _, small_peak = _migrate_peak_kib(small)
    data = tmp_path / "large"
    data.mkdir()
    texts = [b"event %07d " % n + b"x" * 100 for n in range(560)]
    total = 0
    with open(data / "active.log", "wb") as f:
        for block in range(1500):
            base = 1 + block * len(texts)
            total += f.write(lc1_block(base, texts))
    assert total > 90 * 1024 * 1024
    out, peak = _migrate_peak_kib(data)
    assert "1500 blocks, 840000 events" in out
    grown = (peak - small_peak) * 1024
    assert grown < 16 * 1024 * 1024, f"peak RSS {small_peak} -> {peak} KiB for {total} bytes"


def test_a_truncated_gzipped_segment_is_named_and_nothing_is_left_half_done(
    tmp_path: Path,
) -> None:
    data = copy_fixture("v1", tmp_path)
    rotated = segment_files(data)[0]
    Path(f"{rotated}.gz").write_bytes(gzip.compress(rotated.read_bytes())[:300])
    rotated.unlink()
    before = snapshot(data)
    done = logcaster("migrate", str(data))
    assert done.returncode == 2
    assert done.stderr.startswith(f"logcaster migrate: cannot read {rotated}.gz: ")
    assert done.stderr.count("\n") == 1
    after = snapshot(data)
    assert after.pop("lock") == b""  # the migration held it, and released it
    assert after == before
