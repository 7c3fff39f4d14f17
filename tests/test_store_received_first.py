"""Answers over a store where a few events in every chunk have no time of their own.

Newest first (store/received_first.py): their rows are tested first, the walk
then stops after the newest chunks. Within a recent window (or of a rare level)
only the rows that pass the structured filter are read (StoreReader.match_rows).
Either way the answer is the one a full read gives."""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from logcaster.event import Event
from logcaster.options import QueryConfig
from logcaster.query.parser import build_query, parse_params
from logcaster.store.indexer import indexed_on_disk
from logcaster.store.reader import StoreReader, StoreResult
from logcaster.store.received_first import received_rows
from logcaster.store.scan import Scanner
from logcaster.store.search import ids_of_rows, matching_rows
from tests.store_build import batches_of, build_store

LINES = 12_000
START = 1768867200.0  # the lines' own times run from here, a second apart
RECEIVED = 1796594400.0  # later than every own time, as when logs are shipped live


def texts(n: int, seed: int) -> list[bytes]:
    """Timed logfmt lines, about 2% without a time (plain lines, Python-variant
    headers, a multi-line one), spread over every chunk."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        word = rnd.choice(["timeout", "cart", "refused", "ok", "retry"])
        level = rnd.choice(["info", "warn", "error"])
        if rnd.random() < 0.02:
            out.append(
                rnd.choice(
                    [
                        f"ERROR: checkout/v1.2 pod/c-{i} {word} while paying".encode(),
                        f"plain line {i} {word}".encode(),
                        f"WARNING: cart/v2 pod/x-{i} {word}\nDetails: more".encode(),
                    ]
                )
            )
            continue
        # Own times mostly follow arrival, with some jitter.
        ts = START + i + rnd.uniform(-30, 30)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{i % 1000:03d}Z"
        out.append(
            f"ts={stamp} level={level} service=checkout msg={word} n={i} pad={'x' * 60}".encode()
        )
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    directory = tmp_path_factory.mktemp("received")
    batches = batches_of(texts(LINES, 5), RECEIVED, 1 / 1000)
    return directory, build_store(directory, batches, max_bytes=256 * 1024, chunk_bytes=16 * 1024)


def expected(events: list[Event], params: str) -> list[Event]:
    """The matches of the queries below, by the query's semantics, newest first."""
    out = []
    for ev in events:
        ok = True
        for key, value in parse_params(params):
            if key == "keyword":
                ok &= value in ev.body
            elif key == "regex":
                ok &= re.search(value, ev.body) is not None
            elif key == "level":
                ok &= ev.level == value
            elif key == "time_from":
                ok &= ev.ts >= float(value)
        if ok:
            out.append(ev)
    return sorted(out, key=lambda e: (e.ts, e.id), reverse=True)


def search(directory: Path, params: str, limit: int, max_count: int) -> StoreResult:
    query, _ = build_query(parse_params(params), QueryConfig())
    reader = StoreReader(directory)
    try:
        return reader.search(
            query,
            indexed_on_disk(directory),
            limit=limit,
            max_count=max_count,
            deadline=time.monotonic() + 30,
            max_scan=10**9,
        )
    finally:
        reader.close()


@pytest.mark.parametrize(
    "params",
    ["keyword=timeout", "keyword=refused level=ERROR", "regex=re(try|fused)", "level=WARN"],
)
@pytest.mark.parametrize(("limit", "max_count"), [(1, 1), (10, 11), (100, 101), (5, 10**9)])
@pytest.mark.usefixtures("collector")  # gathered lines scanned in place in C, or copied
def test_newest_first_answers_equal_a_full_read(
    store: tuple[Path, list[Event]], params: str, limit: int, max_count: int
) -> None:
    directory, events = store
    want = expected(events, params)
    assert any(e.ts == e.received_at for e in want[:limit])  # untimed rows are among them
    result = search(directory, params, limit, max_count)
    assert [e.id for e in result.rows] == [e.id for e in want[:limit]]
    # Counted exactly up to max_count (the planner shows more as "max_count+").
    if result.capped or result.count >= max_count:
        assert max_count <= result.count <= len(want)
    else:
        assert result.count == len(want)
    if max_count < 1000:
        # The walk stopped after the newest chunks: far from every event was read.
        assert result.scanned < len(events) / 2


def test_received_rows_match_with_and_without_a_block_table(
    store: tuple[Path, list[Event]],
) -> None:
    """A row's line ends at the next row or block header; an index without a block
    table (it may be empty) gives the same rows."""
    directory, events = store
    by_id = {e.id: e for e in events}
    scanner = Scanner(["timeout"])
    reader = StoreReader(directory)
    try:
        segments, _ = reader.snapshot(indexed_on_disk(directory))
        checked = 0
        for seg in segments:
            rows = received_rows(seg.index)
            hits = matching_rows(scanner, seg.buf, seg.index, rows, time.monotonic() + 30)
            bare = replace(seg.index, blocks=seg.index.blocks[:0], received=None)
            again = matching_rows(scanner, seg.buf, bare, rows, time.monotonic() + 30)
            assert again.tolist() == hits.tolist()
            ids = ids_of_rows(seg.index, rows).tolist()
            want = [
                r for r, i in zip(rows.tolist(), ids, strict=True) if "timeout" in by_id[i].body
            ]
            assert hits.tolist() == want
            checked += len(want)
        assert checked > 0
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("params", "few"),
    [
        # Keywords the token index cannot answer from its row bitmaps (a space in
        # them): the chunks it leaves are read. Only the receive-timed rows (2%)
        # can be in the window: they alone are read.
        (f"keyword='timeout while' time_from={RECEIVED - 1}", True),
        (f"regex='re(try|fused) while' level=ERROR time_from={RECEIVED - 1}", True),
        (f"keyword='timeout n=' time_from={START + LINES / 2}", False),  # half the rows
        ("keyword='timeout n=' level=WARN", False),  # a third of the rows
    ],
)
@pytest.mark.usefixtures("collector")
def test_a_few_filtered_rows_are_read_alone(
    store: tuple[Path, list[Event]], params: str, few: bool
) -> None:
    directory, events = store
    want = expected(events, params)
    assert want
    result = search(directory, params, len(events), 10**9)
    assert result.count == len(want)
    assert sorted(e.id for e in result.rows) == sorted(e.id for e in want)
    assert result.scanned > 0
    assert (result.scanned < len(events) / 10) == few
