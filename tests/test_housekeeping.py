"""Time rotation (writer, fake clock) and housekeeping of rotated segments: gzip,
retention, crash leftovers, quarantine of damaged files (issue 4)."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logcaster.segments.housekeeping import Housekeeper
from logcaster.segments.names import (
    ACTIVE_NAME,
    QUARANTINE_DIR,
    list_rotated,
    parse_segment_name,
    segment_time,
)
from logcaster.segments.segment import read_batches, read_blocks, scan_segment
from logcaster.segments.writer import RotateInterval, SegmentWriter, rotation_period
from tests.test_segments_writer import FakeClock, texts_for


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def ids_in(paths: list[Path]) -> list[int]:
    return [
        first_id + i
        for path in paths
        for first_id, texts in read_blocks(path)
        for i in range(len(texts))
    ]


def make_rotated(directory: Path, files: int, *, clock: FakeClock | None = None) -> list[Path]:
    """`files` rotated segments of 3 blocks (5 events each), one per clock second,
    plus an active.log with one block; the rotated paths in order."""
    clock = clock or FakeClock()
    with SegmentWriter(directory, fsync="never", clock=clock) as w:
        next_id = 1
        for _ in range(files):
            for _ in range(3):
                w.write(next_id, texts_for(next_id, 5))
                next_id += 5
            clock.now += 1
            w.rotate()
        w.write(next_id, texts_for(next_id, 5))
        return w.rotated_segments()


# -- time rotation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "first", "same", "boundary"),
    [
        ("hourly", "2026-01-19T10:00:00", "2026-01-19T10:59:59.999", "2026-01-19T11:00:00"),
        ("daily", "2026-01-19T00:00:01", "2026-01-19T23:59:59.5", "2026-01-20T00:00:00"),
        (10, "2026-01-19T10:00:05", "2026-01-19T10:00:09.9", "2026-01-19T10:00:10"),
    ],
)
def test_time_rotation_at_utc_boundaries(
    tmp_path: Path, interval: RotateInterval, first: str, same: str, boundary: str
) -> None:
    clock = FakeClock(utc(first))
    w = SegmentWriter(tmp_path, fsync="never", clock=clock, rotate_interval=interval)
    assert w.rotate_if_due() is None  # empty: nothing to rotate
    w.write(1, texts_for(1, 2))
    clock.now = utc(same)
    assert w.rotate_if_due() is None
    w.write(3, texts_for(3, 2))  # same period: same file
    clock.now = utc(boundary)
    rotated = w.rotate_if_due()
    assert rotated is not None and parse_segment_name(rotated.name) == 1
    assert segment_time(rotated.name) == clock.now
    assert ids_in([rotated]) == [1, 2, 3, 4]
    assert w.rotate_if_due() is None  # the new active file is empty
    w.close()


def test_a_write_in_a_new_period_starts_a_new_file(tmp_path: Path) -> None:
    """No tick needed: the write itself rotates first, so the new hour's batch is not
    appended to the old hour's file."""
    clock = FakeClock(utc("2026-01-19T10:59:59"))
    with SegmentWriter(tmp_path, fsync="never", clock=clock, rotate_interval="hourly") as w:
        w.write(1, texts_for(1, 3))
        clock.now = utc("2026-01-19T11:00:00.5")
        w.write(4, texts_for(4, 3))
        rotated = w.rotated_segments()
    assert [ids_in([p]) for p in rotated] == [[1, 2, 3]]
    assert ids_in([tmp_path / ACTIVE_NAME]) == [4, 5, 6]


