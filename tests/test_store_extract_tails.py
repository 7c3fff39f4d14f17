"""The JSON shapes' tails checked in C (`parsing/_linescan.c`, `json_tails`) accept
exactly what LINE_SHAPES_FULL's lookahead accepts: the extractor gives the same
columns either way, on random flat and zap JSON lines with tails that are
valid, nearly valid and broken."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.parsing import line_shapes
from logcaster.parsing.extract import Extractor
from logcaster.segments.blocks import encode_payload
from tests.conftest import need_built

C_TAILS = line_shapes.JSON_TAILS


def need_tails() -> None:
    need_built(C_TAILS)


@contextmanager
def _tails(check: object) -> Iterator[None]:
    kept = line_shapes.JSON_TAILS
    line_shapes.JSON_TAILS = check  # type: ignore[assignment]
    try:
        yield
    finally:
        line_shapes.JSON_TAILS = kept


_KEYS = st.sampled_from(
    ["msg", "a_1", "timestamp", "level", "service", "ts", "levels", "Ts", "", "x-y", "ké"]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            '"ok"',
            '""',
            '"a\\"b"',
            '"tab\there"',
            '"\x7f"',
            "0",
            "-0",
            "01",
            "-",
            "1.5",
            "1.",
            ".5",
            "123456789012345678",
            "1234567890123456789",
            "0.12345678901234567",
            "0.123456789012345678",
            "true",
            "false",
            "null",
            "nul",
            "truex",
            "[1]",
            "{}",
        ]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8).map(
        lambda t: '"' + t + '"'
    ),
)
_ENDS = st.sampled_from(["}", "} ", "},", "}}", "", "}\n x", ',"k":1}'])


@st.composite
def _lines(draw: st.DrawFn) -> str:
    level = draw(st.sampled_from(["info", "WARN", "error", "Debug", "fatal", "TRACE"]))
    if draw(st.booleans()):
        head = (
            '{"timestamp":"2026-01-19T08:00:00.003Z","level":"'
            + level
            + '","service":"'
            + draw(st.sampled_from(["api", "a.b-c_d", "x/y", "", "payment-api"]))
            + '"'
        )
    else:
        head = '{"level":"' + level + '","ts":"2026-01-19T08:00:00.003Z"'
    pairs = draw(st.lists(st.tuples(_KEYS, _VALUES), max_size=5))
    sep = draw(st.sampled_from([",", ", ", ""]))
    tail = "".join(f'{sep}"{k}":{v}' for k, v in pairs)
    return head + tail + draw(_ENDS)


@settings(max_examples=300, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=30), st.booleans())
def test_c_tails_give_the_pattern_s_columns(lines: list[str], multi: bool) -> None:
    need_tails()
    texts = [line.encode() for line in lines]
    if multi:  # a multi-line event: its first line ends in an escaped newline
        texts = [t + b"\nsecond line" for t in texts]
    payload = encode_payload(texts)
    with _tails(None):
        want = Extractor().extract(payload, 1768809600.0)
    got = Extractor().extract(payload, 1768809600.0)
    assert np.array_equal(got.ts, want.ts)
    assert np.array_equal(got.level, want.level)
    assert np.array_equal(got.service, want.service)
    assert got.fallback == want.fallback


def test_each_line_is_a_hit_the_same_way() -> None:
    need_tails()
    assert C_TAILS is not None
    cases = [
        b'{"timestamp":"2026-01-19T08:00:00.003Z","level":"info","service":"api","a":1}',
        b'{"timestamp":"2026-01-19T08:00:00.003Z","level":"ERROR","service":"api","level":1}',
        b'{"timestamp":"2026-01-19T08:00:00.003Z","level":"WARN","service":"api"}',
        b'{"level":"info","ts":"2026-01-19T08:00:00.003Z","n":-0.5,"s":"x","b":true}',
        b'{"level":"info","ts":"2026-01-19T08:00:00.003Z","ts":1}',
        b'{"level":"info","ts":"2026-01-19T08:00:00.003Z","n":01}',
    ]
    zap = '{"level":"info","ts":"2026-01-19T08:00:00.003Z","k":'
    values = ["123456789012345678", "1234567890123456789", "-1.12345678901234567"]
    values += ["1.123456789012345678", "1.", "-", '"a\\b"', '"\x7f"', "null", "nulls", "0.0"]
    cases += [(zap + v + "}").encode() for v in values]
    for line in cases:
        data = b"\n" + line + b"\n"
        full = line_shapes.LINE_SHAPES_FULL.findall(data)
        heads = line_shapes.LINE_SHAPES_HEADS.findall(data)
        assert len(full) == len(heads) == 1
        if not heads[0]:
            assert not full[0]
            continue
        captured = np.array([len(heads[0])], np.int64)
        hit = np.array([True])
        starts = np.array([1], np.int64)
        buf = np.frombuffer(data + bytes(64), np.uint8)
        line_shapes.check_json_tails(
            C_TAILS, data, buf, starts, hit, np.array([True]), buf[starts + 2], captured
        )
        assert bool(hit[0]) == bool(full[0]), line
