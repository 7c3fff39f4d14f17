"""What every sink provides to the pipeline, beyond being a component."""

from __future__ import annotations

from typing import Protocol

from logcaster.component import Component
from logcaster.pipeline.batch import Batch


class Sink(Component, Protocol):
    name: str

    @property
    def durable_id(self) -> int:
        """The highest event id this sink holds as safely as it ever will (0: none).

        Acknowledged delivery confirms an event once every sink's `durable_id`
        reached it: for the memory sink on delivery, for the file sink after
        the fsync its policy calls for.
        """
        ...

    @property
    def last_id(self) -> int:
        """The highest event id this sink holds (after start, from an earlier run too):
        new ids continue above every sink's, so an id never names two events."""
        ...

    async def write(self, batches: list[Batch]) -> None:
        """Take delivery of `batches`; raising marks the write as failed."""
        ...
