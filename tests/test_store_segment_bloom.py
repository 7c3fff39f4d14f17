"""The segments' filters of whole terms (store/segment_bloom.py): every value a
segment holds is in its filter, lookups skip the other segments and stay exact,
and a filter is written only for a segment whose every chunk is token-indexed,
ignored when damaged and written again."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from logcaster.event import Event
from logcaster.options import QueryConfig
from logcaster.query.parser import build_query, parse_params
from logcaster.segments.names import ACTIVE_NAME, list_rotated, parse_segment_name
from logcaster.store.catalog import active_first_id, delete_index, index_base
from logcaster.store.index import load_index
from logcaster.store.indexer import StoreIndexer, indexed_on_disk
from logcaster.store.reader import StoreReader
from logcaster.store.segment_bloom import SegmentBlooms, bloom_ok, bloom_path, ensure_bloom
from logcaster.store.term_lookup import TermPlan
from logcaster.store.terms import TERM_DTYPE, term_paths
from tests.store_build import batches_of, build_store, token_index

CHUNK = 16 * 1024
LINES = 12_000


def texts(n: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rnd.sample(["timeout", "cart", "nginx", "rollback", "ok"], 2))
        out.append(
            f'level=info msg="{words} while the order batch went through the warehouse'
            ' queue and the billing service confirmed the payment of the customer"'
            f" service=checkout region=eu-west-1 request_id=req-{i:06d}"
            f" trace_id={rnd.getrandbits(128):032x}"
            f" user=u{rnd.randrange(500)}".encode()
        )
    # A term right after an escaped newline (stored `\nworker-77`: the term
    # `nworker-77`), a value next to a no-break space (its bytes are token bytes).
    out[100] = b"Thread:\nworker-77, Request: GET /x"
    if n > 7000:
        out[7000] = "level=info request_id=req-nbsp\u00a0more".encode()
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """Segments of ~128 KiB in 16 KiB chunks, indexed as the processes do."""
    directory = tmp_path_factory.mktemp("sbloom")
    batches = batches_of(texts(LINES, 3), 1768867200.0, 1.0)
    return directory, build_store(directory, batches, max_bytes=128 * 1024, chunk_bytes=CHUNK)


def rotated_bases(directory: Path) -> list[tuple[Path, int]]:
    out = []
    for path in list_rotated(directory):
        first = parse_segment_name(path.name)
        assert first is not None
        out.append((index_base(directory, first), first))
    return out


def search(reader: StoreReader, directory: Path, params: str) -> int:
    query, _ = build_query(parse_params(params), QueryConfig())
    result = reader.search(
        query,
        indexed_on_disk(directory),
        limit=10,
        max_count=10**9,
        deadline=time.monotonic() + 30,
        max_scan=10**9,
    )
    return result.count


def test_every_rotated_segment_gets_a_filter_holding_its_values(
    store: tuple[Path, list[Event]],
) -> None:
    directory, events = store
    bases = rotated_bases(directory)
    assert len(bases) >= 8
    assert all(bloom_ok(base) for base, _ in bases)
    reader = StoreReader(directory)
    try:
        # Each segment holds the ids up to the next one's first (active.log's last).
        ends = [first for _, first in bases[1:]] + [active_first_id(directory / ACTIVE_NAME) or 0]
        for (base, first), end in zip(bases, ends, strict=True):
            held = [e for e in events if first <= e.id < end]
            for ev in held[:: max(1, len(held) // 50)] + [e for e in held if e.id == 7001]:
                for key in ("request_id", "trace_id"):
                    value = ev.fields.get(key)
                    plan = TermPlan.make([], "AND", None, [str(value)]) if value else None
                    if plan is not None:
                        assert not reader.blooms.rules_out(base, plan.whole_hashes), (base, value)
            if first <= 101 < end:
                plan = TermPlan.make([], "AND", None, ["worker-77"])
                assert plan is not None and not reader.blooms.rules_out(base, plan.whole_hashes)
        assert reader.blooms.ruled_out == 0
    finally:
        reader.close()


def test_lookups_skip_other_segments_and_stay_exact(store: tuple[Path, list[Event]]) -> None:
    directory, events = store
    segments = len(rotated_bases(directory))
    rnd = random.Random(5)
    ids = [str(e.fields["request_id"]) for e in events if "request_id" in e.fields]
    present = rnd.sample(ids, 60)
    present += ["req-nbsp"]
    absent = [f"req-{n}-missing" for n in range(20)]
    reader = StoreReader(directory)
    try:
        for value in present + absent:
            want = sum(1 for e in events if e.fields.get("request_id") == value)
            assert search(reader, directory, f"request_id={value}") == want, value
        # Each lookup: all segments but the holder, less the false hits (a few %:
        # 1/100 of the text is ~8 bits a distinct term on these lines).
        assert reader.blooms.ruled_out >= 0.9 * (segments - 1) * len(present + absent)
        # A value on every line is a common term (a bitmap of its own, not in the
        # chunk filters): the segment filters hold those too.
        for field, value in [("region", "eu-west-1"), ("user", "u17")]:
            want = sum(1 for e in events if e.fields.get(field) == value)
            assert want and search(reader, directory, f"{field}={value}") == want, value
        # Keywords (substrings): a whole id, found only through its own length's
        # terms, where the segment's filter has it; a trace id's head, only in
        # longer terms; a value no segment holds whole, in none of them.
        traces = [
            str(e.fields["trace_id"]) for e in rnd.sample(events, 10) if "trace_id" in e.fields
        ]
        for word in present[:10] + [t[:12] for t in traces] + ["req-00012", "worker-77"]:
            want = sum(1 for e in events if word in e.body)
            assert search(reader, directory, f"keyword={word}") == want, word
    finally:
        reader.close()


def test_no_filter_while_a_chunk_lacks_its_token_record(tmp_path: Path) -> None:
    """A segment whose last chunk has no record (left to the scan) gets none: the
    filter would not hold that chunk's values."""
    directory = tmp_path / "data"
    directory.mkdir()
    batches = batches_of(texts(3000, 9), 1768867200.0, 0.0, per=100)
    build_store(directory, batches, max_bytes=64 * 1024, chunk_bytes=CHUNK)
    base, _ = rotated_bases(directory)[0]
    records = term_paths(base)[2]
    records.write_bytes(records.read_bytes()[: -TERM_DTYPE.itemsize])
    bloom_path(base).unlink()
    chunks = load_index(base).chunks
    assert not ensure_bloom(base, chunks, 64 * 1024)
    assert not bloom_path(base).exists()
    # Its last chunk scanned, the value in it is found without a filter.
    reader = StoreReader(directory)
    try:
        last = int(chunks["first_id"][-1]) + int(chunks["count"][-1]) - 1  # its last event
        value = f"req-{last - 1:06d}"
        assert search(reader, directory, f"request_id={value}") == 1
    finally:
        reader.close()


