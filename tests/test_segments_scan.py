"""Reading and validating segment files (issue 4, step 1): torn tails and corruption.

`scan_segment`, `read_blocks` and `truncate_torn_tail` over files of known
blocks, cut, flipped, gzip'd and followed by garbage. The block format itself:
test_segments_blocks.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from logcaster.segments.blocks import encode_block
from logcaster.segments.segment import (
    BAD_GZIP,
    BAD_HEADER,
    CHECKSUM_MISMATCH,
    SHORT_PAYLOAD,
    Corruption,
    TornTail,
    read_blocks,
    scan_segment,
    truncate_torn_tail,
)
from tests.segments_helpers import TRICKY, texts_for, three_blocks, write_blocks

# --- reading and validating segments ---------------------------------------------------------


def test_many_blocks_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = []
    next_id = 1
    for i in range(300):
        texts = texts_for(next_id, 1 + i % 17)
        if i % 5 == 0:
            texts.append(TRICKY[i % len(TRICKY)])
        batches.append((next_id, texts))
        next_id += len(texts)
    offsets = write_blocks(path, batches)
    scan = scan_segment(path)
    assert scan.problem is None
    assert [b.offset for b in scan.blocks] == offsets
    assert scan.end_of_good == scan.size == path.stat().st_size
    assert scan.event_count == next_id - 1
    assert (scan.first_id, scan.last_id) == (1, next_id - 1)
    assert list(read_blocks(path)) == batches
    # Every line of the file is a header or one event: grep-friendly.
    lines = path.read_bytes().split(b"\n")[:-1]
    assert sum(1 for line in lines if line.startswith(b"#LC2 ")) == len(batches)
    assert len(lines) == len(batches) + scan.event_count


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    path.write_bytes(b"")
    scan = scan_segment(path)
    assert scan.problem is None and scan.blocks == [] and scan.end_of_good == 0
    assert list(read_blocks(path)) == []


def test_truncation_at_every_offset_of_last_block_is_a_torn_tail(tmp_path: Path) -> None:
    full = tmp_path / "full.log"
    batches = three_blocks()
    offsets = write_blocks(full, batches)
    data = full.read_bytes()
    last = offsets[-1]
    path = tmp_path / "seg.log"
    for cut in range(last + 1, len(data)):
        path.write_bytes(data[:cut])
        scan = scan_segment(path)
        assert scan.end_of_good == last, cut
        assert isinstance(scan.problem, TornTail), cut
        assert scan.problem.offset == last
        assert scan.problem.bytes_after == cut - last
        assert [b.offset for b in scan.blocks] == offsets[:-1]
        assert list(read_blocks(path)) == batches[:-1]
        assert truncate_torn_tail(path, scan) == cut - last
        assert path.read_bytes() == data[:last]
        assert scan_segment(path).problem is None


def test_flipped_byte_in_middle_block_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = three_blocks()
    offsets = write_blocks(path, batches)
    data = bytearray(path.read_bytes())
    middle = (offsets[1] + offsets[2]) // 2  # inside the middle block's payload
    data[middle] ^= 0x01
    path.write_bytes(bytes(data))
    scan = scan_segment(path)
    assert scan.problems == [Corruption(offsets[1], CHECKSUM_MISMATCH, offsets[2] - offsets[1])]
    assert scan.torn_tail is None
    assert [b.offset for b in scan.blocks] == [offsets[0], offsets[2]]
    assert scan.end_of_good == len(data)
    assert list(read_blocks(path)) == [batches[0], batches[2]]
    assert truncate_torn_tail(path, scan) == 0  # corruption is never truncated away
    assert path.read_bytes() == bytes(data)


def test_every_flipped_byte_in_middle_block_is_detected(tmp_path: Path) -> None:
    # Header bytes too: the checksum covers the header's fields, so even a digit
    # of first_id turned into another digit is caught.
    path = tmp_path / "seg.log"
    batches = three_blocks()
    offsets = write_blocks(path, batches)
    clean = path.read_bytes()
    for pos in range(offsets[1], offsets[2]):
        data = bytearray(clean)
        data[pos] ^= 0x01
        path.write_bytes(bytes(data))
        scan = scan_segment(path)
        blocks = list(read_blocks(path))
        assert blocks == [batches[0], batches[2]], pos
        assert isinstance(scan.problem, Corruption), pos
        assert scan.problem.offset == offsets[1], pos


def test_garbage_header(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = three_blocks()
    write_blocks(path, batches[:1])
    good_end = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"garbage that is not a header\nmore garbage\n")
        f.write(encode_block(*batches[2]))
    scan = scan_segment(path)
    assert isinstance(scan.problem, Corruption)
    assert scan.problem.offset == good_end and scan.problem.reason == BAD_HEADER
    assert list(read_blocks(path)) == [batches[0], batches[2]]


def test_garbage_at_the_end_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = three_blocks()
    write_blocks(path, batches)
    good_end = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096 + b"\n#LC2 not a header\n" + b"x" * 100)
    scan = scan_segment(path)
    assert scan.problems == [TornTail(good_end, path.stat().st_size - good_end, BAD_HEADER)]
    assert scan.end_of_good == good_end
    assert list(read_blocks(path)) == batches


def test_oversized_payload_is_a_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = [(1, [b"a"]), (2, [b"x" * 200]), (3, [b"b"])]
    offsets = write_blocks(path, batches)
    scan = scan_segment(path, max_payload=100)  # the middle block is larger
    assert isinstance(scan.problem, Corruption) and scan.problem.reason == BAD_HEADER
    assert scan.problem.offset == offsets[1]
    assert list(read_blocks(path, max_payload=100)) == [batches[0], batches[2]]


def test_gzip_segment_is_read(tmp_path: Path) -> None:
    plain = tmp_path / "seg.log"
    batches = three_blocks()
    write_blocks(plain, batches)
    data = plain.read_bytes()
    gz = tmp_path / "seg.log.gz"
    gz.write_bytes(gzip.compress(data))
    scan = scan_segment(gz)
    assert scan.problem is None and scan.size == len(data) and scan.block_count == 3
    assert list(read_blocks(gz)) == batches
    # A torn gzip'd segment is reported but never truncated.
    gz.write_bytes(gzip.compress(data[:-3]))
    scan = scan_segment(gz)
    assert isinstance(scan.problem, TornTail)
    with pytest.raises(ValueError):
        truncate_torn_tail(gz, scan)


def test_truncated_gzip_stream_is_reported_not_raised(tmp_path: Path) -> None:
    plain = tmp_path / "seg.log"
    batches = [(1 + 50 * i, texts_for(1 + 50 * i, 50)) for i in range(200)]
    write_blocks(plain, batches)
    gz = tmp_path / "seg.log.gz"
    compressed = gzip.compress(plain.read_bytes())
    for cut in (len(compressed) // 2, len(compressed) - 4):
        gz.write_bytes(compressed[:cut])
        scan = scan_segment(gz)
        assert scan.torn_tail is not None and scan.torn_tail.reason == BAD_GZIP
        assert scan.torn_tail.offset == scan.end_of_good
        read = list(read_blocks(gz))
        assert read == batches[: len(read)] and len(read) == scan.block_count


def test_truncate_refuses_a_file_that_changed(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    write_blocks(path, three_blocks())
    with open(path, "ab") as f:
        f.write(b"#LC2 12")
    scan = scan_segment(path)
    assert scan.torn_tail is not None
    with open(path, "ab") as f:
        f.write(b"3")
    with pytest.raises(ValueError):
        truncate_torn_tail(path, scan)


def test_keep_blocks_false_keeps_counts(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    write_blocks(path, three_blocks())
    scan = scan_segment(path, keep_blocks=False)
    assert scan.blocks == [] and scan.block_count == 3
    assert scan.event_count == 5 + len(TRICKY) + 1 + 7


def test_corruption_then_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = [*three_blocks(), (200, texts_for(200, 3))]
    offsets = write_blocks(path, batches)
    data = bytearray(path.read_bytes())
    data[offsets[1] + 1] ^= 0x20  # '#LC2' -> '#lC2': bad header
    path.write_bytes(bytes(data[:-2]))  # and the last block is torn
    scan = scan_segment(path)
    assert scan.problems == [
        Corruption(offsets[1], BAD_HEADER, offsets[2] - offsets[1]),
        TornTail(offsets[3], len(data) - 2 - offsets[3], SHORT_PAYLOAD),
    ]
    assert scan.end_of_good == offsets[3]
    assert list(read_blocks(path)) == [batches[0], batches[2]]
    assert truncate_torn_tail(path, scan) == len(data) - 2 - offsets[3]
    assert path.stat().st_size == offsets[3]


def test_damage_with_nothing_valid_after_it_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    batches = three_blocks()
    offsets = write_blocks(path, batches)
    data = bytearray(path.read_bytes())
    data[offsets[1] + 1] ^= 0x20  # bad header in the middle block ...
    path.write_bytes(bytes(data[:-2]))  # ... and the last one torn: no valid block follows
    scan = scan_segment(path)
    assert scan.problems == [TornTail(offsets[1], len(data) - 2 - offsets[1], BAD_HEADER)]
    assert scan.end_of_good == offsets[1]
