"""The audit log: who did what, from where, when, and how it ended.

One JSON object per line in `<dir>/audit.log`, apart from every ingested event
(its own directory, its own format). Lines are appended with one `write` each
(O_APPEND: the `logcaster token` command appends to the same file from another
process without interleaving), then fsynced by a background thread at most
FSYNC_EVERY_S later, and at close. Past `audit.max_file_bytes` the file is
renamed `audit-<UTC time>-<n>.log` and a new one started; rotated files past
`audit.retention_files` or `audit.retention_age` are deleted, oldest first.

Entry fields: `ts` (UTC, ms), `who` (token name, certificate subject,
`anonymous`), `how` (token, certificate, anonymous, network, cli), `role`,
`action` (auth, ingest, query, tail, export, clear, reload, audit, token_create,
token_revoke, keys_rotate, config), `result` (allowed, denied, ok, failed),
`from` (address:port or `local`), `listener`, and when there is one, `reason`
and `detail` (the command or path, cut to MAX_DETAIL).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from logcaster.options import AuditConfig

FILE = "audit.log"
FSYNC_EVERY_S = 0.05
MAX_DETAIL = 512
MAX_VIEW = 10_000  # entries one audit view returns at most


def entry(
    who: str,
    how: str,
    role: str | None,
    action: str,
    result: str,
    source: str,
    listener: str,
    reason: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    t = time.time()
    doc: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
        "who": who,
        "how": how,
        "role": role,
        "action": action,
        "result": result,
        "from": source,
        "listener": listener,
    }
    if reason is not None:
        doc["reason"] = reason
    if detail is not None:
        doc["detail"] = detail[:MAX_DETAIL]
    return doc


def append_line(directory: Path, doc: dict[str, Any]) -> None:
    """One entry from another process (the CLI): appended and fsynced at once."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(directory / FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, orjson.dumps(doc) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditLog:
    """The server's audit writer (owned by `security/guard.Security`)."""

    def __init__(self, directory: Path, config: AuditConfig) -> None:
        self.directory = directory
        self.config = config
        self.entries = 0  # written since start
        self._fd = -1
        self._size = 0
        self._dirty = threading.Event()
        self._closing = False
        self._lock = threading.Lock()  # the fd, against the fsync thread
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._open_file()
        self._thread = threading.Thread(target=self._syncer, name="audit-fsync", daemon=True)
        self._thread.start()

    def _open_file(self) -> None:
        self._fd = os.open(self.directory / FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, doc: dict[str, Any]) -> None:
        line = orjson.dumps(doc) + b"\n"
        with self._lock:
            if self._fd < 0:
                return  # closed: the server is gone
            os.write(self._fd, line)
            self._size += len(line)
            self.entries += 1
            if self._size >= self.config.max_file_bytes:
                self._rotate()
        self._dirty.set()

    def _rotate(self) -> None:
        """Under the lock: fsync and rename the full file, start a new one, prune."""
        os.fsync(self._fd)
        os.close(self._fd)
        # audit-<UTC second>-<n>.log: names sort in rotation order, within a second too.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        n = 1
        while (target := self.directory / f"audit-{stamp}-{n:04d}.log").exists():
            n += 1
        os.replace(self.directory / FILE, target)
        self._open_file()
        self._prune()

    def _prune(self) -> None:
        rotated = rotated_files(self.directory)
        keep = self.config.retention_files
        doomed = rotated[:-keep] if keep is not None and len(rotated) > keep else []
        if self.config.retention_age is not None:
            cutoff = time.time() - self.config.retention_age
            doomed += [p for p in rotated if p not in doomed and p.stat().st_mtime < cutoff]
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _syncer(self) -> None:
        while not self._closing:
            self._dirty.wait()
            self._dirty.clear()
            with self._lock:
                if self._fd >= 0:
                    os.fsync(self._fd)
            time.sleep(FSYNC_EVERY_S)

    def close(self) -> None:
        self._closing = True
        self._dirty.set()
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1
        if self._thread is not None:
            self._thread.join(1.0)


def rotated_files(directory: Path) -> list[Path]:
    """Rotated audit files, oldest first (their names sort by time)."""
    return sorted(directory.glob("audit-*.log"))


def read_view(
    directory: Path, limit: int, action: str | None = None, who: str | None = None
) -> list[dict[str, Any]]:
    """The newest `limit` entries (newest first) matching `action` and `who`."""
    out: list[dict[str, Any]] = []
    for path in [directory / FILE, *reversed(rotated_files(directory))]:
        for doc in _lines_newest_first(path):
            if (action is None or doc.get("action") == action) and (
                who is None or doc.get("who") == who
            ):
                out.append(doc)
                if len(out) >= min(limit, MAX_VIEW):
                    return out
    return out


def _lines_newest_first(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in reversed(data.splitlines()):
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn last line after a crash
        if isinstance(doc, dict):
            yield doc
