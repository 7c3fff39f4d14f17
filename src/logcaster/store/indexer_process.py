"""The indexer process: `python -m logcaster.store.indexer_process DIR [LOG_LEVEL]`.

Spawned by the server's store (`store/service.py`), connected by two pipes.
The server writes `D <id>` lines: every event up to id is durable in the
segments. The indexer indexes up to there (`StoreIndexer.catch_up`), fsyncs
the index, and answers `S <id>`: the index holds every event up to `id`
(events after it, up to the durable id, are the partial last chunk of
active.log, left for later). `T <id>` asks the same and the partial last
chunk too: the server sends it once durable events waited
`store.index_delay_ms`. The server keeps one request in flight, so the pipes
carry positions, never event data, and never fill.

The index is derived data: if this process dies the server restarts it and it
picks up where the index files end; if the server dies the indexer reads EOF
and exits.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from logcaster.log import log_event, setup_logging
from logcaster.segments.lock import DataDirLock
from logcaster.store.catalog import index_dir
from logcaster.store.indexer import StoreIndexer

logger = logging.getLogger("logcaster.store.indexer")


def _requests(fd: int) -> tuple[int, bool] | None:
    """Block for the next request: the highest durable id asked, and whether the
    tail was asked (None at EOF).

    Requests that queued up while the last one was served collapse into one.
    """
    buf = b""
    while True:
        data = os.read(fd, 4096)
        if not data:
            return None
        buf += data
        if buf.endswith(b"\n"):
            break
    best = 0
    tail = False
    for line in buf.split(b"\n"):
        kind, _, value = line.partition(b" ")
        if kind in (b"D", b"T") and value.isdigit():
            best = max(best, int(value))
            tail |= kind == b"T"
    return best, tail


def serve(directory: Path, fd_in: int, fd_out: int) -> None:
    # One writer of the index: an indexer left running by a killed server
    # finishes its last request (then reads EOF and exits) before this one starts.
    owner = DataDirLock(index_dir(directory)).acquire(wait=None)
    try:
        _serve(directory, fd_in, fd_out)
    finally:
        owner.release()


def _serve(directory: Path, fd_in: int, fd_out: int) -> None:
    indexer = StoreIndexer(directory)
    gone = indexer.remove_orphans()
    if gone:
        log_event(logger, logging.INFO, "store_orphans_removed", first_ids=gone)
    try:
        while (request := _requests(fd_in)) is not None:
            durable, tail = request
            indexer.catch_up(durable, tail=tail)
            os.write(fd_out, b"S %d\n" % indexer.indexed_to(durable))
    finally:
        indexer.close()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m logcaster.store.indexer_process DIR [LOG_LEVEL]", file=sys.stderr)
        return 2
    setup_logging(argv[2] if len(argv) > 2 else "info")
    try:
        serve(Path(argv[1]), sys.stdin.fileno(), sys.stdout.fileno())
    except BrokenPipeError:
        return 0  # the server is gone
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
