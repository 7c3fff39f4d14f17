"""One query must never take the server down (issue 14, item 4).

Real servers, with and without the store (-P: Hyperscan and the RE2 fallback
over segments), run under an address-space cap so that a regression fails the
test instead of exhausting the machine. A pattern past a `query.` limit is
refused with an ERROR naming the limit, at once and with bounded memory; a
costly query within the limits ends by query.timeout plus a fraction; the
server answers normally afterwards.
"""

from __future__ import annotations

import os
import random
import resource
import time
from pathlib import Path

import pytest

from logcaster.query.limits import pattern_depth
from logcaster.store.patterns import Unsupported, translate_regex
from logcaster.store.scan import Scanner
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory

AS_CAP = 3 << 30  # address space the server may map: far below what the bug took (17 GB)
TIMEOUT_S = 1.0  # query.timeout of the servers here
SLACK_S = 1.5  # how far past query.timeout an answer may come (loose: shared CI cores)


def start(
    server_factory: ServerFactory, store: bool, tmp_path: Path, **settings: str
) -> ServerProcess:
    env = {**os.environ, "LOGCASTER_QUERY__TIMEOUT": str(TIMEOUT_S)}
    env.update({f"LOGCASTER_{key.upper()}": value for key, value in settings.items()})
    args: list[str] = []
    if store:
        # Small segments: rotated ones are indexed, so the store answers them.
        env["LOGCASTER_PERSIST__MAX_FILE_BYTES"] = "65536"
        args = ["-P", str(tmp_path / "data")]
    server = server_factory(*args, env=env)
    resource.prlimit(server.pid, resource.RLIMIT_AS, (AS_CAP, AS_CAP))
    return server


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def timed(server: ServerProcess, command: str) -> tuple[str, float]:
    started = time.monotonic()
    reply = server.query(command, timeout=60)
    return reply, time.monotonic() - started


def load(server: ServerProcess, data: bytes, events: int) -> None:
    """Send, and wait until every event is delivered (then memory answers for it)."""
    server.send(data)
    wait_for("delivery", server.stats, lambda s: s["Delivered"] >= events)


def still_answers(server: ServerProcess, events: int) -> None:
    assert server.query("COUNT").startswith("COUNT: ")
    reply = server.query("QUERY keyword=hello limit=1 source=memory max_count=100000")
    assert reply.startswith(f"FOUND: {events} matches"), reply


def nested(depth: int, inner: str = "") -> str:
    return "(" * depth + inner + ")" * depth


@pytest.mark.parametrize("store", [False, True], ids=["memory", "store"])
def test_patterns_past_a_limit_are_refused_at_once(
    server_factory: ServerFactory, tmp_path: Path, store: bool
) -> None:
    server = start(server_factory, store, tmp_path)
    load(server, b"".join(b"event %d hello\n" % i for i in range(10)), 10)
    base = peak_rss_kib(server.pid)
    refused = {
        # The query: 30,000 nested groups (60 KB, under the 64 KiB command cap).
        "REGEX " + nested(30_000): "query.max_pattern_bytes=4096",
        "QUERY regex=" + nested(30_000): "query.max_pattern_bytes=4096",
        "REGEX " + nested(1500, "a"): "query.max_pattern_depth=32",
        # 6,004 instructions: RE2's NFA fallback costs them times each event's bytes.
        "REGEX " + "[a-z]{1000}" * 6: "query.regex_max_program=5000",
        "SEARCH " + "x" * 2000: "query.max_keyword_bytes=1024",
        "QUERY keywords=" + ",".join(f"w{i}" for i in range(100)): "query.max_keywords=64",
        "JSON QUERY keyword=a keyword=" + "y" * 1025: "query.max_keyword_bytes=1024",
    }
    for command, limit in refused.items():
        reply, took = timed(server, command)
        # A JSON command gets its error as JSON.
        prefix = '{"error":' if command.startswith("JSON ") else "ERROR: "
        assert reply.startswith(prefix) and limit in reply, (command[:40], reply)
        assert took < TIMEOUT_S, (command[:40], took)
        still_answers(server, 10)
    grew = peak_rss_kib(server.pid) - base
    assert grew < 100 * 1024, f"peak RSS grew by {grew} KiB"
    # Within the limits, nesting is answered (and costs no captures).
    assert server.query("REGEX " + nested(32, "hello")).startswith("FOUND: 10 matches")


