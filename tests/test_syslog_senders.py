"""Real syslog senders into a real server (SPEC §2, issue 16): rsyslog forwarding
with its RFC 3164, RFC 3339 and RFC 5424 templates, syslog-ng's `network()` and
`syslog()` destinations, and util-linux `logger --rfc3164 / --rfc5424`, over UDP
and TCP. Each stored event's fields are checked through the query port, not
just counted.

The daemons are private (tests/sender_helpers.py). Each takes two messages in
and forwards them with its own header: one with structured data whose value
holds the three escapes of RFC 5424 §6.3.3, and one at another severity.
"""

from __future__ import annotations

import re
import socket
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from logcaster.testing import ServerProcess
from tests.sender_helpers import Rsyslogd, SyslogNg, tool
from tests.test_syslog import wait_events

# The SD value as the wire carries it, and as the event's field holds it.
SD_WIRE = r'who="a \"b\" \] c \\ d"'
SD_VALUE = 'a "b" ] c \\ d'
# The header shapes a sender's output may take, as the stored body starts.
HEADERS = {
    "bsd": re.compile(r"<\d+>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d "),
    "bsd-rfc3339": re.compile(r"<\d+>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d "),
    "rfc5424": re.compile(r"<\d+>1 \d{4}-\d\d-\d\dT"),
}


def sent_time() -> datetime:
    """Now, local, with a fraction every format can carry exactly (or drop)."""
    return datetime.now().astimezone().replace(microsecond=250_000)


def bsd_stamp(when: datetime) -> str:
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S}"


def one(server: ServerProcess, service: str) -> dict[str, Any]:
    (event,) = wait_events(server, f"QUERY service={service}", 1)
    return event


def check_header(event: dict[str, Any], shape: str) -> None:
    assert HEADERS[shape].match(event["body"]), (shape, event["body"])


def check_time(event: dict[str, Any], when: datetime, shape: str, *, fraction: bool) -> None:
    """A BSD time has whole seconds; RFC 3339 and 5424 keep the sender's fraction."""
    if shape == "bsd" or not fraction:
        assert event["ts"] == int(when.timestamp())
    else:
        assert event["ts"] == when.timestamp()


# --- rsyslog ----------------------------------------------------------------------------

RSYSLOG_TEMPLATES = {
    # omfwd's default: `<PRI>Mmm dd hh:mm:ss HOST TAG MSG`
    "RSYSLOG_TraditionalForwardFormat": "bsd",
    # the same with an RFC 3339 time
    "RSYSLOG_ForwardFormat": "bsd-rfc3339",
    "RSYSLOG_SyslogProtocol23Format": "rfc5424",
    "RSYSLOG_SyslogRFC5424Format": "rfc5424",
}


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
@pytest.mark.parametrize("template", list(RSYSLOG_TEMPLATES))
def test_rsyslog_forwarding(
    server: ServerProcess, tmp_path: Path, template: str, protocol: str
) -> None:
    shape = RSYSLOG_TEMPLATES[template]
    when = sent_time()
    with Rsyslogd(tmp_path / "rsyslog", server.ports["syslog"], protocol, template) as rsyslog:
        rsyslog.send(
            f'<165>1 {when.isoformat()} origin-7 ledgerd 4242 TX9 [ex@32473 {SD_WIRE} n="1"]'
            " payment settled",
            f"<163>{bsd_stamp(when)} origin-8 auditd[77]: rule 12 loaded",
        )
        first = one(server, "ledgerd")
        second = one(server, "auditd")
    for event in (first, second):
        check_header(event, shape)
        assert event["source"].startswith(f"syslog-{protocol}")
        assert event["fields"]["facility"] == 20  # local4
    check_time(first, when, shape, fraction=True)
    check_time(second, when, shape, fraction=False)

    assert (first["host"], first["level"], first["message"]) == (
        "origin-7",
        "INFO",
        "payment settled",
    )
    assert first["fields"]["procid"] == "4242"
    # A 5424 message forwarded in a BSD header: rsyslog writes its tag without the
    # colon ("ledgerd[4242] payment settled"); it is still the tag.
    if shape == "rfc5424":
        assert first["fields"]["msgid"] == "TX9"
        assert first["fields"]["who"] == SD_VALUE
        assert first["fields"]["n"] == "1"
    else:
        assert "who" not in first["fields"]  # the BSD header has no structured data

    assert (second["host"], second["level"]) == ("origin-8", "ERROR")
    assert second["fields"]["procid"] == "77"
    # rsyslog's %msg% of a BSD message keeps the space after the tag; its 5424
    # templates put it after the SD's "-" separator, so the message starts with it.
    expected = " rule 12 loaded" if shape == "rfc5424" else "rule 12 loaded"
    assert second["message"] == expected


