"""`logcaster query --http URL`: the same output as over the query port."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from logcaster.testing import ServerProcess
from tests.lineproto_helpers import found

# Commands answered over HTTP exactly as over the query port, errors included.
SAME: list[list[str]] = [
    ["QUERY level=ERROR"],
    ['QUERY keyword="pool exhausted" order=asc'],
    ["QUERY", "user_id=user-7", "limit=1"],
    ["FILTER service=payment-api"],
    ["SEARCH pool"],
    ['SEARCH "pool exhausted"'],
    [r"REGEX p95=\d+ms"],
    ["RECENT"],
    ["RECENT 3"],
    ["QUERY level=ERROR max_count=1"],
    ["QUERY format=json level=WARN"],
    ["JSON RECENT 2"],
    ["--json", "QUERY level=FATAL"],
    ["--json", "SEARCH nothing-matches-this"],
    # errors: the same ERROR line (or JSON document), exit 1
    ["REGEX ("],
    ["QUERY level=LOUD"],
    ["QUERY keyword="],
    ['QUERY keyword="unterminated'],
    ["FILTER"],
    ["SEARCH"],
    ["RECENT 0"],
    ["RECENT many"],
    ["--json", "QUERY limit=-1"],
    ["FROBNICATE"],
]


def logcaster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def over_http(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return logcaster("query", "--http", f"http://127.0.0.1:{server.ports['http']}", *args)


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_same_output_as_the_query_port(corpus_server: ServerProcess, args: list[str]) -> None:
    line = logcaster("query", "--query-port", str(corpus_server.query_port), *args)
    http = over_http(corpus_server, *args)
    assert (http.stdout, http.returncode) == (line.stdout, line.returncode), http.stderr
    assert http.stderr == ""


def test_rows_are_the_line_protocols(corpus_server: ServerProcess) -> None:
    result = over_http(corpus_server, "QUERY level=ERROR,FATAL")
    assert result.returncode == 0
    # Newest first; H is multi-line and shows its first line only.
    assert result.stdout == found("HGFDB")


def test_json_is_the_http_document(corpus_server: ServerProcess) -> None:
    result = over_http(corpus_server, "--json", "QUERY level=ERROR")
    doc = orjson.loads(result.stdout)
    assert doc["found"] == doc["returned"] == len(doc["events"]) == 4


@pytest.mark.parametrize("command", ["CLEAR", "HELP"])
def test_query_port_only_commands_are_refused(corpus_server: ServerProcess, command: str) -> None:
    result = over_http(corpus_server, command)
    assert result.returncode == 1
    assert result.stdout == f"ERROR: {command} is only on the query port (drop --http)\n"
    assert corpus_server.query("COUNT").startswith("COUNT: 8")  # nothing was cleared


def test_no_server(corpus_server: ServerProcess) -> None:
    result = logcaster("query", "--http", "http://127.0.0.1:1", "QUERY")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("logcaster: cannot query http://127.0.0.1:1: ")
    result = logcaster("query", "--http", "ftp://127.0.0.1:1", "QUERY")
    assert result.returncode == 1
    assert "must start with http:// or https://" in result.stderr
