"""The on-disk block format (issue 4, step 1): layout, header, escaping, JSON mode.

Reading whole segment files and sorting their damage: test_segments_scan.py.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import google_crc32c
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.parsing.parse import TOO_DEEP, parse_event
from logcaster.segments.blocks import (
    MAX_HEADER_BYTES,
    MAX_SOURCE_BYTES,
    BlockFormatError,
    block_crc,
    decode_payload,
    encode_block,
    encode_block_parts,
    encode_payload,
    parse_header,
    payload_shape_ok,
)
from logcaster.segments.segment import (
    CHECKSUM_MISMATCH,
    Corruption,
    StoredBatch,
    read_batches,
    read_blocks,
    scan_segment,
)
from tests.segments_helpers import TRICKY, three_blocks

# --- format and escaping ---------------------------------------------------------------------


def test_block_layout() -> None:
    block = encode_block(7, [b"hello", b"#x", b"a\\b\nc"])
    payload = b"hello\n\\#x\na\\\\b\\nc\n"
    # The checksum covers the header's fields as written, then the payload.
    fields = b"7 3 %d 0 r -" % len(payload)
    crc = google_crc32c.extend(google_crc32c.value(fields), payload)
    assert block == b"#LC2 %s %08x\n" % (fields, crc) + payload


def test_header_records_receive_time_source_and_mode() -> None:
    texts = [b"hello", b"#x"]
    header, payload = encode_block_parts(
        7, texts, received=1764280000.123456, source="ingest:10.0.0.1:5000", mode="json"
    )
    assert header.startswith(b"#LC2 7 2 %d 1764280000123456 j ingest:10.0.0.1:5000 " % len(payload))
    h = parse_header(header)
    assert h is not None
    assert (h.first_id, h.count, h.payload_bytes) == (7, 2, len(payload))
    assert (h.received_us, h.received, h.mode) == (1764280000123456, 1764280000.123456, "json")
    assert h.source == "ingest:10.0.0.1:5000"
    assert h.crc == block_crc(h.fields, payload)
    assert decode_payload(payload, 2, h.mode) == texts
    raw_header, _ = encode_block_parts(7, texts, received=1.5, source="", mode="raw")
    assert raw_header.startswith(b"#LC2 7 2 ") and b" 1500000 r - " in raw_header


@pytest.mark.parametrize(
    "source",
    ["", "-", "%", "a b", "syslog-udp", "ingest:[::1]:5", "é\n#LC2 x", "\udc80", "x" * 300],
)
def test_source_label_round_trips_or_is_cut(source: str) -> None:
    header, payload = encode_block_parts(1, [b"x"], source=source)
    assert header.count(b" ") == 7 and header.count(b"\n") == 1
    h = parse_header(header)
    assert h is not None and h.crc == block_crc(h.fields, payload)
    if len(source) <= 100 and source.isprintable() and "\udc80" not in source:
        assert h.source == source
    assert len(h.fields.rsplit(b" ", 1)[1]) <= MAX_SOURCE_BYTES


def test_longest_header_fits_max_header_bytes() -> None:
    fields = b"%d %d %d %d j %s" % (10**20 - 1, 10**10 - 1, 10**20 - 1, 10**18 - 1, b"%" * 128)
    line = b"#LC2 %s 0000000a\n" % fields
    assert len(line) == MAX_HEADER_BYTES
    assert parse_header(line, max_payload=10**21) is not None
    # One digit or one source byte more is not a header.
    assert parse_header(line.replace(b" j ", b"0 j ", 1), max_payload=10**21) is None
    assert parse_header(line.replace(b" j %", b" j %%", 1), max_payload=10**21) is None
    # A received time past the field's range is clamped, never longer.
    header, _ = encode_block_parts(1, [b"x"], received=1e30)
    assert b" %d r - " % (10**18 - 1) in header
    header, _ = encode_block_parts(1, [b"x"], received=-5.0)
    assert b" 0 r - " in header


@pytest.mark.parametrize("field", ["received", "mode", "source"])
def test_checksum_catches_a_flipped_header_field(tmp_path: Path, field: str) -> None:
    path = tmp_path / "seg.log"
    batches = three_blocks()
    with open(path, "wb") as f:
        for first_id, texts in batches:
            f.write(encode_block(first_id, texts, received=1764280000.5, source="src", mode="raw"))
    data = path.read_bytes()
    second = data.index(b"\n#LC2 6 ") + 1
    line_end = data.index(b"\n", second)
    header = data[second:line_end]
    if field == "received":
        changed = header.replace(b" 1764280000500000 ", b" 1764280000500001 ")
    elif field == "mode":
        changed = header.replace(b" r src ", b" j src ")
    else:
        changed = header.replace(b" src ", b" srd ")
    assert changed != header and parse_header(changed + b"\n") is not None
    path.write_bytes(data[:second] + changed + data[line_end:])
    scan = scan_segment(path)
    assert [type(p) for p in scan.problems] == [Corruption]
    assert scan.problems[0].reason == CHECKSUM_MISMATCH
    assert list(read_blocks(path)) == [batches[0], batches[2]]


def test_encode_block_parts_join_to_the_block() -> None:
    header, payload = encode_block_parts(3, TRICKY)
    assert header + payload == encode_block(3, TRICKY)
    assert decode_payload(payload, len(TRICKY)) == TRICKY


def test_tricky_texts_round_trip_each_path() -> None:
    cases: list[list[bytes]] = [
        [b"a", b"b"],  # fast path
        [b"a\\b", b"c"],  # backslash only
        [b"a\nb", b"c\\"],  # inner newline, no CR
        [b"a\rb", b"\\c"],  # CR, no inner newline
        [b"a\r\nb", b"c"],  # both
        [b"#a", b"#", b"x"],  # leading '#'
        TRICKY,
    ]
    for texts in cases:
        payload = encode_payload(texts)
        lines = payload.split(b"\n")
        assert len(lines) == len(texts) + 1 and lines[-1] == b""
        assert not any(line.startswith(b"#") for line in lines)
        assert b"\r" not in payload
        assert decode_payload(payload, len(texts)) == texts


def _escaped_one_by_one(texts: list[bytes]) -> bytes:
    """The raw payload built text by text: the format's rules, without its bulk tricks."""
    lines = []
    for text in texts:
        line = text.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        lines.append(b"\\" + line if line.startswith(b"#") else line)
    return b"".join(line + b"\n" for line in lines)


