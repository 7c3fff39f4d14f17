"""Event ids the publisher may send, reserved on disk before Redis sees them.

A node continues its event ids above what its sinks hold after a restart. The
file sink writes a batch before the publisher sends it, but fsyncs it later
(`persist.fsync`): after a power loss the file's tail is gone while Redis holds
those batches, and a node that continued from the file would give new events
ids already stored under its node id, which the writers would then drop as
duplicates. So the publisher first reserves ids: before it sends an id above
`through`, it saves `through = id + RESERVE_IDS` (tmp, fsync, rename), and at
start the node continues above it. One fsync per million events.
"""

from __future__ import annotations

import os
from pathlib import Path

from logcaster.exceptions import StorageError
from logcaster.segments.lock import fsync_dir

RESERVE_IDS = 1_000_000
FILE = "reserved-ids"


class IdReservation:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self.through = self._load()

    def _load(self) -> int:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}", path=str(self.path)) from exc
        if not text.isdigit():
            raise StorageError(
                f"{self.path} does not hold an id: {text[:40]!r}", path=str(self.path)
            )
        return int(text)

    def cover(self, last_id: int) -> None:
        """Make sure ids up to `last_id` are reserved (blocking: call from a thread)."""
        if last_id <= self.through:
            return
        through = last_id + RESERVE_IDS
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w") as f:
                f.write(f"{through}\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}", path=str(self.path)) from exc
        self.through = through
