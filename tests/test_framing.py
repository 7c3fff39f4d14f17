"""`LineFramer`: lines, CRLF, partial lines, truncation and multi-line grouping (SPEC §2, §3)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.options import MultilineConfig
from logcaster.pipeline.framing import TRUNCATION_MARK, LineFramer

# The seed-002 error blocks, exactly as in the seed (the header lines end with a space).
SEED_JAVA_BLOCK = "\n".join(
    (
        "[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123: ",
        "Connection pool exhausted: unable to acquire connection within 30s timeout",
        "Details: HikariCP connection pool size: 20/20 active, 100 waiting threads",
        "Recovery Action: Auto-retry enabled, circuit breaker: OPEN",
        "java.sql.SQLTransientConnectionException: Connection pool exhausted",
        "    at com.cali.payment.api.service.BusinessService.executeTransaction(BusinessService.java:142)",  # noqa: E501
        "    at com.cali.payment.api.controller.ApiController.handleRequest(ApiController.java:78)",
        "    at jdk.internal.reflect.GeneratedMethodAccessor542.invoke(Unknown Source)",
        "    at org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1032)",  # noqa: E501
        "Caused by: org.postgresql.util.PSQLException: Connection refused",
        "    at org.postgresql.jdbc.PgConnection.connect(PgConnection.java:234)",
        "    ... 28 more",
        "Thread: http-nio-8080-exec-23, Request: POST /api/v1/payments/8472",
    )
)
SEED_PYTHON_BLOCK = "\n".join(
    (
        "ERROR: auth-service/v3.1.0 pod/auth-service-9p4q5r-ghi345 ",
        "JWT token validation failed: signature verification error",
        "Details: Token issuer: auth-service, Algorithm: RS256, Key ID mismatch",
        "Recovery Action: User session invalidated, re-authentication required",
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 85, in <module>',
        "    app.run()",
        '  File "/app/auth_service/application.py", line 142, in run',
        "    self.process_request(request)",
        '  File "/app/auth_service/handlers.py", line 98, in process_request',
        "    result = self.execute_business_logic(data)",
        '  File "/app/auth_service/services.py", line 267, in execute_business_logic',
        "    return self.validate_token(token)",
        "io.jsonwebtoken.security.SignatureException: JWT token validation failed",
        "Request ID: req-842951, User ID: user-7234, Correlation ID: a3f8b2c1-4d5e-6f7g",
    )
)
SEED_JAVA_BLOCK_2 = "\n".join(
    (
        "[ERROR] 2026-01-19 15:30:10.789 inventory-service/v2.1.5 pod/inventory-service-6t7u8v-mno901: ",  # noqa: E501
        "Stock synchronization failed: pessimistic lock timeout after 10s",
        "Details: SKU: PROD-8472, Requested: 5, Available: 2, Waitlist: 15 customers",
        "Recovery Action: Transaction rolled back, stock reservation cancelled",
        "org.hibernate.exception.LockAcquisitionException: Stock synchronization failed",
        "    at com.cali.inventory.service.service.BusinessService.executeTransaction(BusinessService.java:342)",  # noqa: E501
        "    at com.cali.inventory.service.controller.ApiController.handleRequest(ApiController.java:127)",  # noqa: E501
        "    ...",
        "    at org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1024)",  # noqa: E501
        "Caused by: javax.persistence.PessimisticLockException: could not execute statement",
        "    at org.postgresql.jdbc.PgConnection.connect(PgConnection.java:189)",
        "    at com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:172)",
        "    ... 21 more",
        "Thread: http-nio-8080-exec-17, Request: POST /api/v1/inventory/4829",
    )
)
SEED_BLOCKS = (SEED_JAVA_BLOCK, SEED_PYTHON_BLOCK, SEED_JAVA_BLOCK_2)

SIM_INFO = (
    "[INFO] 2026-01-19 15:30:01.234 order-service/v1.8.4: "
    "Order processed successfully: ORDER-847239 ($234.56, 3 items)"
)
SIM_WARN = (
    "[WARN] 2026-01-19 15:30:05.456 payment-api/v2.3.1: "
    "Response time degraded: p95=1250ms (SLA: 500ms)"
)


def feed_all(framer: LineFramer, chunks: list[bytes], close: bool = True) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    if close:
        out.extend(framer.close())
    return out


def random_chunks(data: bytes, rng: random.Random, max_size: int = 64) -> list[bytes]:
    chunks: list[bytes] = []
    i = 0
    while i < len(data):
        size = rng.randint(1, max_size)
        chunks.append(data[i : i + size])
        i += size
    return chunks


def multiline() -> LineFramer:
    return LineFramer(64 * 1024, MultilineConfig())


# --- lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("config", [None, MultilineConfig(enabled=False), MultilineConfig()])
def test_crlf_is_tolerated(config: MultilineConfig | None) -> None:
    framer = LineFramer(1024, config)
    assert feed_all(framer, [b"one\r\ntwo\r\n", b"three\r", b"\nfour\r\n"]) == [
        b"one",
        b"two",
        b"three",
        b"four",
    ]


def test_a_lone_cr_inside_a_line_is_kept() -> None:
    framer = LineFramer(1024, None)
    assert feed_all(framer, [b"progress 10%\rprogress 20%\n"]) == [b"progress 10%\rprogress 20%"]


def test_partial_last_line_is_kept_until_more_data() -> None:
    framer = LineFramer(1024, None)
    assert framer.feed(b"first\nsec") == [b"first"]
    assert framer.feed(b"o") == []
    assert framer.feed(b"nd\nthi") == [b"second"]
    assert framer.feed(b"rd") == []
    assert framer.close() == [b"third"]  # the last line needs no newline
    assert framer.close() == []


def test_empty_stream_and_empty_close() -> None:
    framer = LineFramer(1024, MultilineConfig())
    assert framer.feed(b"") == []
    assert framer.close() == []


def test_overlong_line_is_truncated_marked_and_counted() -> None:
    framer = LineFramer(16, None)
    out = framer.feed(b"x" * 40 + b"\nok\n" + b"y" * 16 + b"\n")
    assert out == [b"x" * 13 + TRUNCATION_MARK, b"ok", b"y" * 16]
    assert len(out[0]) == 16
    assert framer.truncated == 1


def test_overlong_partial_line_is_cut_and_the_rest_discarded_up_to_the_newline() -> None:
    framer = LineFramer(16, None)
    assert framer.feed(b"a" * 10) == []
    assert framer.feed(b"b" * 10) == [b"a" * 10 + b"bbb" + TRUNCATION_MARK]
    assert framer.truncated == 1
    assert framer.feed(b"c" * 1000) == []  # still the same line: discarded
    assert framer.feed(b"c\nnext line\nmore") == [b"next line"]
    assert framer.close() == [b"more"]
    assert framer.truncated == 1


def test_overlong_line_without_newline_never_grows_the_buffer() -> None:
    limit = 1024
    framer = LineFramer(limit, MultilineConfig())
    out: list[bytes] = []
    for _ in range(2048):  # 2 MiB, no newline
        out.extend(framer.feed(b"z" * 1024))
        # The only per-connection buffer: the unfinished line.
        assert len(framer._partial) <= limit
    out.extend(framer.close())
    assert out == [b"z" * (limit - 3) + TRUNCATION_MARK]
    assert framer.truncated == 1


@pytest.mark.parametrize("seed", range(20))
def test_long_lines_are_found_wherever_they_sit_in_a_large_read(seed: int) -> None:
    """Large reads are checked by windows of half the limit (_may_hold_long_line)."""
    limit = 600
    rng = random.Random(seed)
    lines = [b"a" * rng.choice([0, 1, 80, 299, 300, 301, 599, 600]) for _ in range(200)]
    pos = rng.randrange(len(lines))
    lines.insert(pos, b"L" * (limit + 1))
    framer = LineFramer(limit, None)
    out = framer.feed(b"\n".join(lines) + b"\n")
    expected = [
        line if len(line) <= limit else b"L" * (limit - 3) + TRUNCATION_MARK for line in lines
    ]
    assert out == expected
    assert framer.truncated == 1
    del lines[pos]
    framer = LineFramer(limit, None)
    assert framer.feed(b"\n".join(lines) + b"\n") == lines
    assert framer.truncated == 0


def test_line_of_exactly_max_bytes_is_not_truncated() -> None:
    framer = LineFramer(16, None)
    assert feed_all(framer, [b"q" * 16 + b"\n", b"r" * 16]) == [b"q" * 16, b"r" * 16]
    assert framer.truncated == 0


def test_crlf_line_of_exactly_max_bytes_split_before_lf_is_not_truncated() -> None:
    framer = LineFramer(16, None)
    assert feed_all(framer, [b"q" * 16 + b"\r", b"\nnext\n"]) == [b"q" * 16, b"next"]
    assert framer.truncated == 0


@pytest.mark.parametrize("config", [None, MultilineConfig(enabled=False)])
def test_without_multiline_every_line_is_an_event(config: MultilineConfig | None) -> None:
    framer = LineFramer(1024, config)
    data = (SEED_JAVA_BLOCK + "\n").encode()
    assert feed_all(framer, [data]) == [line.encode() for line in SEED_JAVA_BLOCK.split("\n")]
    assert not framer.holding


# --- multi-line grouping --------------------------------------------------------------


@pytest.mark.parametrize("block", SEED_BLOCKS)
@pytest.mark.parametrize("seed", range(5))
def test_seed_block_becomes_one_text_for_any_chunking(block: str, seed: int) -> None:
    data = (block + "\n").encode()
    chunks = [data] if seed == 0 else random_chunks(data, random.Random(seed))
    assert feed_all(multiline(), chunks) == [block.encode()]


def test_seed_blocks_between_single_lines() -> None:
    texts = [SIM_INFO, SEED_JAVA_BLOCK, SIM_WARN, '{"level": "info", "msg": "x"}']
    texts += [SEED_PYTHON_BLOCK, "plain text line", SEED_JAVA_BLOCK_2, SEED_PYTHON_BLOCK]
    texts += ["2026-01-19 15:30:01 INFO done", SEED_JAVA_BLOCK]
    data = "".join(text + "\n" for text in texts).encode()
    for seed in range(10):
        chunks = random_chunks(data, random.Random(seed), max_size=200)
        assert feed_all(multiline(), chunks) == [text.encode() for text in texts]


def test_the_last_event_is_held_until_the_next_line_shows_it_is_complete() -> None:
    framer = multiline()
    assert framer.feed(b"ERROR boom\n") == []
    assert framer.holding
    assert framer.feed(b"  at a.b(C.java:1)\n") == []
    assert framer.feed(b"INFO next\n") == [b"ERROR boom\n  at a.b(C.java:1)"]
    assert framer.close() == [b"INFO next"]
    assert not framer.holding


def test_flush_held_releases_the_held_event() -> None:
    framer = multiline()
    assert framer.feed((SEED_PYTHON_BLOCK + "\n").encode()) == []
    assert framer.holding
    assert framer.flush_held() == [SEED_PYTHON_BLOCK.encode()]
    assert not framer.holding
    assert framer.flush_held() == []
    # What comes after the flush is a new event, even a continuation line.
    assert feed_all(framer, [b"  late continuation\n"]) == [b"  late continuation"]


def test_flush_held_keeps_the_partial_line() -> None:
    framer = multiline()
    assert framer.feed(b"ERROR boom\n  at x\n  at y") == []
    assert framer.flush_held() == [b"ERROR boom\n  at x"]
    assert framer.close() == [b"  at y"]


@pytest.mark.parametrize(
    "header",
    [
        "[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123: ",
        "[ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123:",
        "[WARN] 2026-01-19 15:30:01.234 payment-api/v2.3.1: ",
        "ERROR: auth-service/v3.1.0 pod/auth-service-9p4q5r-ghi345 ",
    ],
)
def test_header_with_empty_message_joins_the_next_line(header: str) -> None:
    data = f"{header}\nThe message of the header\nINFO next event\n".encode()
    assert feed_all(multiline(), [data]) == [
        f"{header}\nThe message of the header".encode(),
        b"INFO next event",
    ]


@pytest.mark.parametrize("line", ["Note: ", "Summary:", "trailing space ", "ERROR: x "])
def test_a_line_ending_in_colon_that_is_no_header_does_not_join(line: str) -> None:
    data = f"{line}\nsomething else\n".encode()
    assert feed_all(multiline(), [data]) == [line.encode(), b"something else"]


@pytest.mark.parametrize(
    "continuation",
    [
        "  indented",
        "\ttabbed",
        "at com.x.Y.z(Y.java:1)",
        "Caused by: java.io.IOException: x",
        "... 12 more",
        "... 3 common frames omitted",
        'File "/app/x.py", line 3, in f',
        "Details: d",
        "Recovery Action: r",
        "Thread: t, Request: GET /",
        "Request ID: r-1",
    ],
)
def test_continuation_lines_join_the_previous_event(continuation: str) -> None:
    data = f"ERROR boom\n{continuation}\nINFO next\n".encode()
    assert feed_all(multiline(), [data]) == [
        f"ERROR boom\n{continuation}".encode(),
        b"INFO next",
    ]


@pytest.mark.parametrize(
    "first",
    [
        "Traceback (most recent call last):",
        "java.lang.IllegalStateException: bad",
        "com.x.SomeError",
        "ValueError: bad value",
        "KeyboardInterrupt",
    ],
)
def test_a_trace_after_an_unrelated_line_is_an_event_of_its_own(first: str) -> None:
    # The first line of a trace starts an event: the line before it is not swallowed
    # (issue 16; inside a seed record it joins, see SEED_BLOCKS).
    data = f"INFO boom\n{first}\n  at x\nINFO next\n".encode()
    assert feed_all(multiline(), [data]) == [
        b"INFO boom",
        f"{first}\n  at x".encode(),
        b"INFO next",
    ]


_HEADER_LIKE = ["[INFO] 2026-01-19 15:30:01.234 svc/v1: x", '{"a": 1}', "<13>x", "2026 x", "7 x"]


@pytest.mark.parametrize("line", _HEADER_LIKE)
def test_header_like_lines_never_join_a_stack_trace(line: str) -> None:
    data = f"ERROR boom\n  at x\n{line}\n".encode()
    assert feed_all(multiline(), [data]) == [b"ERROR boom\n  at x", line.encode()]


@pytest.mark.parametrize("line", _HEADER_LIKE)
def test_header_like_lines_never_join_an_open_header(line: str) -> None:
    header = "[ERROR] 2026-01-19 15:30:01.234 svc/v1 pod/p-1: "
    data = f"{header}\n{line}\n".encode()
    assert feed_all(multiline(), [data]) == [header.encode(), line.encode()]


def test_grouping_is_bounded_by_max_lines() -> None:
    lines = [b"ERROR head"] + [b"  at frame %d" % i for i in range(12)] + [b"INFO next"]
    framer = LineFramer(1024, MultilineConfig(max_lines=5))
    out = feed_all(framer, [b"".join(line + b"\n" for line in lines)])
    assert [text.count(b"\n") + 1 for text in out] == [5, 5, 3, 1]
    assert b"\n".join(out).split(b"\n") == lines  # nothing lost, nothing repeated


def test_grouping_is_bounded_by_max_bytes() -> None:
    lines = [b"ERROR head"] + [b"  at " + b"f" * 95 for _ in range(40)] + [b"INFO next"]
    framer = LineFramer(1024, MultilineConfig(max_bytes=1024))
    out: list[bytes] = []
    for line in lines:  # one line per read: the held event is regrouped each time
        out.extend(framer.feed(line + b"\n"))
    out.extend(framer.close())
    assert len(out) > 2
    assert all(len(text) <= 1024 for text in out)
    assert b"\n".join(out).split(b"\n") == lines


def test_a_long_trace_sent_line_by_line_is_held_in_pieces() -> None:
    # A trace arriving a line per read is kept as pieces and joined once on
    # release: no read re-copies or re-scans the whole held event (which made
    # this case quadratic). Its cost is measured by bench/, not here.
    framer = LineFramer(64 * 1024, MultilineConfig())
    line = b"    at " + b"x" * 1000 + b"\n"
    assert framer.feed(b"ERROR boom\n") == []
    for _ in range(999):
        assert framer.feed(line) == []
    assert len(framer._held) == 1000
    out = framer.close()
    assert out == [b"ERROR boom\n" + line * 998 + line[:-1]]


# --- properties -----------------------------------------------------------------------

# Line beginnings that exercise every grouping rule; random bytes follow them.
_STARTS = [
    b"",
    b"plain",
    b"  ",
    b"\t",
    b"    at com.x.Y.z(Y.java:1)",
    b"Caused by: x.y.ZException: boom",
    b"... 3 more",
    b"Traceback (most recent call last):",
    b'  File "/a.py", line 1, in f',
    b"ValueError: bad",
    b"x.y.SomeException: m",
    b"Details: d",
    b"Recovery Action: r",
    b"Thread: t, Request: GET /x",
    b"Request ID: r-1",
    b"[ERROR] 2026-01-19 15:30:01.234 svc/v1 pod/p: ",
    b"ERROR: svc/v1 pod/p ",
    b"[INFO] 2026-01-19 15:30:01.234 svc/v1: ok",
    b'{"a": 1}',
    b"<13>x",
    b"2026-01-19 INFO x",
    b"note: ",
]


@st.composite
def line_streams(
    draw: st.DrawFn, max_line: int, max_random: int | None = None
) -> tuple[bytes, list[bytes], int]:
    """A byte stream of random lines, the lines a framer must cut from it, and how
    many of them it must truncate."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 25))):
        content = draw(st.sampled_from(_STARTS))
        size = 2 * max_line if max_random is None else max_random
        content += draw(st.binary(max_size=size)).replace(b"\n", b"")
        shape = draw(st.integers(0, 4))
        if shape >= 2:  # around the limit: max_line - 1, max_line, max_line + 1
            target = max_line + shape - 3
            content = (content + b"x" * target)[:target]
        if content.endswith(b"\r"):  # the line's end would be a CRLF
            content = content[:-1] + b"x"
        eol = draw(st.sampled_from([b"\n", b"\r\n"]))
        parts.append(content + eol)
    no_last_newline = draw(st.booleans())
    if parts and no_last_newline:
        parts[-1] = parts[-1].rstrip(b"\r\n")  # the last line without a newline
    data = b"".join(parts)
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    mark = TRUNCATION_MARK
    expected = [ln if len(ln) <= max_line else ln[: max_line - len(mark)] + mark for ln in lines]
    return data, expected, sum(len(ln) > max_line for ln in lines)


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if draw(st.booleans()) and len(data) < 4000:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=250, deadline=None)
@given(data=st.data(), max_line=st.integers(8, 80), disabled=st.booleans())
def test_without_multiline_no_line_is_lost_or_duplicated_for_any_chunking(
    data: st.DataObject, max_line: int, disabled: bool
) -> None:
    stream, expected, truncated = data.draw(line_streams(max_line))
    chunks = data.draw(chunkings(stream))
    framer = LineFramer(max_line, MultilineConfig(enabled=False) if disabled else None)
    out = feed_all(framer, chunks)
    assert out == expected
    assert all(len(text) <= max_line for text in out)
    assert framer.truncated == truncated
    assert not framer.holding


