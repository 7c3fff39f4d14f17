"""JSON replies of the TCP line query protocol (SPEC §6).

`JSON <command>`, `format=json` and their spellings give one JSON document per
reply, with the parsed attributes of each event; asked of the module-scoped
`corpus_server` (conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

from logcaster.testing import ServerProcess
from tests.lineproto_helpers import BY_NAME, CORPUS, T0, stats_pairs

# --- JSON output -------------------------------------------------------------------------


def one_json_line(reply: str) -> Any:
    assert reply.endswith("\n") and reply.count("\n") == 1, reply[:200]
    return json.loads(reply)


def test_json_query(corpus_server: ServerProcess) -> None:
    doc = one_json_line(corpus_server.query("JSON QUERY level=ERROR limit=2"))
    assert doc["found"] == 4
    assert doc["returned"] == 2
    events = doc["events"]
    assert [ev["body"] for ev in events] == [BY_NAME["H"].text, BY_NAME["G"].text]
    h, g = events
    assert h["id"] > g["id"]
    assert h["level"] == g["level"] == "ERROR"
    assert h["ts"] == T0 + 7
    assert g["ts"] == T0 + 6
    assert h["service"] == "inventory-service"
    assert h["version"] == "v3.0.0"
    assert h["pod"] == "inv-1"
    assert h["message"] == "Stock sync failed"
    assert g["fields"]["user_id"] == "user-9"
    assert {"received_at", "source", "host"} <= set(h)
    # the same answer through every JSON spelling
    assert one_json_line(corpus_server.query("QUERY level=ERROR limit=2 format=json")) == doc
    assert one_json_line(corpus_server.query("json query level=ERROR limit=2")) == doc
    assert one_json_line(corpus_server.query("FILTER level=ERROR limit=2 format=JSON")) == doc


def test_json_query_fields(corpus_server: ServerProcess) -> None:
    doc = one_json_line(corpus_server.query("JSON QUERY request_id=req-1 order=asc"))
    assert doc["found"] == doc["returned"] == 2
    a, f = doc["events"]
    assert a["fields"] == {"request_id": "req-1", "user_id": "user-7"}
    assert (a["level"], a["service"], a["pod"]) == ("INFO", "order-service", "order-1")
    assert (f["level"], f["service"]) == ("FATAL", "payment-api")
    assert f["fields"]["request_id"] == "req-1"


def test_json_shorthands(corpus_server: ServerProcess) -> None:
    doc = one_json_line(corpus_server.query("JSON RECENT 1"))
    assert (doc["found"], doc["returned"]) == (len(CORPUS), 1)
    assert doc["events"][0]["body"] == BY_NAME["H"].text
    doc = one_json_line(corpus_server.query("JSON SEARCH JWT"))
    assert [ev["body"] for ev in doc["events"]] == [BY_NAME["D"].text]
    doc = one_json_line(corpus_server.query("JSON REGEX ^warmed"))
    assert doc == {"found": 0, "returned": 0, "capped": False, "max_count": 100, "events": []}


def test_json_count_stats_help(corpus_server: ServerProcess) -> None:
    assert one_json_line(corpus_server.query("JSON COUNT")) == {"count": len(CORPUS)}
    stats = one_json_line(corpus_server.query("JSON STATS"))
    assert list(stats)[:4] == ["Total", "Dropped", "Current", "Clients"]
    assert (stats["Total"], stats["Dropped"], stats["Current"], stats["Clients"]) == (8, 0, 8, 0)
    assert all(isinstance(v, int | float) for v in stats.values())
    text_pairs = stats_pairs(corpus_server.query("STATS"))
    assert [k for k, _ in text_pairs] == list(stats)
    doc = one_json_line(corpus_server.query("JSON HELP"))
    assert doc["help"] == corpus_server.query("HELP").splitlines()
