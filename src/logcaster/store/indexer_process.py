"""The indexer process: `python -m logcaster.store.indexer_process DIR [LOG_LEVEL]`.

Spawned by the server's store (`store/service.py`), connected by two pipes.
The server writes `D <id>` lines: every event up to id is durable in the
segments. The indexer indexes up to there (`StoreIndexer.catch_up`, in steps
of STEP_CHUNKS chunks), fsyncs the index, and answers `S <id>` after each
step: the index holds every event up to `id`
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

import contextlib
import logging
import os
import select
import subprocess
import sys
from pathlib import Path

from logcaster.log import log_event, setup_logging
from logcaster.malloc_tuning import tune_malloc
from logcaster.segments.lock import DataDirLock
from logcaster.store.catalog import index_dir
from logcaster.store.indexer import StoreIndexer

logger = logging.getLogger("logcaster.store.indexer")
STEP_CHUNKS = 16  # ~16 MiB of segment text per answer, ~0.1-0.3 s of work


def _requests(fd: int, wait: bool = True) -> tuple[int, bool] | None:
    """The next request: the highest durable id asked, and whether the tail was
    asked; None at EOF. `wait=False`: (0, False) when none is waiting.

    Requests that queued up while the last one was served collapse into one.
    """
    if not wait and not select.select([fd], [], [], 0)[0]:
        return 0, False
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


def serve(directory: Path, fd_in: int, fd_out: int, log_level: str = "info") -> None:
    # One writer of the index: an indexer left running by a killed server
    # finishes its last request (then reads EOF and exits) before this one starts.
    owner = DataDirLock(index_dir(directory)).acquire(wait=None)
    try:
        _serve(directory, fd_in, fd_out, log_level)
    finally:
        owner.release()


def _serve(directory: Path, fd_in: int, fd_out: int, log_level: str) -> None:
    indexer = StoreIndexer(directory)
    gone = indexer.remove_orphans()
    if gone:
        log_event(logger, logging.INFO, "store_orphans_removed", first_ids=gone)
    # The token index is built beside, at a lower priority (store/term_process.py).
    terms = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "logcaster.store.term_process",
            str(directory),
            str(os.getpid()),
            log_level,
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        durable, tail, more = 0, False, False
        # After each step of at most STEP_CHUNKS chunks the server hears how far
        # the index is (it moves memory's floor and the queryable id), also
        # while a backlog of many seconds is indexed.
        while (request := _requests(fd_in, wait=not more)) is not None:
            durable, tail = max(durable, request[0]), tail or request[1]
            indexer.catch_up(durable, tail=tail, max_chunks=STEP_CHUNKS)
            more = indexer.unfinished
            os.write(fd_out, b"S %d\n" % indexer.indexed_to(durable))
            tail &= more  # a tail request holds until its step is done
    finally:
        indexer.close()
        terms.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            terms.wait(5)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m logcaster.store.indexer_process DIR [LOG_LEVEL]", file=sys.stderr)
        return 2
    level = argv[2] if len(argv) > 2 else "info"
    setup_logging(level)
    tune_malloc()
    try:
        serve(Path(argv[1]), sys.stdin.fileno(), sys.stdout.fileno(), level)
    except BrokenPipeError:
        return 0  # the server is gone
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
