"""Every `bench/` entry point runs on a tiny input, so no benchmark rots unnoticed.

A smoke run checks that the benchmark still imports, starts its server and its
reference (rsyslog, socat, ripgrep: installed by scripts/test-deps), measures and
exits 0. Its figures mean nothing at this size and are not looked at. A new entry
point without a smoke command here fails `test_every_entry_point_has_a_smoke_run`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
LINES = "2000"

# entry point -> its arguments; CORPUS is replaced by a tiny simulator corpus.
SMOKE: dict[str, list[str]] = {
    "corpus": ["--lines", LINES, "--out", "CORPUS"],
    "encode": ["CORPUS", "--lines", LINES, "--runs", "1"],
    "extract": ["--lines", LINES, "--runs", "1", "--parse-events", "200"],
    "parse": ["--corpus", "CORPUS", "--events", "200", "--runs", "1"],
    "scan": ["--corpus", "CORPUS", "--runs", "1"],
    "ingest": ["--lines", LINES, "--runs", "1", "--connections", "1,2"],
    "query": ["--lines", LINES, "--runs", "1", "--rsyslog"],
    "memory": ["--lines", LINES, "--runs", "1", "--set", "queue.max_events=20000"],
    "query_history": ["--sizes", "1000,2000", "--runs", "1", "--corpus", "frequent"],
    "forward": ["--lines", LINES, "--runs", "1"],
    "overload": ["--lines", LINES, "--runs", "1", "--policies", "block,sample"],
    "http": ["--lines", LINES, "--runs", "1", "--clients", "2", "--corpus", "default"],
    "dashboard": ["--lines", LINES, "--runs", "1", "--pages", "1"],
    "irc": ["--lines", LINES, "--runs", "1", "--clients", "2", "--stalled", "1", "--seconds", "1"],
    "scaleout": ["--lines", LINES, "--runs", "1", "--writers", "1", "--nodes", "1"],
    "backup": ["--mb", "2", "--seconds", "0.5", "--rate", "2000"],
    # 1% of the maximum rate: the markers must not go missing on a busy CI machine
    "latency": ["--lines", LINES, "--max-seconds", "0.5", "--fraction", "0.01", "--seconds", "1"],
}
FANOUT = ["--corpus", "default", "--bodies", "ndjson", "--fanout", "--subscribers", "0,2"]
# More smoke runs of an entry point, with other options: run name -> (entry point, arguments).
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "ingest-traces": ("ingest", [*SMOKE["ingest"], "--corpus", "traces"]),
    "ingest-tls": ("ingest", [*SMOKE["ingest"], "--tls", "--no-rsyslog", "--no-reference"]),
    "ingest-encrypt": ("ingest", [*SMOKE["ingest"], "--encrypt", "user_id,email"]),
    "ingest-redact": ("ingest", [*SMOKE["ingest"], "--redact", "--corpus", "secrets"]),
    "http-fanout": ("http", [*SMOKE["http"], *FANOUT]),
    "ingest-file": ("ingest", ["--lines", LINES, "--runs", "1", "--source", "file"]),
    "query-frequent": ("query", [*SMOKE["query"], "--corpus", "frequent"]),
    "extract-frequent": ("extract", [*SMOKE["extract"], "--corpus", "frequent", "--check"]),
    "latency-rates": ("latency", ["--lines", LINES, "--rates", "2k,4k", "--seconds", "0.5"]),
}
RUNS = {name: (name, args) for name, args in SMOKE.items()} | VARIANTS
# Runs whose table is checked too: run name -> a heading its stdout must show.
TABLES = {
    "http": "LogCaster HTTP ingest against TCP lines",
    "dashboard": "dashboards open on the live tail against none",
    "irc": "LogCaster ingest at full speed with IRC on",
    "scaleout": "LogCaster scale-out: lines/s into PostgreSQL",
    "ingest-tls": "TLS/plain",
    "ingest-redact": "redaction on / plain",
    "query": "LogCaster until indexed / rsyslog",
    "query-frequent": "trace_id lookup",
    "query_history": "median ms (ratio to rg) by events in the history",
    "latency": "latency (ms) from send to the first answer holding the marker",
    "memory": "settings: queue.max_events=20000",
}


def _entry_points() -> list[str]:
    """Executable files directly in bench/ that are not helpers (`_x.py`) or modules."""
    return sorted(
        p.name
        for p in BENCH.iterdir()
        if p.is_file() and os.access(p, os.X_OK) and not p.name.startswith("_") and not p.suffix
    )


def test_every_entry_point_has_a_smoke_run() -> None:
    assert _entry_points() == sorted(SMOKE)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("bench") / "corpus.log"
    subprocess.run(
        [sys.executable, str(BENCH / "corpus"), "--lines", LINES, "--out", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield path


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(RUNS))
def test_bench_runs(name: str, corpus: Path, tmp_path: Path) -> None:
    entry, args = RUNS[name]
    args = [str(corpus) if a == "CORPUS" else a for a in args]
    if entry == "corpus":
        args = [str(tmp_path / "out.log") if a == str(corpus) else a for a in args]
    done = subprocess.run(
        [sys.executable, str(BENCH / entry), *args],
        capture_output=True,
        timeout=500,
        cwd=BENCH.parent,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, f"bench/{entry} exited {done.returncode}:\n{out[-4000:]}"
    if name in TABLES:
        assert TABLES[name] in done.stdout.decode(errors="replace"), out[-4000:]


@pytest.mark.timeout(120)
def test_latency_reports_a_lost_marker() -> None:
    """A marker that never arrives (every 4th is recorded but not sent) is counted as
    missing in every source, named, and fails the run: never dropped silently."""
    args = ["--lines", LINES, "--rate", "2000", "--seconds", "1", "--lose-marker", "4"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "latency"), *args, "--marker-timeout", "3"],
        capture_output=True,
        timeout=100,
        cwd=BENCH.parent,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 1, out + done.stderr.decode(errors="replace")[-2000:]
    assert "5 MISSING" in out  # 20 markers, every 4th lost: in source=all and source=store
    assert out.count("m000004") == 2 and out.count("m000020") == 2, out
    assert "m000003" not in out, out
