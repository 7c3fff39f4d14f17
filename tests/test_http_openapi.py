"""The OpenAPI document is true: schemathesis fuzzes a running server from it.

`schemathesis run` (its command line: its pytest plugin's lazy schemas do not
work with pytest 9) loads the document from the server and sends generated
requests to every operation, valid and invalid ones (its `examples`,
`coverage` and `fuzzing` phases, positive and negative data). Every answer
must be documented: its status, content type, headers and body schema (for
the live tail, each Server-Sent Event); and none may be a server error. The
server keeps a data directory, so queries reach the store as well as memory.

- The live tail is an endless stream. Schemathesis reads a stream up to a
  number of events or its request timeout; the tail's are set to one event and
  2 s (`STREAM_LIMITS`), and every tail sends its first event at once (a
  replayed event, `reset` or `live`), so each case ends with that event and
  is checked against the document.
- The checks are chosen, not schemathesis' defaults: `negative_data_rejection`
  and `positive_data_acceptance` judge a value by the schema alone, and the
  document cannot say everything the server checks (a string that is not a
  valid RE2 pattern, a time that is neither unix seconds nor ISO 8601; unknown
  query parameters are field tests, not errors): a documented 400 for such a
  value is right.
- One worker: with several, Hypothesis' lambda-source cache parses Python
  source from more than one thread and CPython 3.11's AST constructor fails
  (`AST constructor recursion depth mismatch`), an error of the tool.
- Bounded: `LOGCASTER_FUZZ_EXAMPLES` examples per operation (default 30), so
  the run takes seconds. A failure prints schemathesis' report: the request
  (as a curl command), the answer and the seed to replay it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import schemathesis

from logcaster.testing import ServerProcess, start_server
from tests.http_query_helpers import get, http_query
from tests.lineproto_helpers import CORPUS

# The live tail: read each stream up to its first event, at most 2 s (module doc).
STREAM_LIMITS = """
[[operations]]
include-path = "/api/v1/tail"
request-timeout = 2
max-stream-events = 1
"""
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
EXAMPLES = int(os.environ.get("LOGCASTER_FUZZ_EXAMPLES", "30"))
DOCUMENTED = {
    "/api/v1/audit",
    "/api/v1/reload",
    "/api/v1/logs",
    "/api/v1/query",
    "/api/v1/histogram",
    "/api/v1/export",
    "/api/v1/stats",
    "/api/v1/tail",
    "/metrics",
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/loki/api/v1/push",
    "/ready",
    "/v1/logs",
    "/_bulk",
    "/{index}/_bulk",
    "/",
    "/_license",
    "/_cluster/health",
    "/_cat/health",
    "/_index_template/{name}",
    "/_template/{name}",
    "/_ilm/policy/{name}",
    "/_ingest/pipeline/{name}",
}

# Paths with two operations: the bulk routes (POST, PUT) and the Elasticsearch
# template/ILM/pipeline probes (GET, PUT).
TWO_OPERATIONS = 6


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("data")
    server = start_server("-P", str(data))
    try:
        server.send(("\n".join(doc.text for doc in CORPUS) + "\n").encode())
        server.wait_total(len(CORPUS))
        yield server
    finally:
        server.kill()


def document_url(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.ports['http']}/api/v1/openapi.json"


def test_the_document_names_every_route(api_server: ServerProcess) -> None:
    reply = get(api_server, "/api/v1/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    doc = orjson.loads(reply.body)
    assert doc["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(doc).validate()  # against the OpenAPI 3.0 schema
    assert set(doc["paths"]) == DOCUMENTED
    for path in DOCUMENTED - {"/api/v1/tail"}:  # (an endless answer)
        # Served (aiohttp's 404 is the answer of a path nobody mounted; the
        # Elasticsearch probes' own 404 says a template does not exist).
        reply = get(api_server, path.replace("{index}", "x").replace("{name}", "x"))
        assert reply.status != 404 or "X-Elastic-Product" in reply.headers, path


def test_the_api_answers_as_documented(api_server: ServerProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(STREAM_LIMITS, encoding="utf-8")
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run"]
    argv += [document_url(api_server), "--checks", ",".join(CHECKS)]
    argv += ["--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing"]
    argv += ["--mode", "all", "--workers", "1", "--request-timeout", "30"]
    # In a scratch directory: schemathesis keeps its example database in the cwd.
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    result = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-30_000:]
    # Every operation was fuzzed (schemathesis does not count the document's own path).
    selected = re.search(r"Operations: +(\d+) selected / (\d+) total", report)
    assert selected is not None, report[-5000:]
    assert int(selected[1]) == int(selected[2]) == len(DOCUMENTED) - 1 + TWO_OPERATIONS


def test_the_server_is_still_up_after_the_fuzz(api_server: ServerProcess) -> None:
    """After the fuzz (pytest runs a module's tests in order): the process
    lives, answers, and logged no failed request."""
    assert api_server.proc.poll() is None
    assert get(api_server, "/healthz").status == 200
    doc = http_query(api_server, [("keyword", "pool exhausted")]).json()
    assert doc["found"] >= 2  # the corpus; fuzzed events may match too
    assert api_server.query("COUNT").startswith("COUNT: ")
    failed = [line for line in api_server.logs if line.get("event") == "http_request_failed"]
    assert failed == []
