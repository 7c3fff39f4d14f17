"""TextTest.candidates: the memory buffer's bulk keyword prefilter (query/engine.py).

A query over memory rules out, per batch, the events whose text cannot hold a
keyword with one search of the texts joined; only the candidates take the
exact per-event test. It must never rule out an event that passes: checked
here against `matches_text` on texts built to cross every edge (a keyword
across the joint of two texts, at a text's ends, inside invalid UTF-8, with
newlines), and through a real server, whose memory answers must count what a
brute-force test of each event counts.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.segments.blocks import encode_payload
from logcaster.store.text_match import TextTest
from logcaster.store.word_finder import word_finder
from logcaster.testing import start_server

_PIECES = [b"time", b"out", b"timeout", b"\n", b"\xff", b"\xc3", b"\xc3\xa9", b"caf", b" ", b""]
_WORDS = ["timeout", "out", "t\nt", "caf\u00e9", "\ufffd", "", "e", "meo"]


@st.composite
def texts(draw: st.DrawFn) -> list[bytes]:
    pieces = st.lists(st.sampled_from(_PIECES), max_size=6).map(b"".join)
    return draw(st.lists(pieces, min_size=1, max_size=30))


def occurrences(texts: list[bytes], words: list[str], operator: str) -> int:
    """Where the bulk words (all for OR, the longest for AND) start in the texts joined."""
    found = [w.encode() for w in words if w]
    bulk = set(found) if operator == "OR" else set(sorted(found, key=len)[-1:])
    data = b"".join(texts)
    return sum(data.startswith(w, i) for w in bulk for i in range(len(data)))


def span(batch: list[bytes], bounds: tuple[int, int]) -> tuple[int, int]:
    """The [start, stop) of the batch the test asks about."""
    return min(bounds[0], len(batch)), min(max(bounds), len(batch))


def check_chosen(
    test: TextTest, batch: list[bytes], chosen: list[int], start: int, stop: int
) -> None:
    """Candidates are ascending, each once, within [start, stop), and hold every
    text of the span that passes the exact test."""
    passing = [i for i in range(start, stop) if test.matches_text(batch[i])]
    assert chosen == sorted(set(chosen)) and all(start <= i < stop for i in chosen)
    assert set(passing) <= set(chosen), (passing, chosen)


@settings(max_examples=400, deadline=None)
@given(
    batch=texts(),
    words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3),
    operator=st.sampled_from(["AND", "OR"]),
    bounds=st.tuples(st.integers(0, 30), st.integers(0, 30)),
)
def test_candidates_never_rule_out_a_passing_text(
    batch: list[bytes], words: list[str], operator: str, bounds: tuple[int, int]
) -> None:
    test = TextTest(words, operator)  # type: ignore[arg-type]
    start, stop = span(batch, bounds)
    chosen = test.candidates(batch, start, stop)
    if chosen is None:
        # no bulk test: a word with U+FFFD, an OR with "", nothing to search, or
        # more hits than texts (the word is nearly everywhere)
        assert (
            any("\ufffd" in w for w in words)
            or (operator == "OR" and "" in words)
            or (all(w == "" for w in words) or stop <= start)
            or occurrences(batch[start:stop], words, operator) > stop - start
        )
        return
    check_chosen(test, batch, chosen, start, stop)


_ESCAPED = [*_PIECES, b"\\", b"\r", b"#", b"n", b"\\n"]
_ESCAPED_WORDS = [*_WORDS, "#ti", "\\n", "n", "a\rb", "e\\"]


@settings(max_examples=400, deadline=None)
@given(
    batch=st.lists(st.lists(st.sampled_from(_ESCAPED), max_size=6).map(b"".join), max_size=30),
    words=st.lists(st.sampled_from(_ESCAPED_WORDS), min_size=1, max_size=3),
    operator=st.sampled_from(["AND", "OR"]),
    bounds=st.tuples(st.integers(0, 30), st.integers(0, 30)),
)
def test_payload_candidates_never_rule_out_a_passing_text(
    batch: list[bytes], words: list[str], operator: str, bounds: tuple[int, int]
) -> None:
    """The same on a batch held as its raw payload (the framer's escaped reads)."""
    test = TextTest(words, operator)  # type: ignore[arg-type]
    start, stop = span(batch, bounds)
    chosen = test.payload_candidates(encode_payload(batch), len(batch), start, stop)
    if chosen is None:
        return  # every text is tested, as with `candidates` (or a word escaping changes)
    check_chosen(test, batch, chosen, start, stop)


def test_memory_answers_count_like_a_test_of_each_event() -> None:
    """Batches in memory where the keyword is rare, common and absent, asked in
    both orders: counts and rows as the per-event test gives them."""
    lines = [
        b"%d %s tail" % (i, b"timeout" if i % 7 == 0 else b"time out" if i % 5 == 0 else b"ok")
        for i in range(3000)
    ]
    with start_server("--buffer-size", "10000") as server:
        for at in range(0, 3000, 500):  # several batches
            server.send(b"\n".join(lines[at : at + 500]) + b"\n")
        server.wait_total(3000)
        want = sum(1 for line in lines if b"timeout" in line)
        for order in ("asc", "desc"):
            ask = f"QUERY keyword=timeout limit=5 max_count=10000 order={order} source=memory"
            reply = server.query(ask)
            assert reply.startswith(f"FOUND: {want} matches"), reply
            rows = reply.splitlines()[1:]
            assert len(rows) == 5 and all("timeout" in r for r in rows), reply
        reply = server.query("QUERY keyword=absent source=memory")
        assert reply.startswith("FOUND: 0 matches"), reply
        either = sum(1 for line in lines if b"timeout" in line or b"time out" in line)
        reply = server.query(
            'QUERY keyword=timeout keyword="time out" operator=OR max_count=10000 source=memory'
        )
        assert reply.startswith(f"FOUND: {either} matches"), reply


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from(_PIECES), max_size=12).map(b"".join),
    words=st.lists(
        st.sampled_from([b"time", b"out", b"timeout", b"\n", b"\xc3", b"e"]), min_size=1
    ),
)
def test_the_word_finder_reports_every_occurrence_of_every_word(
    data: bytes, words: list[bytes]
) -> None:
    expected = sorted(
        i for w in set(words) for i in range(len(data) - len(w) + 1) if data.startswith(w, i)
    )
    finder = word_finder(tuple(words))
    assert finder is not None
    assert sorted(finder.starts(data, len(data) + 1) or []) == expected
    assert finder.starts(data, len(expected) - 1) is None if expected else True


def test_a_keyword_too_long_for_hyperscan_is_tested_text_by_text() -> None:
    word = "a" * 20_000  # past Hyperscan's pattern length limit
    test = TextTest([word])
    texts = [b"x", word.encode(), b"y" + word.encode()]
    assert word_finder((word.encode(),)) is None
    assert test.candidates(texts, 0, 3) is None
    assert [test.matches_text(t) for t in texts] == [False, True, True]
