"""Readiness checks and the 0-100 health score (`GET /readyz`, `/metrics`).

Ready means every check passes:

- `listeners`: every listener is bound (the server started and is not stopping);
- `draining`: the server is not stopping (`Server.stop` sets it first);
- `queue`: the queue is below `queue.high_watermark` (of events or bytes);
- `sink:<name>`: a local sink (the file sink, memory) takes its writes;
- `forward:<group>`: at least `min_success` sinks of the group are up (their
  circuit breaker is closed);
- `store`: the store is not failing (store/service.py: the indexer restarting
  again and again, or no indexing progress while events wait).

The score weighs the same signals, so a dashboard sees trouble building up
before readiness flips:

    score = 100 - 30 x min(1, queue fill)
                - 30 x (sinks down / sinks)       local sinks and forward sinks
                - 20 x (store failing)
                - 20 x (events dropped / received over the last minute)

rounded, and 0 while draining or while a listener is not bound. The drop share
comes from samples of the server's totals taken when the score is read (at
most one a second, kept for a minute): between two reads further apart than a
minute it covers the time since the previous read.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from logcaster.metrics.registry import Metric, Readings
from logcaster.pipeline.queue import BatchQueue
from logcaster.sinks.forward.group import SinkGroup
from logcaster.stats import Stats
from logcaster.store.service import Store

WINDOW_S = 60.0
SAMPLE_EVERY_S = 1.0

SCORE = Metric(
    "system_health_score",
    "gauge",
    "Health from 0 to 100: queue fill, sinks down, store failing, recent drops (docs/metrics.md)",
)
READY = Metric("ready", "gauge", "1 when GET /readyz answers 200 (every check passes)")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    ready: bool
    score: int
    checks: list[Check]

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not ready",
            "score": self.score,
            "failing": self.failing,
            "checks": {c.name: {"ok": c.ok, **c.detail} for c in self.checks},
        }


class Health:
    """The checks over the server's parts; `report()` runs them now."""

    def __init__(
        self,
        *,
        stats: Stats,
        queue: BatchQueue,
        high_watermark: float,
        local_sinks: Sequence[str],
        failing_sinks: set[str],
        groups: Sequence[SinkGroup],
        store: Store | None,
        unbound: Callable[[], list[str]],
        draining: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stats = stats
        self._queue = queue
        self._high_watermark = high_watermark
        self._local = list(local_sinks)
        self._failing = failing_sinks  # the pipeline's set, read live
        self._groups = list(groups)
        self._store = store
        self._unbound = unbound
        self._draining = draining
        self._clock = clock
        self._samples: deque[tuple[float, int, int]] = deque()  # (time, received, dropped)

    def report(self) -> Report:
        checks: list[Check] = []
        unbound = self._unbound()
        checks.append(Check("listeners", not unbound, {"unbound": unbound} if unbound else {}))
        draining = self._draining()
        checks.append(Check("draining", not draining))
        fill = self._queue.fill
        hw = self._high_watermark
        checks.append(Check("queue", fill < hw, {"fill": round(fill, 4), "high_watermark": hw}))
        down = 0
        for name in self._local:
            failing = name in self._failing
            down += failing
            checks.append(Check(f"sink:{name}", not failing))
        members = len(self._local)
        for group in self._groups:
            up, need, size = group.sinks_up, group.config.min_success, len(group.members)
            down += size - up
            members += size
            checks.append(Check(group.name, up >= need, {"up": up, "min_success": need}))
        store_failing = None if self._store is None else self._store.failing
        if self._store is not None:
            detail: dict[str, object] = {"lag": self._store.lag}
            if store_failing is not None:
                detail["reason"] = store_failing
            checks.append(Check("store", store_failing is None, detail))
        if draining or unbound:
            score = 0.0
        else:
            score = 100.0 - 30 * min(1.0, fill)
            score -= 30 * (down / members if members else 0.0)
            score -= 20 * (store_failing is not None)
            score -= 20 * self._drop_share()
        ready = all(c.ok for c in checks)
        return Report(ready, max(0, min(100, round(score))), checks)

    def _drop_share(self) -> float:
        """Events dropped / received over the last minute (module docstring)."""
        now = self._clock()
        received, dropped = self._stats.received, self._stats.dropped
        samples = self._samples
        if not samples or now - samples[-1][0] >= SAMPLE_EVERY_S:
            samples.append((now, received, dropped))
        # Keep one sample at least a minute old as the baseline, none older.
        while len(samples) > 2 and now - samples[1][0] >= WINDOW_S:
            samples.popleft()
        _, base_received, base_dropped = samples[0]
        got = received - base_received
        return (dropped - base_dropped) / got if got > 0 else 0.0

    def readings(self, out: Readings) -> None:
        report = self.report()
        out.add(SCORE, report.score)
        out.add(READY, int(report.ready))
