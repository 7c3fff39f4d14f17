"""Text rows a person can read (issue 14, item 11), from a real server.

`[YYYY-MM-DD HH:MM:SS] ` then the original first line; the message after it
when that line has none (the simulator's error headers); syslog without its
frame; control characters escaped, so that one event is exactly one row.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory

ROW = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (.*)")


def rows(server: ServerProcess, command: str) -> list[str]:
    """The rows of a text answer (after its FOUND line), each checked for the prefix."""
    head, *lines = server.query(command).split("\n")
    assert head.startswith("FOUND: "), head
    assert lines[-1] == ""
    for line in lines[:-1]:
        assert ROW.fullmatch(line), line
    return lines[:-1]


def events(server: ServerProcess, command: str) -> list[dict[str, Any]]:
    doc = orjson.loads(server.query("JSON " + command))
    found: list[dict[str, Any]] = doc["events"]
    return found


def wait_total(server: ServerProcess, n: int) -> None:
    wait_for("the events", server.stats, lambda s: s["Total"] >= n and s["QueueEvents"] == 0)


JAVA_BLOCK = (
    b"[ERROR] 2026-01-19 15:30:01.234 analytics-engine/v4.2.0 pod/analytics-engine-7f9c: \n"
    b"Database connection pool exhausted\n"
    b"java.sql.SQLTransientConnectionException: Connection is not available\n"
    b"    at com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n"
)
PYTHON_BLOCK = (
    b"ERROR: analytics-engine/v4.2.0 pod/analytics-engine-7f9c \n"
    b"Model inference timed out\n"
    b"Traceback (most recent call last):\n"
    b'  File "/app/infer.py", line 12, in run\n'
    b"TimeoutError: inference\n"
)


def test_simulator_error_blocks_show_their_message(server: ServerProcess) -> None:
    server.send(JAVA_BLOCK + PYTHON_BLOCK + b"[INFO] 2026-01-19 15:30:09.000 web/v1 pod/w: ok\n")
    wait_for("3 events", lambda: server.query("COUNT"), lambda r: r == "COUNT: 3\n")
    assert rows(server, "QUERY level=ERROR keyword=pool") == [
        "[2026-01-19 15:30:01] [ERROR] 2026-01-19 15:30:01.234 analytics-engine/v4.2.0 "
        "pod/analytics-engine-7f9c: Database connection pool exhausted"
    ]
    # The Python variant has no time of its own: the row shows the arrival time.
    (row,) = rows(server, "QUERY level=ERROR keyword=inference")
    assert row.partition("] ")[2] == (
        "ERROR: analytics-engine/v4.2.0 pod/analytics-engine-7f9c Model inference timed out"
    )
    # A line that carries its message is shown as it is.
    assert rows(server, "QUERY level=INFO") == [
        "[2026-01-19 15:30:09] [INFO] 2026-01-19 15:30:09.000 web/v1 pod/w: ok"
    ]


def test_every_generated_error_row_has_its_message(server: ServerProcess) -> None:
    """`logcaster simulate` at error rate 1: Java and Python trace blocks."""
    n = 60
    target = f"tcp://127.0.0.1:{server.ingest_port}"
    options = ["--seed", "2", "--count", str(n), "--error-rate", "1", "--interval", "0"]
    sim = subprocess.run(
        [sys.executable, "-m", "logcaster", "simulate", *options, "--output", target],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert sim.returncode == 0, sim.stderr
    wait_for("the blocks", lambda: server.query("COUNT"), lambda r: r == f"COUNT: {n}\n")
    found = events(server, f"QUERY level=ERROR order=asc limit={n}")
    lines = rows(server, f"QUERY level=ERROR order=asc limit={n}")
    assert len(found) == len(lines) == n
    for ev, line in zip(found, lines, strict=True):
        assert ev["message"], ev  # the parser found each block's message ...
        assert line.endswith(" " + ev["message"]), (line, ev["body"][:300])  # ... and it shows


def send_syslog_udp(server: ServerProcess, message: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, ("127.0.0.1", server.ports["syslog"]))


def test_syslog_rows_have_no_frame(server: ServerProcess) -> None:
    send_syslog_udp(
        server,
        b'<11>1 2026-01-19T15:30:01.234Z web01 payment-api 4242 ID47 [meta@1 req="r-1"] '
        b"\xef\xbb\xbfcharge declined for order 17",
    )
    send_syslog_udp(server, b"<11>Jan 19 15:30:02 web02 sshd[77]: invalid user admin")
    send_syslog_udp(server, b"<11>1 2026-01-19T15:30:03Z - - - - - nil fields everywhere")
    with socket.create_connection(("127.0.0.1", server.ports["syslog"])) as sock:
        sock.sendall(b"<11>myapp: ERROR bare pri over tcp\n")
    wait_total(server, 4)
    got = {line.partition("] ")[2] for line in rows(server, "QUERY level=ERROR")}
    assert got == {
        "web01 payment-api[4242]: charge declined for order 17",
        "web02 sshd[77]: invalid user admin",
        "nil fields everywhere",
        "myapp: ERROR bare pri over tcp",
    }
    # The RFC 5424 time is the row's time; nothing of "<11>1" is left.
    assert rows(server, "QUERY keyword=declined") == [
        "[2026-01-19 15:30:01] web01 payment-api[4242]: charge declined for order 17"
    ]


def test_control_characters_are_escaped(server: ServerProcess) -> None:
    server.send(
        b"ERROR login failed \x1b[2J\x1b[31mred\x07 user=x\rINFO forged\n"
        b'{"level": "error", "message": "json \\u001b]0;title\\u0007 and\\nnext line"}\n'
        b"[ERROR] 2026-01-19 15:30:05.000 web/v1 pod/w: \n\x1b[1mbold message\xc2\x9b\n"
    )
    wait_total(server, 3)
    answer = server.query("QUERY level=ERROR order=asc")
    assert answer.count("\n") == 4  # FOUND and three rows: nothing splits a row
    assert "\x1b" not in answer and "\r" not in answer and "\x07" not in answer
    # Event-time order: the header line's own 2026 time sorts it first.
    texts = [line.partition("] ")[2] for line in rows(server, "QUERY level=ERROR order=asc")]
    assert texts[0].endswith("pod/w: \\x1b[1mbold message\\x9b")
    assert texts[1] == "ERROR login failed \\x1b[2J\\x1b[31mred\\x07 user=x\\rINFO forged"
    # A JSON line keeps its own escapes; the decoded message is in the line already.
    assert texts[2] == (
        '{"level": "error", "message": "json \\u001b]0;title\\u0007 and\\nnext line"}'
    )


def test_memory_and_store_rows_are_the_same(server_factory: ServerFactory, tmp_path: Path) -> None:
    """The store's rows go through the same formatter as the memory buffer's."""
    env = {**os.environ, "LOGCASTER_PERSIST__MAX_FILE_BYTES": "4096"}
    server = server_factory("-P", str(tmp_path / "data"), "--syslog-port", "0", env=env)
    server.send(JAVA_BLOCK + b"ERROR esc \x1b[31m here\n")
    send_syslog_udp(server, b"<11>1 2026-01-19T15:30:01Z web01 api - - - stored syslog")
    wait_total(server, 3)
    # Filler rotates active.log (4 KiB segments), so the three are in the index.
    server.send(b"".join(b"filler line %04d with some padding text\n" % i for i in range(400)))
    wait_total(server, 403)
    wait_for("the index", server.stats, lambda s: s["StoreIndexed"] >= 3)
    command = "QUERY level=ERROR order=asc limit=10 source="
    from_store = rows(server, command + "store")
    assert len(from_store) == 3
    assert from_store == rows(server, command + "memory")
    texts = sorted(line.partition("] ")[2] for line in from_store)
    assert texts == [
        "ERROR esc \\x1b[31m here",
        "[ERROR] 2026-01-19 15:30:01.234 analytics-engine/v4.2.0 pod/analytics-engine-7f9c: "
        "Database connection pool exhausted",
        "web01 api: stored syslog",
    ]
