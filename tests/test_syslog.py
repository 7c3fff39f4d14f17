"""Syslog ingest with real senders (SPEC §2): util-linux `logger`, Python's
`SysLogHandler`, and raw RFC 6587 framing over TCP (octet counting, newline,
NUL), against the real server on ephemeral ports.
"""

from __future__ import annotations

import itertools
import logging
import logging.handlers
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from logcaster.sources.syslog import SyslogStreamFramer
from logcaster.testing import ServerProcess
from tests.conftest import ServerFactory

LOGGER = shutil.which("logger")
# Under CI a missing logger is a failure (the test runs and cannot start it).
needs_logger = pytest.mark.skipif(
    LOGGER is None and os.environ.get("CI") != "true",
    reason="util-linux logger is missing: run ./scripts/test-deps",
)


# --- helpers -------------------------------------------------------------------------


def json_events(server: ServerProcess, command: str) -> list[dict[str, Any]]:
    doc = orjson.loads(server.query("JSON " + command))
    assert isinstance(doc, dict), doc
    events: list[dict[str, Any]] = doc["events"]
    return events


def wait_events(
    server: ServerProcess, command: str, n: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """Poll a JSON query until it finds at least `n` events; return them."""
    deadline = time.monotonic() + timeout
    events = json_events(server, command)
    while len(events) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"{command!r}: {len(events)} of {n} events after {timeout} s: {events}")
        time.sleep(0.02)
        events = json_events(server, command)
    return events


