"""Driving a real server whose file-tail source follows real files (docs/file-source.md).

The server runs as a subprocess (`server_factory`) with a YAML config naming the
globs; what it stored is read back from the data directory's segments
(`segments`, tests/store_server_helpers.py), so "every line exactly once" is
checked on disk, not through a query limit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from logcaster.segments import read_batches
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.store_server_helpers import segments

# Multi-line grouping waits this long for continuation lines before releasing an event.
IDLE = "0.2"


def write_config(path: Path, inputs: list[dict[str, Any]], **files: Any) -> Path:
    """A config file with `sources.files`: its inputs and options."""
    doc = {
        "sources": {"files": {"inputs": inputs, "poll_interval": 0.2, "rotate_wait": 0.5, **files}},
        "multiline": {"idle_timeout": float(IDLE)},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def start(
    server_factory: ServerFactory,
    config: Path,
    data: Path | None,
    *extra: str,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    args = ["--config", str(config), *extra]
    if data is not None:
        args += ["-P", str(data)]
    return server_factory(*args, env=env)


def stored_texts(data: Path) -> list[bytes]:
    """Every event text in the segments, in id order."""
    return [
        t for path in segments(data) if path.exists() for b in read_batches(path) for t in b.texts
    ]


def stored_sources(data: Path) -> list[str]:
    return [b.source for path in segments(data) if path.exists() for b in read_batches(path)]


def wait_stored(data: Path, n: int, timeout: float = 60.0) -> list[bytes]:
    """The stored texts once there are at least `n` of them."""
    return wait_for(
        f"{n} events on disk", lambda: stored_texts(data), lambda t: len(t) >= n, timeout
    )


TRACE = b'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: x\n'


def at_least(k: int) -> Callable[[int], bool]:
    """A `wait_for` condition: the value is `k` or more."""
    return lambda value: value >= k


def numbered(start: int, stop: int, width: int = 0) -> bytes:
    """Lines `line <i> <padding>` for i in start..stop-1 (distinct, countable)."""
    pad = "x" * width
    return "".join(f"line {i} {pad}\n" for i in range(start, stop)).encode()


def line_numbers(texts: list[bytes]) -> Counter[int]:
    """How often each numbered line was stored (a text may hold several lines)."""
    out: Counter[int] = Counter()
    for text in texts:
        for line in text.split(b"\n"):
            if line.startswith(b"line "):
                out[int(line.split()[1])] += 1
    return out


def assert_exactly_once(texts: list[bytes], n: int) -> None:
    counts = line_numbers(texts)
    twice = sorted(i for i, c in counts.items() if c > 1)
    missing = sorted(set(range(n)) - counts.keys())
    assert not twice and not missing, (
        f"{len(twice)} twice: {twice[:10]}",
        f"{len(missing)} missing: {missing[:10]}",
    )
    assert sum(counts.values()) == len(counts) == n


class Writer:
    """Appends numbered lines to a file in a thread (a logging application: open
    for append, write, flush), reopening it when it was renamed away. `stop` ends it."""

    def __init__(
        self,
        path: Path,
        total: int,
        per_write: int = 50,
        pause: float = 0.002,
        trace_every: int = 0,
        hold_at: int | None = None,
    ) -> None:
        """`trace_every`: after every that many lines, a Python stack trace (three lines
        a multi-line framer groups into one event). `hold_at`: once that many lines
        are written, wait for `release()` (a test acting mid-stream, which a fast
        writer would otherwise finish before)."""
        self.trace_every = trace_every
        self.hold_at = hold_at
        self._released = threading.Event()
        self.path = path
        self.total = total
        self.per_write = per_write
        self.pause = pause
        self.written = 0
        self.reopen = threading.Event()  # set by a test after a rename (the app's SIGHUP)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def _run(self) -> None:
        f = open(self.path, "ab")  # noqa: SIM115 - reopened in the loop
        try:
            while self.written < self.total:
                if self.written == self.hold_at:
                    self._released.wait(60)
                if self.reopen.is_set():
                    self.reopen.clear()
                    f.close()
                    f = open(self.path, "ab")  # noqa: SIM115
                stop = min(self.total, self.written + self.per_write)
                f.write(numbered(self.written, stop))
                if self.trace_every and stop % self.trace_every == 0:
                    f.write(TRACE)
                f.flush()
                self.written = stop
                time.sleep(self.pause)
        finally:
            f.close()

    def release(self) -> None:
        self._released.set()

    def join(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer did not finish"
