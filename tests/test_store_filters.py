"""Structured counts from chunk summaries equal a row-by-row count (issue 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logcaster.store.filters import RowFilter
from logcaster.store.index import ChunkRows, IndexWriter, load_index


def build(path: Path, seed: int, chunks: int = 12, n: int = 300) -> None:
    rng = np.random.default_rng(seed)
    first_id, byte = 1, 0
    with IndexWriter(path, fsync=False) as writer:
        for c in range(chunks):
            own = rng.random(n) < 0.9
            base = 1_000.0 + c * 100.0
            ts = np.where(own, base + np.sort(rng.random(n)) * 100.0, 5_000.0 + c)
            services = rng.integers(0, 3 if c % 2 else 25, n)  # some chunks overflow the slots
            writer.append(
                ChunkRows(
                    first_id,
                    byte,
                    byte + n,
                    ts,
                    np.arange(byte, byte + n, dtype=np.uint32),
                    services.astype(np.uint16),
                    rng.choice([0, 3, 4, 5], n, p=[0.1, 0.5, 0.2, 0.2]).astype(np.uint8),
                    own,
                )
            )
            first_id += n
            byte += n


def brute(index_cols: np.ndarray, f: RowFilter) -> int:
    return int(np.count_nonzero(f.rows_mask(index_cols)))


filters = st.builds(
    RowFilter,
    levels=st.none() | st.frozensets(st.sampled_from([0, 3, 4, 5, 6]), min_size=1),
    services=st.none() | st.frozensets(st.integers(0, 26), min_size=1, max_size=3),
    time_from=st.none() | st.floats(900, 6_000),
    time_to=st.none() | st.floats(900, 6_000),
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "seg.log"
    build(path, seed=5)
    return path


@settings(max_examples=200, deadline=None)
@given(f=filters)
def test_summary_counts_equal_row_counts(built: Path, f: RowFilter) -> None:
    index = load_index(built)
    assert f.count(index) == brute(index.cols, f)


@settings(max_examples=200, deadline=None)
@given(f=filters)
def test_vectorized_chunk_counts_equal_per_chunk(built: Path, f: RowFilter) -> None:
    index = load_index(built)
    one_by_one = [-1 if (n := f.chunk_count(c)) is None else n for c in index.chunks]
    assert f.chunk_counts(index.chunks).tolist() == one_by_one


def test_summaries_decide_most_chunks(built: Path) -> None:
    index = load_index(built)
    # A window inside chunks 3..6: two edge chunks need rows, the rest do not.
    f = RowFilter(levels=frozenset({5}), time_from=1_350.0, time_to=1_650.0)
    undecided = sum(1 for c in index.chunks if f.chunk_count(c) is None)
    assert undecided == 2  # the chunks at the window's edges
    assert f.count(index) == brute(index.cols, f)
    # Level only: every chunk from its counts.
    assert all(RowFilter(levels=frozenset({4})).chunk_count(c) is not None for c in index.chunks)
