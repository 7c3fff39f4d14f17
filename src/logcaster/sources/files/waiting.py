"""More files than `max_open_files`: who waits, who gives up a slot, the warning.

Files take turns (as Filebeat's close_inactive frees a harvester): while a file
waits, an open file that was read to its end and has held its slot for a turn
(`rotate_wait`, at least one `poll_interval`) is closed, its place kept in
memory; the files that waited longest are opened first. A closed file is opened
again (from where it was consumed) once it has grown and a slot is free.
"""

from __future__ import annotations

import logging

from logcaster.log import log_event
from logcaster.sources.files.discovery import Found

logger = logging.getLogger("logcaster.sources.files")


def turn_s(rotate_wait: float, poll_interval: float) -> float:
    """How long an open file keeps its slot while others wait."""
    return max(rotate_wait, poll_interval)


def warn_limit(found: Found, limit: int, waiting: int, warned: dict[str, int]) -> None:
    """Name each glob that matches more files than may be open, once per count."""
    for pattern, count in found.per_glob.items():
        if count > limit and warned.get(pattern) != count:
            warned[pattern] = count
            log_event(
                logger,
                logging.WARNING,
                "too_many_files",
                glob=pattern,
                matched=count,
                max_open_files=limit,
                waiting=waiting,
                reason=f"{pattern} matches {count} files, more than "
                f"sources.files.max_open_files ({limit}): the rest take turns",
            )
    if waiting and not warned:
        # No single glob is over the limit, all of them together are.
        warned["*"] = waiting
        log_event(
            logger,
            logging.WARNING,
            "too_many_files",
            glob="(all inputs)",
            matched=sum(found.per_glob.values()),
            max_open_files=limit,
            waiting=waiting,
            reason=f"the globs match more files than sources.files.max_open_files "
            f"({limit}): {waiting} wait for a turn",
        )
