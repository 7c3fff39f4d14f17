"""The server: its component table, start order and drain.

Data flows sources -> pipeline (queue, worker) -> sinks; front ends read the
sinks. Start: sinks, pipeline, sources, front ends. Stop: sources first (stop
accepting, flush every connection's framer), then drain the queue into the
sinks, then front ends and sinks; last, the final acks go out and the sources
close the connections they kept open for them. Every component is listed here, built from
the one `Config`; nothing registers itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from logcaster.config import Config, forward_dir
from logcaster.exceptions import LogCasterError, StartupError
from logcaster.frontends.lineproto import LineQueryServer, QueryService
from logcaster.log import log_event
from logcaster.pipeline.admission import Admission
from logcaster.pipeline.pipeline import Pipeline
from logcaster.pipeline.queue import BatchQueue
from logcaster.pipeline.tail_sampler import TailSampler
from logcaster.sinks.base import Sink
from logcaster.sinks.file import FileSink
from logcaster.sinks.group import SinkGroup
from logcaster.sinks.memory import MemorySink
from logcaster.sources.syslog import SyslogListener
from logcaster.sources.tcp import line_ingest
from logcaster.stats import Stats
from logcaster.store.service import Store

logger = logging.getLogger("logcaster.app")


class Listener(Protocol):
    """A source or front end: something that binds a port and can be stopped."""

    port: int
    host: str  # the address configured
    hosts: list[str]  # the addresses bound, after start

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Source(Listener, Protocol):
    """An ingest listener: `stop` ends intake, `close` (after the drain) releases it."""

    async def close(self) -> None: ...


@dataclass
class Components:
    sinks: dict[str, Sink] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    frontends: dict[str, Listener] = field(default_factory=dict)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        pinned = config.store.max_unindexed if config.store_on else 0
        self.memory = MemorySink(config.memory.capacity, max_pinned=pinned)
        self.queue = BatchQueue(config.queue.max_events, config.queue.max_bytes)
        c = Components()
        # --- the component table ---------------------------------------------------
        # The store indexes the file sink's segments (its text): it follows the
        # durable watermark, and needs them plain (no gzip).
        self.store: Store | None = Store(config, self.memory) if config.store_on else None
        # The file sink goes first: an event reaches memory once it is on disk.
        self.file: FileSink | None = None
        if config.persist.dir is not None:
            persist = config.persist
            if self.store is not None:
                persist = msgspec.structs.replace(persist, compress=False)
            self.file = FileSink(
                persist,
                on_durable=self._durable_moved,
                on_segment_gone=self.store.segment_gone if self.store is not None else None,
            )
            c.sinks["file"] = self.file
        c.sinks["memory"] = self.memory
        # Forward groups last: they take batches into their own bounded buffer.
        self.groups = [
            SinkGroup(g, self.stats, forward_dir(config, g), on_durable=self._durable_moved)
            for g in config.forward
        ]
        for group in self.groups:
            c.sinks[group.name] = group
        self.pipeline = Pipeline(self.queue, list(c.sinks.values()), self.stats)
        self.pipeline.admission = Admission(self.queue, config.queue, self.stats)
        if config.tail_sampling.enabled:
            self.pipeline.tail_sampler = TailSampler(config.tail_sampling, self.stats)
        if self.store is not None:
            self.pipeline.on_durable(self.store.durable_moved)
        c.sources["ingest"] = line_ingest(config, self.pipeline, self.stats)
        if config.syslog.port is not None:
            c.sources["syslog"] = SyslogListener(config, self.pipeline, self.stats)
        self.queries = QueryService(config.query, self.memory, self.stats_snapshot, self.store)
        c.frontends["query"] = LineQueryServer(config.query.host, config.query.port, self.queries)
        # -----------------------------------------------------------------------------
        self.components = c

    def _durable_moved(self) -> None:
        self.pipeline.refresh_durable()

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by component name (real numbers after start, also for port 0)."""
        c = self.components
        return {name: part.port for name, part in (c.sources | c.frontends).items()}

    def stats_snapshot(self) -> dict[str, int | float]:
        s = self.stats
        stats: dict[str, int | float] = {
            "Total": s.received,
            "Dropped": s.dropped,
            "Current": self.memory.count,
            "Clients": s.clients,
            "Delivered": s.delivered,
            "Sampled": s.sampled,
            "Evicted": self.memory.evicted,
            "Truncated": s.truncated,
            "SinkErrors": s.sink_errors,
            "ConnectionsRefused": sum(s.connections_refused.values()),
            "IdleClosed": s.idle_closed,
            "QueueEvents": self.queue.events,
            "QueueBytes": self.queue.nbytes,
            "QueuePeakEvents": self.queue.peak_events,
            "QueuePeakBytes": self.queue.peak_bytes,
            "HighWatermark": s.high_watermark,
            "Uptime": time.time() - s.started_at,
        }
        sampler = self.pipeline.tail_sampler
        if sampler is not None:
            stats["TailHeld"] = sampler.held_events
            stats["TailKeepRate"] = sampler.rate  # p now (lowered under pressure)
            stats["TailEstimatedEvents"] = round(sampler.estimated)  # sum of 1/p over kept
            for decision, n in sorted(s.tail.items()):
                # TailKeptError, TailKeptSlow, ..., and TailSampled
                name = "Sampled" if decision == "sampled" else "Kept" + decision.title()
                stats["Tail" + name] = n
        # ConnectionsRefusedMaxConnectionsPerIp, DroppedQueueFullNewest, ...
        stats |= _by_reason("ConnectionsRefused", s.connections_refused)
        stats |= _by_reason("Dropped", s.drops)
        if self.groups:
            groups = self.groups
            members = [m for g in groups for m in g.members]
            stats["Forwarded"] = sum(g.delivered for g in groups)
            # Lost after delivery (a spool or dead-letter bound): not part of Dropped,
            # so Total = Delivered + queued + Dropped + Sampled holds with groups too.
            stats["ForwardDropped"] = sum(s.forward_drops.values())
            stats |= _by_reason("ForwardDropped", s.forward_drops)
            stats["ForwardBuffered"] = sum(g.buffered for g in groups)
            stats["ForwardRetried"] = sum(g.retried for g in groups)
            stats["Spooled"] = sum(g.spool.events for g in groups if g.spool is not None)
            stats["SpoolBytes"] = sum(g.spool.nbytes for g in groups if g.spool is not None)
            stats["DeadLettered"] = sum(g.dead_lettered for g in groups)
            stats["BreakerOpens"] = sum(m.breaker.opens for m in members)
            stats["SinksDown"] = sum(m.breaker.state != "closed" for m in members)
        if self.store is not None:
            stats["StoreIndexed"] = self.store.high_water
            stats["StoreLag"] = self.store.lag
            stats["IndexerRestarts"] = self.store.restarts
        return stats

    def reload(self, new: Config) -> None:
        """SIGHUP: apply what can change while running; name what needs a restart.

        Live: the tail sampler's thresholds, routes and rates (it reads its config
        at each decision). Everything else, `tail_sampling.enabled` included, is
        logged as needing a restart and keeps its running value.
        """
        old = self.config
        applied: list[str] = []
        sampler = self.pipeline.tail_sampler
        if sampler is not None and new.tail_sampling.enabled:
            applied = _changed(
                msgspec.to_builtins(old.tail_sampling),
                msgspec.to_builtins(new.tail_sampling),
                "tail_sampling.",
            )
            sampler.reconfigure(new.tail_sampling)
            self.config = msgspec.structs.replace(old, tail_sampling=new.tail_sampling)
        restart = [k for k in _changed(old.to_dict(), new.to_dict()) if k not in applied]
        log_event(
            logger,
            logging.INFO if not restart else logging.WARNING,
            "config_reloaded",
            always=True,
            applied=applied,
            needs_restart=restart,
        )

    async def start(self) -> None:
        """Start every component; a failure is one StartupError naming the option."""
        c = self.components
        if self.store is not None:
            await asyncio.to_thread(self.store.wait_for_earlier_indexer)
        for name, sink in c.sinks.items():
            with _starting("persist.dir" if name == "file" else name):
                await sink.start()
        if self.file is not None:
            with _starting("persist.dir"):
                if self.store is not None:
                    await asyncio.to_thread(self.store.load, self.file.durable_id)
                    self.memory.set_floor(self.store.high_water)  # before the replay fills it
                await self._replay(self.file)
            if self.store is not None:
                self.store.start(when=self.file.verified)
        for group in self.groups:
            if group.spool is not None:
                # Ids continue above what a spool holds from an earlier run (also
                # without persist.dir): the spool takes increasing ids only.
                self.pipeline.continue_after(group.spool.last_id)
        self.pipeline.start()
        for name, listener in (*c.sources.items(), *c.frontends.items()):
            host = listener.host
            with _starting(f"{name}.port", f"cannot listen on {host}:{listener.port}: "):
                await listener.start()
        hosts = {name: part.hosts for name, part in (c.sources | c.frontends).items()}
        exposed = [h for h in hosts["query"] if not _loopback(h)]
        if exposed:
            # Authentication comes later: until then anyone who can connect can read and CLEAR.
            log_event(
                logger,
                logging.WARNING,
                "query_port_exposed",
                always=True,
                hosts=exposed,
                port=self.ports["query"],
                reason="the query port is bound to a non-loopback address without authentication",
            )
        log_event(logger, logging.INFO, "ready", always=True, ports=self.ports, hosts=hosts)

    async def _replay(self, file: FileSink) -> None:
        """Restarts keep COUNT/RECENT/QUERY: the newest events on disk refill memory."""
        want = self.config.memory.capacity
        if self.store is not None:
            # Also every stored event the index does not cover yet (bounded).
            behind = file.last_id - self.store.high_water
            want = max(want, min(behind, want + self.config.store.max_unindexed))
        batches = await asyncio.to_thread(file.replay, want)
        self.memory.append(batches)
        self.pipeline.continue_after(file.last_id)
        log_event(
            logger,
            logging.INFO,
            "replayed",
            events=self.memory.count,
            last_id=file.last_id,
            dir=str(file.directory),
        )

    async def stop(self) -> bool:
        """Drain and stop; False if the deadline passed before everything was delivered."""
        c = self.components
        deadline = time.monotonic() + self.config.shutdown_timeout
        log_event(logger, logging.INFO, "draining", queued=self.queue.events)
        for source in c.sources.values():
            await source.stop()
        drained = await self.pipeline.drain(max(0.1, deadline - time.monotonic()))
        for frontend in c.frontends.values():
            await frontend.stop()
        for group in self.groups:  # what they still buffer: delivered, spooled or counted
            await group.stop(max(0.1, deadline - time.monotonic()))
        for sink in c.sinks.values():
            if not isinstance(sink, SinkGroup):
                await sink.stop()
        if self.store is not None:
            await self.store.stop()
        self.queries.close()
        # Acknowledged-delivery clients get the acks of their last lines, then EOF.
        self.pipeline.refresh_durable()
        for source in c.sources.values():
            await source.close()
        log_event(
            logger,
            logging.INFO,
            "stopped",
            always=True,
            drained=drained,
            received=self.stats.received,
            delivered=self.stats.delivered,
            dropped=self.stats.drops,
        )
        return drained


