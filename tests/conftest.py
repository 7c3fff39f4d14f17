"""Shared fixtures: real servers on ephemeral ports, stopped after each test (or module)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from logcaster.store import hs_reports
from logcaster.testing import ServerProcess, start_server
from tests.forward_helpers import HttpReceiver
from tests.lineproto_helpers import CORPUS

ServerFactory = Callable[..., ServerProcess]

# Fixtures kept in their own module (tests/browser_helpers.py: browser, page,
# color_scheme), shared with every test as a plugin rather than imported here, where
# ruff would call the names unused.
pytest_plugins = ["tests.browser_helpers"]

# The files that take a worker longest (the suite's --durations, summed per file:
# 35 s to 200 s each), longest first, then the rest in collection order
# (pyproject's --no-loadscope-reorder: xdist's default order, most tests first,
# put the one-test scale-out scenario last, where it ran alone for minutes).
# With --dist loadfile a file runs whole on one worker.
SLOW_FILES = (
    "test_bench_smoke.py",
    "test_scaleout_faults.py",
    "test_sinks_forward_failover.py",
    "test_acks.py",
    "test_tls_listeners.py",
    "test_http_ingest.py",
    "test_http_openapi.py",
    "test_sinks_forward_spool.py",
    "test_simulate.py",
    "test_sinks_forward_slow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES)))  # stable


# Every server a test starts (in-process or not) gets an ephemeral HTTP port unless
# the test sets one: the default, 8080, would collide between servers and runs.
os.environ.setdefault("LOGCASTER_HTTP__PORT", "0")


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Start servers with extra CLI args: `server_factory("--buffer-size", "5")`."""
    started: list[ServerProcess] = []

    def make(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(*args, env=env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """A server with default settings, syslog on."""
    return server_factory("--syslog-port", "0")


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[ServerProcess]:
    """A server holding exactly the line-protocol corpus (tests/lineproto_helpers.py);
    tests using it must not change it."""
    server = start_server()
    try:
        server.send(("\n".join(doc.text for doc in CORPUS) + "\n").encode())
        server.wait_total(len(CORPUS))
        yield server
    finally:
        server.kill()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    """An NDJSON receiver for forward groups (tests/forward_helpers.py), closed after the test."""
    r = HttpReceiver()
    r.start()
    yield r
    r.close()


def need_built(*parts: object) -> None:
    """C extension functions built by `make` (scripts/build-native), each None
    where it is not: one missing is a failure under CI, else a skip."""
    if any(part is None for part in parts):
        message = "a C extension is not built (scripts/build-native)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def need_extension() -> None:
    """The store's C collector of Hyperscan reports (see need_built)."""
    need_built(True if hs_reports.built() else None)


@pytest.fixture(params=["c", "callbacks"])
def collector(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Scanners made in the test collect their reports in C, or by callbacks."""
    if request.param == "c":
        need_extension()
    monkeypatch.setattr(hs_reports, "ENABLED", request.param == "c")
    yield request.param
