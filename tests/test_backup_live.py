"""`logcaster backup` of a server under load (issue 23): the restored directory
validates, a server started on it serves exactly the source's events up to the
snapshot id, from memory and from its store index alike; the same while
segments rotate every quarter second and retention deletes the oldest."""

from __future__ import annotations

import json
import os
from pathlib import Path

from logcaster.store.index import load_index
from logcaster.testing import ServerProcess, wait_for
from tests.backup_helpers import (
    ALL_ROWS,
    Load,
    events,
    line,
    logcaster,
    manifest_of,
    run_backup,
    run_restore,
    validate,
)
from tests.conftest import ServerFactory


def env(**settings: str) -> dict[str, str]:
    """Small segments (a rotation every ~0.25 s of load), the tail indexed after
    100 ms (the index's last chunk is extended in place while the backup reads)."""
    out = {
        **os.environ,
        "LOGCASTER_PERSIST__MAX_FILE_BYTES": "262144",
        "LOGCASTER_STORE__INDEX_DELAY_MS": "100",
        "LOGCASTER_QUERY__MAX_LIMIT": str(ALL_ROWS),
        "LOGCASTER_QUERY__TIMEOUT": "30",
    }
    out.update({f"LOGCASTER_{k.upper()}": v for k, v in settings.items()})
    return out


def backup_under_load(
    server: ServerProcess, data: Path, archive: Path, start: int = 4000
) -> tuple[int, int]:
    """Back up once `start` events are in, while the load runs; (the snapshot id,
    events sent in all)."""
    load = Load(server.ingest_port)
    wait_for("a loaded server", server.stats, lambda s: s["Total"] >= start)
    manifest = run_backup(data, archive)
    before = load.sent
    wait_for("more load after the backup", lambda: load.sent, lambda n: n > before + 1000)
    sent = load.stop()
    wait_for("every event stored", server.stats, lambda s: s["Delivered"] >= sent, 30)
    snapshot = manifest["snapshot_id"]
    assert isinstance(snapshot, int) and start <= snapshot < sent
    rotated = [f for f in manifest["files"] if f["name"].startswith("data/logcaster-")]
    assert rotated, "no rotated segment in the backup"
    return snapshot, sent


def test_backup_under_load_restores_every_event_up_to_the_snapshot(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data, restored, archive = tmp_path / "data", tmp_path / "restored", tmp_path / "b.tar"
    source = server_factory("-P", str(data), env=env())
    snapshot, sent = backup_under_load(source, data, archive)
    expected = [(i, line(i).decode()) for i in range(1, snapshot + 1)]
    assert [e for e in events(source) if e[0] <= snapshot] == expected
    assert len(events(source)) == sent  # the source went on past the snapshot

    run_restore(archive, restored)
    validate(restored)
    # The index came cut at the snapshot: no chunk claims an event past it.
    cut = [
        load_index(base.with_suffix("")).last_id for base in (restored / "index").glob("*.chunks")
    ]
    assert cut and all(last is not None and last <= snapshot for last in cut), cut
    copy = server_factory("-P", str(restored), env=env())
    assert events(copy) == expected  # nothing missing, nothing extra
    # The index came cut at the snapshot: the restored store indexes the rest and
    # then answers every event itself.
    wait_for("indexed", copy.stats, lambda s: s["StoreLag"] == 0 and s["StoreIndexed"] > 0)
    assert events(copy, "store") == expected
    copy.send(b"after the restore\n")
    newest = wait_for("a new event", lambda: events(copy)[-1], lambda e: e[0] > snapshot)
    assert newest == (snapshot + 1, "after the restore")  # ids continue after the snapshot


def test_backup_while_segments_rotate_and_retention_deletes(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data, restored, archive = tmp_path / "data", tmp_path / "restored", tmp_path / "b.tar"
    source = server_factory("-P", str(data), env=env(persist__retention_files="2"))
    snapshot, _ = backup_under_load(source, data, archive, start=15_000)
    deleted = [x for x in source.logs if x.get("event") == "segment_deleted"]
    assert deleted, "retention deleted nothing"

    run_restore(archive, restored)
    validate(restored)
    copy = server_factory("-P", str(restored), env=env())
    got = events(copy)
    first = got[0][0]
    assert first > 1  # retention had deleted the oldest before the backup
    # A run without a gap from the oldest segment kept to the snapshot.
    assert got == [(i, line(i).decode()) for i in range(first, snapshot + 1)]


def test_backup_while_rotated_segments_are_compressed(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Without the store, housekeeping gzips each rotated segment (new file, old
    one unlinked) while the backup lists and links them."""
    data, restored, archive = tmp_path / "data", tmp_path / "restored", tmp_path / "b.tar"
    source = server_factory("-P", str(data), env=env(store__enabled="false"))
    snapshot, _ = backup_under_load(source, data, archive, start=8000)
    names = [f["name"] for f in manifest_of(archive.read_bytes())["files"]]
    assert any(n.endswith(".log.gz") for n in names), names

    run_restore(archive, restored)
    validate(restored)
    cat = logcaster("data", "cat", "--json", str(restored))
    assert cat.returncode == 0, cat.stderr
    got = [(doc["id"], doc["text"]) for doc in map(json.loads, cat.stdout.splitlines())]
    assert got == [(i, line(i).decode()) for i in range(1, snapshot + 1)]
