"""Events by level and service, counted without a per-event cost on ingest.

Ingest never parses (docs/architecture.md, "The hot path"), so nothing on the
ingest path knows an event's level or service. Instead this task, once a
second, takes the batches the memory ring received since its last run
(`MemorySink.snapshot`; ids tell what is new), extracts level and service of
their events in bulk with the store's extractor (parsing/extract.py, about
2 µs per event, in a thread so the event loop keeps turning), and adds them
to `logcaster_logging_entries_total{level,component}`, the seed's name
(`component` is the service). Its cost is bounded: at most `MAX_PER_RUN`
events per run, the newest ones.

Events delivered that no run saw, because the ring evicted them first (more
than `memory.capacity` events a second, or a CLEAR) or because they were past
a run's cap, are counted with level and component `untallied`. So the counter
summed over its labels equals the events delivered since the server started
(STATS Delivered, counted by the memory ring as it takes them), to within one
run. Levels are the canonical names (`INFO`, `ERROR`, ...) or `none`; a
service is its name, `none` without one, and `other` past
`metrics.max_services` distinct names (the label's cardinality bound).
"""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from logcaster.metrics.registry import Metric, Readings
from logcaster.parsing.codes import LEVEL_NAMES, ServiceCodes
from logcaster.parsing.extract import Extractor, Fields
from logcaster.pipeline.batch import Batch
from logcaster.segments.blocks import encode_payload
from logcaster.sinks.memory import MemorySink
from logcaster.sources.files.labels import fill_services

EVERY_S = 1.0
MAX_PER_RUN = 10_000  # 20-45 ms of extraction (2-4.5 µs an event): a few % of a core
UNTALLIED = "untallied"

ENTRIES = Metric(
    "logging_entries",
    "counter",
    "Events delivered, by level and component (service); 'untallied' for events "
    "the periodic tally did not see (evicted from memory first, or past its cap)",
    ("level", "component"),
)


class LevelTally:
    """The tally as a `Component` (component.py): a service with one task."""

    option = "metrics.max_services"
    endpoint = None

    def __init__(self, memory: MemorySink, max_services: int, every_s: float = EVERY_S) -> None:
        self._memory = memory
        self._every_s = every_s
        self._services = ServiceCodes(capacity=max_services)
        self._extractor = Extractor(self._services)
        self.counts: dict[tuple[str, str], int] = {}
        self._through = 0  # the newest id a run took (tallied or not)
        self._written = 0  # MemorySink.received at the last run
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # What memory holds now was replayed from disk, delivered by an earlier run.
        self._through = self._memory.last_id
        self._written = self._memory.received
        self._task = asyncio.create_task(self._run(), name="level-tally")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            await self.tally()

    async def tally(self) -> None:
        """One run: the events memory received since the last one."""
        memory = self._memory
        batches, skip = memory.snapshot()
        new = memory.received - self._written  # on the loop, with the snapshot: consistent
        self._written = memory.received
        parts, received, sources = _newest(batches, skip, self._through, MAX_PER_RUN)
        if batches:
            self._through = max(self._through, batches[-1].last_id)
        taken = len(received)
        if taken:
            fields = await asyncio.to_thread(self._extract, parts, received)
            fill_services(fields.service, sources, self._services)  # file inputs' service
            self._count(fields.level, fields.service)
        if new > taken:
            self._add((UNTALLIED, UNTALLIED), new - taken)

    def _extract(self, parts: list[bytes | list[bytes]], received: np.ndarray) -> Fields:
        """(In a thread.) The fields of the parts' events: payloads as they are, texts
        encoded to one first (the extractor reads escaped payloads)."""
        payloads = [p if isinstance(p, bytes) else encode_payload(p) for p in parts]
        return self._extractor.extract(payloads, received)

    def _count(self, levels: np.ndarray, services: np.ndarray) -> None:
        keys = levels.astype(np.uint32) << 16 | services.astype(np.uint32)
        values, counts = np.unique(keys, return_counts=True)
        for key, n in zip(values.tolist(), counts.tolist(), strict=True):
            self._add((_level(key >> 16), self._service(key & 0xFFFF)), n)

    def _service(self, code: int) -> str:
        if code == ServiceCodes.OTHER:
            return "other"
        name = self._services.name(code)
        return "none" if name is None else name

    def _add(self, key: tuple[str, str], n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def readings(self, out: Readings) -> None:
        out.pairs(ENTRIES, self.counts)

    async def stop(self, deadline: float | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def close(self) -> None:
        return None


def _newest(
    batches: list[Batch], skip: int, after_id: int, cap: int
) -> tuple[list[bytes | list[bytes]], np.ndarray, list[tuple[int, str]]]:
    """Up to `cap` events with ids above `after_id` still in the ring, the newest
    ones, oldest first, per batch: its raw payload when the batch has one and all
    its events are taken (no texts decoded), else the texts taken; then their
    receive times, and (index of the part's first event, source label) per batch."""
    picked: list[tuple[bytes | list[bytes], int, float, str]] = []
    left = cap
    for index in range(len(batches) - 1, -1, -1):
        batch = batches[index]
        if batch.last_id <= after_id or left <= 0:
            break
        low = max(skip if index == 0 else 0, after_id - batch.first_id + 1)
        start = max(low, len(batch) - left)
        payload = batch.payload
        part = payload if payload is not None and start == 0 else batch.texts[start:]
        n = len(batch) - start
        picked.append((part, n, batch.received_at, batch.source))
        left -= n
    picked.reverse()
    received = np.repeat([r for _, _, r, _ in picked], [n for _, n, _, _ in picked])
    sources: list[tuple[int, str]] = []
    at = 0
    for _, n, _, source in picked:
        sources.append((at, source))
        at += n
    return [part for part, _, _, _ in picked], received.astype(np.float64), sources


def _level(code: int) -> str:
    name = LEVEL_NAMES[code] if code < len(LEVEL_NAMES) else None
    return "none" if name is None else name
