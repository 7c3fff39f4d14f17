"""The file source's batch labels: `file:<service>` and, after `\\x1e`, the file's
key and end offset (`mark_label`). The parser gives an event the label's service
when its text names none (parsing/parse.py); the store's indexer, which reads
services from the texts in bulk, does the same per block with `fill_services`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from logcaster.parsing.codes import ServiceCodes

PREFIX = "file:"
_MARK_SEP = "\x1e"  # pipeline/batch.py's


def service_of(label: str) -> str | None:
    """The input's service a file batch's label names (None: not a file's label)."""
    if not label.startswith(PREFIX):
        return None
    return label[len(PREFIX) :].partition(_MARK_SEP)[0] or None


def fill_services(
    codes: npt.NDArray[np.uint16], sources: Sequence[tuple[int, str]], services: ServiceCodes
) -> None:
    """Give the events of file blocks without a service of their own the block's.

    `codes`: one service code per event of a chunk; `sources`: (index of the
    block's first event, its label) per block, in order."""
    ends = [at for at, _ in sources[1:]] + [len(codes)]
    for (at, label), end in zip(sources, ends, strict=True):
        name = service_of(label)
        if name is not None:
            part = codes[at:end]
            part[part == ServiceCodes.NONE] = services.code(name)
