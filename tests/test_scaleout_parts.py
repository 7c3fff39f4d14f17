"""Scale-out's parts without services: stream marks, the entry format, rows, the node
id, Redis's persistence check and the config's checks."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from logcaster.config import load_config
from logcaster.exceptions import ConfigError, StorageError
from logcaster.pipeline.batch import Batch, StreamMark, mark_label, split_label
from logcaster.scaleout import entry
from logcaster.scaleout.id_reserve import RESERVE_IDS, IdReservation
from logcaster.scaleout.node import NODE_FILE, node_id
from logcaster.scaleout.publish import persistence_risk, publisher, safe_url
from logcaster.scaleout.rows import COLUMNS, batch_rows
from logcaster.sinks.forward.spool import Spool

SESSION = uuid.UUID(int=7).hex
TEXTS = [b"one", b"two\n  at a.b(C.java:1)\n  at c.d(E.java:2)", b"", b"four"]


def test_a_cut_batch_keeps_its_stream_mark_line_by_line() -> None:
    batch = Batch(10, 1.5, "tcp:x", TEXTS, StreamMark(SESSION, 100))
    assert batch.cut(0).stream == StreamMark(SESSION, 100)
    assert batch.cut(1).stream == StreamMark(SESSION, 101)
    assert batch.cut(2).stream == StreamMark(SESSION, 104)  # the trace is 3 lines
    rest = batch.cut(3)
    assert (rest.first_id, rest.texts, rest.stream) == (13, [b"four"], StreamMark(SESSION, 105))
    assert Batch(1, 0.0, "s", TEXTS).cut(2).stream is None


def test_a_label_carries_a_mark_and_ordinary_labels_pass_through() -> None:
    mark = StreamMark(SESSION, 12345)
    label = mark_label("tcp:" + "x" * 200, mark)
    assert split_label(label) == ("tcp:" + "x" * 56, mark)
    for plain in ("tcp:127.0.0.1:5000", "syslog-udp", "", "a\x1eb/1", f"x\x1e{SESSION}/-1"):
        assert split_label(plain) == (plain, None)


def test_the_spool_keeps_stream_marks(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", max_bytes=1 << 20) as spool:
        spool.append([Batch(1, 2.0, "tcp:a", TEXTS, StreamMark(SESSION, 7))])
        spool.append([Batch(5, 2.0, "tcp:b", [b"plain"])])
        spool.commit(2)  # the first two events were delivered
    with Spool(tmp_path / "spool", max_bytes=1 << 20) as spool:
        first, second = spool.read(100)
    assert (first.first_id, first.source, first.stream) == (3, "tcp:a", StreamMark(SESSION, 11))
    assert first.texts == TEXTS[2:]
    assert (second.source, second.stream) == ("tcp:b", None)


def test_entries_round_trip_and_bad_ones_say_why() -> None:
    batch = Batch(42, 1_796_500_000.123456, "tcp:127.0.0.1:1", TEXTS, StreamMark(SESSION, 3))
    node, back = entry.decode(entry.encode(batch, 99))
    assert node == 99
    assert (back.first_id, back.texts, back.source, back.stream) == (
        42,
        TEXTS,
        "tcp:127.0.0.1:1",
        StreamMark(SESSION, 3),
    )
    assert back.received_at == pytest.approx(batch.received_at, abs=1e-6)
    good = entry.encode(Batch(1, 1.0, "s", [b"a", b"b"]), 5)
    bad = {
        "format": {**good, b"v": b"9"},
        "node": {**good, b"node": b"0"},
        "count": {**good, b"n": b"3"},
        "number": {**good, b"first": b"-1"},
        "session": {**good, b"session": b"xyz", b"seq": b"1"},
    }
    for name, fields in bad.items():
        with pytest.raises(entry.EntryError):
            entry.decode(fields)
            pytest.fail(f"the bad {name} was decoded")


def test_rows_number_each_event_by_its_first_line_and_clean_nul() -> None:
    texts = [b"2026-12-05T10:00:00Z ERROR api boom req=r1", b"a\nb", b"nul \x00 here"]
    batch = Batch(7, 86400 * 20_000 + 5.0, "tcp:x", texts, StreamMark(SESSION, 10))
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in batch_rows(3, batch)]
    assert [r["seq"] for r in rows] == [10, 11, 13]
    assert [r["event_id"] for r in rows] == [7, 8, 9]
    assert {str(r["day"]) for r in rows} == {"2024-10-04"}  # day 20,000 of 1970
    assert rows[0]["level"] == "ERROR" and rows[0]["request_id"] == "r1"
    assert rows[2]["body"] == "nul \ufffd here"
    plain = next(batch_rows(3, Batch(1, 0.0, "s", [b"x"])))
    assert plain[COLUMNS.index("session")] is None and plain[COLUMNS.index("seq")] is None


def test_the_node_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = node_id(str(tmp_path))
    assert 0 < first < 1 << 63
    assert node_id(str(tmp_path)) == first
    (tmp_path / NODE_FILE).write_text("not a number\n")
    with pytest.raises(StorageError, match="does not hold a node id"):
        node_id(str(tmp_path))
    assert node_id(None) != node_id(None)  # per run without a directory


def test_persistence_risk_names_the_setting() -> None:
    assert persistence_risk({"appendonly": "yes", "appendfsync": "always"}) is None
    assert persistence_risk({b"appendonly": b"yes", b"appendfsync": b"everysec"}) is None
    assert "appendonly is off" in (persistence_risk({"appendonly": "no"}) or "")
    risk = persistence_risk({"appendonly": "yes", "appendfsync": "no"})
    assert risk is not None and "appendfsync is no" in risk
    assert safe_url("redis://:secret@h:1/0") == "redis://***@h:1/0"
    assert safe_url("redis://h:1/0") == "redis://h:1/0"


def test_config_checks_the_urls_and_the_publisher_name() -> None:
    with pytest.raises(ConfigError, match=r"scaleout\.publish: .*redis://"):
        load_config(environ={}, overrides={"scaleout.publish": "http://x:1"})
    with pytest.raises(ConfigError, match=r"scaleout\.history: .*postgresql://"):
        load_config(environ={}, overrides={"scaleout.history": "redis://x:1"})
    group = {"name": "publish", "primaries": [{"url": "tcp://127.0.0.1:1"}]}
    with pytest.raises(ConfigError, match=r"forward\.name"):
        load_config(
            environ={},
            overrides={"scaleout.publish": "redis://127.0.0.1:1/0", "forward": [group]},
        )


def test_ids_are_reserved_before_they_are_published(tmp_path: Path) -> None:
    ids = IdReservation(tmp_path / "publish")
    assert ids.through == 0
    ids.cover(10)
    assert ids.through == 10 + RESERVE_IDS
    ids.cover(500)  # inside the reservation: no write
    assert IdReservation(tmp_path / "publish").through == 10 + RESERVE_IDS
    config = load_config(
        environ={},
        overrides={"persist.dir": str(tmp_path), "scaleout.publish": "redis://127.0.0.1:1/0"},
    )
    (tmp_path / "forward" / "publish").mkdir(parents=True)
    (tmp_path / "forward" / "publish" / "reserved-ids").write_text("4242\n")
    assert publisher(config, None).last_id == 4242  # a restart continues above it
