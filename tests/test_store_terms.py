"""The token index (store/terms.py, store/term_lookup.py): what it holds, how it
survives a torn write, and that queries answered through it stay exact."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import numpy as np
import pytest
import re2

from logcaster.store.bulk_rows import rows_from_hits
from logcaster.store.scan import Scanner
from logcaster.store.search import in_chunks
from logcaster.store.term_lookup import TermPlan, piece_of, whole_term
from logcaster.store.term_views import load_terms
from logcaster.store.term_writer import TermWriter
from logcaster.store.terms import (
    COMMON_SHARE,
    TERM_DTYPE,
    TOKEN_BYTES,
    build_terms,
    term_paths,
    token_bytes,
)
from logcaster.store.text_match import stored_line_text

WORDS = ["timeout", "refused", "checkout", "cart", "nginx", "rollback", "deadlock", "ok"]


def lines(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        words = rnd.sample(WORDS, 3)
        rid, took = rnd.randrange(10**6), rnd.randrange(999)
        out.append(f"{i} INFO req-{rid:06d} {' '.join(words)} took={took}ms".encode())
    # As stored: an escaped newline before "Caused" (the index sees "nCaused"), an
    # escaped backslash and UTF-8.
    out[5] = "first\\nCaused by \\\\ café timeout".encode()
    return out


def test_terms_list_rare_terms_and_bitmaps_hold_exact_rows() -> None:
    rows = lines(2000)
    text = b"".join(x + b"\n" for x in rows)
    built = build_terms(text, len(rows))
    listed = set(built.terms.strip(b"\n").split(b"\n"))
    assert b"req-%06d" % int(rows[0].split(b"req-")[1][:6]) in listed
    assert not any(t.isdigit() for t in listed)  # digits-only terms are left out
    assert b"INFO" in built.common and b"INFO" not in listed
    width = -(-len(rows) // 8)
    for n, term in enumerate(built.common):
        bits = np.unpackbits(np.frombuffer(built.bitmaps[n * width : (n + 1) * width], np.uint8))
        got = np.flatnonzero(bits[: len(rows)]).tolist()
        tokens = [set(re.findall(rb"[A-Za-z0-9_\-\x80-\xff]+", x)) for x in rows]
        assert got == [i for i, t in enumerate(tokens) if term in t]
        assert len(got) * COMMON_SHARE >= len(rows)


def test_piece_of_takes_the_longest_run_of_three_or_more() -> None:
    assert piece_of("timeout after") == b"timeout"
    assert piece_of("a.b") is None
    assert piece_of("café-au-lait") == b"-au-lait"  # inside the term café-au-lait


def write(tmp_path: Path, chunks: list[list[bytes]]) -> tuple[Path, list[int]]:
    base = tmp_path / "00000000000000000001"
    firsts = []
    with_writer = TermWriter(base, fsync=False)
    first = 1
    for chunk in chunks:
        text = b"".join(x + b"\n" for x in chunk)
        with_writer.append(first, len(chunk), build_terms(text, len(chunk)))
        firsts.append(first)
        first += len(chunk)
    with_writer.close()
    return base, firsts


def test_a_torn_tail_is_cut_when_the_writer_opens(tmp_path: Path) -> None:
    base, _ = write(tmp_path, [lines(500, 1), lines(500, 2)])
    assert len(load_terms(base).records) == 2
    records = term_paths(base)[2]
    raw = records.read_bytes()
    records.write_bytes(raw[: TERM_DTYPE.itemsize + 10])  # half a second record
    assert len(load_terms(base).records) == 1
    writer = TermWriter(base, fsync=False)
    assert writer.next_id == 501
    writer.close()
    assert records.stat().st_size == TERM_DTYPE.itemsize
    # A record whose sections are not (all) in the files is not read.
    term_paths(base)[0].write_bytes(b"")
    assert len(load_terms(base).records) == 0


@pytest.mark.parametrize(
    "keywords,operator",
    [
        (["timeout"], "AND"),
        (["INFO"], "AND"),
        (["imeou"], "AND"),
        (["timeout", "cart"], "AND"),
        (["refused", "deadlock"], "OR"),
        (["nginx"], "AND"),
        (["nCaused"], "AND"),
        (["no-such-word"], "AND"),
    ],
)
def test_decisions_agree_with_a_brute_force(
    tmp_path: Path, keywords: list[str], operator: str
) -> None:
    """Skipped chunks hold no match; rows answered from bitmaps are exactly the matches."""
    chunks = [lines(700, seed) for seed in range(4)]
    base, _ = write(tmp_path, chunks)
    files = load_terms(base)
    plan = TermPlan.make(keywords, operator, None)  # type: ignore[arg-type]
    assert plan is not None
    starts = np.array([0, 700, 1400, 2100], np.uint64)
    split = plan.decide(files, {i: i for i in range(4)}, starts, range(4))
    test = all if operator == "AND" else any

    def matches(chunk: int) -> list[int]:
        return [
            int(starts[chunk]) + i
            for i, line in enumerate(chunks[chunk])
            if test(k in stored_line_text(line).decode("utf-8", "replace") for k in keywords)
        ]

    # Chunks not scanned were skipped (no match) or answered (exactly their matches).
    answered = sorted(int(r) for part in split.rows for r in part)
    assert answered == [r for c in range(4) if c not in split.scan for r in matches(c)]
    if keywords[0][0] in "nr":
        assert not split.rows  # may start inside an escape: only candidates


def test_whole_terms_are_found_through_the_bloom_filter(tmp_path: Path) -> None:
    """A field value is a whole term: chunks without it are skipped, none with it is,
    also right after an escaped newline (`\\n` + value reads as one term)."""
    chunks = [lines(700, seed) for seed in range(4)]
    chunks[2][9] = b"Thread:\\nworker-77, Request: GET /x"
    # After an escape, a value whose escaped form is a common term (`nzzq`).
    for i in range(0, 700, 4):
        chunks[3][i] += b" \\nzzq"
    base, _ = write(tmp_path, chunks)
    files = load_terms(base)
    starts = np.array([0, 700, 1400, 2100], np.uint64)
    for value, chunk in [(chunks[1][3].split(b" ")[2].decode(), 1), ("worker-77", 2), ("zzq", 3)]:
        plan = TermPlan.make([], "AND", None, [value])
        assert plan is not None and whole_term(value) == value.encode()
        split = plan.decide(files, {i: i for i in range(4)}, starts, range(4))
        assert chunk in split.scan and not split.rows
        assert split.skipped + len(split.scan) == 4 and split.skipped >= 2  # ~1% false hits
        # The reader's walk asks the same of the blooms first (StoreReader._may_hold);
        # a chunk without a token record (4 here) may hold anything.
        held = plan.may_hold_wholes(files, {i: i for i in range(4)}, np.arange(5))
        assert held[chunk] and held[4] and int(held.sum()) <= 3
        assert set(np.flatnonzero(held[:4]).tolist()) >= set(split.scan)
    assert whole_term("v1.2") is None and whole_term("café") is None
    assert TermPlan.make([], "AND", None, ["a b"]) is None


def test_digits_only_pieces_and_values_are_left_to_the_scan() -> None:
    """Digits-only terms are not listed: a digits-only piece would prune every chunk."""
    assert piece_of("12345") is None and piece_of("user 12345") == b"user"
    assert TermPlan.make(["12345"], "AND", None) is None
    assert TermPlan.make(["a", "12345"], "OR", None) is None  # one keyword may match anywhere
    # A parser's rendering of a number may not be the text's (JSON -0 is 0).
    assert whole_term("-0") is None and whole_term("500") is None
    assert whole_term("req-42") == b"req-42"


def test_a_value_next_to_non_ascii_whitespace_is_found(tmp_path: Path) -> None:
    """`user=bob\\u00a0ok`: a parser ends the value at U+00A0, whose bytes are token
    bytes here; the ASCII runs of such terms are in the bloom filter too."""
    chunks = [lines(300, seed) for seed in range(2)]
    chunks[1][7] = "user=bobqz\u00a0ok".encode()
    base, _ = write(tmp_path, chunks)
    plan = TermPlan.make([], "AND", None, ["bobqz"])
    assert plan is not None
    split = plan.decide(load_terms(base), {0: 0, 1: 1}, np.array([0, 300], np.uint64), [0, 1])
    assert 1 in split.scan


@pytest.mark.parametrize(
    "regex,line,match",
    [
        (r"a\sb", b"a\x0bb", False),  # RE2's \s has no \v ...
        (r"a\Sb", b"a\x0bb", True),  # ... so \S has it
        ("(?i)café", b"cafe", False),
        ("x$.", b"abx\nyz", False),
        (r"\bheck", b"checkout", False),
        ("took [0-9]{4,}ms", b"took 12345ms", True),
    ],
)
def test_bulk_counts_agree_with_re2_on_plain_lines(regex: str, line: bytes, match: bool) -> None:
    """A regex alone skips RE2 on plain lines only where its translation is exact."""
    buf = b"".join(x + b"\n" for x in [b"first line", *line.split(b"\n"), b"last line"])
    scanner = Scanner(regex=regex)
    starts = np.array([0, *[i + 1 for i, c in enumerate(buf[:-1]) if c == 10]], np.int64)
    hits = scanner.hits(buf, 0, len(buf))
    rows = rows_from_hits(
        scanner, buf, hits, starts, np.zeros(0, np.int64), len(buf), time.monotonic() + 5
    )
    bodies = [stored_line_text(x).decode() for x in buf.split(b"\n")[:-1]]
    assert rows.tolist() == [i for i, b in enumerate(bodies) if re2.search(regex, b)]
    assert bool(len(rows)) == match or "\n" in line.decode()


def test_in_chunks_keeps_the_rows_of_the_chunks_named() -> None:
    chunks = np.zeros(3, [("row_start", "<u8"), ("count", "<u4")])
    chunks["row_start"], chunks["count"] = [0, 10, 12], [10, 2, 10]
    rows = np.arange(22, dtype=np.int64)
    assert rows[in_chunks(rows, chunks, [0, 2])].tolist() == [*range(10), *range(12, 22)]


def test_token_bytes_by_comparisons_are_exactly_token_bytes() -> None:
    every = np.arange(256, dtype=np.uint8)
    assert token_bytes(every).tolist() == [b in TOKEN_BYTES for b in range(256)]
