"""Log forging (CWE-117): event text shown again drives no terminal and forges no row.

Forged lines go in over TCP ingest and come back from every view: the query
port's text rows and JSON, `GET /api/v1/query`, the SSE live tail, and the
`logcaster query` / `logcaster tail` commands. The stored bytes stay exactly
as received (read back from the segment file).
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from logcaster.security.neutralize import html_text, json_safe, neutral, neutral_lines
from logcaster.segments.segment import read_batches
from logcaster.testing import ServerProcess, start_server, wait_for
from tests.tail_helpers import SseParser

# What must never reach a reader raw: C0 but TAB and LF (LF ends a printed line),
# DEL, C1, the line/paragraph separators, the bidi embeddings/overrides/isolates.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")

FORGED = [
    "ERROR fake newline\rINFO [2026-01-01 00:00:00] forged row",
    "ERROR clear screen \x1b[2J\x1b[H gone",
    "ERROR window title \x1b]0;owned\x07 set",
    "ERROR bidi \u202eexe.gnp isolate \u2066x\u2069",
    "ERROR separator \u2028[2026-01-01 00:00:00] INFO forged",
    "ERROR c1 csi \u009b2J and osc \u009d0;t\u009c",
]
# How each shows in a text row (the time prefix aside).
SHOWN = [
    "ERROR fake newline\\rINFO [2026-01-01 00:00:00] forged row",
    "ERROR clear screen \\x1b[2J\\x1b[H gone",
    "ERROR window title \\x1b]0;owned\\x07 set",
    "ERROR bidi \\u202eexe.gnp isolate \\u2066x\\u2069",
    "ERROR separator \\u2028[2026-01-01 00:00:00] INFO forged",
    "ERROR c1 csi \\x9b2J and osc \\x9d0;t\\x9c",
]


# -- the rules, in process ---------------------------------------------------


def test_every_unsafe_code_point_is_escaped_and_nothing_else() -> None:
    for cp in range(0x3000):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000:
            continue
        out = neutral(f"a{ch}b")
        if UNSAFE.match(ch) or ch == "\n":
            assert UNSAFE.search(out) is None and "\n" not in out, hex(cp)
            assert out.startswith("a\\") and out.endswith("b"), (hex(cp), out)
        else:
            assert out == f"a{ch}b", hex(cp)


def test_escape_forms_name_the_code_point() -> None:
    assert neutral("\x1b[31m") == "\\x1b[31m"
    assert neutral("\r\n\x00\x7f\x85") == "\\r\\n\\x00\\x7f\\x85"
    assert neutral("\u202a\u202e\u2028\u2029\u2066\u2069") == (
        "\\u202a\\u202e\\u2028\\u2029\\u2066\\u2069"
    )
    assert neutral("tab\tkept") == "tab\tkept"


def test_clean_text_is_returned_as_is() -> None:
    text = "2026-01-19 INFO web/v1 pod/w: GET /x 200 — café 東京 \t done"
    assert neutral(text) is text
    assert neutral_lines(text) is text
    data = orjson.dumps({"message": text})
    assert json_safe(data) is data
    ascii_doc = b'{"message":"plain"}'
    assert json_safe(ascii_doc) is ascii_doc


def test_neutral_lines_keeps_line_breaks() -> None:
    assert neutral_lines("FOUND: 1\n[t] a\x1bb\rc\n") == "FOUND: 1\n[t] a\\x1bb\\rc\n"


def test_json_safe_keeps_the_value_and_spells_it_inert() -> None:
    for text in [*FORGED, "del \x7f", "nel \x85", "all \u2029\u202a\u2067"]:
        data = json_safe(orjson.dumps({"t": text}))
        assert UNSAFE.search(data.decode()) is None, data
        assert orjson.loads(data) == {"t": text}


def test_html_text_escapes_markup_after_neutralising() -> None:
    assert html_text('<img src=x onerror="a()">\u202e&\x1b') == (
        "&lt;img src=x onerror=&quot;a()&quot;&gt;\\u202e&amp;\\x1b"
    )


# -- a real server -------------------------------------------------------------


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("neutral") / "data"
    server = start_server("-P", str(data_dir))
    server.data_dir = data_dir  # type: ignore[attr-defined]
    server.send(("\n".join(FORGED) + "\n").encode())
    wait_for(
        "the events", server.stats, lambda s: s["Total"] >= len(FORGED) and s["QueueEvents"] == 0
    )
    yield server
    server.kill()


def _assert_safe(output: str) -> None:
    match = UNSAFE.search(output)
    assert match is None, f"raw {match.group()!r} in {output!r}"


def _rows(text: str) -> list[str]:
    head, *rows = text.split("\n")
    assert head.startswith("FOUND: 6"), head
    assert rows[-1] == ""
    return [row.partition("] ")[2] for row in rows[:-1]]


def test_query_port_text_rows_are_neutral(forged: ServerProcess) -> None:
    answer = forged.query("QUERY level=ERROR order=asc limit=10")
    _assert_safe(answer)
    assert answer.count("\n") == 1 + len(FORGED)  # nothing split a row
    assert _rows(answer) == SHOWN


def test_json_answers_are_exact_and_inert(forged: ServerProcess) -> None:
    """The query port's JSON and GET /api/v1/query: the exact text, spelled safely."""
    line_json = forged.query("JSON QUERY level=ERROR order=asc limit=10")
    url = f"http://127.0.0.1:{forged.ports['http']}/api/v1/query?level=ERROR&order=asc"
    with urllib.request.urlopen(url, timeout=10) as response:
        http_json = response.read().decode()
    for raw in (line_json, http_json):
        _assert_safe(raw)
        events = orjson.loads(raw)["events"]
        assert [ev["body"] for ev in events] == FORGED


