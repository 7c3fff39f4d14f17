"""One run of bench/latency: a paced load, markers on connections of their own, and
the polls that find them (the method is written down in bench/latency_bench.py).

Three threads work against one fresh server: `Load` sends corpus lines over one
TCP connection, `Markers` sends a marker line now and then over a new
connection each, and the calling thread polls the query port for the markers
not found yet (`poll_markers`), one query per source and poll.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import BenchError
from _query_port import parse_stats, query

MAX_RATE_CHUNK_LINES = 8192  # lines per send when sending as fast as possible
MAX_ROWS = 10_000  # QUERY's highest limit: markers a poll can return
QUERY_TIMEOUT_S = 30.0
STATS_EVERY_S = 0.1
FOUND = re.compile(r"FOUND: (\d+)\+? matches")
CLK_TCK = float(os.sysconf("SC_CLK_TCK"))


def line_ends(data: bytes) -> array[int]:
    """Offset just past each newline of `data` (which ends with one)."""
    return array("q", (m.end() for m in re.finditer(b"\n", data)))


class Load:
    """Corpus lines over one TCP connection: `rate` lines per second, sent every
    `batch_s` as many as the clock asks for since the start (a late batch catches
    up), or as fast as the server reads (`rate` None). The corpus is sent round
    and round; it starts and ends at an event boundary, so wrapping splits none."""

    def __init__(
        self, port: int, data: bytes, ends: array[int], rate: float | None, batch_s: float
    ) -> None:
        self.port, self.data, self.ends = port, memoryview(data), ends
        self.rate, self.batch_s = rate, batch_s
        self.stop = threading.Event()
        self.lines = 0  # sent so far
        self.t0 = 0.0  # perf_counter at the first send
        self.t_end = 0.0  # when the last line was sent
        self.error: BaseException | None = None
        self._cursor = 0  # next line of the corpus
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(60)
        if self.error is not None:
            raise BenchError(f"sending the load failed: {self.error!r}")

    def sent_rate(self, since: tuple[float, int] | None = None) -> float:
        """Lines per second sent, overall or since a (perf_counter, lines) mark."""
        t, n = since if since is not None else (self.t0, 0)
        end = self.t_end if self.stop.is_set() else time.perf_counter()
        return (self.lines - n) / (end - t) if end > t else 0.0

    def _send(self, sock: socket.socket, n: int) -> None:
        ends, total = self.ends, len(self.ends)
        while n:
            i = self._cursor
            take = min(n, total - i)
            start = ends[i - 1] if i else 0
            sock.sendall(self.data[start : ends[i + take - 1]])
            self._cursor = (i + take) % total
            self.lines += take
            n -= take

    def _run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port)) as sock:
                self.t0 = tick = time.perf_counter()
                while not self.stop.is_set():
                    if self.rate is None:
                        self._send(sock, MAX_RATE_CHUNK_LINES)
                        continue
                    due = int(self.rate * (time.perf_counter() - self.t0))
                    if due > self.lines:
                        self._send(sock, due - self.lines)
                    tick += self.batch_s
                    time.sleep(max(0.0, tick - time.perf_counter()))
                self.t_end = time.perf_counter()
                sock.shutdown(socket.SHUT_WR)  # the server releases the last held event
        except BaseException as exc:
            self.error = exc
            self.t_end = time.perf_counter()


@dataclass
class Marker:
    token: str
    sent: float  # perf_counter just before its line was written to the socket
    wall: float  # time.time() then: the event time in its line
    found: dict[str, float] = field(default_factory=dict)  # source -> when an answer had it
    missing: set[str] = field(default_factory=set)  # sources it timed out in
    lost: bool = False  # --lose-marker: recorded but never sent (tests the reporting)


def marker_line(token: str, wall: float) -> bytes:
    """A line of the corpus' commonest form, timed now (the corpus is timed 2026-01-19)."""
    ms = int(wall * 1000) % 1000
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall)) + f".{ms:03d}"
    return f"[INFO] {stamp} latency-probe/v1: latency marker {token}\n".encode()


