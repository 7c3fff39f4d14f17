"""Counting in bulk (store/scan_pool.py, store/bulk_rows.py): a group of chunks cut
into batches that each scan thread turns into rows itself, and the plain-row bits
read for the matching rows only (store/term_views.plain_rows) stay exactly RE2's
answer, with block header lines, escapes and non-ASCII lines among the rows."""

from __future__ import annotations

import itertools
import random
import sys
import time
from pathlib import Path

import hyperscan
import numpy as np
import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logcaster.event import Event
from logcaster.options import MultilineConfig
from logcaster.pipeline.batch import Batch
from logcaster.pipeline.framing import LineFramer
from logcaster.query.model import Query
from logcaster.segments.blocks import encode_payload
from logcaster.store.byte_stats import ByteStats
from logcaster.store.index import BLOCKS_DTYPE, CHUNK_DTYPE, COLS_DTYPE, SegmentIndex
from logcaster.store.indexer import indexed_on_disk
from logcaster.store.patterns import Unsupported, exact_on_plain, translate_regex
from logcaster.store.reader import StoreReader
from logcaster.store.scan import Scanner
from logcaster.store.scan_pool import ScanPool, _batches
from logcaster.store.search import in_chunks
from logcaster.store.segment_view import SegmentView
from logcaster.store.term_views import load_terms, plain_rows
from logcaster.store.term_writer import TermWriter
from logcaster.store.terms import build_terms
from logcaster.store.text_match import stored_line_text
from tests.store_build import build_store
from tests.test_store_scan import TEXTS, _regex

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import _corpus

REGEXES = [
    "(timeout|refused).*user-7[0-9]{3}",
    "(GET|POST) /api/v1/orders/[0-9]+ [245][0-9]{2} ",
    "duration_ms=([5-9][0-9]{2}|[0-9]{4,})",
    "took [0-9]{4,}ms",
    "é.*timeout",
]


def chunk_lines(rnd: random.Random, n: int) -> list[bytes]:
    """Escaped payload lines: plain ones, and some with escapes or UTF-8 where only
    RE2 may decide (`\\n` joins lines of one event, so `.*` must not cross it)."""
    out = []
    for _ in range(n):
        user = f"user-{rnd.randrange(1000, 9999)}"
        word = rnd.choice(["timeout", "refused", "ok", "cart"])
        status = rnd.choice([200, 201, 404, 500, 302])
        ms = rnd.choice([12, 600, 999, 1500, 40000])
        kind = rnd.randrange(8)
        if kind == 0:
            line = f"GET /api/v1/orders/{rnd.randrange(10**4)} {status} duration_ms={ms}"
        elif kind == 1:
            line = f"upstream {word}\\n caused by {user} took {ms}ms"  # escaped newline
        elif kind == 2:
            line = f"café {word} {user} \\\\ took {ms}ms"  # UTF-8 and an escaped backslash
        elif kind == 3:
            line = f"bad \xff\xfe {word} {user}"  # not UTF-8 once encoded below
        else:
            line = f"{word} for {user} POST /api/v1/orders/{ms} {status} took {ms}ms"
        raw = line.encode("latin-1") if kind == 3 else line.encode()
        out.append(raw)
    return out


def segment(tmp_path: Path, chunks: list[list[bytes]]) -> tuple[SegmentView, Path]:
    """A segment of raw blocks (a header line before each chunk), its index and a
    token index for every chunk but the last."""
    text = bytearray()
    table = np.zeros(len(chunks), CHUNK_DTYPE)
    blocks = np.zeros(len(chunks), BLOCKS_DTYPE)
    offsets: list[int] = []
    first = 1
    for n, lines in enumerate(chunks):
        blocks[n] = (first, len(text))
        text += b"#block header %d\n" % n
        table[n]["first_id"], table[n]["count"] = first, len(lines)
        table[n]["byte_start"], table[n]["row_start"] = len(text), len(offsets)
        for line in lines:
            offsets.append(len(text))
            text += line + b"\n"
        table[n]["byte_end"] = len(text)
        first += len(lines)
    cols = np.zeros(len(offsets), COLS_DTYPE)
    cols["offset"] = offsets
    base = tmp_path / "00000000000000000001"
    writer = TermWriter(base, fsync=False)
    for n, lines in enumerate(chunks[:-1]):
        body = b"".join(x + b"\n" for x in lines)
        writer.append(int(table[n]["first_id"]), len(lines), build_terms(body, len(lines)))
    writer.close()
    index = SegmentIndex(chunks=table, cols=cols, blocks=blocks)
    return SegmentView(1, tmp_path / "seg", index, bytes(text)), base


def brute(regex: str, lines: list[bytes]) -> list[int]:
    bodies = [stored_line_text(x).decode("utf-8", "replace") for x in lines]
    return [i for i, b in enumerate(bodies) if re2.search(regex, b)]