def _by_reason(prefix: str, counts: dict[str, int]) -> dict[str, int | float]:
    """STATS names for counts by reason, CamelCase like every STATS name:
    ("Dropped", {"queue_full_newest": 3}) -> {"DroppedQueueFullNewest": 3}."""
    return {prefix + reason.title().replace("_", ""): n for reason, n in sorted(counts.items())}


@contextlib.contextmanager
def _starting(what: str, context: str = "") -> Iterator[None]:
    """Turn an OS or storage failure while starting `what` into one StartupError.

    The traceback says nothing an operator can act on; the option name and the
    OS reason do ("persist.dir: x is not a directory", "ingest.port: ... in use").
    """
    try:
        yield
    except StartupError:
        raise
    except (OSError, LogCasterError) as exc:
        raise StartupError(what, context + _reason(exc)) from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        # uvloop words a bind failure "[Errno 98] error while attempting to bind on
        # address ('127.0.0.1', 9999): address already in use": the OS reason suffices.
        # (A resolver error, socket.gaierror, has a negative number and its own text.)
        reason = os.strerror(exc.errno) if exc.errno > 0 else exc.strerror or str(exc)
        return f"{exc.filename}: {reason}" if exc.filename else reason
    return str(exc)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False


def _changed(old: dict[str, object], new: dict[str, object], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys: list[str] = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(prefix + key)
    return keys
