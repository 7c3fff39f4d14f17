"""The query node's component (`serve --history URL`): PostgreSQL in the store's place.

At start it checks the database (reachable, schema migrated) and hands the
`History` to the planner, so the line protocol, the HTTP API and the dashboard
(searches and histograms) read the writers' tables; a failure is one start-up
line naming `scaleout.history`. See scaleout/history.py for the SQL.
"""

from __future__ import annotations

import asyncio

from logcaster.component import Endpoint, starting
from logcaster.metrics.registry import Readings
from logcaster.query.planner import Planner
from logcaster.scaleout.history import History


class HistoryService:
    option = "scaleout.history"

    def __init__(self, url: str, planner: Planner, *, connections: int) -> None:
        self.history = History(url, timeout=planner.config.timeout, connections=connections)
        self._planner = planner

    async def start(self) -> None:
        with starting(self.option):
            await asyncio.to_thread(self.history.check)
        self._planner.history = self.history

    async def stop(self, deadline: float | None = None) -> None:
        return None

    async def close(self) -> None:
        self._planner.history = None
        await asyncio.to_thread(self.history.close)

    @property
    def endpoint(self) -> Endpoint | None:
        return None

    def readings(self, out: Readings) -> None:
        return None
