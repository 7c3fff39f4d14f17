"""Byte-pair statistics of stored text: which piece of a literal is rarest.

A scan keys on a short prefix of each literal, so the literal chosen, and the
part of it given to Hyperscan, matter more than the engine (docs/store-engine.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# A literal piece shorter than this gives Hyperscan's literal engine little to
# work with; a suffix is only preferred while it keeps at least this many bytes.
MIN_PIECE = 3


class ByteStats:
    """Byte-pair counts of a sample of stored payload (one chunk is enough).

    Estimates how many candidates a literal will produce per byte scanned; built
    once per store or segment and shared by every query's Scanner.
    """

    def __init__(self, sample: bytes) -> None:
        a = np.frombuffer(sample, np.uint8).astype(np.int32)
        self.size = max(len(sample), 1)
        self.pairs: npt.NDArray[np.int64] = np.bincount(
            a[:-1] * 256 + a[1:], minlength=65536
        ).astype(np.int64)

    def pair(self, lit: bytes, i: int) -> int:
        if i + 1 < len(lit):
            return int(self.pairs[lit[i] * 256 + lit[i + 1]])
        return int(self.pairs[lit[i] * 256 : lit[i] * 256 + 256].sum())

    def estimate(self, lit: bytes) -> int:
        """An upper bound of the literal's occurrences in the sample: its rarest pair's."""
        return min(self.pair(lit, i) for i in range(len(lit)))

    def rare_suffix(self, lit: bytes) -> int:
        """Start of the suffix (>= MIN_PIECE bytes) whose first byte pair is rarest.

        Hyperscan's literal engine keys on a short prefix of each literal; a
        common prefix (`timeout` shares `time` with `"timestamp"` on every JSON
        line) means many false candidates, a rare one few. The suffix ends where
        the literal ends, so the callback finds the literal's start without SOM.
        """
        last = max(0, len(lit) - MIN_PIECE)
        return min(range(last + 1), key=lambda i: (self.pair(lit, i), i))
