"""BSD syslog headers as senders really write them, through `parse_event`
(parsing/syslog.py; docs/parsing.md, "Syslog").

Host or tag after the time, IPv6 hosts, RFC 3339 times in a BSD header, the
loose dates and Cisco's shapes, and the PRIs that are not syslog at all.
Received on 2026-01-19 15:20 UTC (tests/parse_helpers.py): a BSD time without
a year after that is last year's.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from logcaster.parsing.parse import syslog_line
from tests.parse_helpers import RECEIVED, parse, utc


def local(
    year: int, month: int, day: int, hour: int, minute: int, second: int, us: int = 0
) -> float:
    """Unix seconds of a local wall-clock time (a BSD time has no zone)."""
    return datetime(year, month, day, hour, minute, second, us).timestamp()


# --- host or tag ---------------------------------------------------------------------


def test_a_host_without_a_tag_keeps_the_whole_message() -> None:
    ev = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!")
    assert ev.host == "10.0.0.99"
    assert ev.service is None
    assert ev.message == "Use the BFG!"
    assert ev.level == "INFO"
    assert ev.ts == local(2025, 2, 5, 17, 32, 18)  # ahead of January 2026: last year
    assert ev.fields == {"facility": 1}


def test_a_host_then_a_tag() -> None:
    ev = parse("<0>Jan 12 10:52:01 10.20.30.40 backupd[0]: snapshot rotated")
    assert (ev.host, ev.service, ev.message) == ("10.20.30.40", "backupd", "snapshot rotated")
    assert ev.fields == {"facility": 0, "procid": "0"}
    assert ev.level == "FATAL"


@pytest.mark.parametrize(
    ("line", "app", "procid"),
    [
        ("<30>Jan 12 09:00:00 mountd[4410]: exported /srv", "mountd", "4410"),
        ("<30>Jan 12 09:00:00 mountd: exported /srv", "mountd", None),
        ("<30>Jan 12 09:00:00 mountd[4410] exported /srv", "mountd", "4410"),
    ],
)
def test_a_tag_first_means_no_host(line: str, app: str, procid: str | None) -> None:
    ev = parse(line)
    assert ev.host is None
    assert ev.service == app
    assert ev.fields.get("procid") == procid
    assert ev.message == "exported /srv"


@pytest.mark.parametrize(
    ("host", "tag", "app"),
    [
        ("0002::", "vpnd:", "vpnd"),
        ("fe80::1", "vpnd[7]:", "vpnd"),
        ("2001:db8::17", "vpnd[7]", "vpnd"),
        ("::1", "", None),
    ],
)
def test_ipv6_hosts_are_not_split_at_their_colons(host: str, tag: str, app: str | None) -> None:
    ev = parse(f"<13>Jan 12 09:00:00 {host} {tag} tunnel up".replace("  ", " "))
    assert ev.host == host
    assert ev.service == app
    assert ev.message == "tunnel up"


def test_a_word_with_one_colon_is_a_tag_not_an_ipv6_host() -> None:
    ev = parse("<13>Jan 12 09:00:00 beta:gamma delta")
    assert ev.host is None
    assert ev.service == "beta"
    assert ev.message == "gamma delta"


def test_a_tag_without_a_pid_needs_its_colon() -> None:
    # "backup" could be a tag or the message's first word: without a colon it is
    # the message (go-syslog's reading; rsyslog and syslog-ng would take a tag).
    ev = parse("<13>Jan 12 09:00:00 nas01 backup finished in 42 s")
    assert (ev.host, ev.service, ev.message) == ("nas01", None, "backup finished in 42 s")
    ev = parse("<13>Jan 12 09:00:00 nas01 backup[311] finished in 42 s")
    assert (ev.host, ev.service, ev.message) == ("nas01", "backup", "finished in 42 s")
    assert ev.fields["procid"] == "311"


def test_real_tag_characters() -> None:
    ev = parse("<78>Jan 12 06:25:01 nas01 run-parts(/etc/cron.daily)[912]: starting logrotate")
    assert ev.service == "run-parts(/etc/cron.daily)"
    assert ev.fields["procid"] == "912"
    ev = parse("<22>Jan 12 06:25:01 mx1 postfix/smtpd[17]: connect from unknown")
    assert (ev.host, ev.service) == ("mx1", "postfix/smtpd")


@pytest.mark.parametrize(
    "rest",
    ['{"user": "ana", "ok": true}', "status=done: all good", "<b>bold</b>: x", '"quoted": x'],
)
def test_a_message_that_starts_like_data_is_not_a_tag(rest: str) -> None:
    ev = parse(f"<14>Jan 12 09:00:00 web-3 {rest}")
    assert ev.host == "web-3"
    assert ev.service is None
    assert ev.message == rest


def test_two_spaces_after_the_host_mean_no_tag() -> None:
    ev = parse("<13>Jan 12 09:00:00 edge-1  job:7 queued")
    assert (ev.host, ev.service, ev.message) == ("edge-1", None, "job:7 queued")


def test_a_nil_host_is_skipped() -> None:
    ev = parse("<13>Jan 12 09:00:00 - indexer: merged 3 segments")
    assert (ev.host, ev.service, ev.message) == (None, "indexer", "merged 3 segments")


def test_a_header_with_nothing_after_the_host() -> None:
    ev = parse("<13>Jan 12 09:00:00 lonely-host")
    assert (ev.host, ev.service, ev.message) == ("lonely-host", None, "")


# --- times -------------------------------------------------------------------------------


def test_rfc3339_time_in_a_bsd_header() -> None:
    # rsyslog's RSYSLOG_ForwardFormat and syslog-ng's $ISODATE templates
    ev = parse("<7>2006-11-10T10:43:21.156+02:00 relay-a mailq[81]: queue flushed")
    assert ev.ts == pytest.approx(utc(2006, 11, 10, 8, 43, 21, 156_000))
    assert (ev.host, ev.service, ev.message) == ("relay-a", "mailq", "queue flushed")
    assert ev.level == "DEBUG"
    assert ev.fields == {"facility": 0, "procid": "81"}
    ev = parse("<14>2026-01-19T15:00:00Z relay-a mailq: utc")
    assert ev.ts == utc(2026, 1, 19, 15, 0, 0)


@pytest.mark.parametrize(
    ("stamp", "when"),
    [
        ("Jan 7 10:00:00", (2026, 1, 7, 10, 0, 0)),  # unpadded day
        ("Jan  7 10:00:00", (2026, 1, 7, 10, 0, 0)),  # RFC 3164's space padding
        ("Jan 07 10:00:00", (2026, 1, 7, 10, 0, 0)),  # zero padding (syslog-ng's)
        ("NOV 22 10:00:00", (2025, 11, 22, 10, 0, 0)),  # upper-case month
        ("dec 22 10:00:00", (2025, 12, 22, 10, 0, 0)),
        ("Apr 15 2007 21:28:13:", (2007, 4, 15, 21, 28, 13)),  # Cisco: a year, a colon
        ("Apr 15 21:28:13:", (2025, 4, 15, 21, 28, 13)),
    ],
)
def test_loose_bsd_dates(stamp: str, when: tuple[int, int, int, int, int, int]) -> None:
    ev = parse(f"<13>{stamp} fw-2 ntpd[3]: clock stepped")
    assert ev.ts == local(*when)
    assert (ev.host, ev.service, ev.message) == ("fw-2", "ntpd", "clock stepped")


def test_a_year_after_the_time_is_not_taken_for_a_year() -> None:
    # "Jan 11 10:00:00 2017 host ..." cannot be told from a host named 2017
    # (rsyslog reads it only with detect.yearAfterTimestamp on).
    ev = parse("<13>Jan 11 10:00:00 2017 app: m")
    assert ev.ts == local(2026, 1, 11, 10, 0, 0)
    assert (ev.host, ev.service) == ("2017", "app")


def test_a_bad_date_keeps_the_header_and_the_receive_time() -> None:
    ev = parse("<13>Feb 30 10:00:00 fw-2 ntpd: m")
    assert ev.ts == RECEIVED
    assert (ev.host, ev.service, ev.message) == ("fw-2", "ntpd", "m")
    ev = parse("<13>Feb 29 2023 10:00:00: ntpd: m")  # 2023 has no Feb 29
    assert ev.ts == RECEIVED
    assert ev.service == "ntpd"


def test_a_word_that_is_no_month_is_not_a_bsd_header() -> None:
    ev = parse("<13>Foo 12 10:00:00 fw-2 ntpd: m")
    assert ev.level == "INFO"
    assert ev.ts == RECEIVED
    assert ev.service is None
    assert ev.message == "Foo 12 10:00:00 fw-2 ntpd: m"


# --- Cisco ---------------------------------------------------------------------------------


def test_cisco_mnemonic_tag_is_the_app() -> None:
    ev = parse(
        "<187>Jan 12 2026 09:15:02: %LINK-3-UPDOWN: Interface GigabitEthernet0/3, "
        "changed state to down"
    )
    assert ev.level == "ERROR"  # 187 = local7.err: the PRI, as for every sender
    assert ev.ts == local(2026, 1, 12, 9, 15, 2)
    assert ev.host is None
    assert ev.service == "%LINK-3-UPDOWN"
    assert ev.message == "Interface GigabitEthernet0/3, changed state to down"


def test_cisco_sequence_number_clock_mark_and_milliseconds() -> None:
    ev = parse("<189>311: *Jan 12 00:00:50.123: %SYS-5-CONFIG_I: Configured from console")
    assert ev.ts == pytest.approx(local(2026, 1, 12, 0, 0, 50, us=123_000))
    assert ev.service == "%SYS-5-CONFIG_I"
    assert ev.message == "Configured from console"
    assert ev.fields == {"facility": 23, "sequenceId": "311"}
    ev = parse("<189>312: .Jan 12 00:00:51: %SYS-5-CONFIG_I: synced clock")
    assert ev.ts == local(2026, 1, 12, 0, 0, 51)
    assert ev.fields["sequenceId"] == "312"


def test_cisco_mnemonic_behind_a_host() -> None:
    ev = parse("<189>Jan 12 09:15:02 core-sw1 %LINEPROTO-5-UPDOWN: Line protocol on Vlan9 up")
    assert (ev.host, ev.service) == ("core-sw1", "%LINEPROTO-5-UPDOWN")
    assert ev.message == "Line protocol on Vlan9 up"


# --- PRI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "<192>Jan 12 09:00:00 host app: over the range",
        "<999>1 2026-01-19T15:30:01Z host app - - - over the range",
        "<013>Jan 12 09:00:00 host app: a leading zero",
        "<00>Jan 12 09:00:00 host app: a leading zero",
        "<1x>Jan 12 09:00:00 host app: not a number",
        "<>Jan 12 09:00:00 host app: empty",
        "<-1>Jan 12 09:00:00 host app: negative",
        "<1234>1 - - - - - - four digits",
    ],
)
def test_an_invalid_pri_is_plain_text_without_a_level(line: str) -> None:
    ev = parse(line)
    assert ev.level is None
    assert ev.ts == RECEIVED
    assert ev.host is None and ev.service is None
    assert ev.fields == {}
    assert ev.message == line
    assert syslog_line(line) is None  # shown as it came


@pytest.mark.parametrize(("pri", "level"), [(0, "FATAL"), (191, "DEBUG"), (11, "ERROR")])
def test_the_pri_range_ends(pri: int, level: str) -> None:
    ev = parse(f"<{pri}>Jan 12 09:00:00 host app: m")
    assert ev.level == level
    assert ev.fields["facility"] == pri >> 3


# --- display ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", "10.0.0.99: Use the BFG!"),
        ("<13>Feb  5 17:32:18 fe80::1 vpnd[7]: up", "fe80::1 vpnd[7]: up"),
        ("<7>2006-11-10T10:43:21.156+02:00 relay-a mailq[81]: m", "relay-a mailq[81]: m"),
        ("<189>Apr 15 2007 21:28:13: %LINK-3-UPDOWN: down", "%LINK-3-UPDOWN: down"),
    ],
)
def test_rows_show_the_variants_as_a_syslog_file_does(line: str, shown: str) -> None:
    assert syslog_line(line) == shown
