"""What every part in `app.py`'s table is: one small protocol.

Sources, sinks, the store and the front ends are all `Component`s: built from
the config (and the shared parts they need: `Stats`, the pipeline, the query
service), then driven by the server through the same five calls, in the order
`app.py` gives:

- `start()`: bind, open files, spawn tasks. A failure raises; `starting`
  turns it into one `StartupError` naming `option`, the config key an operator
  changes to fix it (a forward group: its name).
- `stop(deadline)`: stop taking new work and finish or hand on what it holds
  by `deadline` (a `time.monotonic()` value; None: the part's own default).
  Sources stop accepting and flush their framers; forward groups deliver,
  spool or count what they buffer; parts that hold nothing to deliver (the
  file sink's last fsync, the store's indexer finishing its request) ignore it.
- `close()`: after every component stopped and the final acks went out:
  release what is left (connections kept open for their acks, clients).
- `endpoint`: the address a listener bound after `start` (port 0 resolved),
  None for parts that bind nothing. The `ready` log line reports them.
- `readings(out)`: add the part's metrics, declared next to the code that
  counts them, with their current values (metrics/registry.py). STATS,
  `/api/v1/stats` and `/metrics` all show these; STATS adds up same-named
  values of several parts (two forward groups' `Forwarded`), Prometheus keeps
  them apart by label (`group`).

Server-wide counts every part adds to (events received, dropped by reason)
live in the one `Stats` object instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from logcaster.exceptions import LogCasterError, StartupError
from logcaster.metrics.registry import Readings

Counters = dict[str, int | float]  # STATS: name -> value (metrics/registry.stats_values)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a listener is reachable: its port and the addresses bound."""

    port: int
    hosts: list[str]


class Component(Protocol):
    """See the module docstring. Its name is its key in `app.py`'s table."""

    option: str  # the config key a start-up failure names ("ingest.port", "persist.dir")

    async def start(self) -> None: ...

    async def stop(self, deadline: float | None = None) -> None: ...

    async def close(self) -> None: ...

    @property
    def endpoint(self) -> Endpoint | None: ...

    def readings(self, out: Readings) -> None: ...


def server_endpoint(server: asyncio.Server) -> Endpoint:
    """The bound port (the real one for port 0) and addresses of a started server."""
    sockets = server.sockets
    return Endpoint(sockets[0].getsockname()[1], [s.getsockname()[0] for s in sockets])


@contextlib.contextmanager
def starting(what: str, context: str = "") -> Iterator[None]:
    """Turn an OS or storage failure while starting `what` into one StartupError.

    The traceback says nothing an operator can act on; the option name and the
    OS reason do ("persist.dir: x is not a directory", "ingest.port: ... in use").
    A StartupError raised inside (a listener naming its address) passes through.
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


def listening(option: str, host: str, port: int) -> contextlib.AbstractContextManager[None]:
    """`starting` for a bind: the failure names the address ("cannot listen on h:p: ...")."""
    return starting(option, f"cannot listen on {host}:{port}: ")