def test_reopened_active_file_from_an_earlier_hour_rotates(tmp_path: Path) -> None:
    """After a restart the first write time is unknown; the file's mtime bounds it."""
    with SegmentWriter(tmp_path, fsync="never") as w:
        w.write(1, texts_for(1, 2))
    active = tmp_path / ACTIVE_NAME
    last_write = utc("2026-01-19T09:30:00")
    os.utime(active, (last_write, last_write))
    clock = FakeClock(utc("2026-01-19T10:00:01"))
    with SegmentWriter(tmp_path, clock=clock, rotate_interval="hourly") as w2:
        assert w2.rotate_if_due() is not None
    # Last written in the current hour: kept until the next boundary.
    with SegmentWriter(tmp_path, fsync="never") as w3:
        w3.write(3, texts_for(3, 1))
    os.utime(active, (utc("2026-01-19T10:00:00.5"),) * 2)
    with SegmentWriter(tmp_path, clock=clock, rotate_interval="hourly") as w4:
        assert w4.rotate_if_due() is None


def test_rotation_period_and_bad_intervals(tmp_path: Path) -> None:
    assert rotation_period(utc("2026-01-19T10:59:59.999"), "hourly") + 1 == rotation_period(
        utc("2026-01-19T11:00:00"), "hourly"
    )
    assert rotation_period(utc("2026-01-19T00:00:00"), "daily") == rotation_period(
        utc("2026-01-19T23:59:59.999"), "daily"
    )
    with pytest.raises(ValueError, match="rotate_interval"):
        SegmentWriter(tmp_path, rotate_interval=0)
    with pytest.raises(ValueError, match="rotate_interval"):
        SegmentWriter(tmp_path, rotate_interval="weekly")  # type: ignore[arg-type]


# -- compression and crash leftovers -----------------------------------------------


def test_compress_pending_keeps_every_block(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 4)
    before = ids_in(rotated)
    keeper = Housekeeper(tmp_path)
    assert keeper.pending_compression() == rotated
    made = keeper.compress_pending()
    assert [p.name for p in made] == [p.name + ".gz" for p in rotated]
    assert list_rotated(tmp_path) == made
    assert not any(p.exists() for p in rotated)
    assert not list(tmp_path.glob("*.tmp"))
    assert ids_in(made) == before
    assert all(scan_segment(p).problems == [] for p in made)
    assert keeper.pending_compression() == []
    assert ids_in([tmp_path / ACTIVE_NAME]) == [61, 62, 63, 64, 65]  # never compressed
    # A second writer reads the .gz files for its highest id.
    with SegmentWriter(tmp_path) as w:
        assert w.last_id == 65


def test_stopped_compression_leaves_the_log_whole(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 1)
    keeper = Housekeeper(tmp_path)
    keeper.stopping.set()
    assert keeper.compress(rotated[0]) is None
    assert rotated[0].exists() and not list(tmp_path.glob("*.gz*"))


def test_crash_leftovers_are_cleaned_and_never_listed_twice(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 3)
    # A crash between rename and unlink: both forms of segment 0.
    both = rotated[0].with_name(rotated[0].name + ".gz")
    both.write_bytes(gzip.compress(rotated[0].read_bytes()))
    # A crash before the rename: a partial .gz.tmp next to segment 1.
    tmp = rotated[1].with_name(rotated[1].name + ".gz.tmp")
    tmp.write_bytes(gzip.compress(rotated[1].read_bytes())[:50])
    listed = list_rotated(tmp_path)
    assert listed == [both, rotated[1], rotated[2]]  # the .gz of the pair, once
    assert ids_in(listed) == list(range(1, 46))

    removed = Housekeeper(tmp_path).cleanup()
    assert sorted(removed) == sorted([rotated[0], tmp])
    assert list_rotated(tmp_path) == listed
    assert not rotated[0].exists() and not tmp.exists()


# -- retention ---------------------------------------------------------------------


def test_retention_by_file_count_oldest_first(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 6)
    qdir = tmp_path / QUARANTINE_DIR
    qdir.mkdir()
    (qdir / rotated[0].name).write_bytes(b"set aside")
    deleted = Housekeeper(tmp_path, retention_files=2).apply_retention()
    assert [d.path for d in deleted] == rotated[:4]
    assert {d.reason for d in deleted} == {"retention_files"}
    assert all(d.bytes > 0 for d in deleted)
    assert list_rotated(tmp_path) == rotated[4:]
    assert (tmp_path / ACTIVE_NAME).stat().st_size > 0
    assert (qdir / rotated[0].name).exists()
    assert Housekeeper(tmp_path, retention_files=2).apply_retention() == []


