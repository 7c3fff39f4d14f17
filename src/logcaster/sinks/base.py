"""What every sink provides to the pipeline."""

from __future__ import annotations

from typing import Protocol

from logcaster.event import Batch


class Sink(Protocol):
    name: str

    async def start(self) -> None: ...

    async def write(self, batches: list[Batch]) -> None:
        """Take delivery of `batches`; raising marks the write as failed."""
        ...

    async def stop(self) -> None: ...
