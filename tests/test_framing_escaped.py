"""The line framer's escaped reads (`LineFramer.feed_read` -> `Escaped`, built in C by
segments/_escape.c) hold the events the split path cuts: the same texts, the same
held event, the same payload the file sink would write, for any read boundaries,
grouping bounds, CRLFs, backslashes, leading '#' and over-long lines."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.options import MultilineConfig
from logcaster.parsing import multiline
from logcaster.pipeline import framing
from logcaster.pipeline.batch import Escaped
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.blocks import encode_payload_py
from tests.conftest import need_built
from tests.multiline_samples import ORDINARY_LINES, SAMPLES

BUILT = (framing._ESCAPE, framing._EVENTS, multiline.candidate_lines)


def need_native() -> None:
    need_built(*BUILT)


@contextmanager
def _split_only() -> Iterator[None]:
    """The framer without its escaped path: every read split into lines."""
    kept = framing._ESCAPE, framing._EVENTS
    framing._ESCAPE = framing._EVENTS = None
    try:
        yield
    finally:
        framing._ESCAPE, framing._EVENTS = kept


_LINES = [
    b"[ERROR] 2026-01-19 15:30:01.234 svc/v1 pod/p: ",
    b"ts=2026-01-19T08:00:00.000Z level=INFO service=a msg=ok",
    b"plain with a \\ backslash",
    b"#starts with a hash",
    b"a\rlone CR",
    b"",
    b"    at com.x.Y.z(Y.java:1)",
    b"Caused by: java.io.IOException: x",
    b"Traceback (most recent call last):",
    b'  File "/app/main.py", line 85, in <module>',
    b"ValueError: bad",
    b"note:",
    b"x" * 70,
]
_LINES += [line.encode() for line in ORDINARY_LINES]
_LINES += [line.encode() for s in SAMPLES[::7] for line in s.lines]


@st.composite
def _streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(_LINES), max_size=60))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    return b"".join(line + eol for line in lines) + draw(st.sampled_from([b"", b"tail"]))


@st.composite
def _reads(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    return [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]


def _run(
    reads: list[bytes], max_line: int, config: MultilineConfig
) -> tuple[list[list[bytes]], list[Escaped], tuple[bool, int]]:
    framer = LineFramer(max_line, config)
    out: list[list[bytes]] = []
    escaped: list[Escaped] = []
    for data in reads:
        got = framer.feed_read(data)
        if isinstance(got, Escaped):
            escaped.append(got)
            out.append(got.texts())
        else:
            out.append(got)
    out.append(framer.close())
    return out, escaped, (framer.holding, framer.truncated)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    max_line=st.sampled_from([40, 80, 4096]),
    max_lines=st.integers(1, 40),
    extra=st.sampled_from([0, 30, 200, 1 << 20]),
    enabled=st.booleans(),
)
def test_escaped_reads_hold_the_split_path_s_events(
    data: st.DataObject, max_line: int, max_lines: int, extra: int, enabled: bool
) -> None:
    need_native()
    stream = data.draw(_streams())
    reads = data.draw(_reads(stream))
    config = MultilineConfig(
        enabled=enabled, max_lines=max_lines, max_bytes=max(1024, max_line) + extra
    )
    with _split_only():
        want, none, state = _run(reads, max_line, config)
    assert none == []
    got, escaped, got_state = _run(reads, max_line, config)
    assert got == want
    assert got_state == state
    for part in escaped:
        texts = part.texts()
        assert part.payload == encode_payload_py(texts)
        assert part.size == sum(map(len, texts)) and part.count == len(texts)


def test_plain_reads_and_reads_with_traces_are_escaped() -> None:
    need_native()
    trace = SAMPLES[0].text.encode()
    reads = [b"one\n" + trace + b"\ntwo\nthree\n", b"four\n"]
    for config in (MultilineConfig(), MultilineConfig(enabled=False)):
        with _split_only():
            want, _, _ = _run(reads, 4096, config)
        got, escaped, _ = _run(reads, 4096, config)
        assert got == want
        assert len(escaped) == 2  # both reads, the trace grouped in the payload
        if config.enabled:
            assert want[0][:2] == [b"one", trace]
