"""Queue policies (SPEC §4): what happens to a read's events when the queue is full.

The decision is taken when a source submits, before ids are allocated, so
the events kept from one read still get consecutive ids and a refused or
sampled event never gets one. Every event not admitted is counted by
listener and reason in `Stats` and logged (at most once a second per reason). See
docs/overload-design.md.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from logcaster.log import log_event
from logcaster.options import QueueConfig
from logcaster.parsing.levels import LevelReader
from logcaster.pipeline.batch import EVENT_OVERHEAD, Batch, Texts
from logcaster.pipeline.queue import BatchQueue
from logcaster.stats import Stats, listener_of

logger = logging.getLogger("logcaster.pipeline.admission")

_LOG_EVERY_S = 1.0
# Sources that always wait for room, whatever the policy: a file has no sender to
# push back on and its lines stay in it, so nothing of it is dropped, rejected or
# sampled, and drop_oldest does not evict it (docs/file-source.md).
ALWAYS_WAIT = frozenset({"file"})
# The watermark warning re-arms once the fill is this far below it.
_REARM = 0.9


class Admission:
    def __init__(self, queue: BatchQueue, config: QueueConfig, stats: Stats) -> None:
        self.queue = queue
        self.policy = config.policy
        self.high_watermark = config.high_watermark
        self.sample_max_n = config.sample_max_n
        self._stats = stats
        self._above = False
        self._logged: dict[str, float] = {}
        self._sample_counter = 0
        self._levels: LevelReader | None = None
        if self.policy == "sample":
            self._levels = LevelReader()

    @property
    def rejects(self) -> bool:
        """Whether refusals are `reject`'s (the sender is told) rather than drops."""
        return self.policy == "reject"

    def fill(self, extra_events: int = 0, extra_bytes: int = 0) -> float:
        q = self.queue
        return max((q.events + extra_events) / q.max_events, (q.nbytes + extra_bytes) / q.max_bytes)

    def admit(self, texts: Texts, listener: str) -> tuple[Texts, bool]:
        """The texts `listener` offers to enqueue, and whether the source should pause
        after enqueuing them.

        `block` decides nothing here (the batch's own size is summed once, by
        Batch); the others weigh the read against the room left.
        """
        policy = self.policy
        if policy == "block" or listener in ALWAYS_WAIT:
            return texts, True
        # Pipeline.offer decodes an Escaped read before asking the other policies,
        # which may keep some of its texts.
        assert isinstance(texts, list)
        n = len(texts)
        size = sum(map(len, texts)) + EVENT_OVERHEAD * n
        fill = self.fill(n, size)
        self.watch(fill)  # the demand: the queue with this read in it
        # `sample` pauses the source when the queue is full after the put.
        if fill <= 1.0 and policy != "sample":
            return texts, False
        if policy == "drop_newest":
            kept = _fitting(texts, self._room())
            self.drop(listener, "queue_full_newest", n - len(kept))
            return kept, False
        if policy == "reject":
            self.drop(listener, "rejected", n)
            return [], False
        if policy == "drop_oldest":
            # Evicted events count against the listener they came from.
            for batch in self.queue.evict_oldest(n, size, _spared):
                self.drop(listener_of(batch.source), "queue_full_oldest", len(batch))
            if self.fill(n, size) > 1.0:  # one read larger than the whole queue
                kept = _fitting(texts[::-1], self._room())[::-1]
                self.drop(listener, "queue_full_oldest", n - len(kept))
                return kept, False
            return texts, False
        return self._sample(texts, fill, listener), True

    def _sample(self, texts: list[bytes], fill: float, listener: str) -> list[bytes]:
        """Above the watermark: every ERROR/FATAL event and 1 in N of the others."""
        hw = self.high_watermark
        if fill <= hw or not texts:
            return texts
        share = min(1.0, (fill - hw) / (1.0 - hw)) if hw < 1.0 else 1.0
        every = 1 + int(share * (self.sample_max_n - 1))
        if every <= 1:
            return texts
        assert self._levels is not None
        keep = self._levels.errors(texts)
        # 1 in N of the droppable events, counted across reads.
        droppable = np.flatnonzero(~keep)
        counter = self._sample_counter
        keep[droppable[(np.arange(len(droppable)) + counter) % every == 0]] = True
        self._sample_counter = (counter + len(droppable)) % every
        kept = [t for t, k in zip(texts, keep.tolist(), strict=True) if k]
        sampled = len(texts) - len(kept)
        if sampled:
            self._stats.sample(listener, "queue", sampled)
            self._log("sampled", sampled, one_in=every)
        return kept

    def _room(self) -> tuple[int, int]:
        q = self.queue
        return q.max_events - q.events, q.max_bytes - q.nbytes

    def drop(self, listener: str, reason: str, n: int) -> None:
        """Count and log (at most once a second per reason) `n` events not admitted."""
        if n > 0:
            self._stats.drop(listener, reason, n)
            self._log(reason, n)

    def _log(self, reason: str, n: int, one_in: int | None = None) -> None:
        now = time.monotonic()
        if now - self._logged.get(reason, 0.0) >= _LOG_EVERY_S:
            self._logged[reason] = now
            total = self._stats.sampled if reason == "sampled" else self._stats.drops[reason]
            log_event(
                logger,
                logging.WARNING,
                "events_not_admitted",
                reason=reason,
                policy=self.policy,
                events=n,
                total=total,
                one_in=one_in,
            )

    def watch(self, fill: float | None = None) -> None:
        """Warn and count once per upward crossing of the high watermark (`fill`:
        the demand a policy weighed; None: the queue as it is, after a put)."""
        if fill is None:
            fill = self.fill()
        if fill >= self.high_watermark:
            if not self._above:
                self._above = True
                self._stats.high_watermark += 1
                log_event(
                    logger,
                    logging.WARNING,
                    "queue_high_watermark",
                    fill=round(fill, 3),
                    policy=self.policy,
                    events=self.queue.events,
                    bytes=self.queue.nbytes,
                )
        elif fill < self.high_watermark * _REARM:
            self._above = False


def _fitting(texts: list[bytes], room: tuple[int, int]) -> list[bytes]:
    """The longest prefix of `texts` that fits in (events, bytes) of room."""
    events, nbytes = room
    kept = 0
    for text in texts[: max(0, events)]:
        nbytes -= len(text) + EVENT_OVERHEAD
        if nbytes < 0:
            break
        kept += 1
    return texts[:kept]


def _spared(batch: Batch) -> bool:
    """drop_oldest leaves the batches of sources that wait for room in the queue."""
    return listener_of(batch.source) in ALWAYS_WAIT