@pytest.mark.parametrize("regex", REGEXES)
@pytest.mark.parametrize("pick", ["all", "every other", "last two"])
@pytest.mark.parametrize("confirm", ["all", "unplain"])
def test_bulk_rows_over_batches_equal_re2(
    tmp_path: Path, regex: str, pick: str, confirm: str
) -> None:
    """`confirm`: every matching line tested with RE2 (a scanner planned without byte
    statistics takes a literal path), or only those not plain (planned as the reader
    plans it, the regex scanned whole): then plain matches come before lines the
    translation over-reports (an escaped newline inside `.*`), which RE2 drops."""
    rnd = random.Random(regex + pick)
    chunks = [chunk_lines(rnd, rnd.randrange(50, 400)) for _ in range(9)]
    seg, base = segment(tmp_path, chunks)
    group = {"all": list(range(9)), "every other": [0, 2, 4, 6, 8], "last two": [7, 8]}[pick]
    table = seg.index.chunks
    ranges = [(int(table[i]["byte_start"]), int(table[i]["byte_end"])) for i in group]
    starts = [int(table[i]["row_start"]) for i in group]
    rows = [(a, a + int(table[i]["count"])) for a, i in zip(starts, group, strict=True)]
    files = load_terms(base)
    record_of = {n: n for n in range(len(files.records))}
    stats = ByteStats(bytes(seg.buf)) if confirm == "unplain" else None
    scanner = Scanner(regex=regex, stats=stats)
    assert scanner.confirm == confirm
    pool = ScanPool(2)
    try:
        got = pool.bulk(
            scanner,
            seg,
            ranges,
            rows,
            time.monotonic() + 30,
            lambda r: plain_rows(files, record_of, table, r),
        )
    finally:
        pool.close()
    every = [line for lines in chunks for line in lines]
    wanted = [r for r in brute(regex, every) if any(a <= r < b for a, b in rows)]
    # A chunk between two scanned ones a few bytes apart is scanned with them (a
    # span): the reader keeps its group's rows (search.in_chunks).
    assert got[in_chunks(got, table, group)].tolist() == wanted


@pytest.mark.parametrize(("regex", "dense"), [("took", True), ("orders/1234 ", False)])
def test_dense_reports_go_on_in_one_thread_with_the_same_rows(
    tmp_path: Path, regex: str, dense: bool, collector: str
) -> None:
    # Reports collected in C take no GIL: two threads go on (store/hs_reports.py).
    dense = dense and collector == "callbacks"
    rnd = random.Random(regex)
    chunks = [chunk_lines(rnd, 6_000) for _ in range(4)]  # 4 batches of 2 threads
    seg, _ = segment(tmp_path, chunks)
    table = seg.index.chunks
    ranges = [(int(c["byte_start"]), int(c["byte_end"])) for c in table]
    rows = [(int(c["row_start"]), int(c["row_start"] + c["count"])) for c in table]
    every = [line for lines in chunks for line in lines]
    pool = ScanPool(2)
    try:
        for start_dense in (False, True):
            scanner = Scanner(regex=regex)
            scanner.dense = start_dense
            got = pool.bulk(scanner, seg, ranges, rows, time.monotonic() + 30)
            assert got.tolist() == brute(regex, every)
            assert scanner.dense == (dense or start_dense)
    finally:
        pool.close()


# Unbounded repeats of one class, whose escaped encodings (2 bytes, 1-4 bytes for
# non-ASCII) are where a translation could widen what a plain line matches.
_CLASSES = [".", "[^a]", "[^ ]", "[a-z]", '[^"]', "\\S", "\\W", "\\s", "[^\\\\]", "[^r]"]
_CLASSES += ["[\\nnr]", "[\\n]", "[#a]", "[é]", "[^é]", "(?i)[^k]", "(?i)[a-c]"]
_REPEATS = st.tuples(
    st.sampled_from(["", "^", "a", "n"]),
    st.sampled_from(_CLASSES),
    st.sampled_from(["*", "+", "{2,}", "*?"]),
    st.sampled_from(["", "$", "b", "r", "#", "\\\\", "é"]),
).map("".join)


def check_translation(regex: str, texts: list[bytes]) -> None:
    """What a bulk scan relies on: Hyperscan reports every stored line whose body the
    regex matches, and on a plain line (ASCII without a backslash) only those,
    where exact_on_plain says so (bulk_rows.py confirms no plain line then)."""
    try:
        expr, _ = translate_regex(regex)
    except Unsupported:
        return
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[expr], ids=[0], flags=[hyperscan.HS_FLAG_MULTILINE])
    payload = b"\n" + encode_payload(texts)
    starts = np.flatnonzero(np.frombuffer(payload, np.uint8) == 10)[:-1] + 1
    reported: set[int] = set()

    def on_match(_i: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
        reported.add(int(np.searchsorted(starts, to - 1, side="right")) - 1)

    db.scan(payload, match_event_handler=on_match)
    exact = exact_on_plain(regex)
    search = re2.compile(regex).search
    for i, text in enumerate(texts):
        line = payload[starts[i] : payload.index(b"\n", starts[i])]
        matches = search(text.decode("utf-8", "replace")) is not None
        if matches:
            assert i in reported, (line, expr)
        elif exact and line.isascii() and b"\\" not in line:
            assert i not in reported, (line, expr)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=TEXTS, regex=st.one_of(_REPEATS, _regex()))