@settings(max_examples=250, deadline=None)
@given(
    data=st.data(),
    max_line=st.integers(8, 80),
    max_lines=st.integers(1, 8),
    extra_bytes=st.integers(0, 300),
)
def test_multiline_texts_are_bounded_and_keep_every_line(
    data: st.DataObject, max_line: int, max_lines: int, extra_bytes: int
) -> None:
    stream, expected, truncated = data.draw(line_streams(max_line))
    chunks = data.draw(chunkings(stream))
    max_bytes = max_line + extra_bytes
    framer = LineFramer(max_line, MultilineConfig(max_lines=max_lines, max_bytes=max_bytes))
    out = feed_all(framer, chunks)
    for text in out:
        lines = text.split(b"\n")
        assert len(lines) <= max_lines
        assert all(len(line) <= max_line for line in lines)
        if len(lines) > 1:
            assert len(text) <= max_bytes
    # Grouping only joins whole lines: nothing lost, nothing duplicated, order kept.
    assert sum(text.count(b"\n") + 1 for text in out) == len(expected)
    assert b"\n".join(out) == b"\n".join(expected)
    assert framer.truncated == truncated
    assert not framer.holding


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_grouping_does_not_depend_on_the_chunking(data: st.DataObject) -> None:
    # Lines short enough never to be truncated: only the grouping rules apply.
    stream, expected, _ = data.draw(line_streams(4096, max_random=64))
    whole = feed_all(LineFramer(4096, MultilineConfig()), [stream])
    chunked = feed_all(LineFramer(4096, MultilineConfig()), data.draw(chunkings(stream)))
    assert chunked == whole
    assert b"\n".join(whole) == b"\n".join(expected)