# --- syslog-ng -------------------------------------------------------------------------------

ISO_TEMPLATE = r'template("<${PRI}>${ISODATE} ${HOST} ${MSGHDR}${MSG}\n")'
SYSLOG_NG_DESTINATIONS = {
    "network-tcp": ('network("127.0.0.1" port({port}) transport("tcp"))', "bsd"),
    "network-udp": ('network("127.0.0.1" port({port}) transport("udp"))', "bsd"),
    "network-iso": (
        'network("127.0.0.1" port({port}) transport("tcp") ' + ISO_TEMPLATE + ")",
        "bsd-rfc3339",
    ),
    "network-protocol": (
        'network("127.0.0.1" port({port}) transport("tcp") flags(syslog-protocol))',
        "rfc5424",
    ),
    "syslog-tcp": ('syslog("127.0.0.1" port({port}) transport("tcp"))', "rfc5424"),
    "syslog-udp": ('syslog("127.0.0.1" port({port}) transport("udp"))', "rfc5424"),
}
# The host name and an SD parameter, set by syslog-ng as its own values are set.
SYSLOG_NG_REWRITE = (
    'rewrite { set("origin-9" value("HOST")); '
    'set("a \\"b\\" ] c \\\\ d" value(".SDATA.ex@32473.who")); };'
)


@pytest.mark.parametrize("name", list(SYSLOG_NG_DESTINATIONS))
def test_syslog_ng_destinations(server: ServerProcess, tmp_path: Path, name: str) -> None:
    template, shape = SYSLOG_NG_DESTINATIONS[name]
    destination = template.replace("{port}", str(server.ports["syslog"]))
    when = sent_time()
    with SyslogNg(tmp_path / "syslog-ng", destination, SYSLOG_NG_REWRITE) as syslog_ng:
        # as syslog(3) writes to /dev/log: no host name
        syslog_ng.send(
            f"<165>{bsd_stamp(when)} ledgerd[4242]: payment settled",
            f"<163>{bsd_stamp(when)} auditd: rule 12 loaded",
        )
        first = one(server, "ledgerd")
        second = one(server, "auditd")
    for event in (first, second):
        check_header(event, shape)
        check_time(event, when, shape, fraction=False)
        assert event["host"] == "origin-9"
        assert event["fields"]["facility"] == 20
        assert event["source"].startswith("syslog-udp" if "udp" in name else "syslog-tcp")
    assert (first["level"], first["message"]) == ("INFO", "payment settled")
    assert first["fields"]["procid"] == "4242"
    assert (second["level"], second["message"]) == ("ERROR", "rule 12 loaded")
    assert "procid" not in second["fields"]
    if shape == "rfc5424":
        assert first["fields"]["who"] == SD_VALUE
        assert first["fields"]["sequenceId"] == "1"  # syslog-ng's [meta sequenceId=...]


# --- util-linux logger ------------------------------------------------------------------------

LOGGER_CASES = {
    "udp-rfc5424": ["-d", "--rfc5424"],
    "tcp-rfc5424": ["-T", "--rfc5424"],
    "udp-rfc3164": ["-d", "--rfc3164"],
    "tcp-rfc3164": ["-T", "--rfc3164"],
}


@pytest.mark.parametrize("case", list(LOGGER_CASES))
def test_logger_formats(server: ServerProcess, case: str) -> None:
    logger = tool("logger")
    args = [*LOGGER_CASES[case], "-t", "ledgerd", "--id=4242", "-p", "local4.err"]
    if "--rfc5424" in args:
        args += ["--sd-id", "ex@32473", "--sd-param", SD_WIRE]
    port = str(server.ports["syslog"])
    before = datetime.now().timestamp()
    subprocess.run(
        [logger, "-n", "127.0.0.1", "-P", port, *args, "payment settled"], check=True, timeout=10
    )
    event = one(server, "ledgerd")
    assert event["host"] == socket.gethostname()
    assert (event["level"], event["message"]) == ("ERROR", "payment settled")
    assert event["fields"]["facility"] == 20
    assert event["fields"]["procid"] == "4242"
    if "--rfc5424" in args:
        check_header(event, "rfc5424")
        assert event["fields"]["who"] == SD_VALUE
        assert event["fields"]["tzKnown"] == "1"  # logger's own [timeQuality ...]
        assert before <= event["ts"] <= event["received_at"]  # to the microsecond
    else:
        check_header(event, "bsd")
        assert int(before) <= event["ts"] <= event["received_at"]
        assert event["ts"] == int(event["ts"])
