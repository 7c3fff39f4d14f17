"""Tail-aware sampling (SPEC §4, seed 004): keep or drop whole requests.

Runs in the pipeline worker between the queue and the sinks. Every batch is
held for `window_s` and released in order, with the events of sampled-away
requests cut out, so ids still reach the sinks increasing (docs/overload-
design.md, "Tail-aware sampling"). A request (events sharing `request_id`,
else `correlation_id`) is kept as soon as one of its events is ERROR/FATAL,
slower than `slow_ms`, or on a critical route, or when its key hashes below
the keep rate `p` (the same decision on every node); a request still
undecided when its first event's batch is released is sampled away. Events
without a key always pass. Bounded: past `max_pending_events` held, the
oldest batches are released early with their undecided requests kept (under
pressure sampling is lost, never data).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from logcaster.event import Event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import TailSamplingConfig
from logcaster.pipeline.batch import Batch
from logcaster.stats import Stats, listener_of

KEEP_REASONS = ("error", "slow", "route", "rate")
_ERRORS = frozenset({"ERROR", "FATAL"})
_MAX_DECIDED = 1 << 20  # decisions remembered for late events, oldest forgotten first

HELD = Metric("tail_sampling_held_events", "gauge", "Events tail sampling holds", stats="TailHeld")
KEEP_RATE = Metric(
    "tail_sampling_keep_ratio",
    "gauge",
    "The keep rate p of normal requests now (lowered under pressure)",
    stats="TailKeepRate",
)
ESTIMATED = Metric(
    "tail_sampling_estimated_events",
    "gauge",
    "Events tail sampling saw, estimated from what it kept (each kept event weighs 1/p)",
    stats="TailEstimatedEvents",
)
DECISIONS = Metric(
    "tail_sampling_events",
    "counter",
    "Events tail sampling released, by decision: kept_<reason> or sampled",
    ("decision",),
    stats_by=("decision", "Tail"),
)


def key_hash(key: str) -> float:
    """A uniform value in [0, 1) from the request key, the same on every node."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class TailSampler:
    def __init__(
        self,
        config: TailSamplingConfig,
        stats: Stats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.rate = config.rate  # the keep rate p now (lowered under pressure)
        # Kept events weighted by 1/p (rule-kept and keyless ones by 1): an estimate
        # of the events the sampler saw, from what it kept (STATS TailEstimatedEvents).
        self.estimated = 0.0
        self._stats = stats
        self._clock = clock
        self._held: deque[tuple[float, Batch]] = deque()
        self.held_events = 0
        # Request key -> keep reason ("" = sampled away); undecided keys are absent.
        self._decided: OrderedDict[str, str] = OrderedDict()
        # p when a request was kept by rate: its events weigh 1/p of that moment
        # (p moves under pressure; the weight must be the chance it had).
        self._kept_at: dict[str, float] = {}
        self.released_through = 0  # the last id released (kept or sampled away)

    def readings(self, out: Readings) -> None:
        """What it holds, its keep rate now, its estimate, events by decision."""
        out.add(HELD, self.held_events)
        out.add(KEEP_RATE, self.rate)
        out.add(ESTIMATED, round(self.estimated))
        # STATS TailKeptError, TailKeptSlow, ..., and TailSampled
        decisions = {
            d if d == "sampled" else "kept_" + d: n for d, n in sorted(self._stats.tail.items())
        }
        out.each(DECISIONS, decisions)

    # ---- decisions ---------------------------------------------------------------
    def _key(self, ev: Event) -> str | None:
        fields = ev.fields
        key = fields.get("request_id") or fields.get("correlation_id")
        return str(key) if key is not None else None

    def _rule(self, ev: Event) -> str | None:
        if ev.level in _ERRORS:
            return "error"
        duration = ev.fields.get("duration_ms")
        if duration is not None:
            try:
                if float(duration) > self.config.slow_ms:
                    return "slow"
            except (TypeError, ValueError):
                pass
        route = ev.fields.get("route")
        if route is not None and any(r in str(route) for r in self.config.critical_routes):
            return "route"
        return None

    def _decide(self, key: str, reason: str) -> None:
        decided = self._decided
        decided[key] = reason
        decided.move_to_end(key)
        if reason == "rate":
            self._kept_at[key] = self.rate
        while len(decided) > _MAX_DECIDED:
            self._kept_at.pop(decided.popitem(last=False)[0], None)

    def accept(self, batches: list[Batch]) -> None:
        """Hold new batches; decide the requests their events settle."""
        release_at = self._clock() + self.config.window_s
        decided = self._decided
        for batch in batches:
            for ev in batch.events():
                key = self._key(ev)
                if key is None or decided.get(key):
                    continue  # no request, or already kept
                reason = self._rule(ev)
                if reason is not None:
                    self._decide(key, reason)
                elif key not in decided and key_hash(key) < self.rate:
                    self._decide(key, "rate")
            self._held.append((release_at, batch))
            self.held_events += len(batch)

    # ---- releases ----------------------------------------------------------------
    def next_release(self) -> float | None:
        """When the oldest held batch is due (clock time), or None if none is held."""
        return self._held[0][0] if self._held else None

    def release(self, *, everything: bool = False) -> list[Batch]:
        """The held batches whose window passed (all with `everything`), filtered."""
        now = self._clock()
        out: list[Batch] = []
        held = self._held
        while held:
            due, batch = held[0]
            early = everything or self.held_events > self.config.max_pending_events
            if due > now and not early:
                break
            held.popleft()
            self.held_events -= len(batch)
            out.extend(self._filter(batch, keep_undecided=due > now))
            self.released_through = batch.last_id
        return out

    def _filter(self, batch: Batch, *, keep_undecided: bool) -> list[Batch]:
        """The batch without the events of sampled-away requests, as runs of ids."""
        events = batch.events()
        stats = self._stats
        keep: list[bool] = []
        for ev in events:
            key = self._key(ev)
            if key is None:
                keep.append(True)
                self.estimated += 1
                continue
            reason = self._decided.get(key)
            if reason is None:
                # Undecided at release: sampled away, unless released early.
                reason = "overflow" if keep_undecided else ""
                self._decide(key, reason)
            if reason:
                if reason == "rate":
                    weight = 1 / self._kept_at.get(key, self.rate)
                    ev.fields.setdefault("sample_weight", round(weight, 6))
                    self.estimated += weight
                else:
                    self.estimated += 1
                stats.tail[reason] = stats.tail.get(reason, 0) + 1
                keep.append(True)
            else:
                stats.tail["sampled"] = stats.tail.get("sampled", 0) + 1
                keep.append(False)
        if all(keep):
            return [batch]
        stats.sample(listener_of(batch.source), "tail", keep.count(False))
        runs: list[Batch] = []
        i, n = 0, len(events)
        while i < n:
            if not keep[i]:
                i += 1
                continue
            j = i
            while j < n and keep[j]:
                j += 1
            runs.append(batch.cut(i, j))
            i = j
        return runs

    def reconfigure(self, config: TailSamplingConfig) -> None:
        """New thresholds, routes and rates (a reload); decisions already taken stand."""
        self.config = config
        self.rate = config.rate

    def pressure(self, fill: float, high_watermark: float) -> None:
        """Lower p toward `min_rate` while the queue is above its high watermark."""
        cfg = self.config
        if fill <= high_watermark or high_watermark >= 1.0:
            self.rate = cfg.rate
            return
        share = min(1.0, (fill - high_watermark) / (1.0 - high_watermark))
        self.rate = cfg.rate - share * (cfg.rate - min(cfg.min_rate, cfg.rate))
