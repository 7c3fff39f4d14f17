"""What the HTTP query tests share: a GET with aiohttp's client, the same query
asked on the line protocol, and `curl`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from logcaster.testing import ServerProcess

Params = Sequence[tuple[str, str]]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def get_async(
    session: aiohttp.ClientSession, server: ServerProcess, path: str, params: Params = ()
) -> Reply:
    url = f"http://127.0.0.1:{server.ports['http']}{path}"
    async with session.get(url, params=list(params)) as response:
        body = await response.read()
        return Reply(response.status, dict(response.headers), body)


def get(server: ServerProcess, path: str, params: Params = ()) -> Reply:
    """One GET over a real socket, with aiohttp's client."""

    async def once() -> Reply:
        async with aiohttp.ClientSession() as session:
            return await get_async(session, server, path, params)

    return asyncio.run(once())


def http_query(server: ServerProcess, params: Params = ()) -> Reply:
    return get(server, "/api/v1/query", params)


def line_query(params: Params) -> str:
    """The line-protocol `JSON QUERY` with the same parameters, each value quoted."""
    parts = ["JSON QUERY"]
    for key, value in params:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return " ".join(parts)


def line_json(server: ServerProcess, params: Params) -> Any:
    return orjson.loads(server.query(line_query(params)))


def curl_path() -> str:
    """curl, which must exist under CI (scripts/test-deps installs it)."""
    path = shutil.which("curl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is missing (scripts/test-deps installs it)")
        pytest.skip("curl is not installed")
    return path


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([curl_path(), "-sS", *args], capture_output=True, timeout=60, check=True)
