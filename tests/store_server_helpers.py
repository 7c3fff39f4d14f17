"""Driving a real server over the store (issue 5) and checking it against the brute force.

`store_env` starts servers with small segments, so most of a corpus is in the
store and the tail in memory. `check_shape` compares the server's answer
(`JSON QUERY`) over one source with `expected` (tests/store_corpus.py) over
the ids that source holds: for `source=all` every event, for `source=store`
the ids up to the store's high-water id `S` (STATS `StoreIndexed`,
`wait_indexed`), for `source=memory` the ids the memory buffer holds
(`memory_ids`). The rest read the data directory's segments.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from logcaster.segments import read_batches
from logcaster.segments.names import ACTIVE_NAME, list_rotated, parse_segment_name
from logcaster.store.catalog import index_base
from logcaster.store.chunks import CHUNK_BYTES
from logcaster.store.index import load_index
from logcaster.store.segment_bloom import bloom_ok
from logcaster.store.term_views import load_terms
from logcaster.testing import ServerProcess, wait_for
from tests.store_corpus import Known, Shape, expected

EXACT = 1_000_000_000  # a max_count no corpus reaches: FOUND is exact
SMALL_SEGMENTS = "262144"  # persist.max_file_bytes: rotate every 256 KiB
MAX_LIMIT = 10_000  # query.max_limit: rows per answer at most
CAPPED = re.compile(r"FOUND: (\d+)\+ matches \(counting stops at max_count=(\d+)\)")


def ask(server: ServerProcess, shape: Shape, source: str | None, **extra: Any) -> dict[str, Any]:
    """`JSON QUERY` of a shape; `extra` adds or overrides parameters."""
    params = {"limit": shape.limit, "order": shape.order, "max_count": EXACT}
    if source is not None:
        params["source"] = source
    params.update(extra)
    line = " ".join([shape.params, *(f"{k}={v}" for k, v in params.items())])
    reply = server.query(f"JSON QUERY {line}", timeout=30)
    assert reply.startswith("{"), (line, reply)
    doc: dict[str, Any] = json.loads(reply)
    return doc


def check_shape(
    server: ServerProcess,
    shape: Shape,
    source: str | None,
    events: Sequence[Known],
    ids: range,
) -> None:
    """The server's answer to `shape` over `source` equals the brute force over `ids`."""
    doc = ask(server, shape, source)
    count, rows = expected(shape, events, ids)
    got = [int(ev["id"]) for ev in doc["events"]]
    where = f"{shape.name} source={source}"
    assert doc["found"] == count and not doc["capped"], (where, doc["found"], count)
    assert got == rows, (where, got[:10], rows[:10])
    assert [ev["body"] for ev in doc["events"]] == [events[i - 1].text for i in rows], where
    for ev in doc["events"]:  # the parsed attributes are the ones built in
        known = events[int(ev["id"]) - 1]
        assert (ev["level"], ev["service"]) == (known.level, known.service), (where, ev)
        if known.ts is not None:
            assert ev["ts"] == pytest.approx(known.ts, abs=1e-6), (where, ev)


# ---- server helpers -----------------------------------------------------------------


def store_env(**settings: str) -> dict[str, str]:
    """The environment of a server: `section__key="value"` as LOGCASTER_ variables."""
    env = {
        **os.environ,
        "LOGCASTER_PERSIST__MAX_FILE_BYTES": SMALL_SEGMENTS,
        # The partial tail of active.log stays unindexed (memory answers it), so
        # these tests keep a known split between memory and store; the tail
        # indexing itself is tested in test_store_tail.py.
        "LOGCASTER_STORE__INDEX_DELAY_MS": "3600000",
    }
    env.update({f"LOGCASTER_{key.upper()}": value for key, value in settings.items()})
    return env


def segments(data: Path) -> list[Path]:
    """The data directory's segments, oldest first (read-only: the server may run)."""
    return [*list_rotated(data), data / ACTIVE_NAME]


def ids_on_disk(data: Path) -> list[int]:
    """The id of every event in the segments, in file order."""
    out: list[int] = []
    for path in segments(data):
        if path.exists():
            for batch in read_batches(path):
                out.extend(range(batch.first_id, batch.first_id + len(batch.texts)))
    return out


def first_id_of(segment: Path) -> int:
    """A rotated segment's first id, from its name."""
    first = parse_segment_name(segment.name)
    assert first is not None, segment
    return first


def active_first_id(data: Path) -> int | None:
    """The first id in active.log (None while it has no block)."""
    for batch in read_batches(data / ACTIVE_NAME):
        return batch.first_id
    return None


def wait_indexed(
    server: ServerProcess, data: Path, total: int, *, delivered: int | None = None
) -> int:
    """Wait until the server delivered `delivered` events (default `total`, the last id)
    and the store indexed every rotated segment; return its high-water id S.

    With small segments active.log never holds a whole 1 MiB chunk, so S stops
    exactly at the last rotated id (StoreLag: the events of active.log)."""
    want = total if delivered is None else delivered
    wait_for("delivery", server.stats, lambda s: s["Delivered"] >= want, 30)
    # No whole chunk in active.log: else S would move on and memory shrink later.
    assert (data / ACTIVE_NAME).stat().st_size < CHUNK_BYTES

    def target() -> int:
        first = active_first_id(data)
        return total if first is None else first - 1

    stats = wait_for(
        "the indexer",
        server.stats,
        lambda s: s["StoreIndexed"] == target() and s["StoreLag"] == total - target(),
        30,
    )
    return int(stats["StoreIndexed"])


def wait_token_indexed(data: Path) -> int:
    """Wait until every rotated segment's chunks have a token record (store/terms.py)
    and the segment its filter of whole terms (store/segment_bloom.py); return how
    many records there are."""

    def missing() -> tuple[int, int]:
        records = absent = 0
        for path in list_rotated(data):
            first = parse_segment_name(path.name)
            assert first is not None
            base = index_base(data, first)
            chunks = len(load_index(base).chunks)
            have = len(load_terms(base).records)
            records += have
            absent += chunks - have + (not bloom_ok(base))
        return absent, records

    return wait_for("the token index", missing, lambda m: m[0] == 0, 30)[1]


def memory_ids(server: ServerProcess, last_id: int) -> range:
    """The ids the memory buffer holds: the newest COUNT events."""
    count = int(server.stats()["Current"])
    doc = json.loads(server.query(f"JSON QUERY source=memory limit={MAX_LIMIT}"))
    held = range(last_id - count + 1, last_id + 1)
    assert sorted(int(ev["id"]) for ev in doc["events"]) == list(held)[:MAX_LIMIT]
    return held


def errors_logged(server: ServerProcess) -> list[dict[str, Any]]:
    return [log for log in server.logs if log.get("level") == "error"]
