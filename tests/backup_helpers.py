"""What the backup tests share: the real `logcaster backup|restore|data validate`
commands as subprocesses, a paced numbered load over TCP, and reading every
event a server holds over the query port."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import zstandard

from logcaster.testing import ServerProcess

ALL_ROWS = 200_000  # query.max_limit of the tests' servers: one answer holds every event
EXACT = 1_000_000_000  # a max_count no test reaches: FOUND is exact


def line(i: int) -> bytes:
    """The text of the i-th load line (on one connection, event id i)."""
    return b"2026-12-06T00:00:00Z INFO svc-%d load line %08d padding %s" % (i % 7, i, b"x" * 40)


def logcaster(
    *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def run_backup(data: Path, out: Path, *extra: str) -> dict[str, Any]:
    """`logcaster backup DATA OUT` (must succeed); the archive's manifest."""
    done = logcaster("backup", str(data), str(out), *extra)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(b"\n") == 1, done.stderr  # one summary line, no progress
    return manifest_of(out.read_bytes())


def manifest_of(archive: bytes) -> dict[str, Any]:
    if archive[:4] == b"\x28\xb5\x2f\xfd":
        archive = zstandard.ZstdDecompressor().decompressobj().decompress(archive)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        assert names[-1] == "MANIFEST.json", names
        f = tar.extractfile("MANIFEST.json")
        assert f is not None
        doc: dict[str, Any] = json.loads(f.read())
    return doc


def run_restore(archive: Path | str, target: Path, *extra: str) -> str:
    """`logcaster restore ARCHIVE TARGET` (must succeed); its stdout."""
    done = logcaster("restore", str(archive), str(target), *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def validate(data: Path) -> None:
    done = logcaster("data", "validate", str(data))
    assert done.returncode == 0, done.stdout + done.stderr


def events(server: ServerProcess, source: str = "all") -> list[tuple[int, str]]:
    """(id, body) of every event the server holds, by id."""
    reply = server.query(
        f"JSON QUERY source={source} limit={ALL_ROWS} order=asc max_count={EXACT}", timeout=60
    )
    doc = json.loads(reply)
    assert not doc.get("capped"), doc.get("found")
    return sorted((int(ev["id"]), ev["body"]) for ev in doc["events"])


class Load:
    """Numbered lines on one TCP connection, about `rate` a second, until `stop`."""

    def __init__(self, port: int, rate: int = 10_000) -> None:
        self.port = port
        self.step = max(1, rate // 50)  # lines per 20 ms
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            while not self._stop.is_set():
                first = self.sent + 1
                batch = b"".join(line(i) + b"\n" for i in range(first, first + self.step))
                sock.sendall(batch)
                self.sent += self.step
                time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return self.sent
