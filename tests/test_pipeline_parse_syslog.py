"""Parsing of syslog messages (SPEC §3) through `parse_event`.

RFC 5424 with structured data, RFC 3164 with and without a host, the bare
`<PRI>message` of Python's SysLogHandler, and lines that only look like syslog.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.parse_helpers import RECEIVED, parse, utc

# --- syslog ------------------------------------------------------------------------


def test_rfc5424_with_structured_data_and_bom() -> None:
    line = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 4711 ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high"] \xef\xbb\xbfAn application event'
    )
    ev = parse(line)
    assert ev.level == "INFO"  # 165 = local4.notice
    assert ev.ts == pytest.approx(utc(2003, 10, 11, 22, 14, 15, 3000))
    assert ev.host == "mymachine.example.com"
    assert ev.service == "evntslog"
    assert ev.message == "An application event"  # BOM stripped
    assert ev.fields == {
        "facility": 20,
        "procid": "4711",
        "msgid": "ID47",
        "iut": "3",
        "eventSource": "Application",
        "eventID": "1011",
        "class": "high",
    }


def test_rfc5424_nil_values() -> None:
    ev = parse("<34>1 - - - - - - su failed")
    assert ev.level == "FATAL"  # 34 = auth.crit
    assert ev.ts == RECEIVED
    assert ev.host is None
    assert ev.service is None
    assert ev.message == "su failed"
    assert ev.fields == {"facility": 4}


def test_rfc5424_without_message_and_with_offset_time() -> None:
    ev = parse("<13>1 2026-01-19T15:30:01.5+09:00 host app - - -")
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 6, 30, 1, 500_000))
    assert ev.message == ""
    assert ev.service == "app"


def test_rfc5424_escaped_param_values() -> None:
    # RFC 5424 §6.3.3: '"', '\\' and ']' are escaped in a value; a backslash
    # before any other character stays.
    ev = parse(r'<14>1 2026-01-19T15:30:01Z h app - - [a@1 k="say \"hi\" \\ \]" d="C:\tmp"] msg')
    assert ev.fields["k"] == 'say "hi" \\ ]'
    assert ev.fields["d"] == "C:\\tmp"
    assert ev.message == "msg"


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (0, "FATAL"),
        (1, "FATAL"),
        (2, "FATAL"),
        (3, "ERROR"),
        (4, "WARN"),
        (5, "INFO"),
        (6, "INFO"),
        (7, "DEBUG"),
    ],
)
def test_syslog_priority_to_level(severity: int, level: str) -> None:
    pri = 3 * 8 + severity  # facility daemon
    ev = parse(f"<{pri}>1 2026-01-19T15:30:01Z h app - - - m")
    assert ev.level == level
    assert ev.fields["facility"] == 3
    ev = parse(f"<{pri}>Jan 19 15:30:01 h app: m")
    assert ev.level == level


def test_rfc3164_with_host() -> None:
    ev = parse("<13>Jan 19 15:30:01 myhost sshd[42]: Accepted publickey for bob")
    assert ev.level == "INFO"
    # No year and no zone: the receiver's local year and zone.
    assert ev.ts == datetime(2026, 1, 19, 15, 30, 1).timestamp()
    assert ev.host == "myhost"
    assert ev.service == "sshd"
    assert ev.message == "Accepted publickey for bob"
    assert ev.fields == {"facility": 1, "procid": "42"}


def test_rfc3164_without_host() -> None:
    ev = parse("<13>Jan  9 15:30:01 sshd[42]: msg")
    assert ev.host is None
    assert ev.service == "sshd"
    assert ev.message == "msg"
    assert ev.ts == datetime(2026, 1, 9, 15, 30, 1).timestamp()
    ev = parse("<13>Jan 19 15:30:01 cron: job done")
    assert ev.host is None
    assert ev.service == "cron"
    assert ev.message == "job done"
    assert ev.fields == {"facility": 1}


def test_rfc3164_time_ahead_is_last_year() -> None:
    received = datetime(2026, 1, 2, 0, 0, 0).timestamp()
    ev = parse("<13>Dec 31 23:59:59 h app: m", received_at=received)
    assert ev.ts == datetime(2025, 12, 31, 23, 59, 59).timestamp()


def test_rfc3164_feb_29_in_a_leap_year_does_not_raise() -> None:
    # Received in January 2028, "Feb 29" is ahead, and 2027 has no Feb 29: this raised.
    received = datetime(2028, 1, 15, 12, 0, 0).timestamp()
    ev = parse("<13>Feb 29 10:00:00 h app: m", received_at=received)
    assert ev.ts == datetime(2028, 2, 29, 10, 0, 0).timestamp()
    assert ev.message == "m"


def test_rfc3164_bad_date_falls_back_to_received_at() -> None:
    ev = parse("<13>Feb 30 15:30:01 h app: m")
    assert ev.ts == RECEIVED
    assert ev.service == "app"


def test_python_sysloghandler_message() -> None:
    # logging.handlers.SysLogHandler sends "<PRI>message\x00".
    ev = parse(b"<11>message\x00")
    assert ev.level == "ERROR"  # 11 = user.err
    assert ev.message == "message"
    assert ev.fields == {"facility": 1}
    assert ev.ts == RECEIVED


def test_python_sysloghandler_message_is_parsed_as_a_line_of_its_own() -> None:
    ev = parse(b"<14>[WARN] 2026-01-19 15:30:01.234 svc/v1 pod/p-1: careful k=v\x00")
    assert ev.level == "WARN"  # the line's own level over the priority's INFO
    assert ev.service == "svc"
    assert ev.pod == "p-1"
    assert ev.ts == pytest.approx(utc(2026, 1, 19, 15, 30, 1, 234_000))
    assert ev.message == "careful k=v"
    assert ev.fields == {"k": "v", "facility": 1}


def test_stacked_priorities_do_not_recurse() -> None:
    # Each "<N>" was parsed by a recursive call: 2000 of them raised RecursionError.
    ev = parse(b"<11>" * 2000)
    assert ev.level == "ERROR"
    assert ev.message == "<11>" * 1999


@pytest.mark.parametrize("line", ["<999>1 - - - - - - m", "<>x", "<", "<abc>def", "<13>"])
def test_not_quite_syslog_never_raises(line: str) -> None:
    ev = parse(line)
    assert ev.body == line
