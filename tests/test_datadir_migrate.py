"""`logcaster migrate DIR` on fixture directories of every earlier format
(tests/fixtures/datadir), and a server refusing what it cannot read."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from logcaster.datadir.migrate import KILL_AFTER_ENV
from logcaster.datadir.versions import CURRENT, LC1_MAGIC, magic_of, segment_files
from logcaster.segments import read_batches
from logcaster.testing import start_server, wait_for
from tests.datadir_helpers import (
    FIXTURES,
    OLD,
    copy_fixture,
    expected_events,
    logcaster,
    serve_args,
    snapshot,
    stored_events,
)


def _served(directory: Path, last_id: int) -> dict[str, dict[int, str]]:
    """id -> body of every event a server on `directory` answers, from memory and
    store together and from the store alone (once it indexed up to `last_id`)."""
    server = start_server("-P", str(directory))
    try:
        wait_for("the index", server.stats, lambda s: s["StoreIndexed"] >= last_id, 30)
        answers = {}
        for source in ("all", "store"):
            reply = server.query(f"JSON QUERY source={source} limit=10000 max_count=10000")
            doc = json.loads(reply)
            assert not doc["capped"], reply[:200]
            answers[source] = {int(e["id"]): e["body"] for e in doc["events"]}
        return answers
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("name", OLD)
def test_an_old_directory_migrates_and_serves_every_event(name: str, tmp_path: Path) -> None:
    data = copy_fixture(name, tmp_path)
    events = expected_events(name)
    done = logcaster("migrate", str(data))
    assert done.returncode == 0, done.stderr
    assert f"{data}: format v{name[1]} -> v{CURRENT}" in done.stdout
    assert done.stdout.endswith(f"{data}: now at v{CURRENT}\n")
    assert json.loads((data / "FORMAT").read_text()) == {"format": CURRENT}
    checked = logcaster("data", "validate", str(data))
    assert checked.returncode == 0, checked.stdout
    assert f"format: v{CURRENT} (FORMAT marker): current" in checked.stdout
    # Ids, texts and order exactly as the old code read them, bytes included.
    assert stored_events(data) == events
    served = _served(data, events[-1][0])
    want = {i: text.decode("utf-8", "replace") for i, text in events}
    assert served["all"] == want
    assert served["store"] == want  # the index was rebuilt from the migrated segments
    assert json.loads((data / "index" / "FORMAT").read_text()) == {"index": 2}


def test_the_spool_keeps_its_files_and_gets_a_marker(tmp_path: Path) -> None:
    data = copy_fixture("v2", tmp_path)
    spool = data / "forward" / "central" / "spool"
    before = snapshot(spool)
    done = logcaster("migrate", str(data))
    assert done.returncode == 0, done.stderr
    assert "mark spool forward/central/spool: spool format 1" in done.stdout
    after = snapshot(spool)
    assert after.pop("FORMAT") == b'{"spool":1}\n'
    assert after == before


def test_v1_segments_get_the_documented_fills(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    mtimes = {path.name: path.stat().st_mtime for path in segment_files(data)}
    assert logcaster("migrate", str(data)).returncode == 0
    for path in segment_files(data):
        assert path.stat().st_mtime == mtimes[path.name]  # retention ages by it
        for batch in read_batches(path):
            assert (batch.source, batch.mode) == ("", "raw")
            assert batch.received == pytest.approx(mtimes[path.name], abs=1e-6)


@pytest.mark.parametrize("name", OLD)
def test_a_server_refuses_an_unmigrated_directory_and_changes_nothing(
    name: str, tmp_path: Path
) -> None:
    data = copy_fixture(name, tmp_path)
    before = snapshot(data)
    refused = logcaster(*serve_args(data))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"logcaster: data directory {data} is format v{name[1]} "
        f"(#LC{name[1]} segments, no FORMAT marker); this version reads v{CURRENT}: "
        f"run `logcaster migrate {data}` (the directory was not changed)\n"
    )
    assert snapshot(data) == before


@pytest.mark.parametrize("name", OLD)
def test_rerun_says_already_current_and_dry_run_writes_nothing(name: str, tmp_path: Path) -> None:
    data = copy_fixture(name, tmp_path)
    before = snapshot(data)
    dry = logcaster("migrate", "--dry-run", str(data))
    assert dry.returncode == 0, dry.stderr
    assert "(dry run: nothing is written)" in dry.stdout
    assert "would write FORMAT: format v3" in dry.stdout
    assert snapshot(data) == before
    assert logcaster("migrate", str(data)).returncode == 0
    migrated = snapshot(data)
    again = logcaster("migrate", str(data))
    assert (again.returncode, again.stdout) == (
        0,
        f"{data}: already at v{CURRENT}; nothing to do\n",
    )
    assert snapshot(data) == migrated


def test_a_migration_killed_midway_finishes_on_rerun(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    killed = logcaster("migrate", str(data), env={**os.environ, KILL_AFTER_ENV: "1"})
    assert killed.returncode == -signal.SIGKILL
    magics = [magic_of(path) for path in segment_files(data)]
    assert magics == [b"#LC2 ", LC1_MAGIC]  # one file rewritten, the other not yet
    assert not (data / "FORMAT").exists()
    # Half done is still the old format: refused, and said so.
    refused = logcaster(*serve_args(data))
    assert refused.returncode == 2 and "format v1" in refused.stderr
    done = logcaster("migrate", str(data))
    assert done.returncode == 0, done.stderr
    assert "rewrite active.log" in done.stdout and "rewrite logcaster-" not in done.stdout
    assert stored_events(data) == expected_events("v1")
    assert logcaster("data", "validate", str(data)).returncode == 0


def test_a_leftover_partial_file_is_removed(tmp_path: Path) -> None:
    data = copy_fixture("v1", tmp_path)
    (data / "active.log.migrating").write_bytes(b"#LC2 half a file")
    done = logcaster("migrate", str(data))
    assert done.returncode == 0, done.stderr
    assert "remove active.log.migrating (left by an interrupted migration)" in done.stdout
    assert not (data / "active.log.migrating").exists()
    assert stored_events(data) == expected_events("v1")


def test_fixtures_are_what_their_readme_says() -> None:
    readme = (FIXTURES / "README.md").read_text()
    for name in OLD:
        assert f"`{name}/`" in readme
        assert (FIXTURES / name).is_dir() and (FIXTURES / f"{name}.expected.json").is_file()
        assert not (FIXTURES / name / "FORMAT").exists()  # written before markers existed
