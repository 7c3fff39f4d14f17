"""The segment writer: rotation, recovery on open, fsync policies, errors (issue 4, step 2)."""

from __future__ import annotations

import errno
import os
import resource
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.exceptions import StorageError
from logcaster.pipeline.batch import Batch
from logcaster.segments.blocks import encode_block, received_us
from logcaster.segments.names import (
    ACTIVE_NAME,
    QUARANTINE_DIR,
    parse_segment_name,
    segment_name,
)
from logcaster.segments.segment import StoredBatch, read_batches, read_blocks, scan_segment
from logcaster.segments.writer import IOV_MAX, SegmentWriter, write_all


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def texts_for(first_id: int, n: int) -> list[bytes]:
    return [b"event %d level=INFO msg=hello\nsecond line #x" % (first_id + i) for i in range(n)]


def batches_from(first_id: int, sizes: list[int]) -> list[tuple[int, list[bytes]]]:
    out = []
    for n in sizes:
        out.append((first_id, texts_for(first_id, n)))
        first_id += n
    return out


def read_all(writer: SegmentWriter) -> list[tuple[Path, int, list[bytes]]]:
    return [(p, fid, texts) for p in writer.segments() for fid, texts in read_blocks(p)]


def all_ids(writer: SegmentWriter) -> list[int]:
    ids: list[int] = []
    for _, first_id, texts in read_all(writer):
        assert texts == texts_for(first_id, len(texts))
        ids.extend(range(first_id, first_id + len(texts)))
    return ids


def test_rotation_keeps_every_event_exactly_once(tmp_path: Path) -> None:
    clock = FakeClock()
    w = SegmentWriter(tmp_path, max_bytes=4096, fsync="never", clock=clock)
    next_id = 1
    for i in range(120):
        clock.now += 0.001  # distinct timestamps are not required, but realistic
        sizes = [1 + (i * 7 + j) % 13 for j in range(1 + i % 4)]
        batches = batches_from(next_id, sizes)
        if i % 2:
            w.write_many(batches)
        else:
            for first_id, texts in batches:
                w.write(first_id, texts)
        next_id += sum(sizes)
    w.close()
    assert w.rotations > 10

    ids = all_ids(w)
    assert ids == list(range(1, next_id))
    seen_blocks: set[int] = set()
    rotated = w.segments()[:-1]
    assert w.segments()[-1] == tmp_path / ACTIVE_NAME
    assert rotated == sorted(rotated, key=lambda p: parse_segment_name(p.name) or 0)
    for path in w.segments():
        scan = scan_segment(path)
        assert scan.problems == []
        assert scan.end_of_good == scan.size == path.stat().st_size
        assert scan.size <= 4096 or scan.block_count == 1
        for b in scan.blocks:
            assert b.first_id not in seen_blocks
            seen_blocks.add(b.first_id)
        if path in rotated:
            assert parse_segment_name(path.name) == scan.first_id
    assert w.last_id == next_id - 1 == w.durable_id


def test_block_larger_than_max_bytes_goes_alone(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, max_bytes=1000, fsync="never") as w:
        w.write(1, texts_for(1, 2))
        w.write(3, texts_for(3, 100))  # ~5 KiB
        w.write(103, texts_for(103, 2))
    blocks = [scan_segment(p).block_count for p in w.segments()]
    assert blocks == [1, 1, 1]
    assert all_ids(w) == list(range(1, 105))


