"""Every counter and gauge of the server: declared once, read once, shown three ways.

A `Metric` is declared beside the code that counts it (stats.py for the
server-wide counts, the queue, the memory ring, each listener, each forward
group, the store, the query front ends): its Prometheus name (under
`logcaster_`, in base units, `_total` added to counters), its type, help and
label names, and its STATS name when STATS shows it. The values themselves are
the plain attributes each part keeps anyway, counted per batch, never per
event; they are read only when someone asks: each part adds its current values
to a `Readings` (`Component.readings`, component.py), and the server gathers
one `Readings` per request (`Server.readings`). From that one set of values:

- STATS (the line protocol) and `GET /api/v1/stats` (JSON) show `stats_values`;
- `GET /metrics` shows the Prometheus families (metrics/prometheus.py).

So the three can never disagree, and a new counter is one declaration and one
line in its owner's `readings`.

STATS rules (those of the flat counters this replaced): a metric with a STATS
name shows the sum of its values over every label (two forward groups'
`Forwarded` add up); `stats_by=(label, prefix)` also shows one name per value
of that label, CamelCase (`Dropped` and reason `queue_full_newest` give
`DroppedQueueFullNewest`). A metric declared by a part that exists shows 0
before it counts anything. Two declarations may share a STATS name (their
values add up: local and forward sink errors are one `SinkErrors`) or a
Prometheus name (one family: `logcaster_connections` of the ingest listeners,
STATS `Clients`, and of HTTP, STATS `HttpConnections`) when type and labels
agree; `Metric.also` makes such a twin.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from logcaster.metrics.histogram import Histogram

PREFIX = "logcaster_"
# STATS shows these first, in this order: the seed's clients read them so.
STATS_FIRST = ("Total", "Dropped", "Current", "Clients")

Kind = Literal["counter", "gauge", "histogram"]
Labels = tuple[str, ...]
Value = int | float

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_STATS_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric's declaration (see the module docstring)."""

    name: str  # after `logcaster_`, without `_total` (added to counters)
    kind: Kind
    help: str
    labels: Labels = ()
    stats: str | None = None  # the STATS name of the sum over every label
    stats_by: tuple[str, str] | None = None  # (label, STATS prefix): one STATS name per value

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name.endswith("_total"):
            raise ValueError(f"metric name {self.name!r}: lower snake case, no _total")
        if self.stats is not None and not _STATS_NAME.fullmatch(self.stats):
            raise ValueError(f"STATS name {self.stats!r} of {self.name}: CamelCase")
        if self.stats_by is not None and self.stats_by[0] not in self.labels:
            raise ValueError(f"{self.name}: stats_by names a label it does not have")
        if self.kind == "histogram" and (self.stats or self.stats_by):
            raise ValueError(f"{self.name}: a histogram has no STATS name")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{self.name}: a label named twice")

    @property
    def family(self) -> str:
        """The Prometheus family name (a counter's samples add `_total`)."""
        return PREFIX + self.name

    def also(self, stats: str | None, stats_by: tuple[str, str] | None = None) -> Metric:
        """The same Prometheus family under another STATS name (module docstring)."""
        return dataclasses.replace(self, stats=stats, stats_by=stats_by)


class Readings:
    """The values of every metric at one moment, as the parts added them."""

    __slots__ = ("declared", "histograms", "values")

    def __init__(self) -> None:
        # Insertion-ordered set of the metrics seen: STATS shows them in this order,
        # and a metric without values yet still shows (0 in STATS, a bare family).
        self.declared: dict[Metric, None] = {}
        self.values: list[tuple[Metric, Labels, Value]] = []
        self.histograms: list[tuple[Metric, Labels, Histogram]] = []

    def declare(self, metric: Metric) -> None:
        """A metric that has no values yet (0 in STATS, a family without samples)."""
        self.declared[metric] = None

    def add(self, metric: Metric, value: Value, *labels: str) -> None:
        """One value of a counter or gauge, with its label values in declared order."""
        if metric.kind == "histogram" or len(labels) != len(metric.labels):
            raise ValueError(f"{metric.name}: expects labels {metric.labels}, got {labels}")
        self.declared[metric] = None
        self.values.append((metric, labels, value))

    def each(self, metric: Metric, counts: Mapping[str, Value], *fixed: str) -> None:
        """One value per key of `counts`: the key is the last label's value, `fixed`
        the ones before it (`each(DROPPED_BY_GROUP, drops, group)`)."""
        self.declared[metric] = None
        for key, value in counts.items():
            self.add(metric, value, *fixed, key)

    def pairs(self, metric: Metric, counts: Mapping[tuple[str, str], Value]) -> None:
        """One value per key of `counts`, the key being the two labels' values."""
        self.declared[metric] = None
        for (first, second), value in counts.items():
            self.add(metric, value, first, second)

    def histogram(self, metric: Metric, histogram: Histogram, *labels: str) -> None:
        if metric.kind != "histogram" or len(labels) != len(metric.labels):
            raise ValueError(f"{metric.name}: not a histogram with labels {labels}")
        self.declared[metric] = None
        self.histograms.append((metric, labels, histogram))


def stats_name(prefix: str, value: str) -> str:
    """`prefix` + `value` in CamelCase: ("Dropped", "queue_full_newest") ->
    "DroppedQueueFullNewest"."""
    return prefix + value.title().replace("_", "").replace("-", "")


def stats_values(readings: Readings) -> dict[str, Value]:
    """STATS: the headline names first, then every STATS name in the order its
    metric was first read, then the per-label names (`stats_by`), sorted."""
    out: dict[str, Value] = dict.fromkeys(
        (name for name in STATS_FIRST if any(m.stats == name for m in readings.declared)), 0
    )
    for metric in readings.declared:
        if metric.stats is not None:
            out.setdefault(metric.stats, 0)
    by_label: dict[str, Value] = {}
    for metric, labels, value in readings.values:
        if metric.stats is not None:
            out[metric.stats] += value
        if metric.stats_by is not None:
            label, prefix = metric.stats_by
            name = stats_name(prefix, labels[metric.labels.index(label)])
            by_label[name] = by_label.get(name, 0) + value
    for name in sorted(by_label):
        out[name] = out.get(name, 0) + by_label[name]
    return out