def test_sse_tail_is_exact_and_inert(forged: ServerProcess) -> None:
    url = f"http://127.0.0.1:{forged.ports['http']}/api/v1/tail?level=ERROR&backlog=10"
    parser = SseParser()
    with urllib.request.urlopen(url, timeout=10) as response:
        raw = b""
        while not any(m.event == "live" for m in parser.messages):
            chunk = response.read1(65536)
            assert chunk, "the stream ended before its live marker"
            raw += chunk
            parser.feed(chunk)
    _assert_safe(raw.decode())
    events = [m.doc for m in parser.messages if m.event == "" and m.data]
    assert [ev["body"] for ev in events] == FORGED


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "logcaster", *args],
        capture_output=True,
        timeout=60,
        check=True,
    )
    out = done.stdout.decode()
    _assert_safe(out)
    _assert_safe(done.stderr.decode())
    return out


def test_cli_query_and_tail_print_neutral_output(forged: ServerProcess) -> None:
    port, http = str(forged.query_port), f"http://127.0.0.1:{forged.ports['http']}"
    command = "QUERY level=ERROR order=asc limit=10"
    assert _rows(_cli("query", "--port", port, command)) == SHOWN
    assert _rows(_cli("query", "--http", http, command)) == SHOWN
    for args in (
        ("query", "--json", "--port", port, command),
        ("query", "--http", http, "--json", command),
    ):
        events = orjson.loads(_cli(*args))["events"]
        assert [ev["body"] for ev in events] == FORGED
    tail_rows = _cli("tail", "--url", http, "-n", "10", "level=ERROR").splitlines()
    assert sorted(row.partition("] ")[2] for row in tail_rows) == sorted(SHOWN)
    tail_json = _cli("tail", "--url", http, "-n", "10", "--json", "level=ERROR").splitlines()
    assert sorted(orjson.loads(line)["body"] for line in tail_json) == sorted(FORGED)


def test_storage_keeps_the_bytes_as_received(forged: ServerProcess) -> None:
    active = Path(forged.data_dir) / "active.log"  # type: ignore[attr-defined]

    def stored() -> list[bytes]:
        if not active.exists():
            return []
        return [text for batch in read_batches(active) for text in batch.texts]

    texts = wait_for("the segment file", stored, lambda t: len(t) >= len(FORGED))
    assert texts == [line.encode() for line in FORGED]
    raw = active.read_bytes()
    # Raw in the file (the block format escapes only CR and LF of its own).
    for needle in (b"\x1b[2J", b"\x1b]0;owned\x07", "\u202e".encode(), "\u2028".encode()):
        assert needle in raw
    assert "\u009b2J".encode() in raw
