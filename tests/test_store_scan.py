"""store/scan.py: every scan path against brute force over decoded events.

The data is the bench corpus (mixed formats, multi-line traces) framed like
ingest and escaped into raw blocks, plus texts that stress the escaping. The
truth is the query model's own test on each decoded body: `kw in body`,
`re2.search(pattern, body)`.
"""

from __future__ import annotations

import importlib
import mmap
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logcaster.exceptions import QuerySyntaxError
from logcaster.options import MultilineConfig
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.blocks import decode_payload, encode_header, encode_payload
from logcaster.store.byte_stats import ByteStats
from logcaster.store.patterns import translate_regex
from logcaster.store.scan import Scanner

ROOT = Path(__file__).resolve().parent.parent

# Texts the corpus lacks: every escape, leading '#', header look-alikes, CR,
# unicode, invalid UTF-8, empty text.
TRICKY = [
    b"#LC2 0 1 2 3 r - deadbeef",
    b"# comment line with timeout",
    b"path C:\\new\\rules\\table",
    b"backslash n literally: \\n and \\r and \\\\",
    b"first\nsecond refused\nthird user-7123",
    b"cr\r\nline timeout\rtail",
    b"nnn rrr \\\\n",
    "unicodé ünïcode 日本語 timeout".encode(),
    b"bad utf8 \xff\xfe here \xe2\x82 refused",
    b"",
    b"n",
    b"\\",
    b"#",
    b"ends with backslash \\",
    b"trace: at foo\n\tat bar\n\tat baz within 30s",
]


@dataclass
class Store:
    buf: bytes
    ranges: list[tuple[int, int]]
    starts: list[int]  # line start of each event, in order
    bodies: list[str]
    stats: ByteStats


def _bench_corpus() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))  # _corpus imports its sibling modules
    return importlib.import_module("_corpus")


def build_store(texts: Sequence[bytes], per_block: int = 500) -> Store:
    """Raw blocks of `texts` as a segment would hold them, and the decoded truth."""
    out = bytearray()
    ranges: list[tuple[int, int]] = []
    for i in range(0, len(texts), per_block):
        part = list(texts[i : i + per_block])
        payload = encode_payload(part)
        out += encode_header(i + 1, len(part), payload, received=1.0, source="tcp:test")
        ranges.append((len(out), len(out) + len(payload)))
        out += payload
    buf = bytes(out)
    starts: list[int] = []
    bodies: list[str] = []
    for lo, hi in ranges:
        payload = buf[lo:hi]
        decoded = decode_payload(payload, payload.count(b"\n"))
        bodies += [t.decode("utf-8", "replace") for t in decoded]
        s = lo
        while s < hi:
            starts.append(s)
            s = buf.index(b"\n", s) + 1
    assert len(starts) == len(bodies) == len(texts)
    first = ranges[0]
    return Store(buf, ranges, starts, bodies, ByteStats(buf[first[0] : first[1]]))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    corpus = _bench_corpus()
    path = tmp_path_factory.mktemp("corpus") / "corpus.log"
    corpus.generate(path, 20_000)
    framer = LineFramer(64 * 1024, MultilineConfig())
    texts = framer.feed(path.read_bytes()) + framer.close()
    # Tricky texts spread over several blocks, one of them at a block's start.
    for k, text in enumerate(TRICKY):
        texts.insert(k * 997 % len(texts), text)
    texts.insert(500, b"#starts a block")
    return build_store(texts)


def truth(
    store: Store,
    keywords: Sequence[str] = (),
    operator: Literal["AND", "OR"] = "AND",
    regex: str | None = None,
) -> list[int]:
    search = re2.compile(regex).search if regex is not None else None
    out = []
    for start, body in zip(store.starts, store.bodies, strict=True):
        if keywords:
            test = all if operator == "AND" else any
            if not test(k in body for k in keywords):
                continue
        if search is not None and search(body) is None:
            continue
        out.append(start)
    return out


