"""`logcaster simulate` (SPEC §13): determinism, level mix, trace coverage through
LogCaster's own framer and parser, payment flows, rate pacing, and real runs into
real servers over TCP and syslog, including a server that dies mid-run.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from logcaster.event import Event
from logcaster.options import MultilineConfig
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.framing import LineFramer
from logcaster.simulate.catalog import SCENARIOS, SERVICE_BY_NAME
from logcaster.simulate.flows import SLOW_MS, STEPS
from logcaster.simulate.formats import Stamps, json_batch, syslog_message, text_batch
from logcaster.simulate.generator import Generator, SimEvent, level_weights
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory

ROOT = Path(__file__).resolve().parent.parent


def simulate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "logcaster", "simulate", *args]


def run_sim(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        simulate_cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def summary(stderr: str) -> dict[str, str]:
    """The key=value pairs of the simulator's last stderr line."""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("simulate: "), stderr
    return dict(p.split("=", 1) for p in last.split() if "=" in p)


def frame(data: bytes) -> list[bytes]:
    """Cut a byte stream into event texts exactly as a TCP connection would."""
    framer = LineFramer(64 * 1024, MultilineConfig())
    return framer.feed(data) + framer.close()


def parse(text: bytes) -> Event:
    return parse_event(1, time.time(), "test", text)


def events(n: int, seed: int = 1, error_rate: float = 0.3) -> list[SimEvent]:
    return Generator(seed, error_rate).take(n)