def test_retention_by_age_uses_the_rotation_time_in_the_name(tmp_path: Path) -> None:
    start = utc("2026-01-19T10:00:00")
    rotated = make_rotated(tmp_path, 4, clock=FakeClock(start))  # rotated at start+1..+4
    clock = FakeClock(start + 4 + 10)
    keeper = Housekeeper(tmp_path, retention_age=11.5, clock=clock)
    deleted = keeper.apply_retention()  # ages 13, 12, 11, 10
    assert [d.path for d in deleted] == rotated[:2]
    assert {d.reason for d in deleted} == {"retention_age"}
    clock.now += 100
    assert [d.path for d in keeper.apply_retention()] == rotated[2:]
    assert list_rotated(tmp_path) == [] and (tmp_path / ACTIVE_NAME).exists()


def test_retention_by_total_bytes(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 5)
    Housekeeper(tmp_path).compress_pending()
    gz = list_rotated(tmp_path)
    sizes = [p.stat().st_size for p in gz]
    limit = sizes[-1] + sizes[-2] + 1  # room for the newest two
    deleted = Housekeeper(tmp_path, retention_bytes=limit).apply_retention()
    assert [d.path for d in deleted] == gz[:3]
    assert [d.bytes for d in deleted] == sizes[:3]
    assert {d.reason for d in deleted} == {"retention_bytes"}
    assert list_rotated(tmp_path) == gz[3:]
    assert len(rotated) == 5


def test_retention_limits_combine(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 5)
    newest_two = sum(p.stat().st_size for p in rotated[-2:])
    keeper = Housekeeper(tmp_path, retention_files=4, retention_bytes=newest_two)
    deleted = keeper.apply_retention()
    assert [(d.path, d.reason) for d in deleted] == [
        (rotated[0], "retention_files"),
        (rotated[1], "retention_bytes"),
        (rotated[2], "retention_bytes"),
    ]


# -- quarantine of damaged rotated segments ----------------------------------------


def flip_in_middle(path: Path) -> int:
    """Flip a byte in the payload of the second of three blocks; that block's offset."""
    block = scan_segment(path).blocks[1]
    raw = bytearray(path.read_bytes())
    raw[block.end - 5] ^= 0x01
    path.write_bytes(bytes(raw))
    return block.offset