def check(
    store: Store,
    keywords: Sequence[str] = (),
    operator: Literal["AND", "OR"] = "AND",
    regex: str | None = None,
    *,
    stats: bool = True,
) -> Scanner:
    scanner = Scanner(keywords, operator, regex, stats=store.stats if stats else None)
    result = scanner.scan(store.buf, store.ranges)
    expected = truth(store, keywords, operator, regex)
    assert result.offsets == expected, (scanner.path, keywords, operator, regex)
    assert result.count == len(expected) and result.stopped is None
    return scanner


KEYWORDS = [
    "timeout",
    "refused",
    "user-7",
    "ERROR",
    "n",
    "r",
    "nginx",
    "rules",
    "\\",
    "\\n",
    "\\\\",
    "C:\\new",
    "\n",
    "\r",
    "\r\n",
    "second refused\nthird",
    "\n\tat",
    "#",
    "# comment",
    "#LC2",
    "LC2",
    "deadbeef",
    " ",
    "within 30s",
    "é",
    "日本語",
    "\ufffd",
    "bad utf8 \ufffd",
    "ends with backslash \\",
    "\\r",
    "nn",
    '"level"',
    "absent-keyword-xyz",
]


@pytest.mark.parametrize("keyword", KEYWORDS)
def test_keyword_parity(store: Store, keyword: str) -> None:
    check(store, [keyword])
    check(store, [keyword], stats=False)


@pytest.mark.parametrize(
    ("keywords", "operator"),
    [
        (["timeout", "user"], "AND"),
        (["timeout", "refused"], "OR"),
        (["n", "r"], "AND"),
        (["n", "\\"], "OR"),
        (["#", "comment"], "AND"),
        (["ERROR", "WARN", "refused"], "OR"),
        (["", "timeout"], "AND"),
        (["", "timeout"], "OR"),
        ([""], "AND"),
        (["\ufffd", "refused"], "OR"),
        (["\ufffd", "refused"], "AND"),
        ([], "AND"),
    ],
)
def test_keyword_combinations_parity(
    store: Store, keywords: list[str], operator: Literal["AND", "OR"]
) -> None:
    check(store, keywords, operator)


REGEXES = [
    "(timeout|refused).*user-7[0-9]{3}",
    "(timeout|refused).*within [0-9]+",
    "timeout",
    "^#",
    "^#LC2",
    "^\\[",
    "^$",
    "^.*$",
    "ERROR$",
    "\\)$",
    "a.b",
    ".*timeout.*",
    "second.*third",  # must not cross the escaped newline
    "second[\\s\\S]*third",
    "refused\\nthird",
    "first\\n",
    "\\tat",
    "cr\\r",
    "\\\\",
    "\\\\n",
    "C:\\\\new",
    "[^a-z]{3}timeout",
    "[^\\n]+refused",
    "\\d+ms",
    "\\D\\d{3}\\W",
    "\\bat\\b",
    "\\Bout",
    "\\w+@\\w+",
    "(?i)timeout",
    "(?i:REFUSED)",
    "(?i)unicodÉ",
    "(?i)[^k]imeout",
    "(?i)[^é]nicod",
    "(?i)[a-c]+D",
    "x(?i:T)(?-i:i)meout",
    "(?s)second.third",
    "(?m)^third",
    "[[:digit:]]{4}",
    "x{,2}y",
    "nginx|refused",
    "n|r",
    "(a|b|c)+d",
    "é|日本",
    ".本",
    "\\x{fffd}",
    "[é-ü]",
    "user-(7|8)\\d+ (timeout|refused)?",
    "ab*c",
    "(?P<word>time)out",
    "q+?u",
    "\\Atime",
    "\\A\\[",
]


@pytest.mark.parametrize("regex", REGEXES)
def test_regex_parity(store: Store, regex: str) -> None:
    check(store, regex=regex)


def test_regex_with_keywords_parity(store: Store) -> None:
    check(store, ["user"], "AND", "(timeout|refused)")
    check(store, ["ERROR", "WARN"], "OR", "\\d{3}")
    check(store, ["\\"], "AND", ".")