class Markers:
    """A marker line every `period_s`, each over a connection of its own that is
    opened one period ahead (so connecting is not timed) and closed right after
    the line: the end of the connection releases the event at once, where a line
    on a lasting connection would be held `multiline.idle_timeout` for a
    continuation line. `count` markers, then the thread ends (`done`). Every
    `lose_every`-th marker is recorded but not sent."""

    def __init__(
        self, port: int, prefix: str, period_s: float, count: int, lose_every: int = 0
    ) -> None:
        self.port, self.prefix, self.period_s, self.lose_every = port, prefix, period_s, lose_every
        self.count = count
        self.markers: list[Marker] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="markers")

    def start(self) -> None:
        self._thread.start()

    def done(self) -> bool:
        """True once every marker is sent (or sending failed: then raise)."""
        if self.error is not None:
            raise BenchError(f"sending markers failed: {self.error!r}")
        return not self._thread.is_alive()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(30)
        self.done()

    def _run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port))
            tick = time.perf_counter()
            seq = 0
            while seq < self.count and not self.stop.wait(max(0.0, tick - time.perf_counter())):
                seq += 1
                token = f"{self.prefix}m{seq:06d}"
                wall = time.time()
                line = marker_line(token, wall)
                lost = bool(self.lose_every) and seq % self.lose_every == 0
                sent = time.perf_counter()
                if not lost:
                    sock.sendall(line)
                sock.close()
                self.markers.append(Marker(token, sent, wall, lost=lost))
                sock = socket.create_connection(("127.0.0.1", self.port))
                tick += self.period_s
            sock.close()
        except BaseException as exc:
            self.error = exc


@dataclass
class Polls:
    """What the polls saw, per source: round trips (ms) and error answers (a query
    over its time limit, say: counted, and the next poll tries again)."""

    rtt_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    queries: int = 0
    # Answers noting events that neither memory nor the store holds yet (the indexer is
    # more than store.max_unindexed behind: "partial: events a..b are not indexed yet")
    partial: dict[str, int] = field(default_factory=dict)
    # STATS every STATS_EVERY_S meanwhile: where events wait (QueueEvents, StoreLag)
    stats: list[dict[str, str]] = field(default_factory=list)


def poll_command(prefix: str, pending: list[Marker], source: str) -> str:
    """One query for every marker of the run sent since just before the oldest pending
    one: one keyword (the run's token prefix; a list of tokens would cost memory a
    substring test per token and event), their event time, and room for all."""
    since = f"{min(m.wall for m in pending) - 1:.3f}"
    return (
        f"QUERY keyword={prefix} time_from={since} limit={MAX_ROWS} max_count={MAX_ROWS}"
        f" source={source}"
    )


def poll_markers(
    qport: int,
    markers: Markers,
    sources: tuple[str, ...],
    poll_s: float,
    timeout_s: float,
    done: Callable[[], bool],
    check: Callable[[], None],
) -> Polls:
    """Poll every `poll_s` for each source's pending markers until `done()` and none is
    pending. A marker is found in a source when the first answer holding it arrives;
    one not found `timeout_s` after it was sent is missing there (and polled no more)."""
    token_re = re.compile(re.escape(markers.prefix) + r"m\d{6}")
    polls = Polls(rtt_ms={s: [] for s in sources}, errors={s: [] for s in sources})
    tick = next_stats = time.perf_counter()
    while True:
        check()
        if tick >= next_stats:
            polls.stats.append(parse_stats(query(qport, "STATS")))
            next_stats = tick + STATS_EVERY_S
        finished = done()  # read before the snapshot: no marker comes after it
        snapshot = list(markers.markers)
        waiting = False
        for source in sources:
            now = time.perf_counter()
            pending = []
            for m in snapshot:
                if source in m.found or source in m.missing:
                    continue
                if now - m.sent > timeout_s:
                    m.missing.add(source)
                else:
                    pending.append(m)
            if not pending:
                continue
            waiting = True
            reply = query(qport, poll_command(markers.prefix, pending, source), QUERY_TIMEOUT_S)
            answered = time.perf_counter()
            polls.queries += 1
            polls.rtt_ms[source].append((answered - now) * 1000)
            if FOUND.match(reply) is None:
                polls.errors[source].append(reply.strip()[:200])
                continue
            if "not indexed yet" in reply.partition("\n")[0]:
                polls.partial[source] = polls.partial.get(source, 0) + 1
            tokens = set(token_re.findall(reply))
            for m in pending:
                if m.token in tokens:
                    m.found[source] = answered
        if finished and not waiting:
            return polls
        tick += poll_s
        time.sleep(max(0.0, tick - time.perf_counter()))


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def latency_summary(markers: list[Marker], source: str) -> dict[str, object]:
    """Per source: markers, found, missing (with their tokens), latency percentiles in ms."""
    ms = [(m.found[source] - m.sent) * 1000 for m in markers if source in m.found]
    missing = [m.token for m in markers if source not in m.found]
    out: dict[str, object] = {"markers": len(markers), "found": len(ms), "missing": len(missing)}
    out |= {f"p{p}_ms": percentile(ms, p) for p in (50, 90, 99)}
    out["max_ms"] = max(ms) if ms else None
    out["missing_tokens"] = missing[:20]
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and its live descendants (the indexer)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total
