"""The C collector of Hyperscan reports (store/hs_reports.py, `_hsreports.c`) gives
what python-hyperscan's callbacks give, and the store's answers do not depend on
which of the two collected them."""

from __future__ import annotations

import os
import random
from pathlib import Path

import hyperscan
import numpy as np
import pytest

from logcaster.store import hs_reports
from logcaster.store.patterns import escape_text
from logcaster.store.scan import Scanner
from logcaster.testing import start_server, wait_for
from tests.conftest import need_extension
from tests.store_build import batches_of, build_store
from tests.test_store_bulk import REGEXES, chunk_lines
from tests.test_store_received_first import search


def callback_reports(exprs: list[bytes], data: bytes, lo: int, hi: int) -> list[int]:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=exprs,
        ids=list(range(len(exprs))),
        flags=[hyperscan.HS_FLAG_MULTILINE] * len(exprs),
    )
    out: list[int] = []
    many = len(exprs) > 1

    def on_match(i: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
        out.append((i << 40 | to + lo) if many else to + lo)

    db.scan(data[lo:hi], match_event_handler=on_match)
    return out


EXPRESSIONS = [
    [b"timeout"],
    [b"timeout", b"refused", b"user-7"],
    [b"^GET /api"],
    [b"took [0-9]{4,}ms$"],
    [b"(GET|POST) /api/v1/orders/[0-9]+ [245][0-9]{2} "],
    [b"\\\\n caused"],
]


@pytest.mark.parametrize("exprs", EXPRESSIONS, ids=range(len(EXPRESSIONS)))
def test_reports_equal_the_callbacks(exprs: list[bytes]) -> None:
    need_extension()
    rnd = random.Random(11)
    data = b"\n".join(escape_text(x) for x in chunk_lines(rnd, 5_000)) + b"\n"
    reports = hs_reports.compile_reports(exprs)
    assert reports is not None
    cuts = [(0, len(data)), (0, 0), (len(data), len(data))]
    for _ in range(30):
        a, b = sorted(rnd.sample(range(len(data) + 1), 2))
        cuts.append((a, b))
    for lo, hi in cuts:
        got = np.frombuffer(reports.scan(data, lo, hi), np.int64).tolist()
        assert got == callback_reports(exprs, data, lo, hi), (exprs, lo, hi)
    # A buffer without the bytes API (an mmap is one), and bad ranges.
    view = memoryview(bytearray(data))
    assert reports.scan(view, 0, len(data)) == reports.scan(data, 0, len(data))
    for lo, hi in [(-1, 5), (10, 5), (0, len(data) + 1)]:
        with pytest.raises(ValueError):
            reports.scan(data, lo, hi)


def test_what_libhs_refuses_is_left_to_the_callbacks() -> None:
    need_extension()
    assert hs_reports.compile_reports([b"(unclosed"]) is None
    assert Scanner(["timeout"]).reports.get() is not None


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rnd = random.Random(5)
    directory = tmp_path_factory.mktemp("hsreports")
    build_store(
        directory,
        batches_of(chunk_lines(rnd, 40_000), 1768867200.0, 1 / 1000),
        max_bytes=512 * 1024,
        chunk_bytes=32 * 1024,
    )
    return directory


def answers(directory: Path) -> list[tuple[int, list[int]]]:
    out = []
    for params in [f"regex='{rx}'" for rx in REGEXES] + ["keyword=timeout", "keyword=took"]:
        result = search(directory, params, 20, 10**9)
        out.append((result.count, [e.id for e in result.rows]))
    return out


@pytest.mark.usefixtures("collector")
def test_the_store_answers_the_same_either_way(store: Path) -> None:
    need_extension()  # else both sides would be the callbacks
    got = answers(store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hs_reports, "ENABLED", not hs_reports.ENABLED)
        other = answers(store)
    assert got == other
    assert all(count > 0 for count, _ in got)


def test_ranges_are_scanned_each_alone() -> None:
    need_extension()
    data = b"xx timeout yy\ntime\nout timeout\n"
    reports = hs_reports.compile_reports([b"timeout"])
    assert reports is not None
    # "time" + "out" of two ranges side by side is no match: each range is its own scan.
    ranges = np.array([0, 14, 14, 19, 19, 31], np.int64)
    got = np.frombuffer(reports.scan_ranges(data, ranges.tobytes()), np.int64).tolist()
    assert got == [10, 30]
    with pytest.raises(ValueError):
        reports.scan_ranges(data, np.array([0, 99], np.int64).tobytes())
    with pytest.raises(ValueError):
        reports.scan_ranges(data, b"odd")


@pytest.mark.parametrize("wanted", ["true", "false"])
def test_store_c_collector_is_an_option(tmp_path: Path, wanted: str) -> None:
    """store.c_collector: false (here through the environment) counts through the
    callbacks, says so at start, and answers the same."""
    env = {**os.environ, "LOGCASTER_STORE__C_COLLECTOR": wanted}
    server = start_server("-P", str(tmp_path / "data"), env=env)
    try:
        server.send(b"".join(b"line %d timeout\n" % i for i in range(50)))
        server.wait_total(50)
        # The partial chunk is indexed within store.index_delay_ms (1 s).
        wait_for("the indexer", server.stats, lambda s: s["StoreIndexed"] >= 50)
        assert server.query("QUERY keyword=timeout source=store").startswith("FOUND: 50 ")
        log = b"".join(server.raw_stderr).decode()
        said = "store_scans_without_c_collector" in log
        assert said == (wanted == "false" or not hs_reports.built())
        assert "unknown_env_variable" not in log
    finally:
        server.kill()