def test_rotate_of_empty_active_is_a_no_op(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as w:
        assert w.rotate() is None
        assert w.segments() == [tmp_path / ACTIVE_NAME]


def test_reopen_continues_ids_and_appends(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, max_bytes=2048) as w:
        w.write_many(batches_from(0, [10] * 10))
        assert w.rotations > 0
    with SegmentWriter(tmp_path, max_bytes=2048) as w2:
        assert w2.recovered is None
        assert w2.last_id == w2.durable_id == 99
        before = (tmp_path / ACTIVE_NAME).stat().st_size
        assert w2.active_bytes == before > 0
        w2.write(100, texts_for(100, 5))
        with pytest.raises(ValueError, match="not above"):
            w2.write(104, texts_for(104, 1))
        assert (tmp_path / ACTIVE_NAME).stat().st_size > before
    assert all_ids(w2) == list(range(105))


def test_last_id_from_rotated_segments_only(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, max_bytes=1 << 20) as w:
        w.write_many(batches_from(5, [3, 4]))
        w.rotate()
    (tmp_path / ACTIVE_NAME).unlink()
    with SegmentWriter(tmp_path) as w2:
        assert w2.last_id == 11


def test_torn_tail_is_truncated_and_reported(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, max_bytes=3000) as w:
        w.write_many(batches_from(1, [5] * 12))
    active = tmp_path / ACTIVE_NAME
    good_size = active.stat().st_size
    half = encode_block(61, texts_for(61, 5))
    half = half[: len(half) // 2]
    with open(active, "ab") as f:
        f.write(half)

    with SegmentWriter(tmp_path, max_bytes=3000) as w2:
        rec = w2.recovered
        assert rec is not None
        assert rec.kind == "torn_tail"
        assert rec.torn_bytes == len(half)
        assert rec.offset == good_size
        assert rec.reason
        assert active.stat().st_size == good_size
        assert w2.last_id == 60
        w2.write(61, texts_for(61, 5))
    assert all_ids(w2) == list(range(1, 66))
    assert all(scan_segment(p).problems == [] for p in w2.segments())


@pytest.mark.parametrize(
    "content",
    [
        b"#LC1 1 2 20 0123abcd\nan older format\nline\n",  # the first block header version
        b"plain text someone wrote here\n" * 50,
        b"#LC2 1 1 99",  # a torn first block: nothing good at all
    ],
)
def test_active_without_one_good_block_is_set_aside_whole(tmp_path: Path, content: bytes) -> None:
    (tmp_path / ACTIVE_NAME).write_bytes(content)
    with SegmentWriter(tmp_path) as w:
        rec = w.recovered
        assert rec is not None and rec.kind == "quarantined" and rec.quarantined_to is not None
        assert rec.quarantined_to.read_bytes() == content  # never cut to nothing
        assert w.active_bytes == 0
        w.write(1, texts_for(1, 1))
    assert all_ids(w) == [1]


def test_corrupt_active_keeps_its_good_blocks_and_sets_only_the_damage_aside(
    tmp_path: Path,
) -> None:
    with SegmentWriter(tmp_path, max_bytes=3000) as w:
        w.write_many(
            [
                Batch(first_id, 1_700_000_000.5, "tcp:10.0.0.9:1", texts)
                for first_id, texts in batches_from(1, [5] * 14)
            ]
        )
    active = tmp_path / ACTIVE_NAME
    scan = scan_segment(active)
    assert scan.block_count >= 4
    rotated_before = w.segments()[:-1]
    assert rotated_before
    # Flip a byte inside the second block's payload: damage with good blocks around it.
    bad = scan.blocks[1]
    data = bytearray(active.read_bytes())
    data[bad.end - 5] ^= 0x01
    active.write_bytes(bytes(data))
    # A repair interrupted before its rename left its temporary file: it is redone.
    (tmp_path / (ACTIVE_NAME + ".repair.tmp")).write_bytes(b"half a repair")

    with SegmentWriter(tmp_path, max_bytes=3000, clock=FakeClock()) as w2:
        rec = w2.recovered
        assert rec is not None and rec.kind == "repaired"
        assert (rec.offset, rec.reason) == (bad.offset, "checksum mismatch")
        assert rec.kept_events == scan.event_count - bad.count
        [damage] = rec.damaged
        assert (damage.offset, damage.bytes) == (bad.offset, bad.length)
        assert damage.quarantined_to == (
            tmp_path
            / QUARANTINE_DIR
            / f"active.log.20231114T221320.000000Z.at-{bad.offset}.damaged"
        )
        assert damage.quarantined_to.read_bytes() == data[bad.offset : bad.end]
        # The good blocks stay, byte for byte (receive time and source included).
        assert active.read_bytes() == data[: bad.offset] + data[bad.end :]
        assert not (tmp_path / (ACTIVE_NAME + ".repair.tmp")).exists()
        assert rec.fields()["damaged"][0]["offset"] == bad.offset
        # Writing continues after the last good block, ids after the highest one.
        assert w2.last_id == 70
        assert w2.active_bytes == active.stat().st_size
        w2.write(71, texts_for(71, 1))
    assert w2.segments()[:-1] == rotated_before
    assert all_ids(w2) == [i for i in range(1, 72) if not bad.first_id <= i <= bad.last_id]
    assert scan_segment(active).problems == []
    kept = [b for b in read_batches(active) if b.first_id != 71]
    assert {(b.received, b.source) for b in kept} == {(1_700_000_000.5, "tcp:10.0.0.9:1")}
    with SegmentWriter(tmp_path, max_bytes=3000) as w3:
        assert w3.recovered is None  # repaired once, clean after


def test_corruption_then_torn_tail_in_active_sets_both_aside(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as w:
        w.write_many(batches_from(1, [3] * 5))
    active = tmp_path / ACTIVE_NAME
    scan = scan_segment(active)
    data = bytearray(active.read_bytes())
    data[scan.blocks[0].offset + 2] ^= 0x01  # a header digit of the first block
    data += b"#LC2 16 3 999 0 r - 0"  # a torn write after the last block
    active.write_bytes(bytes(data))
    with SegmentWriter(tmp_path) as w2:
        rec = w2.recovered
        assert rec is not None and rec.kind == "repaired"
        assert [(d.offset, d.reason) for d in rec.damaged] == [
            (0, "bad header"),
            (scan.size, "torn tail: bad header"),
        ]
        assert w2.last_id == 15
        w2.write(16, texts_for(16, 1))
    assert all_ids(w2) == [*range(4, 17)]


def _fsync_writer(tmp_path: Path, policy: str, mono: FakeClock) -> SegmentWriter:
    assert policy in ("always", "interval", "never")
    return SegmentWriter(
        tmp_path,
        fsync=policy,  # type: ignore[arg-type]
        fsync_interval=0.25,  # binary-exact steps below
        monotonic=mono,
    )


def test_fsync_interval_only_when_due(tmp_path: Path) -> None:
    mono = FakeClock(100.0)
    w = _fsync_writer(tmp_path, "interval", mono)
    assert w.durable_id is None
    w.write(1, texts_for(1, 3))
    assert w.fsyncs == 0 and w.durable_id is None
    mono.now += 0.125
    w.write(4, texts_for(4, 3))
    assert w.fsyncs == 0
    assert not w.maybe_fsync()
    mono.now += 0.125
    w.write(7, texts_for(7, 3))  # 0.25 s since the last fsync (the open)
    assert w.fsyncs == 1 and w.durable_id == 9
    w.write(10, texts_for(10, 1))
    assert w.fsyncs == 1 and w.durable_id == 9
    mono.now += 0.25
    assert w.maybe_fsync()
    assert w.fsyncs == 2 and w.durable_id == 10
    mono.now += 1
    assert not w.maybe_fsync()  # nothing unsynced
    w.write(11, texts_for(11, 1))
    w.close()
    assert w.fsyncs == 3 and w.durable_id == 11


def test_fsync_always_once_per_write_many(tmp_path: Path) -> None:
    mono = FakeClock()
    w = _fsync_writer(tmp_path, "always", mono)
    w.write_many(batches_from(1, [2, 2, 2]))
    assert w.fsyncs == 1 and w.durable_id == 6
    w.write(7, texts_for(7, 1))
    assert w.fsyncs == 2 and w.durable_id == 7
    assert not w.maybe_fsync()
    w.close()
    assert w.fsyncs == 2


def test_fsync_never_except_rotation_and_close(tmp_path: Path) -> None:
    mono = FakeClock()
    w = _fsync_writer(tmp_path, "never", mono)
    w.write_many(batches_from(1, [2, 2]))
    assert w.fsyncs == 0 and w.durable_id == 4  # "never": durable once written
    mono.now += 100
    assert not w.maybe_fsync()
    w.rotate()
    assert w.fsyncs == 1
    w.write(5, texts_for(5, 1))
    w.close()
    assert w.fsyncs == 2 and w.durable_id == 5


def test_time_rotation_with_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.25)
    w = SegmentWriter(tmp_path, clock=clock)
    assert w.rotate_if_older(3600) is None  # empty: nothing to rotate
    clock.now += 5000
    w.write(1, texts_for(1, 2))  # the age counts from the first write
    clock.now += 3599
    assert w.rotate_if_older(3600) is None
    clock.now += 1
    rotated = w.rotate_if_older(3600)
    assert rotated is not None
    assert rotated.name == segment_name(clock.now, 1)
    assert rotated.name == "logcaster-20231115T003640.250000Z-00000000000000000001.log"
    assert w.active_bytes == 0
    clock.now += 10_000
    assert w.rotate_if_older(3600) is None  # the new active file is still empty
    w.write(3, texts_for(3, 1))
    assert w.rotate_if_older(3600) is None
    w.close()
    assert [p.name for p in w.segments()] == [rotated.name, ACTIVE_NAME]


def test_foreign_bytes_after_the_good_end_are_truncated_before_writing(tmp_path: Path) -> None:
    """The writer fstat()s before each write and cuts the file back to its tracked end.

    This is the path a failed (partial) write takes on the retry; here the torn bytes
    are appended through another handle.
    """
    with SegmentWriter(tmp_path) as w:
        w.write(1, texts_for(1, 3))
        end = w.active_bytes
        with open(tmp_path / ACTIVE_NAME, "ab") as f:
            f.write(b"#LC2 4 3 99 0 r - 0000")
        w.write(4, texts_for(4, 3))
        assert w.active_bytes > end
    scan = scan_segment(tmp_path / ACTIVE_NAME)
    assert scan.problems == []
    assert all_ids(w) == list(range(1, 7))


def test_file_cut_from_outside_is_rescanned(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as w:
        w.write(1, texts_for(1, 3))
        first_end = w.active_bytes
        w.write(4, texts_for(4, 3))
        os.truncate(tmp_path / ACTIVE_NAME, first_end + 10)
        w.write(7, texts_for(7, 1))
    assert scan_segment(tmp_path / ACTIVE_NAME).problems == []
    assert all_ids(w) == [1, 2, 3, 7]


def test_write_failure_raises_storage_error_and_retry_is_clean(tmp_path: Path) -> None:
    """A real failing write without root: RLIMIT_FSIZE makes write() fail with EFBIG
    (with SIGXFSZ ignored), after a partial write when the limit falls inside the data."""
    with SegmentWriter(tmp_path, fsync="never") as w:
        w.write(1, texts_for(1, 3))
        end = w.active_bytes
        big = texts_for(4, 200)
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (end + 1000, hard))
            with pytest.raises(StorageError) as info:
                w.write(4, big)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, old_handler)
        err = info.value
        assert err.errno == errno.EFBIG
        assert err.path == str(tmp_path / ACTIVE_NAME)
        assert str(tmp_path / ACTIVE_NAME) in str(err)
        assert w.last_id == 3 and w.durable_id == 3
        assert w.active_bytes == end
        assert (tmp_path / ACTIVE_NAME).stat().st_size == end  # cut back at once
        w.write(4, big)  # the retry
    assert scan_segment(tmp_path / ACTIVE_NAME).problems == []
    assert all_ids(w) == list(range(1, 204))


def test_open_error_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(StorageError) as info:
        SegmentWriter(blocker / "sub")
    assert str(blocker / "sub") in str(info.value)
    assert info.value.errno == errno.ENOTDIR


def test_closed_writer_refuses_writes(tmp_path: Path) -> None:
    w = SegmentWriter(tmp_path)
    w.close()
    w.close()
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.write(1, texts_for(1, 1))


def test_segment_names_order_by_first_id(tmp_path: Path) -> None:
    names = [segment_name(2.0, 100), segment_name(1.0, 20), segment_name(3.0, 3)]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    w = SegmentWriter(tmp_path)
    assert [parse_segment_name(p.name) for p in w.rotated_segments()] == [3, 20, 100]
    assert parse_segment_name("logcaster-x-1.log") is None
    w.close()


def test_write_many_records_batch_metadata_in_either_mode(tmp_path: Path) -> None:
    """Batches keep receive time and source; JSON encoding leaves the parse cache alone."""
    raw = Batch(1, 1_700_000_000.5, "tcp:10.0.0.1:4000", texts_for(1, 3))
    js = Batch(4, 1_700_000_001.25, "syslog-udp", texts_for(4, 2))
    parsed = Batch(6, 1_700_000_002.0, "s", [b"cached one"])
    cached = parsed.events()
    with SegmentWriter(tmp_path, max_bytes=600, fsync="never") as w:
        w.write_many([raw], mode="raw")
        w.write_many([js, parsed], mode="json")
        w.write_many([(7, [b"pair"])])  # a plain (first_id, texts): no time, no source
        assert js.cached_events is None  # parsed in this thread, not cached on the batch
        assert parsed.cached_events is cached
        stored = [b for p in w.segments() for b in read_batches(p)]
    assert len(w.segments()) > 1  # rotation carries the metadata too
    assert stored == [
        StoredBatch(1, raw.texts, 1_700_000_000.5, "tcp:10.0.0.1:4000", "raw"),
        StoredBatch(4, js.texts, 1_700_000_001.25, "syslog-udp", "json"),
        StoredBatch(6, [b"cached one"], 1_700_000_002.0, "s", "json"),
        StoredBatch(7, [b"pair"], 0.0, "", "raw"),
    ]


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 * 10**6 - 1))
def test_microsecond_receive_times_round_trip_exactly(us: int) -> None:
    """The pipeline stamps batches with whole microseconds (until 2106 a float holds
    them exactly), so a replayed batch gets back the very same float."""
    assert received_us(us / 1e6) == us


@pytest.mark.parametrize("limit", [None, 1, 1000])
def test_write_all_writes_every_part_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    """More parts than one writev takes, empty ones among them; with `limit` the
    kernel takes at most that many bytes per call (a short write), and the rest
    is written by the next calls."""
    parts = [b"%d:" % i + b"x" * (i % 7) if i % 5 else b"" for i in range(3 * IOV_MAX + 5)]
    real = os.writev

    def short(fd: int, buffers: list[bytes]) -> int:
        assert limit is not None
        taken: list[bytes] = []
        left = limit
        for buf in buffers:
            if left <= 0:
                break
            taken.append(bytes(buf[:left]))
            left -= len(taken[-1])
        return real(fd, taken)

    if limit is not None:
        monkeypatch.setattr(os, "writev", short)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        write_all(fd, parts)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(parts)
