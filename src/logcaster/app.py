"""The server: its component table, start order and drain.

Data flows sources -> pipeline (queue, worker) -> sinks; services (the store)
follow the sinks' output; front ends read the sinks and services. Every part
is a `Component` (component.py), listed here by role and built from the one
`Config`; nothing registers itself. Start: sinks, the data directory's
recovery, services, pipeline, sources, front ends. Stop: sources first (stop
accepting, flush every connection's framer), then drain the queue into the
sinks, then front ends, sinks and services; last, the final acks go out and
every component closes (the sources the connections they kept for those acks).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from logcaster.backends import NO_BACKENDS, Backends
from logcaster.component import Component, Counters, Endpoint, starting
from logcaster.config import Config, forward_dir
from logcaster.exceptions import ConfigError
from logcaster.frontends.http.admin import RELOAD_PATH, AdminEndpoints
from logcaster.frontends.http.dashboard import DashboardEndpoints
from logcaster.frontends.http.elastic import ElasticEndpoints
from logcaster.frontends.http.export import EXPORT_PATH, ExportEndpoints
from logcaster.frontends.http.histogram import HistogramEndpoints
from logcaster.frontends.http.ingest import IngestEndpoints
from logcaster.frontends.http.loki import READY_PATH as LOKI_READY_PATH
from logcaster.frontends.http.loki import LokiEndpoints
from logcaster.frontends.http.observe import ObserveEndpoints
from logcaster.frontends.http.openapi import OpenApiEndpoints
from logcaster.frontends.http.otlp import OtlpEndpoints
from logcaster.frontends.http.query import QUERY_PATH, QueryEndpoints
from logcaster.frontends.http.server import PUBLIC, Access, HttpServer
from logcaster.frontends.http.tail import PATH as TAIL_PATH
from logcaster.frontends.http.tail import TailEndpoints
from logcaster.frontends.irc.server import IrcServer
from logcaster.frontends.lineproto import LineQueryServer, QueryService
from logcaster.log import log_event
from logcaster.metrics.health import Health
from logcaster.metrics.process import process_readings
from logcaster.metrics.registry import Readings, stats_values
from logcaster.metrics.tally import LevelTally
from logcaster.pipeline.admission import Admission
from logcaster.pipeline.broker import Broker
from logcaster.pipeline.pipeline import Pipeline
from logcaster.pipeline.queue import BatchQueue
from logcaster.pipeline.tail_sampler import TailSampler
from logcaster.reloading import (
    changed_keys,
    is_tls_key,
    load_field_keys,
    reload_field_keys,
    reload_tls,
)
from logcaster.security.fields import FieldEncryptor
from logcaster.security.guard import Security
from logcaster.security.redact import Redactor
from logcaster.security.reveal import FieldQueries
from logcaster.security.roles import Permission
from logcaster.security.settings import audit_dir
from logcaster.sinks.base import Sink
from logcaster.sinks.file import FileSink
from logcaster.sinks.forward.group import SinkGroup
from logcaster.sinks.memory import MemorySink
from logcaster.sources.files.source import FileSource
from logcaster.sources.stream_listener import line_ingest
from logcaster.sources.syslog import SyslogListener
from logcaster.stats import Stats
from logcaster.store.service import Store

logger = logging.getLogger("logcaster.app")


@dataclass
class Components:
    """The table, by role; the role sets the start and stop order (module docstring).

    Every entry is a `Component` (component.py): a new source, sink or front end
    is one line below, and the server drives it like every other.
    """

    sinks: dict[str, Sink] = field(default_factory=dict)
    services: dict[str, Component] = field(default_factory=dict)  # follow the sinks' output
    sources: dict[str, Component] = field(default_factory=dict)
    frontends: dict[str, Component] = field(default_factory=dict)

    def all(self) -> dict[str, Component]:
        return {**self.sinks, **self.services, **self.sources, **self.frontends}

    def listeners(self) -> dict[str, Component]:
        return {**self.sources, **self.frontends}


class Server:
    def __init__(self, config: Config, backends: Backends = NO_BACKENDS) -> None:
        self.config = config
        self.stats = Stats()
        self.draining = False  # Server.stop began: /readyz answers 503
        # Tokens, audit, rate limits: every listener holds a guard from it (guard.py).
        self.security = Security(config)
        # How SIGHUP and a network RELOAD read the configuration again (set by the CLI).
        self.config_loader: Callable[[], Config] | None = None
        pinned = config.store.max_unindexed if config.store_on else 0
        self.memory = MemorySink(config.memory.capacity, max_pinned=pinned)
        self.queue = BatchQueue(config.queue.max_events, config.queue.max_bytes)
        c = Components()
        # --- the component table ---------------------------------------------------
        # The store indexes the file sink's segments (its text): it follows the
        # durable watermark, and needs them plain (no gzip). It indexes once the
        # file sink has verified them at start (`verified`).
        verified = asyncio.Event()
        self.store: Store | None = None
        if config.store_on:
            self.store = c.services["store"] = Store(config, self.memory, verified)
        # The file sink goes first: an event reaches memory once it is on disk.
        self.file: FileSink | None = None
        if config.persist.dir is not None:
            persist = config.persist
            if self.store is not None:
                persist = msgspec.structs.replace(persist, compress=False)
            self.file = c.sinks["file"] = FileSink(
                persist,
                on_durable=self._durable_moved,
                on_segment_gone=self.store.segment_gone if self.store is not None else None,
                verified=verified,
            )
        c.sinks["memory"] = self.memory
        # Forward groups last: they take batches into their own bounded buffer.
        groups = [SinkGroup(g, forward_dir(config, g), self._durable_moved) for g in config.forward]
        if config.scaleout.publish is not None:  # scale-out's ingest node
            groups.append(backends.publish_group(config, self._durable_moved))
        for group in groups:
            c.sinks[group.name] = group
        # Events by level and service, from what memory received (metrics/tally.py).
        c.services["tally"] = LevelTally(self.memory, config.metrics.max_services)
        self.pipeline = Pipeline(self.queue, list(c.sinks.values()), self.stats)
        self.pipeline.admission = Admission(self.queue, config.queue, self.stats)
        if config.tail_sampling.enabled:
            self.pipeline.tail_sampler = TailSampler(config.tail_sampling, self.stats)
        # Rewriters (security/): every sink, the live tail and forward groups see
        # only what they leave. Redaction first: nothing else sees a secret.
        if config.redact.enabled:
            self.pipeline.rewriters.append(Redactor(config.redact))
        # Field encryption: after redaction, so what it seals is what would have
        # been stored.
        self.field_queries: FieldQueries | None = None
        self.field_encryptor: FieldEncryptor | None = None
        keys = load_field_keys(config)
        if keys is not None:
            self.field_queries = FieldQueries(config.encrypt.fields, keys)
            if config.encrypt.fields:
                self.field_encryptor = FieldEncryptor(config.encrypt.fields, keys)
                self.pipeline.rewriters.append(self.field_encryptor)
        if self.store is not None:
            self.pipeline.on_durable(self.store.durable_moved)
        # The live fan-out (live tail; later IRC and the dashboard): replays from memory.
        http = config.http
        self.broker = Broker(self.memory, http.tail_max_subscribers, http.tail_queue_events)
        self.pipeline.broker = self.broker
        # Every listener's one place for security: TLS, tokens, audit, limits (guard.py).
        security = self.security
        self.tls = security.tls
        guards = {name: security.guard(name) for name in ("ingest", "syslog", "query", "http")}
        ingest = guards["ingest"]
        c.sources["ingest"] = line_ingest(config, self.pipeline, self.stats, ingest, ingest.ssl)
        if config.sources.files.inputs:  # the file-tail source (docs/file-source.md)
            c.sources["files"] = FileSource(config, self.pipeline, self.stats)
        if config.syslog.port is not None:
            syslog = guards["syslog"]
            c.sources["syslog"] = SyslogListener(
                config, self.pipeline, self.stats, syslog, syslog.ssl
            )
        self.queries = QueryService(config.query, self.memory, self.stats_snapshot, self.store)
        if (history := config.scaleout.history) is not None:
            n = config.scaleout.history_connections
            c.services["history"] = backends.history_service(history, self.queries.planner, n)
        self.queries.fields = self.field_queries
        c.frontends["query"] = LineQueryServer(
            config.query.host,
            config.query.port,
            self.queries,
            guards["query"],
            self.reload_now,
            audit_dir(config),
            guards["query"].ssl,
        )
        self.health = Health(
            stats=self.stats,
            queue=self.queue,
            high_watermark=config.queue.high_watermark,
            local_sinks=[name for name in c.sinks if not name.startswith("forward:")],
            failing_sinks=self.pipeline.failing,
            groups=groups,
            store=self.store,
            # The file source binds nothing: it is never "unbound".
            unbound=lambda: [
                n for n, p in c.listeners().items() if p.endpoint is None and n != "files"
            ],
            draining=lambda: self.draining,
        )
        self.http: HttpServer | None = None
        if config.http.enabled:
            # It takes events (so it stops with the sources, before the queue
            # drains) and answers queries; later endpoints mount on it too.
            self.http = c.sources["http"] = HttpServer(
                config.http, guards["http"], guards["http"].ssl
            )
            http_server = self.http
            intake = IngestEndpoints(config, self.pipeline, self.stats, http_server)
            sending = Access(Permission.SEND, "ingest", summarized=True)
            http_server.mount(intake, sending)
            # The shippers' protocols (issue 19), through the same intake. Every
            # shipper sends its credentials with its probes too: all need SEND.
            http_server.mount(OtlpEndpoints(config, intake), sending)
            http_server.mount(
                ElasticEndpoints(config.elastic, intake, config.ingest.max_line_bytes), sending
            )
            http_server.mount(
                LokiEndpoints(config, intake), sending, paths={LOKI_READY_PATH: PUBLIC}
            )
            tail = TailEndpoints(config, self.broker)
            tail.fields = self.field_queries
            tail.valid = http_server.still_valid
            http_server.mount(
                tail,
                Access(Permission.READ_LOGS, "tail", audited=True, query_rate=True),
                streams=(TAIL_PATH,),
            )
            http_server.mount(
                ObserveEndpoints(self.readings, self.health),
                Access(Permission.READ_LOGS, "stats"),
                paths={"/healthz": PUBLIC, "/readyz": PUBLIC},
            )
            http_server.mount(
                QueryEndpoints(self.queries, config.http),
                Access(Permission.READ_LOGS, "query", audited=True, query_rate=True),
                streams=(QUERY_PATH,),
            )
            http_server.mount(
                ExportEndpoints(self.queries, config.http),
                Access(Permission.EXPORT_DATA, "export", audited=True, query_rate=True),
                streams=(EXPORT_PATH,),
            )
            http_server.mount(
                HistogramEndpoints(self.queries, config.http),
                Access(Permission.READ_LOGS, "query", audited=True, query_rate=True),
            )
            http_server.mount(OpenApiEndpoints(), PUBLIC)
            dashboard = DashboardEndpoints()
            http_server.mount(dashboard, PUBLIC)  # its files hold no data: the API checks
            http_server.page = dashboard.page
            http_server.mount(
                AdminEndpoints(http_server, audit_dir(config), self.reload_now),
                Access(Permission.READ_AUDIT, "audit", audited=True),
                # Audited by the endpoint, with the reload's result.
                paths={RELOAD_PATH: Access(Permission.RELOAD, "reload")},
            )
        if config.otlp.enabled:
            # OTLP's own port (4318 by convention): only /v1/logs, with the HTTP
            # server's bounds, its own guard and TLS.
            otlp = config.otlp
            guard = security.guard("otlp")
            bounds = msgspec.structs.replace(
                config.http, enabled=True, host=otlp.host, port=otlp.port, tls=otlp.tls
            )
            otlp_server = c.sources["otlp"] = HttpServer(bounds, guard, guard.ssl, name="otlp")
            otlp_ingest = IngestEndpoints(config, self.pipeline, self.stats, otlp_server)
            otlp_server.mount(
                OtlpEndpoints(config, otlp_ingest),
                Access(Permission.SEND, "ingest", summarized=True),
            )
        if config.irc.enabled:
            # Live log channels and LogBot (SPEC §7): the broker's streams, the
            # query service's searches, the IRC guard's tokens and TLS.
            c.frontends["irc"] = IrcServer(
                config.irc, self.broker, self.queries, security.guard("irc"), self.stats_snapshot
            )
        # -----------------------------------------------------------------------------
        self.components = c

    def _durable_moved(self) -> None:
        self.pipeline.refresh_durable()

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by component name (real numbers after start, also for port 0)."""
        return {name: end.port for name, end in self._endpoints().items()}

    def _endpoints(self) -> dict[str, Endpoint]:
        parts = self.components.listeners().items()
        return {name: part.endpoint for name, part in parts if part.endpoint is not None}

    def readings(self) -> Readings:
        """Every metric's value now: the one source of STATS, /api/v1/stats and
        /metrics (metrics/registry.py)."""
        out = Readings()
        self.stats.readings(out)
        self.security.readings(out)
        self.pipeline.readings(out)
        for part in self.components.all().values():
            part.readings(out)
        self.queries.readings(out)
        self.health.readings(out)
        process_readings(out)
        return out

    def stats_snapshot(self) -> Counters:
        """STATS: the seed's Total, Dropped, Current, Clients first, then the rest."""
        return stats_values(self.readings())

    def reload_now(self) -> str | None:
        """Read the configuration again and apply it (SIGHUP, RELOAD); the reason
        when it cannot be read (nothing changes then), else None."""
        if self.config_loader is None:
            return "no configuration source to read again"
        try:
            new = self.config_loader()
        except ConfigError as exc:
            # A bad file changes nothing; the reason (key and why) goes in the log line.
            log_event(
                logger,
                logging.ERROR,
                "config_reload_failed",
                always=True,
                error=str(exc),
                kept="the running config",
            )
            return str(exc)
        self.reload(new)
        return None

    def reload(self, new: Config) -> None:
        """SIGHUP: apply what can change while running; name what needs a restart.

        Live: the tail sampler's thresholds, routes and rates (it reads its config
        at each decision); the field-encryption keys file (after `logcaster keys
        rotate`); TLS certificates, keys, CAs, client_auth and min_version,
        re-read from their files even when the config names the same ones (new
        handshakes use them, open connections keep theirs). Everything else,
        `tail_sampling.enabled` and turning TLS on or off included, is logged as
        needing a restart and keeps its running value.
        """
        old = self.config
        self.security.reload()  # the token file, now (it is also re-read on change)
        reload_field_keys(self.config, self.field_queries, self.field_encryptor)
        changed = changed_keys(old.to_dict(), new.to_dict())
        tls_keys = [k for k in changed if is_tls_key(k) and not k.endswith(".enabled")]
        applied = tls_keys if reload_tls(self.tls, new) else []
        sampler = self.pipeline.tail_sampler
        if sampler is not None and new.tail_sampling.enabled:
            applied += changed_keys(
                msgspec.to_builtins(old.tail_sampling),
                msgspec.to_builtins(new.tail_sampling),
                "tail_sampling.",
            )
            sampler.reconfigure(new.tail_sampling)
            self.config = msgspec.structs.replace(old, tail_sampling=new.tail_sampling)
        # TLS keys stay out of both lists when their reload failed (logged on its own).
        restart = [k for k in changed if k not in applied and k not in tls_keys]
        log_event(
            logger,
            logging.INFO if not restart else logging.WARNING,
            "config_reloaded",
            always=True,
            applied=applied,
            needs_restart=restart,
        )

    async def start(self) -> None:
        """Start every component; a failure is one StartupError naming the option.

        Sinks first, then the recovery of the data directory (the store's index,
        memory refilled from disk, ids continued), the services, the pipeline, and
        last the listeners: nothing is accepted before it can be kept.
        """
        c = self.components
        if self.store is not None:
            # Before the file sink may repair active.log and drop its index.
            await asyncio.to_thread(self.store.wait_for_earlier_indexer)
        for sink in c.sinks.values():
            with starting(sink.option):
                await sink.start()
        if self.file is not None:
            with starting(self.file.option):
                await self._recover(self.file)
        # Ids continue above every id a sink holds from an earlier run.
        self.pipeline.continue_after(max(sink.last_id for sink in c.sinks.values()))
        for service in c.services.values():
            with starting(service.option):
                await service.start()
        self.pipeline.start()
        self.security.start()
        for listener in c.listeners().values():
            with starting(listener.option):
                await listener.start()
        endpoints = self._endpoints()
        hosts = {name: end.hosts for name, end in endpoints.items()}
        if not self.security.enabled:
            for name, bound in hosts.items():
                exposed = [h for h in bound if not _loopback(h)]
                if exposed:
                    log_event(
                        logger,
                        logging.WARNING,
                        "exposed_without_auth",
                        always=True,
                        listener=name,
                        hosts=exposed,
                        port=self.ports[name],
                        reason=f"{name} is bound to a non-loopback address without "
                        "authentication (auth.enabled): anyone who can connect may use it",
                    )
        log_event(
            logger,
            logging.INFO,
            "ready",
            always=True,
            ports=self.ports,
            hosts=hosts,
            tls=self.tls.listeners,
        )

    async def _recover(self, file: FileSink) -> None:
        """The store's index on disk, then memory refilled from the segments."""
        if self.store is not None:
            await asyncio.to_thread(self.store.load, file.durable_id)
            self.memory.set_floor(self.store.high_water)  # before the replay fills it
        await self._replay(file)

    async def _replay(self, file: FileSink) -> None:
        """Restarts keep COUNT/RECENT/QUERY: the newest events on disk refill memory."""
        want = self.config.memory.capacity
        if self.store is not None:
            # Also every stored event the index does not cover yet (bounded).
            behind = file.last_id - self.store.high_water
            want = max(want, min(behind, want + self.config.store.max_unindexed))
        batches = await asyncio.to_thread(file.replay, want)
        self.memory.append(batches)
        log_event(
            logger,
            logging.INFO,
            "replayed",
            events=self.memory.count,
            last_id=file.last_id,
            dir=str(file.directory),
        )

    async def stop(self) -> bool:
        """Drain and stop; False if the deadline passed before everything was delivered.

        Sources stop taking lines (flushing their framers), the queue drains
        into the sinks, front ends stop, sinks deliver or spool what they buffer
        (forward groups first, the file sink last), then the store; last, the
        final acks go out and every component closes.
        """
        c = self.components
        self.draining = True
        deadline = time.monotonic() + self.config.shutdown_timeout
        log_event(logger, logging.INFO, "draining", queued=self.queue.events)
        for source in c.sources.values():
            await source.stop(deadline)
        drained = await self.pipeline.drain(max(0.1, deadline - time.monotonic()))
        for frontend in c.frontends.values():
            await frontend.stop(deadline)
        for sink in reversed(c.sinks.values()):
            await sink.stop(deadline)
        for service in c.services.values():
            await service.stop(deadline)
        self.queries.close()
        # Acknowledged-delivery clients get the acks of their last lines, then EOF.
        self.pipeline.refresh_durable()
        for part in c.all().values():
            await part.close()
        self.security.close()
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


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_loopback
    except ValueError:
        return False
