"""What the metrics tests share: HTTP GETs with aiohttp's client, /metrics parsed
into samples, and promtool (scripts/test-deps unpacks it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.sender_helpers import tool

PROMETHEUS_PREFIX = Path(
    os.environ.get("LOGCASTER_PROMETHEUS_PREFIX", "/opt/logcaster-test-deps/prometheus")
)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def http_get(port: int, path: str) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of one GET on a fresh connection."""

    async def get() -> tuple[int, str, bytes]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"http://127.0.0.1:{port}{path}") as response,
        ):
            return response.status, response.headers.get("Content-Type", ""), await response.read()

    return asyncio.run(get())


def get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    status, _, body = http_get(port, path)
    doc = orjson.loads(body)
    assert isinstance(doc, dict)
    return status, doc


def metrics_text(port: int) -> str:
    status, content_type, body = http_get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    return body.decode()


def samples(text: str) -> Samples:
    """Every sample of an exposition by its full name (with _total, _bucket, ...)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def served_names(text: str) -> set[str]:
    """Every name a query can read from an exposition: each sample's, and the
    sample names of families without samples yet (a labelled counter before its
    first count), a counter's with `_total`, a histogram's `_bucket`, `_sum`,
    `_count`."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for family in text_string_to_metric_families(text):
        names.update(s.name for s in family.samples)
        names.update(family.name + end for end in suffixes.get(family.type, ("",)))
    return names


def value(found: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for got, v in found.get(name, []) if labels.items() <= got.items())


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on an exposition (its lint included)."""
    binary = tool("promtool", PROMETHEUS_PREFIX / "usr/bin/promtool")
    return subprocess.run(
        [binary, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