@pytest.mark.parametrize(
    "mix",
    [
        [b"plain"],
        [b"back\\slash"],
        [b"inner\nnewline", b"x\\"],
        [b"carriage\rreturn"],
        [b"both\r\n", b"\n"],
        [b"#hash", b"\n#x"],
    ],
)
def test_large_batches_escape_as_text_by_text(mix: list[bytes]) -> None:
    # Over 16 KiB the separators are counted with numpy, not bytes.count: each
    # path of encode_payload at a batch's real size.
    texts = [b"filler line %d" % i for i in range(3000)]
    texts[1500:1500] = mix
    texts[0:0] = mix
    texts += mix
    payload = encode_payload(texts)
    assert len(payload) > 16384
    assert payload == _escaped_one_by_one(texts)
    assert decode_payload(payload, len(texts)) == texts


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=20))
def test_escaping_round_trips_arbitrary_bytes(texts: list[bytes]) -> None:
    payload = encode_payload(texts)
    lines = payload[:-1].split(b"\n")
    assert len(lines) == len(texts)
    assert not any(line.startswith(b"#") for line in lines)
    assert decode_payload(payload, len(texts)) == texts


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([b"\\", b"\n", b"\r", b"#", b"n", b"r", b"a"])).map(b"".join),
        min_size=1,
        max_size=10,
    )
)
def test_escaping_round_trips_escape_heavy_bytes(texts: list[bytes]) -> None:
    assert decode_payload(encode_payload(texts), len(texts)) == texts


# --- JSON mode --------------------------------------------------------------------------------


def _json_round_trip(texts: list[bytes], first_id: int = 1) -> list[dict[str, Any]]:
    header, payload = encode_block_parts(
        first_id, texts, received=1764280000.25, source="ingest:x", mode="json"
    )
    h = parse_header(header)
    assert h is not None and h.mode == "json" and h.crc == block_crc(h.fields, payload)
    assert payload_shape_ok(payload, len(texts))
    lines = payload[:-1].split(b"\n")
    assert len(lines) == len(texts) and all(line.startswith(b"{") for line in lines)
    assert decode_payload(payload, len(texts), "json") == texts
    return [orjson.loads(line) for line in lines]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.text(max_size=60).map(str.encode),
            st.sampled_from(TRICKY),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_json_mode_round_trips_arbitrary_bytes(texts: list[bytes]) -> None:
    docs = _json_round_trip(texts)
    for text, doc in zip(texts, docs, strict=True):
        try:
            valid = text.decode() == doc["body"]
        except UnicodeDecodeError:
            valid = False
        # The raw bytes are stored separately only when `body` cannot hold them.
        assert ("raw_b64" in doc) == (not valid)


def test_json_mode_lines_are_the_query_protocols_event_dicts() -> None:
    text = b"[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/p-1: refused user_id=u-7"
    docs = _json_round_trip([text, b"no time here", b'{"msg": "j", "n": 5}'], first_id=40)
    assert docs[0] == parse_event(40, 1764280000.25, "ingest:x", text).to_dict()
    assert docs[0]["level"] == "ERROR" and docs[0]["service"] == "payment-api"
    assert docs[0]["fields"]["user_id"] == "u-7"
    assert docs[1]["id"] == 41 and docs[1]["ts"] == docs[1]["received_at"] == 1764280000.25
    assert docs[2]["message"] == "j" and docs[2]["fields"] == {"n": 5}


