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
from dataclasses import dataclass

from logcaster.log import log_event
from logcaster.options import ForwardGroupConfig, ForwardSinkConfig
from logcaster.sinks.forward.chunks import Chunk
from logcaster.sinks.forward.resilience import Breaker
from logcaster.sinks.forward.transports import ForwardSink, Rejection, open_forward
from logcaster.stats import Stats

# A group's events keep the group's logger, whichever of its modules logs them.
logger = logging.getLogger("logcaster.sinks.group")


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

    def __init__(self, config: ForwardGroupConfig, stats: Stats) -> None:
        self.config = config
        self._stats = stats
        self.all = [self._member(s, True) for s in config.primaries] + [
            self._member(s, False) for s in config.backups
        ]

    def _member(self, cfg: ForwardSinkConfig, primary: bool) -> Member:
        c = self.config
        sink = open_forward(
            cfg.url, name=cfg.name or cfg.url, timeout=cfg.write_timeout, health_url=cfg.health_url
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
            self._stats.sink_errors += 1
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
