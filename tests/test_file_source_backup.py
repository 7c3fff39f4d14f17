"""A backup of a server that follows files, restored: the restored server resumes
each file where the snapshot's blocks end, so every line is stored exactly once,
also when the archived positions file was saved after the snapshot's cut."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from logcaster.testing import wait_for
from tests.backup_helpers import run_backup, run_restore
from tests.conftest import ServerFactory
from tests.file_source_helpers import (
    Writer,
    assert_exactly_once,
    at_least,
    start,
    stored_texts,
    wait_stored,
    write_config,
)

POSITIONS = Path("sources") / "file-positions.json"


@pytest.mark.parametrize("positions", ["archived", "saved after the cut"])
def test_a_restored_file_source_resumes_exactly_once(
    server_factory: ServerFactory, tmp_path: Path, positions: str
) -> None:
    logs, data, restored = tmp_path / "logs", tmp_path / "data", tmp_path / "restored"
    logs.mkdir()
    log = logs / "app.log"
    log.touch()
    config = write_config(tmp_path / "c.yaml", [{"paths": [str(log)], "service": "app"}])
    source = start(server_factory, config, data)
    n = 40_000
    # The snapshot is taken mid-file: the writer holds at half until it is.
    writer = Writer(log, n, hold_at=n // 2).start()
    wait_for("lines stored", lambda: len(stored_texts(data)), at_least(n // 3))
    snapshot = run_backup(data, tmp_path / "backup.tar")["snapshot_id"]
    writer.release()
    writer.join()
    wait_stored(data, n)
    source.stop()
    assert 0 < snapshot < n
    run_restore(tmp_path / "backup.tar", restored)
    if positions == "saved after the cut":
        # The race the cut can lose: the positions file replaced after active.log was
        # pinned names offsets past the snapshot. Here: the source's final one.
        shutil.copyfile(data / POSITIONS, restored / POSITIONS)
    server = start(server_factory, config, restored)
    texts = wait_stored(restored, n)
    assert_exactly_once(texts, n)
    if positions == "saved after the cut":
        assert b"positions_ahead_of_data" in b"".join(server.raw_stderr)
