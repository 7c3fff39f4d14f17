"""The store as a server component: the indexer process and the high-water id.

Owns the indexer child process (`store/indexer_process.py`) and the store's
high-water id `S`: every stored event up to `S` is indexed and answered by
`reader`, every later one by the memory buffer, which keeps them pinned
(`MemorySink.floor`). Data flow: the pipeline's durable watermark moves ->
`durable_moved` -> one `D <id>` request in flight to the indexer -> its
`S <id>` answer moves `S` and releases memory. Once durable events have waited
`store.index_delay_ms` unindexed (active.log's last chunk is not full yet),
the request is `T <id>`: index that partial chunk too. So every durable event
is in the store within about that delay, and `StoreLag` reaches 0 when idle.

Failures: the indexer exits or crashes -> logged, restarted with backoff
(0.5 s doubling to 30 s, reset after a minute of health); `S` waits
meanwhile and memory holds the newer events up to `store.max_unindexed`.
The server exits -> the indexer reads EOF and exits. The store is *failing*
(`failing`, which /readyz reports) when the indexer exited
`FAILING_RESTARTS` times within `FAILING_WITHIN_S` and has not run for
`HEALTHY_AFTER_S` since, or when durable events wait unindexed and `S` has
not moved for `STALLED_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from pathlib import Path

from logcaster.config import Config
from logcaster.datadir.marker import ensure_marker
from logcaster.datadir.versions import INDEX_FORMAT
from logcaster.log import log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.segments.lock import DataDirLock, DataDirLocked
from logcaster.segments.names import ACTIVE_NAME, parse_segment_name
from logcaster.sinks.memory import MemorySink
from logcaster.store import hs_reports
from logcaster.store.catalog import active_first_id, delete_index, index_dir
from logcaster.store.indexer import indexed_on_disk
from logcaster.store.reader import StoreReader

logger = logging.getLogger("logcaster.store")

RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
STOP_WAIT_S = 5.0
FAILING_RESTARTS = 3  # indexer exits within FAILING_WITHIN_S that make the store failing
FAILING_WITHIN_S = 300.0
# Unindexed durable events and no progress this long: failing. Generous: one
# request may index a large backlog (a rebuild) before it answers.
STALLED_S = 120.0

INDEXED = Metric(
    "store_indexed_id",
    "gauge",
    "The store's high-water id: every stored event up to it is indexed",
    stats="StoreIndexed",
)
LAG = Metric(
    "store_lag_events", "gauge", "Durable events the store has not indexed yet", stats="StoreLag"
)
RESTARTS = Metric(
    "store_indexer_restarts",
    "counter",
    "Times the indexer process exited and was restarted",
    stats="IndexerRestarts",
)
FAILING = Metric(
    "store_failing", "gauge", "1 while the store is failing (indexer restarting or stalled)"
)


class Store:
    """The store as a component (`component.py`). Its start-up comes in three steps,
    around the file sink's: `wait_for_earlier_indexer` before it starts, `load`
    after it opened the segments, `start` last; the indexer runs once `verified`
    (the file sink's start-up verification) is set."""

    option = "persist.dir"
    endpoint = None

    def __init__(
        self, config: Config, memory: MemorySink, verified: asyncio.Event | None = None
    ) -> None:
        """`verified`: set when the file sink has verified its segments at start; a
        segment it rewrites must not be indexed before."""
        assert config.persist.dir is not None
        self.directory = Path(config.persist.dir)
        self._log_level = config.log_level
        self.memory = memory
        self._verified = verified
        hs_reports.configure(config.store.c_collector)
        self.reader = StoreReader(self.directory, threads=config.store.threads)
        self.high_water = 0
        self.restarts = 0
        self._exits: deque[float] = deque(maxlen=FAILING_RESTARTS)  # monotonic times
        self._behind_since: float | None = None  # unindexed events, no progress since
        self._durable = 0
        self._sent = -1  # the durable id last asked of this indexer process
        self._in_flight = False
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._tail_delay = config.store.index_delay_ms / 1000
        self._tail_timer: asyncio.TimerHandle | None = None
        self._tail_due = False  # durable events waited the delay: ask for the tail

    def wait_for_earlier_indexer(self) -> None:
        """At start, before the file sink may repair active.log and drop its index:
        an indexer a killed server left running holds `DIR/index/lock` until it has
        finished its last request; wait for it, so the index has one writer."""
        lock = DataDirLock(index_dir(self.directory))
        try:
            lock.acquire()
        except DataDirLocked as exc:
            log_event(logger, logging.WARNING, "waiting_for_indexer", pid=exc.pid)
            lock.acquire(wait=None)
        lock.release()

    def load(self, durable_id: int) -> None:
        """At start (in a thread): the high-water id the index on disk supports."""
        index_dir(self.directory).mkdir(parents=True, exist_ok=True)
        # The index's own version (docs/data-format.md): marked when it is made.
        ensure_marker(index_dir(self.directory), "index", INDEX_FORMAT, "index")
        self.high_water = indexed_on_disk(self.directory)
        self._durable = durable_id

    async def start(self) -> None:
        """Run the indexer (once the file sink's segments are verified)."""
        self.memory.set_floor(self.high_water)
        if self.lag > 0:
            self._behind_since = time.monotonic()
        if not hs_reports.ENABLED:
            # Answers are the same; text and regex counts take about twice as long.
            log_event(
                logger, logging.INFO, "store_scans_without_c_collector", reason=hs_reports.why_off()
            )
        self._task = asyncio.create_task(self._supervise(self._verified), name="store-indexer")

    @property
    def lag(self) -> int:
        """Durable events not yet indexed."""
        return max(0, self._durable - self.high_water)

    @property
    def failing(self) -> str | None:
        """Why the store is failing (module docstring), or None."""
        now = time.monotonic()
        exits = self._exits
        if (
            len(exits) == FAILING_RESTARTS
            and exits[-1] - exits[0] < FAILING_WITHIN_S
            and now - exits[-1] < HEALTHY_AFTER_S
        ):
            return f"the indexer exited {len(exits)} times within {FAILING_WITHIN_S:g} s"
        since = self._behind_since
        if since is not None and self.lag > 0 and now - since > STALLED_S:
            return f"{self.lag} events wait for the indexer, no progress for {now - since:.0f} s"
        return None

    def durable_moved(self, durable_id: int) -> None:
        """Pipeline listener: more events are durable; ask the indexer for them."""
        self._durable = max(self._durable, durable_id)
        if self._behind_since is None and self.lag > 0:
            self._behind_since = time.monotonic()
        self._request()
        self._arm_tail()

    def _arm_tail(self) -> None:
        """Start the delay for the unindexed durable events, if not running.

        Armed when events are first left unindexed and after each answer: one
        timer per delay at most, never per event."""
        if self._tail_timer is not None or self._tail_due or self._stopping:
            return
        if self._durable > self.high_water:
            loop = asyncio.get_running_loop()
            self._tail_timer = loop.call_later(self._tail_delay, self._tail_elapsed)

    def _tail_elapsed(self) -> None:
        self._tail_timer = None
        self._tail_due = self._durable > self.high_water
        self._request()

    def segment_gone(self, path: Path) -> None:
        """The file sink deleted or rewrote a segment: its index goes too.

        Called from the housekeeping thread (or at start, for an active.log
        repaired before the store loads); the reader drops the segment at its
        next snapshot, and queries holding an mmap of it finish with it.
        """
        first = parse_segment_name(path.name)
        if first is None and path.name == ACTIVE_NAME:
            first = active_first_id(path)
        if first is not None:
            delete_index(self.directory, first)

    def _request(self) -> None:
        proc = self._proc
        if self._durable <= self.high_water:
            self._tail_due = False  # indexed meanwhile: nothing waits
        if proc is None or proc.stdin is None or self._in_flight:
            return
        tail = self._tail_due
        if self._durable <= self._sent and not tail:
            return
        self._sent = self._durable
        self._in_flight = True
        self._tail_due = False
        try:
            proc.stdin.write(b"%s %d\n" % (b"T" if tail else b"D", self._durable))
        except (ConnectionError, RuntimeError):
            self._in_flight = False  # it is exiting: the supervisor restarts it

    def _answered(self, line: bytes) -> None:
        kind, _, value = line.strip().partition(b" ")
        if kind == b"S" and value.isdigit():
            mark = int(value)
            if mark > self.high_water:
                self.high_water = mark
                self.memory.set_floor(mark)
                self._behind_since = time.monotonic() if self.lag > 0 else None
        self._in_flight = False
        self._request()
        self._arm_tail()

    async def _supervise(self, when: asyncio.Event | None) -> None:
        if when is not None:
            await when.wait()
        delay = RESTART_FIRST_S
        while not self._stopping:
            started = time.monotonic()
            rc = await self._run_once()
            if self._stopping:
                return
            self.restarts += 1
            self._exits.append(time.monotonic())
            if time.monotonic() - started > HEALTHY_AFTER_S:
                delay = RESTART_FIRST_S
            log_event(
                logger,
                logging.ERROR,
                "indexer_exited",
                returncode=rc,
                restart_in_s=delay,
                high_water=self.high_water,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def _run_once(self) -> int | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "logcaster.store.indexer_process",
            str(self.directory),
            self._log_level,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self._sent = -1
        self._in_flight = False
        log_event(logger, logging.INFO, "indexer_started", pid=proc.pid)
        assert proc.stdout is not None
        try:
            self._request()
            self._arm_tail()
            while line := await proc.stdout.readline():
                self._answered(line)
        finally:
            self._proc = None
        return await proc.wait()

    def readings(self, out: Readings) -> None:
        out.add(INDEXED, self.high_water)
        out.add(LAG, self.lag)
        out.add(RESTARTS, self.restarts)
        out.add(FAILING, int(self.failing is not None))

    async def close(self) -> None:
        return None

    async def stop(self, deadline: float | None = None) -> None:
        """Let the indexer finish its request and exit (EOF on its input), then reap it."""
        self._stopping = True
        if self._tail_timer is not None:
            self._tail_timer.cancel()
            self._tail_timer = None
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
            except TimeoutError:
                log_event(logger, logging.WARNING, "indexer_killed", pid=proc.pid)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.reader.close()
