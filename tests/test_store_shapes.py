"""The extractor's line shapes walked in C (`parsing/_shapes.c`, `captures`) give
LINE_SHAPES_HEADS.findall's results: on the bench corpora, on every shape's
lines with each field broken in turn, and on random bytes after the first bytes
the pattern looks at."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.options import MultilineConfig
from logcaster.parsing import line_shapes
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.blocks import encode_payload
from tests.conftest import need_built

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _corpus  # noqa: E402

CAPTURES = line_shapes.SHAPE_CAPTURES
HEADS = line_shapes.LINE_SHAPES_HEADS


def need_shapes() -> None:
    need_built(CAPTURES, line_shapes.BYTE_OFFSETS)


def _same(texts: list[bytes]) -> None:
    """Both give the same results over the payload of `texts`, as extract calls them."""
    assert CAPTURES is not None
    data = b"\n" + encode_payload(texts) + bytes(128)
    end = len(data) - 128
    assert CAPTURES(data, end) == HEADS.findall(data, 0, end), texts[:3]


@pytest.mark.parametrize("corpus", ["default", "frequent", "traces"])
def test_the_bench_corpora(corpus: str, tmp_path: Path) -> None:
    need_shapes()
    path = tmp_path / "corpus.log"
    _corpus.generate(path, 30_000, seed=13, corpus=corpus)
    framer = LineFramer(64 * 1024, MultilineConfig())
    texts = framer.feed(path.read_bytes()) + framer.close()
    for at in range(0, len(texts), 5_000):
        _same(texts[at : at + 5_000])


SHAPES = [
    b'{"timestamp":"2026-01-19T08:00:00.003Z","level":"info","service":"api-1.x_y","k":1}',
    b'{"level":"WARN","ts":"2026-01-19T08:00:00.003Z","logger":"a"}',
    b"ts=2026-01-19T08:00:00.003Z level=ERROR service=pay.api msg=x",
    b'time=2026-01-19T08:00:00.003Z level=debug msg="cache hit" service=cart other=1',
    b"time=2026-01-19T08:00:00.003Z level=INFO msg=bare-value service=cart",
    b'10.1.22.3 - frank [19/Jan/2026:08:00:00 +0000] "GET / HTTP/1.1" 200 5',
    b"<165>1 2026-01-19T08:00:00.003Z host.example app-name 1234 ID47 - msg",
    b"<13>Jan  9 08:00:00 web-01 sshd[123]: Accepted",
    b"<13>Feb 19 08:00:00 web/01 cron: job",
    b"2026-01-19 08:00:00 WARN: Certificate expires",
    b"2026-01-19 08:00:00 INFO ok service=x",
    b"ERROR: auth-service/v3.1.0 pod/auth ts=1",
    b"FATAL: gateway/1.2 pod/g",
    b"WARN: a/vx",
    b"Details: x",
    b"TRACE: svc/v1 time=2",
]


def _broken(rng: random.Random, line: bytes) -> bytes:
    """`line` with a few bytes replaced, cut, or repeated: each walk's every check."""
    b = bytearray(line)
    for _ in range(rng.randrange(1, 4)):
        if not b:
            b = bytearray(line[:1])
        how = rng.randrange(4)
        at = rng.randrange(len(b))
        if how == 0:
            b[at] = rng.choice(b' -:."\\/[]<>{}=0123456789aZz\t\x00\xff\n')
        elif how == 1:
            del b[at:]
        elif how == 2:
            b[at:at] = b[at : at + rng.randrange(1, 4)]
        else:
            del b[at : at + rng.randrange(1, 3)]
    return bytes(b)


def test_every_shape_with_fields_broken() -> None:
    need_shapes()
    rng = random.Random(17)
    for _ in range(300):
        texts = [_broken(rng, rng.choice(SHAPES)) for _ in range(50)]
        _same([t.replace(b"\n", b"") or b"x" for t in texts] + SHAPES)


def test_every_byte_at_every_place_of_every_shape() -> None:
    """Each position of each shape's line holding each byte (but a newline), and
    each byte inserted there: every class and literal of every walk is met."""
    need_shapes()
    for line in SHAPES:
        texts = []
        for at in range(len(line)):
            for c in range(256):
                if c != 10:
                    texts.append(line[:at] + bytes([c]) + line[at + 1 :])
                    texts.append(line[:at] + bytes([c]) + line[at:])
        for start in range(0, len(texts), 20_000):
            _same(texts[start : start + 20_000])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(b"{t<0123456789DEFITW[x")),
            st.binary(max_size=60),
        ).map(lambda t: bytes([t[0]]) + t[1]),
        min_size=1,
        max_size=20,
    )
)
def test_random_bytes_after_the_first(texts: list[bytes]) -> None:
    need_shapes()
    _same(texts)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from([10, 61, 0, 255]), st.integers(0, 3000))
def test_byte_offsets_are_numpy_s(data: bytes, byte: int, end: int) -> None:
    """line_shapes.offsets_of by the C memchr walk, from bytes or a numpy view."""
    need_shapes()
    assert line_shapes.BYTE_OFFSETS is not None
    end = min(end, len(data))
    array = np.frombuffer(data, np.uint8)
    want = np.flatnonzero(array[:end] == byte)
    assert np.array_equal(line_shapes.offsets_of(data, byte, end), want)
    assert np.array_equal(line_shapes.offsets_of(array, byte, end), want)