def test_json_mode_invalid_utf8_and_unwritable_fields() -> None:
    bad = b"caf\xe9 \xff\xfe ok \xef\xbf\xbd"
    deep = b'{"a": ' + b"[" * 300 + b"]" * 300 + b', "msg": "deep"}'
    huge = b'{"n": 123456789012345678901234567890, "msg": "big"}'
    docs = _json_round_trip([bad, b"real \xef\xbf\xbd kept", deep, huge])
    assert base64.b64decode(docs[0]["raw_b64"]) == bad
    assert "raw_b64" not in docs[1]  # a genuine U+FFFD is valid UTF-8
    # A field nested past MAX_FIELD_DEPTH is a marker (orjson writes <= 255 levels).
    assert docs[2]["message"] == "deep" and docs[2]["fields"] == {"a": TOO_DEEP}
    assert docs[3]["body"] == huge.decode()


def test_json_mode_uses_cached_events_without_parsing() -> None:
    texts = [b"one", b"two"]
    events = [parse_event(5 + i, 2.0, "s", t) for i, t in enumerate(texts)]
    events[0].message = "from the cache"
    _, payload = encode_block_parts(5, texts, received=2.0, source="s", mode="json", events=events)
    assert orjson.loads(payload.split(b"\n")[0])["message"] == "from the cache"
    assert decode_payload(payload, 2, "json") == texts


def test_json_decode_rejects_bad_lines() -> None:
    for payload in [b"{\n", b"[1]\n", b'{"id": 1}\n', b'{"raw_b64": "***"}\n', b'{"body": 5}\n']:
        with pytest.raises(BlockFormatError):
            decode_payload(payload, 1, "json")


def test_mixed_mode_file_reads_each_block_by_its_flag(tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    with open(path, "wb") as f:
        f.write(encode_block(1, TRICKY, received=10.5, source="a", mode="raw"))
        f.write(encode_block(100, TRICKY, received=11.25, source="b", mode="json"))
        f.write(encode_block(200, [b"last"], received=12.0, source="", mode="raw"))
    assert list(read_batches(path)) == [
        StoredBatch(1, TRICKY, 10.5, "a", "raw"),
        StoredBatch(100, TRICKY, 11.25, "b", "json"),
        StoredBatch(200, [b"last"], 12.0, "", "raw"),
    ]
    scan = scan_segment(path)
    assert scan.problems == [] and scan.mode_blocks == {"raw": 2, "json": 1}
    assert (scan.first_received, scan.last_received) == (10.5, 12.0)
    assert [b.mode for b in scan.blocks] == ["raw", "json", "raw"]


def test_decode_rejects_bad_payloads() -> None:
    for payload, count in [
        (b"a\n", 2),  # wrong line count
        (b"a", 1),  # no final newline
        (b"#a\n", 1),  # unescaped '#'
        (b"a\\x\n", 1),  # unknown escape
        (b"a\\\n", 1),  # dangling backslash
        (b"a\\#\n", 1),  # '\#' only at the start of a line
    ]:
        with pytest.raises(BlockFormatError):
            decode_payload(payload, count)


def test_encode_block_rejects_empty_and_negative() -> None:
    with pytest.raises(ValueError):
        encode_block(1, [])
    with pytest.raises(ValueError):
        encode_block(-1, [b"x"])


def test_parse_header_limits() -> None:
    ok = b"#LC2 1 2 3 4 r src 0000000a\n"
    assert parse_header(ok) is not None
    bad = {
        b"#LC2 1 2 3 4 r src 0000000a": "no newline",
        b"#LC2 1 0 3 4 r src 0000000a\n": "zero events",
        b"#LC2 1 4 3 4 r src 0000000a\n": "fewer bytes than lines",
        b"#LC2 01 2 3 4 r src 0000000a\n": "leading zero in first_id",
        b"#LC2 1 2 3 04 r src 0000000a\n": "leading zero in received",
        b"#LC2 1 2 3 -4 r src 0000000a\n": "negative received",
        b"#LC2 1 2 3 4.5 r src 0000000a\n": "fractional received",
        b"#LC2 1 2 3 1234567890123456789 r src 0000000a\n": "received past 18 digits",
        b"#LC2 1 2 3 4 x src 0000000a\n": "unknown mode",
        b"#LC2 1 2 3 4 R src 0000000a\n": "upper-case mode",
        b"#LC2 1 2 3 4 rj src 0000000a\n": "two modes",
        b"#LC2 1 2 3 4 r  0000000a\n": "empty source",
        b"#LC2 1 2 3 4 r s\x7fc 0000000a\n": "DEL in source",
        b"#LC2 1 2 3 4 r s\xc3\xa9 0000000a\n": "non-ASCII source",
        b"#LC2 1 2 3 4 r src 0000000A\n": "upper-case hex",
        b"#LC2 1 2 3 4 r src 000000a\n": "short crc",
        b"#LC2 1 2 3 r src 0000000a\n": "missing field",
        b"#LC2  1 2 3 4 r src 0000000a\n": "double space",
        b"#LC1 1 2 3 0000000a\n": "the old layout",
    }
    for line, why in bad.items():
        assert parse_header(line) is None, why
    assert parse_header(b"#LC2 1 2 100 4 r src 0000000a\n", max_payload=99) is None
