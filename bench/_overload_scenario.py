"""The overload benchmark's scenario: what one run is made of (bench/overload).

The settings every run shares (the queue policies, 2 connections, 1 ERROR line
in 10, the queue and forward group sizes), the corpus of numbered lines, the
slow HTTP NDJSON receiver (bench/_slow_sink.py in its own process, and how to
read its counts) and the `logcaster serve` that forwards to it. Measuring a run
is bench/_overload_run.py's job.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import BENCH_DIR, CHILDREN, BenchError

if TYPE_CHECKING:
    from logcaster.testing import ServerProcess

POLICIES = ("block", "drop_newest", "drop_oldest", "reject", "sample")
CONNECTIONS = 2
ERROR_EVERY = 10  # 1 line in 10 is an ERROR line
QUEUE_EVENTS = 20_000
BATCH_EVENTS = 500
MAX_IN_FLIGHT = 1
BUFFER_EVENTS = 5_000
SINK_READY_S = 20.0


# --------------------------------------------------------------------------- the corpus


@dataclass
class Corpus:
    parts: list[bytes]  # one per connection
    lines: int
    errors: int  # ERROR lines among them

    def per_connection(self, c: int) -> int:
        return self.lines // CONNECTIONS + (1 if c < self.lines % CONNECTIONS else 0)


def make_corpus(lines: int) -> Corpus:
    """`2026-11-28T10:00:00Z LEVEL svc msg c=C i=I`: the parser takes the level after the
    timestamp; `c` (connection) and `i` (index on it) say which lines reached the sink."""
    parts: list[bytes] = []
    errors = 0
    for c in range(CONNECTIONS):
        n = lines // CONNECTIONS + (1 if c < lines % CONNECTIONS else 0)
        out = []
        for i in range(n):
            level = "ERROR" if i % ERROR_EVERY == 0 else "INFO"
            out.append(f"2026-11-28T10:00:00Z {level} svc msg c={c} i={i}\n")
        errors += (n + ERROR_EVERY - 1) // ERROR_EVERY
        parts.append("".join(out).encode())
    return Corpus(parts, lines, errors)


# --------------------------------------------------------------------------- the slow sink


class SlowSink:
    """bench/_slow_sink.py in its own process."""

    def __init__(self, delay_ms: float) -> None:
        cmd = [sys.executable, str(BENCH_DIR / "_slow_sink.py"), "--delay-ms", str(delay_ms)]
        self.proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SINK_READY_S)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.close()
            raise BenchError("the slow sink did not start")
        self.port = int(json.loads(line)["port"])
        self.url = f"http://127.0.0.1:{self.port}/ingest"

    def _get(self, path: str) -> Any:
        if self.proc.poll() is not None:
            raise BenchError(f"the slow sink exited with status {self.proc.returncode}")
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self._get("/stats")
        return doc

    def seen(self) -> list[tuple[int, int]]:
        return [(int(c), int(i)) for c, i in self._get("/seen")]

    def close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        CHILDREN.kill(self.proc)


# --------------------------------------------------------------------------- the server


def server_config(policy: str, sink_url: str) -> dict[str, Any]:
    return {
        "queue": {"max_events": QUEUE_EVENTS, "policy": policy},
        "forward": [
            {
                "name": "slow",
                "primaries": [{"url": sink_url}],
                "batch_events": BATCH_EVENTS,
                "max_in_flight": MAX_IN_FLIGHT,
                "buffer_events": BUFFER_EVENTS,
            }
        ],
    }


def start_server(config_path: Path) -> ServerProcess:
    from logcaster.testing import ServerProcess

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    args = ["--config", str(config_path), "--port", "0", "--query-port", "0", "--http-port", "0"]
    server = ServerProcess([*args, "--log-level", "warning"], env=env)
    try:
        server.wait_ready(20.0)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    return server
