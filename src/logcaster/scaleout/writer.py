"""`logcaster writer`: a Redis stream's entries into PostgreSQL, at least once from
Redis and exactly once in the table (docs/scaleout.md).

One process, one thread, one loop; run N of them (one consumer group, a
consumer name each). Each turn:

1. **Own pending first.** After a (re)connect the writer reads its own pending
   entries (`XREADGROUP … 0`): what it took before a crash or a lost connection
   and never acknowledged.
2. **Claims.** Every `claim_idle_ms / 2` it sweeps the group's pending list
   with `XAUTOCLAIM … min-idle claim_idle_ms`: a dead writer's entries, and
   entries that failed here, come back with their delivery count raised. Redis
   7 also returns the ids of pending entries the stream no longer holds (its
   MAXLEN trimmed them before any writer wrote them): they are lost, counted
   (`trimmed_entries`) and logged, never silently.
3. **New entries**: `XREADGROUP … >`, `batch_entries` at a time, blocking up to
   `block_ms`.

Entries are decoded (scaleout/entry.py) and parsed into rows (rows.py), and
written in one transaction (pg_write.py); only after COMMIT are they XACKed.
PostgreSQL down: the same rows are retried with backoff, nothing is
acknowledged, nothing read meanwhile. A set PostgreSQL refuses as data is
written entry by entry to find the bad ones. An entry that fails (cannot be
decoded, refused alone) stays pending; the claim sweep brings it back, and
once it was delivered more than `max_deliveries` times it is moved to the
dead-letter stream: XADD there with its error first, XACK after (a crash in
between leaves a copy in both, never in neither).

SIGTERM/SIGINT: the current set is finished (committed and acknowledged) if
PostgreSQL answers, and the writer exits 0.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import cast

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from logcaster.log import error_text, log_event
from logcaster.scaleout import entry
from logcaster.scaleout.options import WriterConfig
from logcaster.scaleout.pg_write import PgWriter
from logcaster.scaleout.rows import Row, batch_rows
from logcaster.scaleout.writer_metrics import WriterMetrics

logger = logging.getLogger("logcaster.scaleout.writer")

Entry = tuple[bytes, dict[bytes, bytes]]
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
HOUSEKEEP_S = 300.0
DEAD_MAX_LEN = 100_000


class StreamWriter:
    def __init__(self, config: WriterConfig, metrics: WriterMetrics | None = None) -> None:
        self.config = config
        self.consumer = config.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = metrics or WriterMetrics()
        self._redis = redis.Redis.from_url(
            config.redis,
            socket_timeout=max(5.0, config.block_ms / 1000 + 5),
            retry=Retry(NoBackoff(), 0),
        )
        self._pg = PgWriter(config.postgres, days_ahead=config.days_ahead)
        self._stop = threading.Event()
        self._claim_at = 0.0
        self._claim_from = b"0-0"
        self._housekeep_at = 0.0
        self._delay = BACKOFF_START

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        log_event(
            logger,
            logging.INFO,
            "writer_started",
            consumer=self.consumer,
            stream=self.config.stream,
        )
        while not self.stopping:
            try:
                self._ensure_group()
                self._own_pending()
                while not self.stopping:
                    self._turn()
                    self._delay = BACKOFF_START
            except (RedisError, OSError) as exc:
                self.metrics.errors.labels("redis").inc()
                self._failed("redis", exc)
        self._pg.close()
        self._redis.close()
        log_event(logger, logging.INFO, "writer_stopped", consumer=self.consumer)

    def _failed(self, kind: str, exc: BaseException) -> None:
        log_event(
            logger,
            logging.WARNING,
            "writer_retry",
            kind=kind,
            error=error_text(exc),
            wait=round(self._delay, 2),
        )
        self._stop.wait(self._delay)
        self._delay = min(self._delay * 2, BACKOFF_MAX)

    def _turn(self) -> None:
        now = time.monotonic()
        if now >= self._housekeep_at:
            self._housekeep()
        if now >= self._claim_at:
            self._claim()
        c = self.config
        got = self._redis.xreadgroup(
            c.group, self.consumer, {c.stream: ">"}, count=c.batch_entries, block=c.block_ms
        )
        entries = _entries(got)
        if entries:
            self._process(entries, {})

    def _ensure_group(self) -> None:
        c = self.config
        try:
            # From the stream's start: batches published before any writer ran count.
            self._redis.xgroup_create(c.stream, c.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _own_pending(self) -> None:
        c = self.config
        start = b"0"
        while not self.stopping:
            got = self._redis.xreadgroup(
                c.group, self.consumer, {c.stream: start}, count=c.batch_entries
            )
            entries = _entries(got)
            if not entries:
                return
            start = entries[-1][0]
            gone = [eid for eid, fields in entries if not fields]
            if gone:
                self._trimmed(gone)
                self._redis.xack(c.stream, c.group, *gone)
            live = [(eid, f) for eid, f in entries if f]
            if live:
                self._process(live, self._deliveries(live))

    def _claim(self) -> None:
        c = self.config
        self._claim_at = time.monotonic() + max(c.claim_idle_ms / 2000, 0.1)
        start = self._claim_from
        while not self.stopping:
            nxt, claimed, deleted = self._redis.xautoclaim(
                c.stream, c.group, self.consumer, c.claim_idle_ms, start, count=c.batch_entries
            )[:3]
            if deleted:
                self._trimmed(list(deleted))
            if claimed:
                self.metrics.claimed.inc(len(claimed))
                live = [(eid, f) for eid, f in claimed if f]
                if live:
                    self._process(live, self._deliveries(live))
            start = nxt
            if nxt in (b"0-0", "0-0") or not claimed:
                break
        self._claim_from = b"0-0" if start in (b"0-0", "0-0") else start
        pending = self._redis.xpending(c.stream, c.group)
        self.metrics.pending.set(int(pending["pending"]))
        for group in self._redis.xinfo_groups(c.stream):
            if group["name"] in (c.group, c.group.encode()) and group.get("lag") is not None:
                self.metrics.lag.set(int(group["lag"]))

    def _deliveries(self, entries: list[Entry]) -> dict[bytes, int]:
        """Each entry's delivery count, one exact XPENDING range per id (pipelined).

        Not one range from the smallest id to the largest: ids compare as numbers
        (`5-10` comes after `5-9`, not before as bytes), and a wide range may hold
        more of this consumer's entries than any count asked for."""
        c = self.config
        pipe = self._redis.pipeline(transaction=False)
        for eid, _ in entries:
            pipe.xpending_range(c.stream, c.group, eid, eid, 1, consumername=self.consumer)
        out: dict[bytes, int] = {}
        for info in pipe.execute():
            for i in info:
                out[cast(bytes, i["message_id"])] = int(i["times_delivered"])
        return out

    def _trimmed(self, ids: list[bytes]) -> None:
        self.metrics.trimmed.inc(len(ids))
        log_event(
            logger,
            logging.ERROR,
            "entries_trimmed",
            stream=self.config.stream,
            entries=len(ids),
            first=ids[0].decode(),
            why="MAXLEN removed them before a writer wrote them: raise scaleout.max_len",
        )

    # -- one set of entries ----------------------------------------------------

    def _process(self, entries: list[Entry], deliveries: dict[bytes, int]) -> None:
        decoded: list[tuple[bytes, list[Row], float]] = []
        for eid, fields in entries:
            try:
                node, batch = entry.decode(fields)
                decoded.append((eid, list(batch_rows(node, batch)), batch.received_at))
            except Exception as exc:  # an entry no code path expected: poison, not a crash
                self._entry_failed(eid, fields, error_text(exc), deliveries)
        if not decoded:
            return
        done = self._store(decoded, deliveries, dict(entries))
        if done:
            self._ack(done)

    def _store(
        self,
        decoded: list[tuple[bytes, list[Row], float]],
        deliveries: dict[bytes, int],
        fields: dict[bytes, dict[bytes, bytes]],
    ) -> list[bytes]:
        """Write the rows; return the ids stored (all, or those that went alone)."""
        rows = [row for _, part, _ in decoded for row in part]
        while not self.stopping or rows:
            try:
                with self.metrics.commit.time():
                    inserted = self._pg.write(rows)
                break
            except psycopg.OperationalError as exc:
                self.metrics.errors.labels("postgres").inc()
                self._pg.close()
                if self.stopping:
                    return []
                self._failed("postgres", exc)
            except psycopg.Error as exc:
                self.metrics.errors.labels("postgres").inc()
                if len(decoded) == 1:
                    eid = decoded[0][0]
                    self._entry_failed(
                        eid, fields[eid], f"PostgreSQL refused it: {exc}", deliveries
                    )
                    return []
                out: list[bytes] = []
                for one in decoded:
                    out += self._store([one], deliveries, fields)
                return out
        self._delay = BACKOFF_START
        now = time.time()
        for _, _, received in decoded:
            self.metrics.queryable.observe(max(0.0, now - received))
        self.metrics.events.inc(inserted)
        self.metrics.duplicates.inc(len(rows) - inserted)
        return [eid for eid, _, _ in decoded]

    def _entry_failed(
        self, eid: bytes, fields: dict[bytes, bytes], error: str, deliveries: dict[bytes, int]
    ) -> None:
        self.metrics.errors.labels("entry").inc()
        count = deliveries.get(eid, 1)
        if count > self.config.max_deliveries:
            self._dead_letter(eid, fields, error, count)
        elif count == 1:
            log_event(
                logger, logging.WARNING, "entry_failed", entry=eid.decode(), error=error[:300]
            )

    def _dead_letter(self, eid: bytes, fields: dict[bytes, bytes], error: str, count: int) -> None:
        c = self.config
        letter = dict(fields)
        letter.update(
            {b"error": error.encode()[:2000], b"entry": eid, b"deliveries": b"%d" % count}
        )
        self._redis.xadd(c.dead, letter, maxlen=DEAD_MAX_LEN, approximate=True)  # type: ignore[arg-type]
        self._redis.xack(c.stream, c.group, eid)
        self.metrics.dead_letters.inc()
        log_event(
            logger,
            logging.ERROR,
            "entry_dead_lettered",
            entry=eid.decode(),
            deliveries=count,
            error=error[:300],
            stream=c.dead,
        )

    def _ack(self, ids: list[bytes]) -> None:
        c = self.config
        while True:
            try:
                self._redis.xack(c.stream, c.group, *ids)
                self.metrics.entries.inc(len(ids))
                return
            except (RedisError, OSError) as exc:
                # Stored but not acknowledged: retried here, else redelivered later
                # and stored once (the keys).
                self.metrics.errors.labels("redis").inc()
                if self.stopping:
                    return
                self._failed("redis", exc)

    def _housekeep(self) -> None:
        self._housekeep_at = time.monotonic() + HOUSEKEEP_S
        try:
            dropped = self._pg.housekeep(self.config.retention_days, self.config.dedup_days)
        except psycopg.Error as exc:
            self.metrics.errors.labels("postgres").inc()
            self._pg.close()
            self._housekeep_at = time.monotonic() + 10
            log_event(logger, logging.WARNING, "housekeeping_failed", error=error_text(exc))
            return
        if dropped:
            log_event(logger, logging.INFO, "partitions_dropped", partitions=dropped)


def _entries(reply: object) -> list[Entry]:
    """The entries of an XREADGROUP reply for one stream."""
    if not reply:
        return []
    assert isinstance(reply, list)
    return list(reply[0][1])