# --- determinism ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, fmt: str) -> None:
    outputs = []
    for name, seed in (("a", "11"), ("b", "11"), ("c", "12")):
        path = tmp_path / f"{name}.log"
        result = run_sim(
            "--seed", seed, "--interval", "0", "--count", "3000", "--format", fmt,
            "--output", str(path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert summary(result.stderr)["events"] == "3000"
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]
    assert len(outputs[0]) > 100_000


def test_the_stream_does_not_depend_on_batch_sizes() -> None:
    whole = Generator(5).take(3000)
    pieces: list[SimEvent] = []
    gen = Generator(5)
    for size in (1, 7, 1000, 1, 1991):
        pieces += gen.take(size)
    stamps_a, stamps_b = Stamps(), Stamps()
    assert text_batch(whole, stamps_a) == text_batch(pieces, stamps_b)


# --- level mix -----------------------------------------------------------------------


@pytest.mark.parametrize("error_rate", [0.3, 0.1])
def test_level_mix_over_ten_thousand_events(error_rate: float) -> None:
    counts = collections.Counter(ev.level for ev in events(10_000, seed=3, error_rate=error_rate))
    info, warn, error = level_weights(error_rate)
    if error_rate == 0.3:
        assert (info, warn, error) == pytest.approx((0.55, 0.15, 0.30))
    assert counts["INFO"] / 10_000 == pytest.approx(info, abs=0.02)
    assert counts["WARN"] / 10_000 == pytest.approx(warn, abs=0.02)
    assert counts["ERROR"] / 10_000 == pytest.approx(error, abs=0.02)
    assert set(counts) == {"INFO", "WARN", "ERROR"}


def test_error_rate_one_gives_only_traces_and_zero_none() -> None:
    assert {ev.level for ev in events(500, error_rate=1.0)} == {"ERROR"}
    assert "ERROR" not in {ev.level for ev in events(500, error_rate=0.0)}


# --- coverage: every scenario and style parses back into one event each -------------


def test_every_scenario_and_style_parses_back_into_one_event_each() -> None:
    evs = events(2500, seed=7)
    data = text_batch(evs, Stamps())
    texts = frame(data)
    assert len(texts) == len(evs)  # every trace became exactly one event
    seen: set[tuple[str, bool]] = set()
    for ev, text in zip(evs, texts, strict=True):
        got = parse(text)
        assert got.level == ev.level
        assert got.service == ev.service.name
        assert got.version == ev.service.version
        assert got.pod == ev.pod
        # A single line's message carries its key=value tail; a trace's is its second line.
        assert got.message == ev.message if ev.trace else got.message.startswith(ev.message)
        assert got.fields["request_id"] == ev.request_id
        assert got.fields["user_id"] == ev.user_id
        assert got.fields["correlation_id"] == ev.correlation_id
        if ev.trace is None:
            continue
        assert 15 <= ev.lines <= 30
        assert text.count(b"\n") + 1 == ev.lines
        seen.add((ev.trace.scenario.key, ev.trace.java))
        if ev.trace.java:
            assert text.startswith(b"[ERROR] ") and text.split(b"\n", 1)[0].endswith(b": ")
            assert got.fields["thread"].startswith("http-nio-8080-exec-")
            assert got.fields["method"] in ("GET", "POST", "PUT")
            assert got.fields["route"].startswith(f"/api/v1/{ev.service.resource}/")
            assert b"\n    at " in text and b"Details: " in text and b"Recovery Action: " in text
        else:
            assert text.startswith(b"ERROR: ") and text.split(b"\n", 1)[0].endswith(b" ")
            assert b"\nTraceback (most recent call last):\n  File " in text
    assert seen == {(s.key, java) for s in SCENARIOS for java in (True, False)}


def test_json_events_parse_with_ids_and_stack_trace() -> None:
    evs = events(400, seed=2)
    lines = json_batch(evs, Stamps()).splitlines()
    assert len(lines) == len(evs)
    for ev, line in zip(evs, lines, strict=True):
        got = parse(line)
        assert (got.level, got.service, got.pod, got.message) == (
            ev.level, ev.service.name, ev.pod, ev.message,
        )  # fmt: skip
        assert got.version == ev.service.version
        assert got.ts == pytest.approx(ev.ts_ms / 1000)
        assert got.fields["request_id"] == ev.request_id
        assert got.fields["correlation_id"] == ev.correlation_id
        if ev.trace is not None:
            assert got.fields["scenario"] == ev.trace.scenario.key
            assert ev.trace.exception in got.fields["stack_trace"]
            if ev.trace.java:
                assert got.fields["route"].startswith("/api/v1/")


def test_syslog_messages_parse_with_level_service_pod_and_ids() -> None:
    evs = events(300, seed=4)
    stamps = Stamps()
    for ev in evs:
        got = parse(syslog_message(ev, stamps, "text"))
        assert (got.level, got.service, got.host) == (ev.level, ev.service.name, ev.pod)
        assert got.message.startswith(ev.message)
        assert got.fields["request_id"] == ev.request_id
        assert got.fields["correlation_id"] == ev.correlation_id
        # The syslog header replaces the trace's header line; the message opens MSG.
        assert got.body.count("\n") + 1 == (ev.lines - 1 if ev.trace else 1)


# --- payment flows (seed 004) --------------------------------------------------------


def test_payment_flows_share_ids_change_service_and_some_are_slow_or_fail() -> None:
    evs = events(6000, seed=9)
    flows: dict[str, list[SimEvent]] = collections.defaultdict(list)
    for ev in evs:
        pairs = dict(ev.pairs)
        if "flow_id" in pairs:
            flows[ev.correlation_id].append(ev)
    # A failed step is a stack trace (no pairs); it belongs to its flow by correlation id.
    failed = {
        ev.correlation_id for ev in evs if ev.trace is not None and ev.correlation_id in flows
    }
    assert len(flows) > 100
    step_services = [step.service.name for step in STEPS]
    assert step_services == ["user-profile-api", "payment-api", "order-service"]
    slow = 0
    for cid, steps in flows.items():
        all_steps = [ev for ev in evs if ev.correlation_id == cid]
        assert len({ev.request_id for ev in all_steps}) == 1
        assert len({ev.user_id for ev in all_steps}) == 1
        services = [ev.service.name for ev in all_steps]
        assert services == step_services[: len(services)]  # the service changes per step
        if any(int(dict(ev.pairs)["duration_ms"]) > SLOW_MS for ev in steps):
            slow += 1
            assert any(ev.level == "WARN" for ev in steps)
    complete = [cid for cid, steps in flows.items() if len(steps) == 3]
    assert slow > 10 and len(failed) > 10 and len(complete) > 10
    assert SERVICE_BY_NAME["payment-api"].style == "java"


# --- pacing --------------------------------------------------------------------------


class LineSink:
    """A TCP server that counts the lines it receives and when they arrive."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.lines = 0
        self.first = self.last = 0.0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                now = time.monotonic()
                if not self.lines:
                    self.first = now
                self.lines += chunk.count(b"\n")
                self.last = now

    def close(self) -> None:
        self._thread.join(10)
        self.sock.close()


@pytest.fixture
def line_sink() -> Iterator[LineSink]:
    sink = LineSink()
    yield sink
    sink.close()


def test_rate_holds_twenty_thousand_events_per_second(line_sink: LineSink) -> None:
    result = run_sim(
        "--rate", "20000", "--duration", "3", "--seed", "1", "--format", "json",
        "--output", f"tcp://127.0.0.1:{line_sink.port}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line_sink.close()
    stats = summary(result.stderr)
    assert int(stats["events"]) == line_sink.lines  # json: one line per event
    assert line_sink.lines == pytest.approx(60_000, rel=0.10)
    measured = (line_sink.lines - 1) / (line_sink.last - line_sink.first)
    assert measured == pytest.approx(20_000, rel=0.10)


# --- into a running server -----------------------------------------------------------


def test_end_to_end_counts_agree(server_factory: ServerFactory) -> None:
    server = server_factory("--buffer-size", "100000")
    result = run_sim(
        "--count", "2000", "--seed", "7", "--interval", "0",
        "--output", f"tcp://127.0.0.1:{server.ingest_port}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = summary(result.stderr)
    assert stats["events"] == "2000" and stats["unsent"] == "0"
    assert server.wait_total(2000)["Total"] == 2000
    assert server.query("QUERY level=ERROR limit=1 max_count=100000").startswith(
        f"FOUND: {stats['errors']} "
    )
    assert server.query("QUERY level=WARN limit=1 max_count=100000").startswith(
        f"FOUND: {stats['warns']} "
    )


@pytest.mark.parametrize(
    ("scheme", "pace"),
    [("syslog", ("--rate", "2000")), ("syslog+tcp", ("--interval", "0"))],
)
def test_syslog_output_udp_and_tcp(
    server_factory: ServerFactory, scheme: str, pace: tuple[str, str]
) -> None:
    server = server_factory("--syslog-port", "0", "--buffer-size", "100000")
    result = run_sim(
        "--count", "1000", "--seed", "5", *pace,
        "--output", f"{scheme}://127.0.0.1:{server.ports['syslog']}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = summary(result.stderr)
    assert stats["sent"] == "1000"
    assert server.wait_total(1000)["Total"] == 1000  # UDP on loopback at 2000/s: none lost
    assert server.query("QUERY level=ERROR limit=1 max_count=100000").startswith(
        f"FOUND: {stats['errors']} "
    )
    found = orjson.loads(server.query("JSON QUERY level=ERROR service=payment-api limit=1"))
    event = found["events"][0]
    assert event["fields"]["request_id"].startswith("req-")
    assert "\n    at " in event["body"] or "Traceback" in event["body"]


def test_server_dies_mid_run_simulator_reconnects_and_reports(
    server_factory: ServerFactory,
) -> None:
    first = server_factory()
    port = first.ingest_port
    proc = subprocess.Popen(
        simulate_cmd("--rate", "2000", "--seed", "3", "--output", f"tcp://127.0.0.1:{port}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("events at the first server", lambda: first.stats()["Total"], lambda t: t > 500)
        first.kill()
        second: ServerProcess = server_factory("--port", str(port))
        wait_for("events at the second server", lambda: second.stats()["Total"], lambda t: t > 500)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"tcp://127.0.0.1:{port} unreachable" in stderr
    assert f"reconnected to tcp://127.0.0.1:{port}" in stderr
    assert stderr.strip().splitlines()[-1].startswith("simulate: interrupted")
    stats = summary(stderr)
    assert int(stats["unsent"]) > 0 and int(stats["reconnects"]) >= 1
    assert int(stats["sent"]) + int(stats["unsent"]) == int(stats["events"])


@pytest.mark.parametrize("query", ["", "?ack=1"])
def test_no_server_exits_1_with_the_summary(query: str) -> None:
    """Issue 14, item 15: undelivered events are a failure, reported and bounded in time
    (a run with --count gives up at its end; with acks it no longer waits for room)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    target = f"tcp://127.0.0.1:{port}{query}"
    result = run_sim("--count", "3", "--interval", "0", "--output", target, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Connection refused" in result.stderr
    stats = summary(result.stderr)
    assert stats["sent"] == "0" and stats["unsent"] == "3"
    # Enough lines to fill the ack client's buffer many times over: still ends.
    many = run_sim("--count", "100000", "--interval", "0", "--output", target, timeout=60)
    assert many.returncode == 1 and summary(many.stderr)["unsent"] == "100000", many.stderr


# --- options, progress, corpus -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--error-rate", "1.5"), "--error-rate must be between 0 and 1"),
        (("--rate", "0"), "--rate must be > 0"),
        (("--count", "0"), "--count must be >= 1"),
        (("--output", "http://127.0.0.1:99999"), "Port out of range"),
        (("--output", "http:///api/v1/logs"), "expected http://HOST[:PORT][/PATH]"),
        (("--output", "http://127.0.0.1:8080?ack=maybe"), "ack must be 0 or 1"),
        (("--output", "tcp://127.0.0.1"), "expected tcp://HOST:PORT"),
        (("--format", "xml"), "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    result = run_sim(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    out = str(tmp_path / "out.log")
    shown = run_sim("--interval", "0", "--count", "20000", "--output", out, "--progress")
    assert "20000/20000" in shown.stderr
    quiet = run_sim("--interval", "0", "--count", "20000", "--output", out)
    assert quiet.returncode == 0 and len(quiet.stderr.strip().splitlines()) == 1
    # stdout is the data: no progress on a non-terminal stderr, even when asked.
    piped = run_sim("--interval", "0", "--count", "100", "--seed", "1", "--progress")
    assert len(piped.stderr.strip().splitlines()) == 1
    assert piped.stdout.startswith("[")


def test_bench_corpus_writes_exactly_n_lines_at_an_event_boundary(tmp_path: Path) -> None:
    out = tmp_path / "sim.log"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "corpus"), "--lines", "5k", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.count(b"\n") == 5000 and data.endswith(b"\n")
    texts = frame(data)
    assert f"events={len(texts)}" in result.stdout
