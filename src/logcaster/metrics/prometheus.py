"""`GET /metrics`: the server's `Readings` as Prometheus families, at scrape time.

One custom collector turns the readings the server gathers for this scrape
(`Server.readings`, the same values STATS shows) into counter, gauge and
histogram families; prometheus_client's own process, platform and GC
collectors add the process's memory, CPU and file descriptors. Nothing is
copied into prometheus_client's metric objects between scrapes: the parts'
own attributes are the only copy of every value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric as Family

from logcaster.metrics.registry import Labels, Metric, Readings, Value

__all__ = ["CONTENT_TYPE", "Exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the text format generate_latest writes


class _ReadingsCollector:
    """Builds the families from one fresh `Readings` per scrape."""

    def __init__(self, read: Callable[[], Readings]) -> None:
        self._read = read

    def describe(self) -> Iterable[Family]:
        return ()  # registering must not read the server

    def collect(self) -> Iterable[Family]:
        return families(self._read())


def families(readings: Readings) -> list[Family]:
    """The Prometheus families of `readings`: one per family name, values of the
    same labels summed (twins share a family: registry.Metric.also)."""
    shape: dict[str, Metric] = {}
    for metric in readings.declared:
        first = shape.setdefault(metric.family, metric)
        if (first.kind, first.labels, first.help) != (metric.kind, metric.labels, metric.help):
            raise ValueError(f"{metric.family} is declared twice with different shapes")
    sums: dict[str, dict[Labels, Value]] = {name: {} for name in shape}
    for metric, labels, value in readings.values:
        per_labels = sums[metric.family]
        per_labels[labels] = per_labels.get(labels, 0) + value
    out: dict[str, Family] = {}
    for name, metric in shape.items():
        names = list(metric.labels)
        if metric.kind == "histogram":
            out[name] = HistogramMetricFamily(name, metric.help, labels=names)
            continue
        family = (CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily)(
            name, metric.help, labels=names
        )
        for values, value in sums[name].items():
            family.add_metric(list(values), value)
        out[name] = family
    for metric, values, histogram in readings.histograms:
        buckets = [(_le(bound), float(n)) for bound, n in histogram.cumulative()]
        hist = cast(HistogramMetricFamily, out[metric.family])
        hist.add_metric(list(values), buckets, histogram.sum)
    return list(out.values())


def _le(bound: float) -> str:
    """An upper bound as the text format writes it: 0.5, 1.0, +Inf."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


class Exposition:
    """The registry `/metrics` renders: ours and the standard process collectors."""

    def __init__(self, read: Callable[[], Readings]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_ReadingsCollector(read))
        ProcessCollector(registry=self.registry)
        self.registry.register(PLATFORM_COLLECTOR)
        self.registry.register(GC_COLLECTOR)

    def render(self) -> bytes:
        """The text exposition format (CONTENT_TYPE)."""
        return generate_latest(self.registry)