def test_paths_are_reported(store: Store) -> None:
    assert Scanner(["timeout"], stats=store.stats).path == "literal"
    assert Scanner(["timeout", "refused"], "OR", stats=store.stats).path == "literals"
    q2a = Scanner(regex="(timeout|refused).*user-7[0-9]{3}", stats=store.stats)
    assert q2a.path == "hyperscan-regex"
    # A literal the sample lacks is scanned for first; a frequent one is not
    # (RE2 would confirm each candidate, where the regex's scan reports plain
    # lines' matches without Python work).
    q2b = Scanner(regex="(timeout|refused).*zqxj [0-9]+", stats=store.stats)
    assert q2b.path == "literal" and q2b.regex_path == "hyperscan-regex"
    fallback = Scanner(regex="(?s)time.out", stats=store.stats)
    assert fallback.path == "re2-fallback" and fallback.regex_path is not None
    assert "flags" in fallback.regex_path
    assert Scanner(regex="(?i)timeout", stats=store.stats).path == "hyperscan-regex"
    assert Scanner([""]).path == "all-lines"


def test_a_bad_regex_is_a_query_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError):
        Scanner(regex="(unclosed")
    with pytest.raises(ValueError):
        Scanner(["x"], "XOR")  # type: ignore[arg-type]


def test_translation_keeps_dot_off_escaped_newlines() -> None:
    expr, required = translate_regex("(timeout|refused).*within [0-9]+")
    assert b"." not in expr.replace(b"\\.", b"")  # no raw dot: every class is explicit
    assert ["within "] in required and ["refused", "timeout"] in required


def test_block_headers_are_never_scanned() -> None:
    # Bodies without digits or '#': anything found would come from a header.
    texts = [b"hello world", b"plain text here", b"nothing"] * 400
    store = build_store(texts, per_block=100)
    assert store.buf.count(b"#LC2") == 12
    for keyword in ("#LC2", "LC2", "0", "1", "tcp", "%3A", " r "):
        result = Scanner([keyword], stats=store.stats).scan(store.buf, store.ranges)
        assert result.count == 0, keyword
    for regex in ("[0-9]", "^#", "LC2 \\d+", "tcp:"):
        assert Scanner(regex=regex).scan(store.buf, store.ranges).count == 0, regex
    assert Scanner(["hello"]).scan(store.buf, store.ranges).count == 400


QUERIES: list[tuple[list[str], Literal["AND", "OR"], str | None]] = [
    (["timeout"], "AND", None),
    (["n"], "AND", None),
    (["ERROR", "WARN"], "OR", None),
    ([], "AND", "(timeout|refused).*user-7[0-9]{3}"),
    ([], "AND", "(timeout|refused).*within [0-9]+"),
    ([], "AND", "(?i)error"),
    ([], "AND", "[[:upper:]]{5}"),
    ([], "AND", None),
]


def _check_stop(stopped: str | None, limit: int, total: int) -> None:
    # At exactly `limit` matches the scan may stop before seeing there are no more.
    if limit < total:
        assert stopped == "limit"
    elif limit > total:
        assert stopped is None


@pytest.mark.parametrize(("keywords", "operator", "regex"), QUERIES)
def test_limit_newest_first_and_two_threads(
    store: Store, keywords: list[str], operator: Literal["AND", "OR"], regex: str | None
) -> None:
    scanner = Scanner(keywords, operator, regex, stats=store.stats)
    expected = truth(store, keywords, operator, regex)
    one = scanner.scan(store.buf, store.ranges)
    two = scanner.scan(store.buf, store.ranges, threads=2)
    assert one.offsets == two.offsets == expected
    newest = scanner.scan(store.buf, store.ranges, newest_first=True, threads=2)
    assert newest.offsets == expected[::-1]
    for limit in (1, 7, len(expected), len(expected) + 1):
        for threads in (1, 2):
            asc = scanner.scan(store.buf, store.ranges, limit=limit, threads=threads)
            assert asc.offsets == expected[:limit]
            _check_stop(asc.stopped, limit, len(expected))
            desc = scanner.scan(
                store.buf, store.ranges, limit=limit, newest_first=True, threads=threads
            )
            assert desc.offsets == expected[::-1][:limit]
            _check_stop(desc.stopped, limit, len(expected))
    if len(expected) > 10:
        # Early stop: the newest matches come from the last ranges only.
        early = scanner.scan(store.buf, store.ranges, limit=1, newest_first=True)
        assert early.ranges_scanned < len(store.ranges)


