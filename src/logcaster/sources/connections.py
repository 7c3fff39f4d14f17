"""Bounds on a stream listener's connections: how many, from one address, how idle.

A connection costs a file descriptor and its framer state, so thousands of idle
or abandoned ones (a flood, a leaking client) must not pile up: past
`ingest.max_connections` in all, or `ingest.max_connections_per_ip` from one
peer address, a new connection is closed at once; one idle for
`ingest.idle_timeout` is closed by the listener's sweep, and so is one that
has been inside the same line for `ingest.line_timeout` (a client trickling
bytes is never idle: slowloris). Each is counted
(STATS, /metrics) and logged, at most once a second per reason (with the count
since the last line), so a connection flood does not become a log flood.
"""

from __future__ import annotations

import logging
import resource
import time
from typing import Any

from logcaster.log import log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import IngestConfig

logger = logging.getLogger("logcaster.sources.connections")

# The stream listeners' metrics (tcp, syslog-tcp); the HTTP listener's are twins
# (frontends/http/server.py): one family, another STATS name.
CONNECTIONS = Metric(
    "connections", "gauge", "Open connections, by listener", ("listener",), stats="Clients"
)
REFUSED = Metric(
    "connections_refused",
    "counter",
    "Connections closed at once over a connection cap, by listener and reason",
    ("listener", "reason"),
    stats="ConnectionsRefused",
    stats_by=("reason", "ConnectionsRefused"),
)
IDLE_CLOSED = Metric(
    "idle_closed_connections",
    "counter",
    "Connections closed after ingest.idle_timeout without data",
    ("listener",),
    stats="IdleClosed",
)

SLOW_CLOSED = Metric(
    "slow_closed_connections",
    "counter",
    "Connections closed as too slow: a line past ingest.line_timeout, HTTP headers "
    "past http.header_timeout, a body under http.min_body_rate",
    ("listener",),
    stats="SlowClosed",
)

_LOG_EVERY_S = 1.0
# Descriptors beyond the connections: listeners, segment files, the indexer's pipes.
_SPARE_FDS = 256


class ConnectionLimits:
    __slots__ = (
        "_logged",
        "_name",
        "_per_ip",
        "_unlogged",
        "idle_closed",
        "idle_timeout",
        "line_timeout",
        "max_per_ip",
        "max_total",
        "open",
        "refused",
        "slow_closed",
    )

    def __init__(
        self,
        name: str,
        max_total: int,
        max_per_ip: int,
        idle_timeout: float = 0.0,
        line_timeout: float = 0.0,
    ) -> None:
        self._name = name
        self.refused: dict[str, int] = {}  # connections refused, by reason
        self.idle_closed = 0
        self.slow_closed = 0
        self.max_total = max_total
        self.max_per_ip = max_per_ip  # 0: no per-address cap
        self.idle_timeout = idle_timeout  # 0: never closed for idleness
        self.line_timeout = line_timeout  # 0: a line may take forever
        self._per_ip: dict[str, int] = {}
        self._logged: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    @classmethod
    def of(cls, name: str, config: IngestConfig) -> ConnectionLimits:
        """A stream listener's limits (TCP ingest, syslog-tcp): ingest.*."""
        return cls(
            name,
            config.max_connections,
            config.max_connections_per_ip,
            config.idle_timeout,
            config.line_timeout,
        )

    def readings(self, out: Readings) -> None:
        out.each(REFUSED, dict(sorted(self.refused.items())), self._name)
        out.add(IDLE_CLOSED, self.idle_closed, self._name)
        out.add(SLOW_CLOSED, self.slow_closed, self._name)

    def check_fd_limit(self) -> None:
        """Raise the open-files soft limit toward the cap (as far as the hard limit
        allows), and warn if it stays below: then accept() fails (EMFILE) for
        everyone, queries included, before the cap is reached."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.max_total + _SPARE_FDS
        if soft == resource.RLIM_INFINITY or soft >= want:
            return
        raised = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (ValueError, OSError):
                pass
        if soft < want:
            log_event(
                logger,
                logging.WARNING,
                "fd_limit_below_max_connections",
                listener=self._name,
                max_connections=self.max_total,
                nofile=soft,
                hint="raise the open-files hard limit (ulimit -Hn, LimitNOFILE=) or lower "
                "ingest.max_connections",
            )

    def admit(self, ip: str, open_now: int) -> bool:
        """Take a slot for a new connection from `ip`, `open_now` being open already;
        False (counted, logged) if over a cap."""
        if open_now >= self.max_total:
            self._note("max_connections", ip)
            return False
        held = self._per_ip.get(ip, 0)
        if self.max_per_ip and held >= self.max_per_ip:
            self._note("max_connections_per_ip", ip)
            return False
        self._per_ip[ip] = held + 1
        return True

    def release(self, ip: str) -> None:
        """An admitted connection ended."""
        held = self._per_ip.get(ip, 0) - 1
        if held > 0:
            self._per_ip[ip] = held
        else:
            self._per_ip.pop(ip, None)

    def closed_idle(self, ip: str) -> None:
        self.idle_closed += 1
        self._log("idle_timeout", ip, "connection_closed_idle", idle_timeout=self.idle_timeout)

    def closed_slow(self, ip: str) -> None:
        self.slow_closed += 1
        self._log("line_timeout", ip, "connection_closed_slow", line_timeout=self.line_timeout)

    def _note(self, reason: str, ip: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._log(reason, ip, "connection_refused")

    def _log(self, reason: str, ip: str, event: str, **timeout: Any) -> None:
        """One line per reason per second at most, with the count since the last one."""
        self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._logged.get(reason, -_LOG_EVERY_S) < _LOG_EVERY_S:
            return
        self._logged[reason] = now
        log_event(
            logger,
            logging.WARNING,
            event,
            listener=self._name,
            reason=reason,
            peer=ip,  # the latest one
            connections=self._unlogged.pop(reason),
            **timeout,
        )