def test_a_damaged_filter_is_ignored_then_written_again(store: tuple[Path, list[Event]]) -> None:
    """A filter whose CRC fails is not used (the chunk filters answer); the token
    process writes it again, and a reader that saw the damaged one uses the new
    one a second later."""
    directory, events = store
    base, first = rotated_bases(directory)[2]
    path = bloom_path(base)
    good = path.read_bytes()
    absent = []
    for n in range(20):
        plan = TermPlan.make([], "AND", None, [f"absent-value-{n}"])
        assert plan is not None
        absent.append(plan.whole_hashes)
    # A value the whole filter rules out.
    hashes = next(h for h in absent if SegmentBlooms().rules_out(base, h))
    reader = StoreReader(directory)
    try:
        raw = bytearray(good)
        raw[-1] ^= 0xFF
        path.write_bytes(bytes(raw))
        assert not bloom_ok(base)
        value = next(str(e.fields["request_id"]) for e in events if e.id >= first)
        assert search(reader, directory, f"request_id={value}") == 1
        assert not reader.blooms.rules_out(base, hashes)  # not used
        token_index(directory, CHUNK)
        assert bloom_ok(base) and path.read_bytes() == good
        time.sleep(1.1)
        assert reader.blooms.rules_out(base, hashes)
    finally:
        reader.close()
        path.write_bytes(good)


def test_a_filter_that_cannot_be_written_waits_for_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing a filter fails (here its name is taken by a directory): the token
    process logs it and goes on; lookups ask that segment's chunk filters."""
    directory = tmp_path / "data"
    directory.mkdir()
    batches = batches_of(texts(3000, 4), 1768867200.0, 0.0, per=100)
    events = build_store(directory, batches, max_bytes=64 * 1024, chunk_bytes=CHUNK)
    base, first = rotated_bases(directory)[1]
    bloom_path(base).unlink()
    bloom_path(base).mkdir()
    caplog.set_level("WARNING", logger="logcaster.store.terms")
    token_index(directory, CHUNK)
    failed = [
        r for r in caplog.records if getattr(r, "event", None) == "store_segment_filter_failed"
    ]
    assert len(failed) == 1 and not bloom_ok(base)
    reader = StoreReader(directory)
    try:
        value = next(str(e.fields["request_id"]) for e in events if e.id >= first)
        assert search(reader, directory, f"request_id={value}") == 1
    finally:
        reader.close()


def test_the_filter_goes_with_the_segments_index(tmp_path: Path) -> None:
    base = index_base(tmp_path, 42)
    base.parent.mkdir(parents=True)
    bloom_path(base).write_bytes(b"x")
    delete_index(tmp_path, 42)
    assert not bloom_path(base).exists()
    # A filter (or token file) written for a segment retention deleted meanwhile
    # is an orphan without the event index: removed at the indexer's start.
    bloom_path(base).write_bytes(b"x")
    term_paths(base)[0].write_bytes(b"x")
    indexer = StoreIndexer(tmp_path, fsync=False)
    try:
        assert indexer.remove_orphans() == [42]
    finally:
        indexer.close()
    assert not bloom_path(base).exists() and not term_paths(base)[0].exists()


def test_filters_stay_small(store: tuple[Path, list[Event]]) -> None:
    """At most 1/100 of the segment's text; absent values ruled out in most segments."""
    directory, _ = store
    reader = StoreReader(directory)
    try:
        out = 0
        pairs = 0
        for (base, _), path in zip(rotated_bases(directory), list_rotated(directory), strict=True):
            assert bloom_path(base).stat().st_size <= path.stat().st_size // 100 + 64
            for n in range(50):
                plan = TermPlan.make([], "AND", None, [f"absent-{n}-value"])
                assert plan is not None
                out += reader.blooms.rules_out(base, plan.whole_hashes)
                pairs += 1
        assert out >= 0.9 * pairs
    finally:
        reader.close()
