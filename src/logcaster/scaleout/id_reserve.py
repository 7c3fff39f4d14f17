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

from pathlib import Path

from logcaster.scaleout.number_file import read_number, save_number

RESERVE_IDS = 1_000_000
FILE = "reserved-ids"


class IdReservation:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE
        self.through = read_number(self.path, "an id") or 0

    def cover(self, last_id: int) -> None:
        """Make sure ids up to `last_id` are reserved (blocking: call from a thread)."""
        if last_id <= self.through:
            return
        through = last_id + RESERVE_IDS
        save_number(self.path, through)
        self.through = through