def test_deadline_and_cancel_stop_between_ranges(store: Store) -> None:
    scanner = Scanner(["timeout"], stats=store.stats)
    past = scanner.scan(store.buf, store.ranges, deadline=time.monotonic() - 1)
    assert past.stopped == "deadline" and past.ranges_scanned == 0 and past.count == 0
    cancel = threading.Event()
    cancel.set()
    cancelled = scanner.scan(store.buf, store.ranges, cancel=cancel, threads=2)
    assert cancelled.stopped == "cancelled" and cancelled.offsets == []
    done = scanner.scan(store.buf, store.ranges, deadline=time.monotonic() + 60)
    assert done.stopped is None and done.ranges_scanned == len(store.ranges)


def test_scans_an_mmap_of_a_segment(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "seg.log"
    path.write_bytes(store.buf)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        for keywords, operator, regex in QUERIES:
            scanner = Scanner(keywords, operator, regex, stats=store.stats)
            result = scanner.scan(m, store.ranges, threads=2)
            assert result.offsets == truth(store, keywords, operator, regex)


# ---- property tests ------------------------------------------------------------------
# A small alphabet dense in escape-relevant characters, so escapes, leading '#',
# keywords starting mid-escape and newline-crossing matches are common.
ALPHABET = st.sampled_from(
    ["a", "b", "B", "k", "\u212a", "n", "r", "#", "\\", "\n", "\r", " ", "é", "\ufffd"]
)
TEXTS = st.lists(
    st.one_of(
        st.text(ALPHABET, max_size=12).map(str.encode),
        st.binary(max_size=6),  # invalid UTF-8 included
    ),
    min_size=1,
    max_size=40,
)
KEYWORD = st.text(ALPHABET, min_size=0, max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=TEXTS,
    keywords=st.lists(KEYWORD, min_size=1, max_size=3),
    operator=st.sampled_from(["AND", "OR"]),
    threads=st.sampled_from([1, 2]),
)
def test_keywords_match_brute_force(
    texts: list[bytes], keywords: list[str], operator: Literal["AND", "OR"], threads: int
) -> None:
    store = build_store(texts, per_block=7)
    for stats in (store.stats, None):
        scanner = Scanner(keywords, operator, stats=stats)
        result = scanner.scan(store.buf, store.ranges, threads=threads)
        assert result.offsets == truth(store, keywords, operator), scanner.path


def _regex() -> st.SearchStrategy[str]:
    atom = st.sampled_from(
        ["a", "B", "n", "r", "#", "\\\\", "\\n", "\\r", " ", "é", ".", "[ab]", "[^a]", "\\s", "\\w"]
    )
    leaf = st.lists(atom, min_size=1, max_size=3).map("".join)

    def combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
            st.tuples(inner, st.sampled_from(["*", "+", "?", "{2}", "{1,3}"])).map(
                lambda p: f"(?:{p[0]}){p[1]}"
            ),
        )

    # Two levels of nesting by hand (st.recursive's argument check misreads closures).
    level1 = st.one_of(leaf, combine(leaf))
    body = st.one_of(level1, combine(level1))
    return st.tuples(
        st.sampled_from(["", "^", "(?i)", "(?i)^"]), body, st.sampled_from(["", "$"])
    ).map("".join)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=TEXTS, regex=_regex(), threads=st.sampled_from([1, 2]))
def test_regexes_match_brute_force(texts: list[bytes], regex: str, threads: int) -> None:
    store = build_store(texts, per_block=7)
    scanner = Scanner(regex=regex, stats=store.stats)
    result = scanner.scan(store.buf, store.ranges, threads=threads)
    assert result.offsets == truth(store, regex=regex), (scanner.path, scanner.regex_path)
