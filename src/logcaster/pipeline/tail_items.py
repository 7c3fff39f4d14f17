"""What a live subscriber reads (pipeline/broker.py): events, and notices in
their place: `Skipped` (events it does not get, and why), `Live` (the replay is
over), `Reset` (the server's numbering restarted) and `Ended`."""

from __future__ import annotations

from dataclasses import dataclass

from logcaster.event import Event


@dataclass(frozen=True, slots=True)
class Skipped:
    """Events the subscriber does not get: `count` of them, ids first..last."""

    count: int
    first_id: int
    last_id: int
    reason: str  # "slow": its queue was full; "not_in_memory": too old to replay


@dataclass(frozen=True, slots=True)
class Live:
    """Everything up to `after_id` was replayed or skipped: live events follow."""

    after_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    """`since` is above every delivered id (`last_id`): ids restarted."""

    since: int
    last_id: int


@dataclass(frozen=True, slots=True)
class Ended:
    """The last item: the subscription is over (`shutdown`, `unsubscribed`)."""

    reason: str


Item = Event | Skipped | Live | Reset | Ended