def test_regex_max_mem_bounds_the_compiled_program(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = start(server_factory, False, tmp_path, query__regex_max_mem="65536")
    load(server, b"event hello\n", 1)
    reply = server.query("REGEX " + "[a-z]{1000}" * 8)
    assert reply == "ERROR: regex needs more memory than query.regex_max_mem=65536 bytes\n"
    assert server.query("REGEX [a-z]{1000}") == "FOUND: 0 matches\n"
    still_answers(server, 1)


@pytest.mark.parametrize("store", [False, True], ids=["memory", "store"])
def test_deep_nesting_within_raised_limits_is_answered_in_time(
    server_factory: ServerFactory, tmp_path: Path, store: bool
) -> None:
    """5,000 nested groups once took 13.5 s against a 5 s timeout (captures)."""
    limits = {"query__max_pattern_bytes": "20000", "query__max_pattern_depth": "6000"}
    server = start(server_factory, store, tmp_path, **limits)
    load(server, b"".join(b"event %d hello\n" % i for i in range(200)), 200)
    base = peak_rss_kib(server.pid)
    reply, took = timed(server, "REGEX " + nested(5000))
    assert reply.startswith(("FOUND: ", "ERROR: query exceeded its time limit")), reply
    assert took < TIMEOUT_S + SLACK_S, took
    grew = peak_rss_kib(server.pid) - base
    assert grew < 200 * 1024, f"peak RSS grew by {grew} KiB"
    still_answers(server, 200)


# A DFA-hostile regex: a few bytes, yet RE2 spends milliseconds on each long line.
COSTLY = "(a|b)*a(a|b){1000}c"


@pytest.mark.parametrize(
    ("store", "command"),
    [
        (False, f"QUERY regex={COSTLY} source=memory"),
        # Hyperscan finds the keyword on every line, RE2 confirms each candidate
        # (the regex has a flag the translation refuses, so only the keyword scans).
        (True, f"QUERY keyword=hello regex=(?s){COSTLY} source=store"),
        # (?s): a flag the Hyperscan translation refuses; RE2 tests every line.
        (True, f"QUERY regex=(?s){COSTLY} source=store"),
    ],
    ids=["memory", "store-hyperscan", "store-re2"],
)
def test_costly_regex_stops_at_the_deadline(
    server_factory: ServerFactory, tmp_path: Path, store: bool, command: str
) -> None:
    """Far fewer events than the old clock interval (1,024), each costly: the
    query still ends by query.timeout plus a fraction, from memory and from the
    store (its candidates and its RE2 fallback)."""
    server = start(server_factory, store, tmp_path)
    events = 600
    rng = random.Random(7)  # random a/b text: a periodic one keeps RE2's DFA small
    lines = [b"hello " + "".join(rng.choices("ab", k=8000)).encode() + b"\n" for _ in range(events)]
    load(server, b"".join(lines), events)
    if store:
        wait_for("indexing", server.stats, lambda s: s["StoreIndexed"] >= events // 2)
    reply, took = timed(server, f"{command} max_count=1000000")
    assert reply.startswith("ERROR: query exceeded its time limit of 1 s"), reply
    assert took < TIMEOUT_S + SLACK_S, took
    still_answers(server, events)


@pytest.mark.parametrize(
    ("pattern", "depth"),
    [
        ("abc", 0),
        ("(a)(b)", 1),
        ("((a)|(?:b(c)))", 3),
        (r"\(\(\(a\)", 0),  # escaped
        ("[(((]a", 0),  # in a class
        ("[]((]a", 0),  # `]` first in a class is a member
        ("[^](]((a))", 2),
        (r"\Q(((\E(a)", 1),  # quoted
        ("(((", 3),  # unbalanced: measured as far as it goes
        (nested(30_000), 30_000),
    ],
)
def test_pattern_depth(pattern: str, depth: int) -> None:
    assert pattern_depth(pattern) == depth


@pytest.mark.parametrize(
    "pattern",
    [
        nested(7, "a|b").replace(")", ")+"),  # 7 nested repeats: Hyperscan's compile explodes
        ".{1000}x",  # a bounded repeat copied 1000 times (any character: 5 alternatives)
    ],
)
def test_costly_translations_are_left_to_re2(pattern: str) -> None:
    """Hyperscan's compile cannot be interrupted: such patterns never reach it."""
    with pytest.raises(Unsupported):
        translate_regex(pattern)
    scanner = Scanner(regex=pattern)
    assert scanner.path == "re2-fallback"
    assert scanner.matches_line(b"b" * 1001 + b"x")  # RE2 answers it exactly
    assert not scanner.matches_line(b"x")


def test_a_busy_pattern_that_never_matches_stops_at_the_deadline(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Long bounded repeats over text made of their letters keep Hyperscan's
    automaton busy (~5-10 MB/s here) without one candidate, so no callback ever
    checks the clock: the store scans at most a few MiB per call (`_MAX_SPAN`),
    so the deadline still stops it. The events sit in one large active.log,
    indexed by the idle tail pass."""
    env = {**os.environ, "LOGCASTER_QUERY__TIMEOUT": str(TIMEOUT_S)}
    server = server_factory("-P", str(tmp_path / "data"), env=env)
    events = 80_000
    rng = random.Random(11)
    server.send(
        b"".join(
            b"hello " + "".join(rng.choices("ab", k=240)).encode() + b"\n" for _ in range(events)
        )
    )
    wait_for("indexing", server.stats, lambda s: s["StoreIndexed"] >= events and s["StoreLag"] == 0)
    reply, took = timed(server, 'QUERY regex="(?:[ab]{1,40}b[ab]{1,40}){24}[0-9]" source=store')
    assert reply.startswith("ERROR: query exceeded its time limit of 1 s"), reply
    assert took < TIMEOUT_S + SLACK_S, took
    assert server.query("QUERY keyword=hello limit=1 source=store").startswith("FOUND: 100+")
