"""The file source's batch labels: `file:<service>`, then `\\x1f`, the file's key
and the offset the batch's texts end at (`<key>/<offset>`).

Not pipeline/batch.py's `mark_label` (`\\x1e`): that mark names a client's
session, and the forward spool and scale-out's writers take it for one (line
numbers to deduplicate on), which a file position is not. The parser drops the
part from `\\x1f` on and gives an event the label's service when its text names
none (parsing/parse.py); the store's indexer and the level tally, which read
services from the texts in bulk, do the same per batch with `fill_services`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from logcaster.parsing.codes import ServiceCodes

PREFIX = "file:"
SEP = "\x1f"  # in no other label: block headers percent-encode control characters


def file_label(service: str, key: str, offset: int) -> str:
    return f"{PREFIX}{service}{SEP}{key}/{offset}"


def file_position(label: str) -> tuple[str, int] | None:
    """(key, end offset) of a file batch's label; None for any other label."""
    if not label.startswith(PREFIX):
        return None
    _, sep, mark = label.partition(SEP)
    key, slash, offset = mark.partition("/")
    if not sep or not slash or len(key) != 32 or not offset.isdigit():
        return None
    return key, int(offset)


def service_of(label: str) -> str | None:
    """The input's service a file batch's label names (None: not a file's label)."""
    if not label.startswith(PREFIX):
        return None
    return label[len(PREFIX) :].partition(SEP)[0] or None


def fill_services(
    codes: npt.NDArray[np.uint16], sources: Sequence[tuple[int, str]], services: ServiceCodes
) -> None:
    """Give the events of file batches without a service of their own the batch's.

    `codes`: one service code per event; `sources`: (index of the batch's first
    event, its label) per batch (or block), in order."""
    ends = [at for at, _ in sources[1:]] + [len(codes)]
    for (at, label), end in zip(sources, ends, strict=True):
        name = service_of(label)
        if name is not None:
            part = codes[at:end]
            part[part == ServiceCodes.NONE] = services.code(name)
