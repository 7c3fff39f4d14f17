"""The sinks of a forward group, and one attempt to send a chunk to them.

A `Member` is one forward sink of a group with its breaker and its counters.
`Members` holds a group's members in config order (primaries, then backups)
and owns what depends only on them and their breakers: which members a new
attempt goes to (`targets`), whether enough are allowed to reach
`min_success` (`can_deliver`), and one attempt at one sink, whose outcome its
breaker learns (`try_one`, logged when a sink goes down or recovers). Which
chunk is sent when, and what a failed one leads to, is the sender's
(`sinks/forward/sender.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from logcaster.log import log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import ForwardGroupConfig, ForwardSinkConfig
from logcaster.sinks.forward.chunks import Chunk
from logcaster.sinks.forward.resilience import BREAKER_STATES, Breaker
from logcaster.sinks.forward.transports import ForwardSink, Rejection, TlsClient, open_forward

# A group's events keep the group's logger, whichever of its modules logs them.
logger = logging.getLogger("logcaster.sinks.group")

_SINK = ("group", "sink")
SINK_EVENTS = Metric(
    "forward_sink_events", "counter", "Events a forward sink took (acknowledged)", _SINK
)
SINK_ERRORS = Metric(
    "forward_sink_errors",
    "counter",
    "Failed attempts to send to a forward sink",
    _SINK,
    stats="SinkErrors",  # with the local sinks' failed writes (stats.py)
)
SINK_UP = Metric(
    "forward_sink_up", "gauge", "1 while a forward sink's circuit breaker is closed", _SINK
)
BREAKER_STATE = Metric(
    "forward_sink_breaker_state",
    "gauge",
    "A forward sink's circuit breaker: 1 for its state now, 0 for the others",
    (*_SINK, "state"),
)
BREAKER_OPENS = Metric(
    "forward_sink_breaker_opens",
    "counter",
    "Times a forward sink's circuit breaker opened",
    _SINK,
    stats="BreakerOpens",
)
SINKS_DOWN = Metric(
    "forward_sinks_down",
    "gauge",
    "Sinks of a forward group whose breaker is not closed",
    ("group",),
    stats="SinksDown",
)
MIN_SUCCESS = Metric(
    "forward_min_success",
    "gauge",
    "Sinks of a forward group that must take a chunk (ready needs this many up)",
    ("group",),
)


@dataclass(eq=False)
class Member:
    """One sink of a group with its breaker and counters."""

    sink: ForwardSink
    breaker: Breaker
    primary: bool
    delivered: int = 0  # events this sink took
    failures: int = 0  # failed attempts


class Members:
    """The members of one group, in `all` (see the module docstring)."""

    def __init__(
        self,
        config: ForwardGroupConfig,
        open_sink: Callable[[ForwardSinkConfig], ForwardSink] | None = None,
    ) -> None:
        """`open_sink`: makes a member's sink from its config (default: by URL,
        `open_forward`); scale-out's publisher brings its Redis stream sink so."""
        self.config = config
        self._open_sink = open_sink
        self.all = [self._member(s, True) for s in config.primaries] + [
            self._member(s, False) for s in config.backups
        ]

    def _member(self, cfg: ForwardSinkConfig, primary: bool) -> Member:
        c = self.config
        if self._open_sink is not None:
            sink = self._open_sink(cfg)
        else:
            sink = open_forward(
                cfg.url,
                name=cfg.name or cfg.url,
                timeout=cfg.write_timeout,
                health_url=cfg.health_url,
                tls=TlsClient(cfg.ca_file, cfg.cert_file, cfg.key_file, cfg.verify),
                token=cfg.token,
            )
        return Member(sink, Breaker(c.failure_threshold, c.open_s, c.max_open_s), primary)

    def targets(self, chunk: Chunk) -> list[int]:
        """Allowed members for a new attempt: primaries, then backups up to min_success."""
        need = self.config.min_success
        allowed = [i for i, m in enumerate(self.all) if m.breaker.allows()]
        chosen = [i for i in allowed if self.all[i].primary]
        for i in allowed:
            if len(chosen) >= need:
                break
            if not self.all[i].primary:
                chosen.append(i)
        return chosen

    @property
    def up(self) -> int:
        """Members whose breaker is closed (half-open is still on trial)."""
        return sum(m.breaker.state == "closed" for m in self.all)

    def readings(self, out: Readings) -> None:
        group = self.config.name
        for member in self.all:
            name = member.sink.name
            out.add(SINK_EVENTS, member.delivered, group, name)
            out.add(SINK_ERRORS, member.failures, group, name)
            state = member.breaker.state
            out.add(SINK_UP, int(state == "closed"), group, name)
            for each in BREAKER_STATES:
                out.add(BREAKER_STATE, int(each == state), group, name, each)
            out.add(BREAKER_OPENS, member.breaker.opens, group, name)
        out.add(SINKS_DOWN, len(self.all) - self.up, group)
        out.add(MIN_SUCCESS, self.config.min_success, group)

    def can_deliver(self) -> bool:
        """Are enough sinks allowed to reach min_success (closed or due a trial)?"""
        allowed = sum(m.breaker.allows() for m in self.all)
        return allowed >= self.config.min_success

    async def attempt(self, chunk: Chunk, targets: list[int]) -> tuple[int, list[Rejection]]:
        """Send `chunk` to the `targets` at once: how many took it, and what one refused."""
        results = await asyncio.gather(*(self.try_one(self.all[i], chunk) for i in targets))
        took = [r for r in results if r is not None]
        return len(took), (took[0] if took else [])

    async def try_one(self, member: Member, chunk: Chunk) -> list[Rejection] | None:
        """One sink, one attempt; the breaker learns the outcome."""
        try:
            if member.breaker.state == "half_open":
                await member.sink.check()
            rejected = await member.sink.deliver(chunk.batches)
        except Exception as exc:  # SendError, or anything else a sink raised: a failure
            chunk.maybe_stored |= getattr(exc, "maybe_stored", True)
            member.failures += 1
            if member.breaker.failure():
                log_event(
                    logger,
                    logging.ERROR,
                    "forward_sink_down",
                    group=self.config.name,
                    sink=member.sink.name,
                    error=str(exc),
                    retry_in_s=round(member.breaker.retry_in, 2),
                )
            return None
        if member.breaker.success():
            log_event(
                logger,
                logging.WARNING,
                "forward_sink_recovered",
                group=self.config.name,
                sink=member.sink.name,
            )
        member.delivered += chunk.events - len(rejected)
        return rejected
