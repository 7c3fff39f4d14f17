"""The token index's term lists sorted by length (store/terms.py, layout 2): the
length offsets, lookups that scan only long enough terms (and find a piece that is
a whole term through the bloom filter), and files of the older layout."""

from __future__ import annotations

import random
from pathlib import Path

import google_crc32c
import numpy as np
import pytest

from logcaster.store.term_lookup import TermPlan, _parts
from logcaster.store.term_views import load_terms
from logcaster.store.term_writer import TermWriter
from logcaster.store.terms import (
    LENGTHS_SIZE,
    MAX_LENGTH,
    TERM_DTYPE,
    build_terms,
    post_sections,
    term_paths,
)
from logcaster.store.text_match import stored_line_text

ALPHABET = "abcdef0123456789"


def chunk_lines(n: int, seed: int) -> list[bytes]:
    """Lines with ids of many lengths (3 to 80 bytes, past MAX_LENGTH), some of
    digits and `-` only, and a few escapes."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ident = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(3, 81)))
        dashed, other = (f"{rnd.randrange(100)}-{rnd.randrange(10**6)}" for _ in range(2))
        out.append(f"{i} INFO id={ident} op=x{other} n={dashed} took={i % 97}ms".encode())
    out[3] = b"boom\\nTraceback id=deadbeefcafe"
    return out


def write(tmp_path: Path, chunks: list[list[bytes]]) -> Path:
    base = tmp_path / "00000000000000000001"
    writer = TermWriter(base, fsync=False)
    first = 1
    for chunk in chunks:
        text = b"".join(x + b"\n" for x in chunk)
        writer.append(first, len(chunk), build_terms(text, len(chunk)))
        first += len(chunk)
    writer.close()
    return base


def test_term_lists_are_sorted_by_length_with_an_offset_per_length() -> None:
    rows = chunk_lines(500, 1)
    built = build_terms(b"".join(x + b"\n" for x in rows), len(rows))
    terms = built.terms[1:-1].split(b"\n")
    lengths = [len(t) for t in terms]
    assert lengths == sorted(lengths) and max(lengths) > MAX_LENGTH
    offsets = np.frombuffer(built.lengths, "<u4")
    assert len(built.lengths) == LENGTHS_SIZE and len(offsets) == MAX_LENGTH + 1
    for length in range(MAX_LENGTH + 1):
        rest = built.terms[int(offsets[length]) :]
        long_enough = [t for t in terms if len(t) >= length]
        assert rest == b"\n" + b"".join(t + b"\n" for t in long_enough)
    empty = build_terms(b"\n", 1)
    assert empty.terms == b"\n" and set(np.frombuffer(empty.lengths, "<u4")) == {0}


def keywords_of(chunks: list[list[bytes]]) -> list[str]:
    """Pieces of every kind: whole terms of each length (also past MAX_LENGTH),
    parts of longer terms, digits-and-`-` terms (not in the bloom filter), absent ones."""
    rnd = random.Random(5)
    out = ["deadbeefcafe", "nTraceback", "Traceback", "zzzz-not-there", "abcdefabcdef0"]
    for line in rnd.sample([x for c in chunks for x in c], 30):
        ident = line.split(b"id=")[1].split(b" ")[0].decode()
        dashed = line.split(b"n=")[1].split(b" ")[0].decode()
        other = line.split(b"op=")[1].split(b" ")[0].decode()
        out += [ident, ident[1:], ident[: len(ident) // 2 + 2], dashed, other, other[2:]]
    return [k for k in out if len(k) >= 3]


def test_lookups_by_length_agree_with_a_brute_force(tmp_path: Path) -> None:
    """No chunk holding a keyword is skipped; rows answered are exactly the matches;
    a long piece found in one chunk rules every other one out."""
    chunks = [chunk_lines(400, seed) for seed in range(6)]
    base = write(tmp_path, chunks)
    files = load_terms(base)
    starts = np.arange(0, 2400, 400, dtype=np.uint64)
    pruned = 0
    for keyword in keywords_of(chunks):
        plan = TermPlan.make([keyword], "AND", None)
        assert plan is not None, keyword
        split = plan.decide(files, {i: i for i in range(6)}, starts, range(6))
        holding = [
            [400 * c + i for i, x in enumerate(chunk) if keyword in stored_line_text(x).decode()]
            for c, chunk in enumerate(chunks)
        ]
        answered = sorted(int(r) for part in split.rows for r in part)
        not_scanned = [c for c in range(6) if c not in split.scan]
        assert answered == [r for c in not_scanned for r in holding[c]], keyword
        pruned += split.skipped
        if len(keyword) >= 20 and sum(map(bool, holding)) == 1:
            assert split.skipped == 5, keyword  # a bloom filter's false hit ruled out too
    assert pruned > 0


def test_parts_split_the_sections_by_size() -> None:
    lows = np.array([0, 100, 250, 400], np.int64)
    ends = np.array([90, 200, 390, 401], np.int64)
    wanted = np.array([True, True, True, False])
    assert _parts(lows, ends, wanted, 100) == [[(0, 90), (100, 200)], [(250, 390)]]
    assert _parts(lows, ends, wanted, 200) == [[(0, 90), (100, 200), (250, 390)]]
    assert _parts(lows, ends, wanted, 10) == [[(0, 90)], [(100, 200)], [(250, 390)]]
    assert _parts(lows, ends, np.zeros(4, np.bool_), 10) == []


OLD_FIELDS = [
    ("first_id", "<u8"),
    ("count", "<u4"),
    ("terms_start", "<u8"),
    ("terms_end", "<u8"),
    ("posts_start", "<u8"),
    ("common_bytes", "<u4"),
    ("common", "<u4"),
    ("bloom_bits", "<u4"),
]


@pytest.mark.parametrize("records", [1, 3])
def test_an_index_of_the_old_layout_is_not_read_and_is_rebuilt(
    tmp_path: Path, records: int
) -> None:
    """Layout 1 (52-byte records, unsorted lists, no length offsets), written as its
    writer did: no record of it is read, and the writer starts the files over."""
    chunks = [chunk_lines(300, seed) for seed in range(records)]
    base = tmp_path / "00000000000000000001"
    old = np.dtype([*OLD_FIELDS, ("crc", "<u4")])
    body = np.dtype(OLD_FIELDS).itemsize
    terms_at = posts_at = 0
    first = 1
    paths = term_paths(base)
    with open(paths[0], "wb") as t, open(paths[1], "wb") as p, open(paths[2], "wb") as r:
        for chunk in chunks:
            built = build_terms(b"".join(x + b"\n" for x in chunk), len(chunk))
            unsorted = b"\n" + b"".join(sorted(built.terms[1:-1].split(b"\n"))[::-1]) + b"\n"
            common = b"\n".join(built.common)
            posts = common + built.bitmaps + built.bloom + built.plain
            rec = np.zeros(1, old)
            rec[0]["first_id"], rec[0]["count"] = first, len(chunk)
            rec[0]["terms_start"], rec[0]["terms_end"] = terms_at, terms_at + len(unsorted)
            rec[0]["posts_start"] = posts_at
            rec[0]["common_bytes"], rec[0]["common"] = len(common), len(built.common)
            rec[0]["bloom_bits"] = len(built.bloom) * 8
            rec[0]["crc"] = google_crc32c.value(rec.tobytes()[:body])
            t.write(unsorted)
            p.write(posts)
            r.write(rec.tobytes())
            terms_at, posts_at, first = terms_at + len(unsorted), posts_at + len(posts), first + 300
    assert len(load_terms(base).records) == 0  # queries scan every chunk
    writer = TermWriter(base, fsync=False)
    assert writer.next_id == 0
    assert [path.stat().st_size for path in paths] == [0, 0, 0]
    writer.append(1, 300, build_terms(b"".join(x + b"\n" for x in chunks[0]), 300))
    writer.close()
    files = load_terms(base)
    assert len(files.records) == 1 and int(files.records[0]["layout"]) == 2
    assert paths[2].stat().st_size == TERM_DTYPE.itemsize
    assert int(post_sections(files.records)["end"][0]) == paths[1].stat().st_size
