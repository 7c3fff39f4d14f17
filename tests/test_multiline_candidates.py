"""Multi-line grouping's candidate lines found in C (`parsing/_linescan.c`) are the
regex's own: the same lines, kinds and run ends, with the right line numbers, and
the framer cuts the same events either way, for any read boundaries."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.options import MultilineConfig, MultilineRule
from logcaster.parsing import multiline
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import LineFramer
from tests.conftest import need_built
from tests.multiline_samples import ORDINARY_LINES, SAMPLES

C_LINES = multiline.candidate_lines


def need_linescan() -> None:
    need_built(C_LINES)


# Lines that start or end the ways the C pass tells apart: header bytes, logfmt
# keys (with and without a line ending in ":" or " " before them), indented
# lines and Rails headlines inside runs, blank lines, and trace lines.
_PIECES = [
    b"[ERROR] 2026-01-19 15:30:01.234 svc/v1: failed: ",
    b'{"a": 1}',
    b"<13>Jan  1 00:00:00 host app: x",
    b"2026-01-19 08:00:00 INFO x",
    b"10.0.0.1 - - [19/Jan/2026:08:00:00 +0000] x",
    b"ts=2026-01-19T08:00:00.000Z level=INFO service=a",
    b"time=x level=y msg=z",
    b"key=value",
    b"abc",
    b"abc=",
    b"=x",
    b"ERROR: auth-service/v3.1.0 pod/auth ",
    b"note:",
    b"",
    b" ",
    b"\t",
    b"    at com.x.Y.z(Y.java:1)",
    b"  ActionView::Template::Error (undefined):",
    b"ActionView::Template::Error (undefined):",
    b"Caused by: java.io.IOException: x",
    b"    ... 28 more",
    b"Traceback (most recent call last):",
    b'  File "/app/main.py", line 85, in <module>',
    b"ValueError: bad",
    b"panic: runtime error",
    b"goroutine 1 [running]:",
    b"app/models/user.rb:12:in `save'",
    b"PHP Fatal error:  Uncaught Exception: x",
    b"Stack trace:",
    b"#0 /app/index.php(3): f()",
    b"Details: x",
    b"x \xff\xfe",
]
_PIECES += [line.encode() for line in ORDINARY_LINES]
_PIECES += [line.encode() for s in SAMPLES for line in s.lines][:400]


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(_PIECES), max_size=40))
    body = b"\n".join(lines)
    return body + b"\n" if draw(st.booleans()) else body


def _grouper(user: bool) -> Grouper:
    rules = [MultilineRule(name="r", start=r"^BEGIN", continue_=r"^\+")] if user else []
    return Grouper(rules)


Candidates = list[tuple[int, int, int, int]]


@contextmanager
def _scanning_with(scan: Callable[[bytes], tuple[list[int], int]] | None) -> Iterator[None]:
    """multiline's C pass set to `scan` (None: the regex alone) for the block."""
    kept = multiline.candidate_lines
    multiline.candidate_lines = scan
    try:
        yield
    finally:
        multiline.candidate_lines = kept


def _both(grouper: Grouper, body: bytes) -> tuple[Candidates, Candidates]:
    with _scanning_with(None):
        by_regex, uncounted = grouper._candidates(body)
    with _scanning_with(C_LINES):
        in_c, count = grouper._candidates(body)
    assert uncounted == -1
    assert count == body.count(b"\n") + 1
    return by_regex, in_c


@settings(max_examples=400, deadline=None)
@given(data=st.data(), user=st.booleans())
def test_the_c_pass_finds_the_regex_s_candidates(data: st.DataObject, user: bool) -> None:
    need_linescan()
    body = data.draw(_bodies())
    by_regex, in_c = _both(_grouper(user), body)
    assert [c[:3] for c in in_c] == [c[:3] for c in by_regex]
    for offset, _, _, line in in_c:
        assert line in (-1, body.count(b"\n", 0, offset))


def test_the_c_pass_over_random_bytes() -> None:
    need_linescan()
    rng = random.Random(7)
    alphabet = b"\n\n\n   \t:=az[{<09AZ.()"
    for _ in range(2000):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        by_regex, in_c = _both(_grouper(rng.random() < 0.3), body)
        assert [c[:3] for c in in_c] == [c[:3] for c in by_regex], body


def _stream(rng: random.Random) -> bytes:
    parts: list[bytes] = []
    for _ in range(300):
        if rng.random() < 0.1:
            parts.append(rng.choice(SAMPLES).text.encode())
        else:
            parts.append(rng.choice(_PIECES))
    return b"\n".join(parts) + b"\n"


@pytest.mark.parametrize("seed", range(6))
def test_the_framer_cuts_the_same_events_either_way(seed: int) -> None:
    need_linescan()
    rng = random.Random(seed)
    stream = _stream(rng)
    cuts = sorted(rng.sample(range(len(stream)), 40))
    chunks = [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]
    config = MultilineConfig()
    out = {}
    for name, scan in (("regex", None), ("c", C_LINES)):
        with _scanning_with(scan):
            framer = LineFramer(4096, config)
            texts = [t for chunk in chunks for t in framer.feed(chunk)]
            out[name] = texts + framer.close()
    assert out["c"] == out["regex"]
    assert b"\n".join(out["c"]) + b"\n" == stream
