"""The ingest node's side of scale-out: batches to a Redis stream (`serve --publish`).

The publisher is a forward group (sinks/forward/group.py) with one member, a
`StreamSink`, so everything a group does is reused, not copied: the bounded
outbox and the pipeline's backpressure, the window of chunks in flight, the
breaker and its backoff while Redis is down, the disk spool that takes the
batches meanwhile (`<persist.dir>/forward/publish/spool`, drained in order
when Redis answers), `durable_id` for acknowledged clients (acked once Redis
holds their batch, or the spool fsynced it), `/readyz`'s `forward:publish`
check and the `logcaster_forward_*{group="publish"}` metrics.

A chunk is one pipelined round trip: an `XADD <stream> MAXLEN ~ max_len * …`
per batch (scaleout/entry.py), sent without MULTI. A chunk that failed half
way is sent again whole: the entries Redis took twice carry the same (node,
event id) keys, which PostgreSQL stores once.

Redis must keep what it acknowledged: the first time it answers, the sink
reads `CONFIG GET appendonly appendfsync` and warns when a restart of Redis
would lose acknowledged batches (AOF off, or `appendfsync no`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from logcaster.component import starting
from logcaster.config import Config, publish_dir
from logcaster.exceptions import StorageError
from logcaster.log import error_text, log_event
from logcaster.options import ForwardGroupConfig, ForwardSinkConfig
from logcaster.pipeline.batch import Batch
from logcaster.scaleout import entry
from logcaster.scaleout.id_reserve import IdReservation
from logcaster.scaleout.node import node_id
from logcaster.scaleout.options import PUBLISH_GROUP, ScaleoutConfig
from logcaster.sinks.forward.group import SinkGroup
from logcaster.sinks.forward.transports import Rejection, SendError

logger = logging.getLogger("logcaster.scaleout")


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client that fails fast: the caller (the group's breaker, the writer's loop)
    owns retries, so redis-py's own are off."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def safe_url(url: str) -> str:
    """`url` without its password, for logs and metrics."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


class StreamSink:
    """One forward sink: XADD each batch of a chunk (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        stream: str,
        max_len: int,
        node: int,
        timeout: float,
        check: bool,
        ids: IdReservation | None = None,
    ) -> None:
        self.url = safe_url(url)
        self.name = f"redis-stream:{stream}"
        self._stream = stream
        self._max_len = max_len
        self._node = node
        self._timeout = timeout
        self._redis = redis_client(url, timeout)
        self._check_persistence = check
        self._ids = ids

    async def deliver(self, chunk: list[Batch]) -> list[Rejection]:
        ids = self._ids
        last = max(batch.last_id for batch in chunk)
        if ids is not None and last > ids.through:
            try:
                await asyncio.to_thread(ids.cover, last)
            except StorageError as exc:
                raise SendError(str(exc), maybe_stored=False) from exc
        pipe = self._redis.pipeline(transaction=False)
        for batch in chunk:
            if batch.texts:
                fields = entry.encode(batch, self._node)
                pipe.xadd(self._stream, fields, maxlen=self._max_len, approximate=True)  # type: ignore[arg-type]
        try:
            await asyncio.wait_for(pipe.execute(), self._timeout)
        except ResponseError as exc:
            # An answer that refuses (OOM, READONLY, NOAUTH): Redis took nothing of the
            # entry it refused, but may have taken those before it in the pipeline.
            raise SendError(f"{self.url}: {exc}", maybe_stored=len(chunk) > 1) from exc
        except (RedisError, OSError, TimeoutError) as exc:
            raise SendError(f"{self.url}: {error_text(exc) or 'timeout'}") from exc
        await self._persistence_once()
        return []

    async def check(self) -> None:
        try:
            await asyncio.wait_for(self._redis.ping(), self._timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise SendError(
                f"{self.url}: {error_text(exc) or 'timeout'}", maybe_stored=False
            ) from exc
        await self._persistence_once()

    async def _persistence_once(self) -> None:
        if not self._check_persistence:
            return
        self._check_persistence = False
        try:
            settings = await self._redis.config_get("append*")
        except (RedisError, OSError, TimeoutError) as exc:
            # Managed Redis often renames CONFIG: say we could not tell.
            log_event(
                logger, logging.INFO, "redis_persistence_unknown", url=self.url, error=str(exc)
            )
            return
        risk = persistence_risk(settings)
        if risk is not None:
            log_event(logger, logging.WARNING, "redis_persistence_risk", url=self.url, risk=risk)

    async def close(self) -> None:
        await self._redis.aclose()


def persistence_risk(settings: Mapping[Any, Any]) -> str | None:
    """What a Redis restart would lose of what it acknowledged, from CONFIG GET append*;
    None when nothing (AOF on, appendfsync always) or at most a second (everysec)."""
    values = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in settings.items()
    }
    if values.get("appendonly") != "yes":
        return (
            "appendonly is off: a restart of Redis loses every batch since its last "
            "snapshot, though the nodes acknowledged them (set appendonly yes)"
        )
    if values.get("appendfsync") == "no":
        return (
            "appendfsync is no: a crash of Redis's host loses what the OS had not "
            "written yet (set appendfsync everysec or always)"
        )
    return None


def publish_group(
    section: ScaleoutConfig,
    node: int,
    directory: Path | None,
    on_durable: Callable[[], None] | None,
) -> SinkGroup:
    """The forward group that publishes to `section.publish` (see the module docstring)."""
    assert section.publish is not None
    url = section.publish
    config = ForwardGroupConfig(
        name=PUBLISH_GROUP,
        primaries=[ForwardSinkConfig(url=url, write_timeout=section.write_timeout)],
        batch_events=section.batch_events,
        max_in_flight=section.max_inflight,
        buffer_events=section.buffer_events,
        spool_max_bytes=section.spool_max_bytes,
        spool_policy=section.spool_policy,
    )

    ids = IdReservation(directory) if directory is not None else None

    def open_sink(cfg: ForwardSinkConfig) -> StreamSink:
        return StreamSink(
            cfg.url,
            stream=section.stream,
            max_len=section.max_len,
            node=node,
            timeout=cfg.write_timeout,
            check=section.check_persistence,
            ids=ids,
        )

    return PublishGroup(config, directory, on_durable, open_sink, ids=ids)


class PublishGroup(SinkGroup):
    """The publisher's forward group: new ids continue above the reserved ones too."""

    def __init__(self, *args: Any, ids: IdReservation | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids = ids

    @property
    def last_id(self) -> int:
        reserved = self._ids.through if self._ids is not None else 0
        return max(super().last_id, reserved)


def publisher(config: Config, on_durable: Callable[[], None] | None) -> SinkGroup:
    """The ingest node's publisher, with the node's id (made and kept in persist.dir)."""
    with starting("persist.dir"):
        node = node_id(config.persist.dir)
        return publish_group(config.scaleout, node, publish_dir(config), on_durable)
