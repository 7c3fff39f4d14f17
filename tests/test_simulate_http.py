"""`logcaster simulate --output http://…`: batches POSTed to real servers' /api/v1/logs.

Each body kind arriving whole, acknowledged delivery, retries on 503 (a `reject`
queue behind a stopped forward receiver) and on a server that starts after the
simulator, and refusals and unreachable targets counted as unsent.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import orjson
import pytest

from logcaster.testing import free_port, wait_for
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group, stored_lines, write_config
from tests.test_simulate import run_sim, simulate_cmd, summary


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_batches_arrive_whole_and_parse(server_factory: ServerFactory, fmt: str) -> None:
    """json (the default here) posts NDJSON; text posts text/plain, grouped like TCP."""
    server = server_factory("--buffer-size", "100000")
    url = f"http://127.0.0.1:{server.ports['http']}"  # no path: /api/v1/logs
    fmt_args = ["--format", "text"] if fmt == "text" else []
    result = run_sim(
        "--count", "5000", "--seed", "7", "--interval", "0", *fmt_args, "--output", url
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = summary(result.stderr)
    assert stats["sent"] == "5000" and stats["unsent"] == "0"
    assert server.wait_total(5000)["Total"] == 5000  # one event per simulated event
    for level, key in (("ERROR", "errors"), ("WARN", "warns")):
        found = server.query(f"QUERY level={level} limit=1 max_count=100000")
        assert found.startswith(f"FOUND: {stats[key]} "), found
    doc = orjson.loads(server.query("JSON QUERY level=ERROR service=payment-api limit=1"))
    event = doc["events"][0]
    trace = event["fields"]["stack_trace"] if fmt == "json" else event["body"]
    assert "\n" in trace and ("at " in trace or "Traceback" in trace)


def test_ack_answers_once_the_events_are_stored(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """With ?ack=1 a 200 means durable: a server killed (SIGKILL) right after the
    simulator ends holds every event it counted as sent."""
    data = tmp_path / "data"
    env = {**os.environ, "LOGCASTER_PERSIST__FSYNC": "always"}
    server = server_factory("--persist", str(data), env=env)
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/logs?ack=1"
    result = run_sim("--count", "3000", "--seed", "2", "--interval", "0", "--output", url)
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr)["sent"] == "3000"
    server.kill()
    lines = stored_lines(data)
    assert len(lines) == 3000  # json: one line per event
    assert len({orjson.loads(line)["request_id"] for line in lines if b"request_id" in line}) > 1


def test_reject_policy_503s_are_retried_until_taken(
    server_factory: ServerFactory, receiver: HttpReceiver, tmp_path: Path
) -> None:
    """A forward receiver that is down fills the group's buffer, then the queue, and
    `reject` answers 503 with Retry-After; once the receiver is back every batch the
    simulator retried is taken: nothing unsent, nothing twice."""
    receiver.stop()
    config = write_config(
        tmp_path,
        queue={"policy": "reject", "max_events": 2000},
        forward=[group("down", [receiver.url], batch_events=500, buffer_events=1000)],
    )
    server = server_factory("--config", config, "--buffer-size", "100000")
    url = f"http://127.0.0.1:{server.ports['http']}"
    proc = subprocess.Popen(
        simulate_cmd("--count", "8000", "--seed", "4", "--interval", "0", "--output", url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("a refused batch", server.stats, lambda s: s["Dropped"] > 0)
        receiver.start()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "answered 503" in stderr and "Traceback" not in stderr
    stats = summary(stderr)
    assert stats["sent"] == "8000" and stats["unsent"] == "0"
    final = wait_for(
        "every event forwarded", server.stats, lambda s: s["Delivered"] >= 8000, timeout=30
    )
    assert final["Delivered"] == 8000 and final["DroppedRejected"] > 0
    wait_for("the receiver holds them", lambda: len(receiver.events), lambda n: n >= 8000)
    assert len(receiver.events) == 8000


def test_a_server_that_starts_later_gets_the_retried_batches(
    server_factory: ServerFactory,
) -> None:
    port = free_port()  # nothing listens yet
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        simulate_cmd("--rate", "500", "--count", "1500", "--seed", "6", "--output", url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stderr or ()), daemon=True)
    reader.start()
    try:
        # The server starts once the simulator has been refused (started together,
        # the server was sometimes up before the simulator's first try).
        wait_for("a refused batch", lambda: "".join(said), lambda s: "unreachable" in s, 30)
        server = server_factory("--http-port", str(port), "--buffer-size", "100000")
        proc.wait(timeout=60)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    stderr = "".join(said)
    assert "unreachable (Connection refused)" in stderr, stderr
    assert f"connected to {url}" in stderr
    stats = summary(stderr)
    sent, unsent = int(stats["sent"]), int(stats["unsent"])
    assert sent + unsent == 1500 and sent > 0
    assert proc.returncode == (1 if unsent else 0)
    # Batches retried after connection refusals arrive once each.
    assert server.wait_total(sent)["Total"] == sent
    assert server.stats()["Total"] == sent


@pytest.mark.parametrize("case", ["nobody listens", "https to plain http", "413 refused"])
def test_what_cannot_be_sent_is_counted_and_exits_1(
    server_factory: ServerFactory, case: str
) -> None:
    env = {**os.environ, "LOGCASTER_HTTP__MAX_BODY_BYTES": "1024"}
    server = server_factory(env=env)
    port = server.ports["http"]
    if case == "nobody listens":
        url, message = f"http://127.0.0.1:{free_port()}", "unreachable (Connection refused)"
    elif case == "https to plain http":
        url, message = f"https://127.0.0.1:{port}", "SSL"
    else:
        url, message = f"http://127.0.0.1:{port}", "HTTP 413 (body of"
    result = run_sim("--rate", "2000", "--duration", "1", "--output", url, timeout=60)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    stats = summary(result.stderr)
    sent, unsent = int(stats["sent"]), int(stats["unsent"])
    assert sent + unsent == int(stats["events"]) > 1000
    if case == "413 refused":
        # A batch of an event or two fits in 1 KiB; the others are refused, not retried.
        assert unsent > 0 and server.stats()["Total"] == sent
    else:
        assert sent == 0
