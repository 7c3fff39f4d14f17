"""The line framer of each `sources.files.inputs` entry (its multi-line grouping)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from logcaster.config import Config
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import LineFramer


def framer_maker(config: Config, i: int) -> Callable[[], LineFramer]:
    """The framer of input `i`: its multi-line grouping (true, false or a rule's name)."""
    entry = config.sources.files.inputs[i]
    max_line = config.ingest.max_line_bytes
    multiline = config.multiline
    rule = entry.multiline
    if rule is False:
        return lambda: LineFramer(max_line, None)
    if isinstance(rule, str):
        multiline = msgspec.structs.replace(multiline, enabled=True)
        grouper = Grouper([r for r in multiline.rules if r.name == rule])
    else:
        grouper = Grouper([r for r in multiline.rules if not r.listeners])
    return lambda: LineFramer(max_line, multiline, grouper)
