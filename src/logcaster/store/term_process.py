"""The token-index process: `python -m logcaster.store.term_process DIR PARENT_PID [LOG_LEVEL]`.

Started by the indexer process (store/indexer_process.py) beside itself, at a
lower CPU priority (nice 10): building the token index costs about as much
per chunk as the event index, and must never delay the event index (how soon
events are queryable) nor the server's intake. It finds its work in the files
(final chunks without a token record, store/term_indexer.py), sleeps while
there is none, and exits once its parent is gone. One writer at a time: an
exclusive lock on `index/terms.lock` makes a new one wait until an old one
(left by a killed indexer) has finished its chunk and exited.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
from pathlib import Path

from logcaster.log import log_event, setup_logging
from logcaster.malloc_tuning import tune_malloc
from logcaster.store.catalog import index_dir
from logcaster.store.term_indexer import TermIndexer

logger = logging.getLogger("logcaster.store.terms")
LOCK_NAME = "terms.lock"
NICE = 10
IDLE_S = 0.25  # a look for new final chunks this often when there is no work
SLICE_S = 1.0  # a look at the parent at least this often while there is work


def serve(directory: Path, parent: int) -> None:
    path = index_dir(directory) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):
            os.nice(NICE)
        indexer = TermIndexer(directory)
        try:
            while os.getppid() == parent:
                if not indexer.run(time.monotonic() + SLICE_S):
                    time.sleep(IDLE_S)
        finally:
            indexer.close()
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[2].isdigit():
        print(
            "usage: python -m logcaster.store.term_process DIR PARENT_PID [LOG_LEVEL]",
            file=sys.stderr,
        )
        return 2
    setup_logging(argv[3] if len(argv) > 3 else "info")
    tune_malloc()
    try:
        serve(Path(argv[1]), int(argv[2]))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # a token index left unbuilt only makes queries scan
        log_event(logger, logging.ERROR, "store_terms_failed", error=repr(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
