"""The level reader of the queue's sample policy: which texts are ERROR or worse.

The sample policy thins the non-error events of a full queue and never drops
an ERROR or FATAL one, so it must know levels before anything is parsed. It
reads them with the bulk extractor (about 2 µs per event, exact with the full
parser) rather than parsing events one by one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from logcaster.parsing.codes import LEVEL_CODES
from logcaster.parsing.extract import Extractor

_ERROR = LEVEL_CODES["ERROR"]


class LevelReader:
    __slots__ = ("_extractor",)

    def __init__(self) -> None:
        self._extractor = Extractor()

    def errors(self, texts: list[bytes]) -> npt.NDArray[np.bool_]:
        """For each text: whether its event is at ERROR level or above."""
        levels: npt.NDArray[np.uint8] = self._extractor.extract_texts(texts, 0.0).level
        return levels >= _ERROR
