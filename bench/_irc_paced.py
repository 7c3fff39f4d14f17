"""bench/irc's paced sending: events at a fixed rate, and the server's memory meanwhile.

`paced_payload` cuts the bytes to send (the corpus, cycled when it is short,
up to a line end); `send_paced` sends them over one connection in pieces cut
at line ends, every few milliseconds as the clock says (`PACE_TICK_S`);
`wait_delivered` polls STATS until every event is delivered (the lag at the
end); `RssSampler` samples the server's VmRSS every `RSS_EVERY_S` on a thread
meanwhile (`vm_rss`: VmRSS now).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from _common import BenchError
from _query_port import parse_stats, query, stat_int

PACE_TICK_S = 0.005  # the paced sender looks at the clock this often
RSS_EVERY_S = 0.2
PACED_DRAIN_S = 60.0  # after the paced sending, for every event to be delivered


def vm_rss(pid: int) -> int | None:
    """Resident set size of `pid` in bytes now (VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def paced_payload(data: bytes, bytes_needed: int) -> bytes:
    """The corpus, cycled when it is shorter, up to the first line end past `bytes_needed`."""
    if not data.endswith(b"\n"):
        raise BenchError("the corpus does not end with a line end")
    reps = bytes_needed // len(data) + 1
    whole = data * reps if reps > 1 else data
    cut = whole.find(b"\n", max(0, bytes_needed - 1))
    return whole[: cut + 1] if cut >= 0 else whole


@dataclass
class Paced:
    """When the paced sending began and ended (time.perf_counter())."""

    t0: float
    t_end: float  # after the last byte was handed to the kernel


def send_paced(port: int, payload: bytes, bytes_per_s: float, check: Callable[[], None]) -> Paced:
    """Send `payload` over one connection at `bytes_per_s`, in pieces cut at line ends;
    a sender held up by the server catches up as fast as it can."""
    sock = socket.create_connection(("127.0.0.1", port))
    view = memoryview(payload)
    try:
        t0 = time.perf_counter()
        off = 0
        checked = t0
        n = len(payload)
        while off < n:
            now = time.perf_counter()
            target = min(n, int((now - t0) * bytes_per_s))
            if target > off:
                cut = payload.find(b"\n", max(off, target - 1))
                end = n if cut < 0 else cut + 1
                sock.sendall(view[off:end])
                off = end
            else:
                time.sleep(PACE_TICK_S)
            if now - checked > 0.5:
                check()
                checked = now
        t_end = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        return Paced(t0, t_end)
    finally:
        sock.close()


class RssSampler:
    """VmRSS of a process, every RSS_EVERY_S on a thread: the most seen, and one
    sample a second (seconds since the start, bytes) to show its course."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.most: int | None = None
        self.series: list[tuple[float, int]] = []
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss")
        self._thread.start()

    def _run(self) -> None:
        while True:
            rss = vm_rss(self.pid)
            if rss is not None and (self.most is None or rss > self.most):
                self.most = rss
            at = time.perf_counter() - self._t0
            if rss is not None and (not self.series or at - self.series[-1][0] >= 1.0):
                self.series.append((round(at, 1), rss))
            if self._stop.wait(RSS_EVERY_S):
                return

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(5)
        rss = vm_rss(self.pid)
        if rss is not None and (self.most is None or rss > self.most):
            self.most = rss
        return self.most


def wait_delivered(
    query_port: int, t_end: float, check: Callable[[], None], warnings: list[str]
) -> tuple[dict[str, str], float]:
    """Poll STATS until the connection has ended and every event is delivered (the
    paced sender's count is not known beforehand: a multi-line block is one event)."""
    deadline = t_end + PACED_DRAIN_S
    while True:
        check()
        stats = parse_stats(query(query_port, "STATS"))
        now = time.perf_counter()
        received = stat_int(stats, "Total") or 0
        delivered = stat_int(stats, "Delivered")
        done = delivered is None or delivered + (stat_int(stats, "Dropped") or 0) >= received
        if not stat_int(stats, "Clients") and done:
            return stats, now
        if now > deadline:
            warnings.append(f"not every event delivered {PACED_DRAIN_S:g} s after the last byte")
            return stats, now
        time.sleep(0.01)
