"""Shared fixtures: real servers on ephemeral ports, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from logcaster.testing import ServerProcess, start_server

ServerFactory = Callable[..., ServerProcess]


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