def wait_until(what: str, ok: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def bodies(server: ServerProcess, source_prefix: str = "syslog") -> list[str]:
    """Every stored event's body in arrival (id) order; answers come in event-time
    order, and these frames carry their own times."""
    events = json_events(server, "QUERY order=asc limit=10000")
    events.sort(key=lambda ev: int(ev["id"]))
    return [ev["body"] for ev in events if ev["source"].startswith(source_prefix)]


def run_logger(server: ServerProcess, *args: str, stdin: str | None = None) -> None:
    assert LOGGER is not None
    port = str(server.ports["syslog"])
    subprocess.run(
        [LOGGER, "-n", "127.0.0.1", "-P", port, *args],
        input=stdin.encode() if stdin is not None else None,
        check=True,
        timeout=10,
    )


# --- util-linux logger -------------------------------------------------------------------

LOGGER_CASES = {
    "tcp-5424": ["-T"],
    "tcp-5424-octet": ["-T", "--octet-count"],
    "udp-5424": ["-d"],
    "tcp-3164": ["-T", "--rfc3164"],
    "tcp-3164-octet": ["-T", "--rfc3164", "--octet-count"],
    "udp-3164": ["-d", "--rfc3164"],
}


@needs_logger
@pytest.mark.parametrize("case", list(LOGGER_CASES))
def test_util_linux_logger(server: ServerProcess, case: str) -> None:
    transport = LOGGER_CASES[case]
    run_logger(server, *transport, "-t", "myapp", "-p", "local0.err", f"disk full on {case}")
    # Three messages from stdin: three frames back to back on one connection.
    run_logger(server, *transport, "-t", "other", "-p", "local0.warning", stdin="one\ntwo\nthree\n")

    (event,) = wait_events(server, "QUERY service=myapp", 1)
    assert event["level"] == "ERROR"
    assert event["service"] == "myapp"
    assert event["message"] == f"disk full on {case}"
    assert event["host"] == socket.gethostname()
    assert event["fields"]["facility"] == 16  # local0
    assert event["source"].startswith("syslog-udp" if "-d" in transport else "syslog-tcp:")
    if "--rfc3164" not in transport:
        # RFC 5424: the sender's own timestamp (with microseconds) is the event time.
        assert event["ts"] != int(event["ts"])
        assert abs(event["ts"] - event["received_at"]) < 5

    others = wait_events(server, "QUERY service=other order=asc", 3)
    assert [ev["message"] for ev in others] == ["one", "two", "three"]
    assert {ev["level"] for ev in others} == {"WARN"}
    stats = server.stats()
    assert stats["Total"] == 4
    assert stats["Truncated"] == 0


@needs_logger
def test_logger_priorities_map_to_levels(server: ServerProcess) -> None:
    expected = {
        "emerg": "FATAL",
        "alert": "FATAL",
        "crit": "FATAL",
        "err": "ERROR",
        "warning": "WARN",
        "notice": "INFO",
        "info": "INFO",
        "debug": "DEBUG",
    }
    for severity in expected:
        run_logger(server, "-T", "-t", f"prio-{severity}", "-p", f"user.{severity}", "x")
    for severity, level in expected.items():
        (event,) = wait_events(server, f"QUERY service=prio-{severity}", 1)
        assert event["level"] == level, (severity, event)
        assert event["fields"]["facility"] == 1  # user


# --- Python's SysLogHandler ------------------------------------------------------------


def python_syslog_logger(
    server: ServerProcess, socktype: socket.SocketKind
) -> tuple[logging.Logger, logging.handlers.SysLogHandler]:
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", server.ports["syslog"]), socktype=socktype
    )
    log = logging.getLogger(f"test_syslog.{socktype.name}.{server.pid}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log, handler


@pytest.mark.parametrize("socktype", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
def test_python_sysloghandler(server: ServerProcess, socktype: socket.SocketKind) -> None:
    # UDP has no flow control: a burst larger than the server's socket buffer can be
    # dropped by the kernel when the server is starved of CPU. Keep it well below.
    burst = 300 if socktype == socket.SOCK_STREAM else 50
    log, handler = python_syslog_logger(server, socktype)
    try:
        log.error("py message one")
        log.warning("py message two")
        log.info("py message three")
        log.debug("py message four")
        missing: dict[str, int] = {}
        try:
            missing["missing"]
        except KeyError:
            log.exception("py request failed")
        for i in range(burst):
            log.info("py burst %03d", i)
    finally:
        log.removeHandler(handler)
        handler.close()

    # Over TCP Python sends "<PRI>message\0" back to back, no newline, no octet count.
    total = 5 + burst
    events = wait_events(server, 'QUERY keyword="py " order=asc limit=1000', total)
    assert len(events) == total, [ev["body"] for ev in events[:10]]
    assert server.stats()["Total"] == total  # nothing but these
    head = [(ev["level"], ev["message"]) for ev in events[:4]]
    assert head == [
        ("ERROR", "py message one"),
        ("WARN", "py message two"),
        ("INFO", "py message three"),
        ("DEBUG", "py message four"),
    ]
    # An exception record is one message with a multi-line traceback: one event.
    failed = events[4]
    assert failed["level"] == "ERROR"
    assert failed["message"] == "py request failed"
    lines = failed["body"].split("\n")
    assert lines[0] == "<11>py request failed"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'missing'"
    assert "\x00" not in failed["body"]
    assert [ev["message"] for ev in events[5:]] == [f"py burst {i:03d}" for i in range(burst)]
    assert {ev["level"] for ev in events[5:]} == {"INFO"}
    assert all(ev["body"] == "<14>" + ev["message"] for ev in events[5:])


def test_python_sysloghandler_ident_becomes_the_service(server: ServerProcess) -> None:
    log, handler = python_syslog_logger(server, socket.SOCK_STREAM)
    handler.ident = "pyapp: "  # the documented way to tag SysLogHandler messages
    try:
        log.error("tagged message")
    finally:
        log.removeHandler(handler)
        handler.close()
    wait_until("1 event", lambda: server.stats()["Current"] >= 1)
    (event,) = json_events(server, "QUERY")
    assert event["level"] == "ERROR"
    assert event["service"] == "pyapp"
    assert event["message"] == "tagged message"


# --- raw TCP framing ----------------------------------------------------------------------


def octet(message: bytes) -> bytes:
    return b"%d %s" % (len(message), message)


FRAMES = [
    b"<13>1 2026-01-19T15:30:01.000Z host appa - - - first message",
    b'<11>1 2026-01-19T15:30:02.000Z host appb - - [ex@1 k="v"] second, with\nan inner newline',
    b"<12>Jan 19 15:30:03 host appc[42]: third message",
    b"<14>1 2026-01-19T15:30:04.000Z host appd - - - " + b"9" * 300,  # digits in the message
]
EXPECTED = [
    "<13>1 2026-01-19T15:30:01.000Z host appa - - - first message",
    '<11>1 2026-01-19T15:30:02.000Z host appb - - [ex@1 k="v"] second, with\nan inner newline',
    "<12>Jan 19 15:30:03 host appc[42]: third message",
    "<14>1 2026-01-19T15:30:04.000Z host appd - - - " + "9" * 300,
]


def send_in_pieces(server: ServerProcess, pieces: list[bytes]) -> None:
    """Write each piece separately; a query round trip in between makes the server
    read each piece on its own (its event loop serves the two sockets in turn)."""
    with socket.create_connection(("127.0.0.1", server.ports["syslog"])) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
            server.stats()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def test_octet_counted_frames_split_at_awkward_places(server: ServerProcess) -> None:
    stream = b"".join(octet(frame) for frame in FRAMES)
    first = len(octet(FRAMES[0]))
    second = first + len(octet(FRAMES[1]))
    count_len = len(str(len(FRAMES[1])))
    cuts = [
        1,  # inside the first count ("6|1 <13>...")
        2,  # between the count and its space
        3,  # right after the space
        first - 1,  # one byte before the frame ends
        first + 1,  # inside the next count
        first + count_len,  # before the space
        second - 20,  # inside the message, across its inner newline
        second,  # exactly on a frame boundary
        len(stream) - 1,
    ]
    send_in_pieces(server, split_at(stream, cuts))
    wait_until("4 events", lambda: server.stats()["Current"] >= 4)
    assert bodies(server) == EXPECTED
    assert server.stats()["Total"] == 4


def test_octet_counted_frames_sent_byte_by_byte(server: ServerProcess) -> None:
    stream = b"".join(octet(frame) for frame in FRAMES[:2])
    with socket.create_connection(("127.0.0.1", server.ports["syslog"])) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(stream)):
            sock.sendall(stream[i : i + 1])
    wait_until("2 events", lambda: server.stats()["Current"] >= 2)
    assert bodies(server) == EXPECTED[:2]


def test_several_octet_counted_frames_in_one_write(server: ServerProcess) -> None:
    many = [b"<14>1 - host bulk - - - message %04d" % i for i in range(1000)]
    server.send(b"".join(octet(m) for m in many), port=server.ports["syslog"])
    wait_until("1000 events", lambda: server.stats()["Current"] >= 1000)
    assert bodies(server) == [m.decode() for m in many]
    events = json_events(server, "QUERY service=bulk limit=1")
    assert events[0]["message"] == "message 0999"


def test_newline_framing(server: ServerProcess) -> None:
    lines = [
        b"<13>1 2026-01-19T15:30:01.000Z host nl - - - lf framed",
        b"<13>Jan 19 15:30:02 host nl: crlf framed",
        b"<13>1 2026-01-19T15:30:03.000Z host nl - - - last one, no terminator",
    ]
    stream = lines[0] + b"\n" + lines[1] + b"\r\n" + lines[2]
    send_in_pieces(server, split_at(stream, [10, len(lines[0]), len(lines[0]) + 1]))
    wait_until("3 events", lambda: server.stats()["Current"] >= 3)
    assert bodies(server) == [line.decode() for line in lines]
    events = json_events(server, "QUERY service=nl order=asc")
    assert [ev["message"] for ev in events] == [
        "lf framed",
        "crlf framed",
        "last one, no terminator",
    ]


def test_mixed_framing_on_one_connection(server: ServerProcess) -> None:
    stream = (
        octet(FRAMES[0])
        + FRAMES[2]
        + b"\n"
        + octet(FRAMES[1])
        + b"<11>python style, NUL terminated\x00"
        + octet(FRAMES[3])
        + b"\n"  # some senders end octet-counted frames with a newline too
        + b"<11>1 - host mixed - - - newline again\n"
    )
    send_in_pieces(server, split_at(stream, [5, 70, 200, len(stream) - 10]))
    wait_until("6 events", lambda: server.stats()["Current"] >= 6)
    assert bodies(server) == [
        EXPECTED[0],
        EXPECTED[2],
        EXPECTED[1],
        "<11>python style, NUL terminated",
        EXPECTED[3],
        "<11>1 - host mixed - - - newline again",
    ]


def test_overlong_messages_are_truncated_once_and_the_stream_recovers(
    server_factory: ServerFactory,
) -> None:
    server = server_factory("--syslog-port", "0")
    limit = 64 * 1024  # syslog.max_message_bytes
    big = b"<13>1 - host big - - - " + b"z" * (3 * limit)
    # Octet-counted: the head is kept, the rest skipped by its count.
    # Newline-framed: the head is kept, the rest skipped up to the newline.
    stream = octet(big) + b"<13>1 - host big - - - after octet\n" + big + b"\n"
    stream += b"<13>1 - host big - - - after newline\n"
    send_in_pieces(server, split_at(stream, list(range(1000, len(stream), 50_000))))
    wait_until("4 events", lambda: server.stats()["Current"] >= 4)
    got = bodies(server)
    head = big[: limit - 3].decode() + "..."
    assert got == [
        head,
        "<13>1 - host big - - - after octet",
        head,
        "<13>1 - host big - - - after newline",
    ]
    assert server.stats()["Truncated"] == 2


# --- the stream framer, every split point ------------------------------------------------


def frame_all(framer: SyslogStreamFramer, pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        out.extend(framer.feed(piece))
    out.extend(framer.close())
    return out


def test_framer_output_does_not_depend_on_where_the_stream_is_split() -> None:
    stream = (
        octet(FRAMES[0])
        + FRAMES[2]
        + b"\n"
        + octet(FRAMES[1])
        + b"<11>nul terminated\x00"
        + octet(FRAMES[3])
    )
    expected = [e.encode() for e in EXPECTED[:1] + EXPECTED[2:3] + EXPECTED[1:2]]
    expected += [b"<11>nul terminated", EXPECTED[3].encode()]
    assert frame_all(SyslogStreamFramer(64 * 1024), [stream]) == expected
    for cut in range(1, len(stream)):
        got = frame_all(SyslogStreamFramer(64 * 1024), [stream[:cut], stream[cut:]])
        assert got == expected, cut
    got = frame_all(SyslogStreamFramer(64 * 1024), [stream[i : i + 1] for i in range(len(stream))])
    assert got == expected


def test_framer_python_handler_stream_for_every_split_point() -> None:
    messages = [
        b"<11>request failed\nTraceback (most recent call last):\n"
        b'  File "app.py", line 3, in <module>\n'
        b"KeyError: 'missing'",
        b"<14>plain info",
        b"<11>another\nmulti-line\nmessage",
    ]
    stream = b"".join(m + b"\x00" for m in messages)
    for cut in range(1, len(stream)):
        framer = SyslogStreamFramer(64 * 1024)
        got = frame_all(framer, [stream[:cut], stream[cut:]])
        if cut > len(messages[0]):
            assert got == messages, cut
        else:
            # Until the first NUL arrives, a cut inside the first message cannot be told
            # from newline framing: its lines may come out apart, but nothing is lost
            # and the messages after it are whole.
            assert b"\n".join(got[:-2]) == messages[0], cut
            assert got[-2:] == messages[1:], cut


def test_framer_emits_nul_and_newline_framed_messages_without_delay() -> None:
    framer = SyslogStreamFramer(64 * 1024)
    assert framer.feed(b"<11>first\x00") == [b"<11>first"]
    assert framer.feed(b"<11>two\nlines\x00<14>ends with newline\n\x00") == [
        b"<11>two\nlines",
        b"<14>ends with newline",
    ]
    # Cut inside a message after a NUL-framed one: its newline does not end it.
    assert framer.feed(b"<11>trace\nTraceback (most recent") == []
    assert framer.feed(b" call last):\nKeyError: 'k'\x00") == [
        b"<11>trace\nTraceback (most recent call last):\nKeyError: 'k'"
    ]
    assert framer.close() == []

    # A stray NUL inside newline-framed traffic does not switch the connection to NUL
    # framing: the next newline-framed message still comes out at once.
    framer = SyslogStreamFramer(64 * 1024)
    assert framer.feed(b"<13>a\x00b\n") == [b"<13>a", b"b"]
    assert framer.feed(b"<13>next\n") == [b"<13>next"]
    assert framer.feed(b"plain text line\n") == [b"plain text line"]


@pytest.mark.parametrize("terminator", [b"\n", b"\x00"])
def test_framer_overlong_unframed_message_is_cut_once(terminator: bytes) -> None:
    limit = 1024
    framer = SyslogStreamFramer(limit)
    out: list[bytes] = []
    out += framer.feed(b"<13>head ")
    for _ in range(100):
        out += framer.feed(b"w" * 700)
    out += framer.feed(b"www" + terminator + b"<13>next" + terminator)
    out += framer.close()
    assert out == [(b"<13>head " + b"w" * limit)[: limit - 3] + b"...", b"<13>next"]
    assert framer.truncated == 1


def _udp_receive_buffer(port: int) -> int:
    """The kernel's receive buffer of the UDP socket bound to `port` (`ss -m`: rb)."""
    out = subprocess.run(
        ["ss", "-Hulnm", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("rb", 1)[1].split(",", 1)[0])


def test_udp_receive_buffer_is_sized_and_a_cap_is_reported(server_factory: ServerFactory) -> None:
    """syslog.udp_receive_buffer sets SO_RCVBUF (Linux reports twice the size asked);
    a size over net.core.rmem_max is capped by the kernel, and the log says so."""
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    wanted = min(1 << 20, rmem_max)
    env = {**os.environ, "LOGCASTER_SYSLOG__UDP_RECEIVE_BUFFER": str(wanted)}
    server = server_factory("--syslog-port", "0", env=env)
    assert _udp_receive_buffer(server.ports["syslog"]) == 2 * wanted
    assert not [d for d in server.logs if d.get("event") == "udp_receive_buffer_capped"]

    env["LOGCASTER_SYSLOG__UDP_RECEIVE_BUFFER"] = str(rmem_max + 4096)
    capped = server_factory("--syslog-port", "0", env=env)
    assert _udp_receive_buffer(capped.ports["syslog"]) == 2 * rmem_max
    (warning,) = [d for d in capped.logs if d.get("event") == "udp_receive_buffer_capped"]
    assert (warning["wanted"], warning["got"]) == (rmem_max + 4096, rmem_max)