def test_the_translation_holds_every_match_and_only_them_on_plain_lines(
    texts: list[bytes], regex: str
) -> None:
    check_translation(regex, texts)


@pytest.mark.parametrize("cls", _CLASSES)
def test_a_repeated_class_matches_each_body_of_one_or_two_characters_as_re2(cls: str) -> None:
    chars = ["a", "b", "k", "n", "r", "x", " ", "\t", "#", '"', "\\", "\n", "\r", "é", "\u212a"]
    bodies = chars + [a + b for a, b in itertools.product(chars, chars)]
    texts = [("x" + body + "x").encode() for body in bodies]
    for quantifier in ("+", "{2,}"):
        check_translation(f"^x{cls}{quantifier}x$", texts)


def test_plain_rows_reads_the_bits_of_the_rows_asked(tmp_path: Path) -> None:
    rnd = random.Random(3)
    chunks = [chunk_lines(rnd, n) for n in (13, 200, 77)]
    seg, base = segment(tmp_path, chunks)
    files = load_terms(base)
    every = [line for lines in chunks for line in lines]
    plain = [int(x.isascii() and b"\\" not in x) for x in every]
    rows = np.array(sorted(rnd.sample(range(len(every)), 120)), np.int64)
    got = plain_rows(files, {0: 0, 1: 1}, seg.index.chunks, rows)
    last = int(seg.index.chunks[2]["row_start"])  # the last chunk has no token record
    assert got.tolist() == [plain[r] if r < last else -1 for r in rows.tolist()]
    assert plain_rows(files, {}, seg.index.chunks, rows).tolist() == [-1] * len(rows)
    assert plain_rows(files, {0: 0}, seg.index.chunks, rows[:0]).tolist() == []


def test_batches_cover_the_spans_in_order() -> None:
    spans = [(k * 100, k * 100 + 90) for k in range(10)]
    for threads in (1, 2, 3):
        batches = _batches(spans, threads)
        assert batches[0][0] == 0 and batches[-1][1] == len(spans)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(batches))
        assert len(batches) >= min(2 * threads, len(spans)) - 1
    assert _batches([(0, 5)], 2) == [(0, 1)]


@pytest.fixture(scope="module")
def small_chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """A data directory of the default corpus in 64 KiB chunks (a count's group
    holds dozens), its event index and token index built as the processes do."""
    directory = tmp_path_factory.mktemp("store")
    path = directory.parent / f"{directory.name}-corpus.log"
    _corpus.generate(path, 30_000, seed=11)
    framer = LineFramer(64 * 1024, MultilineConfig())
    texts = framer.feed(path.read_bytes()) + framer.close()
    texts[100] = "[INFO] café timeout for user-7001 déjà".encode()  # UTF-8 on a match
    texts[200] = b"[INFO] timeout\nsecond line user-7002"  # `.` must not cross it
    batches = [
        Batch(1 + a, 1768867200.0 + a / 1000, "tcp:x", texts[a : a + 500])
        for a in range(0, len(texts), 500)
    ]
    # Segments of about 1.5 MiB: the rotated ones are token-indexed to their end.
    events = build_store(directory, batches, max_bytes=3 << 19, chunk_bytes=64 * 1024)
    return directory, events


@pytest.mark.parametrize(
    "regex",
    [
        "(timeout|refused).*user-7[0-9]{3}",
        "(GET|POST) /api/v1/orders/[0-9]+ [245][0-9]{2} ",
        "duration_ms=([5-9][0-9]{2}|[0-9]{4,})",
        "Traceback",  # in some chunks only: the token index prunes
    ],
)
def test_repeated_counts_stay_exact(small_chunks: tuple[Path, list[Event]], regex: str) -> None:
    """The second and third queries reuse the compiled plan, and a segment whose
    token index pruned nothing is scanned without asking it again (fruitless)."""
    directory, events = small_chunks
    high = indexed_on_disk(directory)
    match = Query(regex=regex).matcher()
    wanted = sum(1 for ev in events if ev.id <= high and match(ev))
    reader = StoreReader(directory)
    try:
        got = [
            reader.search(
                Query(regex=regex),
                high,
                limit=1,
                max_count=10**9,
                deadline=time.monotonic() + 30,
                max_scan=10**9,
            ).count
            for _ in range(3)
        ]
    finally:
        reader.close()
    assert got == [wanted] * 3
