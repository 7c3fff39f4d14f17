"""Damage in the middle of active.log hides none of its good blocks (issue 14, item 3).

A real server writes, is killed, a block in the middle of active.log is
damaged, and the next start keeps and serves every good block (memory and
store), sets only the damaged bytes aside, reports them, and writes on.
"""

from __future__ import annotations

import json
from pathlib import Path

from logcaster.segments.segment import scan_segment
from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.test_data_cli import run_data
from tests.test_persist_housekeeping import logs_of

EVENTS = 8000
PAD = b"x" * 280  # ~2.4 MB in all: active.log spans more than two 1 MiB store chunks


def _send(server: ServerProcess, first: int, n: int) -> None:
    """Lines `evt-<first> .. evt-<first+n-1>`, one connection (its own blocks)."""
    server.send(b"".join(b"evt-%05d %s\n" % (first + i, PAD) for i in range(n)))


def _ids(server: ServerProcess) -> list[int]:
    """The ids of every event QUERY finds, oldest first."""
    answer = json.loads(server.query("JSON QUERY keyword=evt order=asc limit=10000"))
    return [int(ev["id"]) for ev in answer["events"]]


def test_damage_in_the_middle_of_active_log_keeps_and_serves_its_good_blocks(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    active = data / "active.log"
    args = ("-P", str(data), "--buffer-size", "100", "--log-level", "info")
    first = server_factory(*args)
    for part in range(40):
        _send(first, part * 200 + 1, 200)
    wait_for("delivery", first.stats, lambda s: s["Delivered"] == EVENTS)
    blocks = scan_segment(active).blocks
    # A block well inside the first store chunk, with good blocks before and after.
    bad = next(b for b in blocks if b.offset > 300_000)
    wait_for("index", first.stats, lambda s: s["StoreIndexed"] >= bad.last_id)
    first.kill()  # kill -9

    raw = bytearray(active.read_bytes())
    # The first text of the damaged block, and the last one before it.
    lost_text = raw[bad.offset : bad.end].split(b"\n")[1].split()[0].decode()
    kept_text = raw[: bad.offset].rstrip(b"\n").rsplit(b"\n", 1)[1].split()[0].decode()
    middle = bad.offset + bad.length // 2
    raw[middle : middle + 3] = bytes(b ^ 0xFF for b in raw[middle : middle + 3])
    active.write_bytes(bytes(raw))
    good = [i for i in range(1, EVENTS + 1) if not bad.first_id <= i <= bad.last_id]

    second = server_factory(*args)
    [recovered] = logs_of(second, "segment_recovered")
    assert recovered["kind"] == "repaired"
    assert (recovered["path"], recovered["offset"]) == (str(active), bad.offset)
    assert recovered["reason"] == "checksum mismatch"
    assert recovered["kept_events"] == len(good)
    [damage] = recovered["damaged"]
    assert (damage["offset"], damage["bytes"]) == (bad.offset, bad.length)
    aside = Path(damage["quarantined_to"])
    assert aside.parent == data / "quarantine"
    assert aside.name.startswith("active.log.") and f".at-{bad.offset}." in aside.name
    assert aside.read_bytes() == raw[bad.offset : bad.end]  # only the damaged bytes

    # Every good event is served, once; the store re-indexes the repaired file
    # (its old index pointed at old offsets) and memory lets go of what it covers.
    assert _ids(second) == good
    wait_for("re-index", second.stats, lambda s: s["StoreIndexed"] >= bad.last_id + 1000)
    stats = wait_for("memory released", second.stats, lambda s: s["Current"] < len(good) / 2)
    assert stats["StoreIndexed"] > bad.last_id
    assert _ids(second) == good  # now mostly from the store
    found = second.query(f"QUERY keyword={kept_text}")
    assert found.startswith("FOUND: 1 matches"), found
    assert second.query(f"QUERY keyword={lost_text}").startswith("FOUND: 0 matches")

    # New events continue the ids after the highest one, without duplicates.
    _send(second, EVENTS + 1, 10)
    wait_for("delivery", second.stats, lambda s: s["Delivered"] == 10)
    assert _ids(second) == [*good, *range(EVENTS + 1, EVENTS + 11)]
    assert second.stop() == 0

    validate = run_data("validate", str(data))
    assert validate.returncode == 0, validate.stdout
    assert "active.log" in validate.stdout and "quarantined (1 file(s)" in validate.stdout
    assert f"damaged bytes of active.log at offset {bad.offset} ({bad.length} bytes)" in (
        validate.stdout
    )
    cat = run_data("cat", str(data))
    assert cat.stdout.count("evt-") == len(good) + 10
    third = server_factory(*args)
    assert logs_of(third, "segment_recovered") == []
    assert _ids(third) == [*good, *range(EVENTS + 1, EVENTS + 11)]
