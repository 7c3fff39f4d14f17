"""The ingest node's id: half of every event's key in PostgreSQL (node, event id).

Made once, at random, and kept in `<persist.dir>/node-id`, so a restarted node
keeps its id and a redelivered batch has the same keys as the first delivery.
A node without persist.dir gets a new id per run (its event ids restart too,
so the pair stays unique) and says so at start.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from logcaster.exceptions import StorageError
from logcaster.log import log_event
from logcaster.scaleout.number_file import read_number, save_number

logger = logging.getLogger("logcaster.scaleout")
NODE_FILE = "node-id"


def new_id() -> int:
    """1 .. 2**63-1: a positive PostgreSQL bigint."""
    return secrets.randbits(63) or 1


def node_id(directory: str | None) -> int:
    """The node's id, read from `directory` or made and saved there; StorageError
    when the file cannot be read or written, or holds something else."""
    if directory is None:
        node = new_id()
        log_event(logger, logging.WARNING, "node_id_per_run", node=node, why="no persist.dir")
        return node
    path = Path(directory) / NODE_FILE
    saved = read_number(path, "a node id")
    if saved is None:
        made = new_id()
        save_number(path, made)
        log_event(logger, logging.INFO, "node_id_created", node=made, path=str(path))
        return made
    if not 0 < saved < 1 << 63:
        raise StorageError(f"{path} does not hold a node id: {saved}", path=str(path))
    return saved