def test_corruption_in_the_middle_is_quarantined_and_the_rest_kept(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 3)
    original = rotated[1].read_bytes()
    block = scan_segment(rotated[1]).blocks[1]
    offset = flip_in_middle(rotated[1])
    damaged = rotated[1].read_bytes()
    [result] = Housekeeper(tmp_path, clock=lambda: 1_700_000_000.0).verify()
    assert result.path == rotated[1] and result.offset == offset
    assert result.reason == "checksum mismatch" and result.kept_events == 10
    # Only the damaged bytes are set aside, named after the file and the offset.
    [damage] = result.damaged
    assert (damage.offset, damage.bytes) == (block.offset, block.length)
    assert (
        result.quarantined_to
        == damage.quarantined_to
        == tmp_path
        / QUARANTINE_DIR
        / (f"{rotated[1].name}.20231114T221320.000000Z.at-{offset}.damaged")
    )
    assert result.quarantined_to.read_bytes() == damaged[block.offset : block.end]
    # Same name, good blocks only, clean: the blocks before and after the damage.
    assert scan_segment(rotated[1]).problems == []
    assert ids_in([rotated[1]]) == [*range(16, 21), *range(26, 31)]
    assert len(rotated[1].read_bytes()) < len(original)
    # Kept verbatim: the good blocks are byte for byte what they were.
    assert rotated[1].read_bytes() == damaged[: block.offset] + damaged[block.end :]
    assert Housekeeper(tmp_path).verify() == []  # clean now
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_gzip_is_quarantined_and_its_good_blocks_kept(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, fsync="never") as w:
        # Random text (barely compressible) in blocks of 32 KiB, larger than gzip's
        # read-ahead, so a cut at 2/3 of the stream leaves good blocks before it.
        for b in range(6):
            w.write(1 + 100 * b, [os.urandom(160).hex().encode() for _ in range(100)])
        w.rotate()
    [gz] = Housekeeper(tmp_path).compress_pending()
    raw = gz.read_bytes()
    gz.write_bytes(raw[: len(raw) * 2 // 3])
    [result] = Housekeeper(tmp_path).verify()
    assert result.path == gz and "torn tail" in result.reason and "gzip" in result.reason
    assert result.kept_events in (200, 300)
    assert scan_segment(gz).problems == []
    assert ids_in([gz]) == list(range(1, 1 + result.kept_events))
    assert (tmp_path / QUARANTINE_DIR / gz.name).read_bytes() == raw[: len(raw) * 2 // 3]


def test_garbage_named_like_segments_never_stops_verification(tmp_path: Path) -> None:
    rotated = make_rotated(tmp_path, 2)
    stamp = "logcaster-20260119T100000.000000Z-"
    random_log = tmp_path / f"{stamp}00000000000000000100.log"
    random_log.write_bytes(os.urandom(3000))
    random_gz = tmp_path / f"{stamp}00000000000000000200.log.gz"
    random_gz.write_bytes(os.urandom(3000))
    empty = tmp_path / f"{stamp}00000000000000000300.log"
    empty.write_bytes(b"")
    a_dir = tmp_path / f"{stamp}00000000000000000400.log"
    a_dir.mkdir()
    results = Housekeeper(tmp_path).verify()
    assert sorted(r.path for r in results) == sorted([random_log, random_gz])
    assert all(r.kept_events == 0 for r in results)
    assert not random_log.exists() and not random_gz.exists()
    assert empty.exists() and a_dir.is_dir()
    assert list_rotated(tmp_path) == [*rotated, empty]
    with SegmentWriter(tmp_path) as w:
        assert w.last_id == 300  # the first id in a name counts, even of an empty file


def test_a_file_that_cannot_be_set_aside_is_reported_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rotated = make_rotated(tmp_path, 2)
    flip_in_middle(rotated[0])
    damaged = rotated[0].read_bytes()
    (tmp_path / QUARANTINE_DIR).write_bytes(b"")  # a file where the directory belongs
    assert Housekeeper(tmp_path).verify() == []
    failed = [r for r in caplog.records if getattr(r, "event", None) == "quarantine_failed"]
    assert len(failed) == 1 and failed[0].fields["path"] == str(rotated[0])  # type: ignore[attr-defined]
    assert rotated[0].read_bytes() == damaged  # untouched, tried again next start
    assert not list(tmp_path.glob("*.tmp"))


def test_repair_keeps_receive_time_source_and_mode_of_the_good_blocks(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, fsync="never") as w:
        for b in range(3):
            w.write(
                1 + 5 * b,
                texts_for(1 + 5 * b, 5),
                received=1_700_000_000.25 + b,
                source="tcp:10.1.2.3:4567",
                mode="json",
            )
        [segment] = [w.rotate()]
    assert segment is not None
    flip_in_middle(segment)
    [result] = Housekeeper(tmp_path).verify()
    assert result.kept_events == 10
    kept = list(read_batches(segment))
    assert [(b.first_id, b.received, b.source, b.mode) for b in kept] == [
        (1, 1_700_000_000.25, "tcp:10.1.2.3:4567", "json"),
        (11, 1_700_000_002.25, "tcp:10.1.2.3:4567", "json"),
    ]
