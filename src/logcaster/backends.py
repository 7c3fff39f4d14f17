"""Parts only some configurations use, handed to the `Server` by whoever builds it.

Scale-out's publisher (Redis) and history (PostgreSQL) need client libraries
that cost about 10 MB of memory each when imported (docs/memory.md). The
server's modules do not import them: `logcaster serve` (cli.py, the one module
that imports inside functions) imports these parts only when the configuration
turns them on, and passes them here. A `Server` built without the part its
configuration asks for refuses to start, naming the option.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from logcaster.component import Component
from logcaster.config import Config
from logcaster.exceptions import StartupError
from logcaster.query.planner import Planner
from logcaster.sinks.forward.group import SinkGroup

# scaleout/publish.py's publisher(config, on_durable)
Publisher = Callable[[Config, Callable[[], None] | None], SinkGroup]
# scaleout/history_service.py's HistoryService(url, planner, connections=n)
HistoryFactory = Callable[[str, Planner, int], Component]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backends:
    publisher: Publisher | None = None  # for scaleout.publish
    history: HistoryFactory | None = None  # for scaleout.history

    def publish_group(self, config: Config, on_durable: Callable[[], None] | None) -> SinkGroup:
        return _needed(self.publisher, "scaleout.publish")(config, on_durable)

    def history_service(self, url: str, planner: Planner, connections: int) -> Component:
        return _needed(self.history, "scaleout.history")(url, planner, connections)


NO_BACKENDS = Backends()


def _needed(part: T | None, option: str) -> T:
    """`part`, which the configuration's `option` asks for; StartupError without it."""
    if part is None:
        raise StartupError(option, "this server was built without it (logcaster serve adds it)")
    return part
