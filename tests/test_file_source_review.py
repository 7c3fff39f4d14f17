"""The file-tail source: regressions from the review of issue 23 (docs/file-source.md).

Each test drives a real server subprocess over real files and reads back what it
stored from the data directory's segments.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.file_source_helpers import (
    assert_exactly_once,
    numbered,
    start,
    stored_texts,
    wait_stored,
    write_config,
)


def config_with(
    path: Path, inputs: list[dict[str, Any]], top: dict[str, Any], **files: Any
) -> Path:
    """write_config, then top-level sections merged in (queue, ingest, multiline)."""
    write_config(path, inputs, **files)
    doc = yaml.safe_load(path.read_text())
    for section, values in top.items():
        doc.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_files_past_max_open_files_take_turns(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """10 files, 3 slots: files read to their end give up their slot after their turn,
    so every file is read, and a file that grows while closed is read again."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    for i in range(10):
        (logs / f"f{i}.log").write_bytes(numbered(i * 100, i * 100 + 100))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "many", "multiline": False}]
    server = start(
        server_factory, write_config(tmp_path / "c.yaml", inputs, max_open_files=3), data
    )
    wait_stored(data, 1000)
    for i in range(10):
        with open(logs / f"f{i}.log", "ab") as f:
            f.write(numbered(1000 + i * 10, 1010 + i * 10))
    texts = wait_stored(data, 1100)
    assert_exactly_once(texts, 1100)
    assert server.stats()["FilesWatched"] <= 3


def test_positions_kept_while_the_log_dir_is_missing(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Stop, move the log directory away, start (nothing matches), stop, move it back,
    start: the file goes on from its position, nothing stored twice."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    (logs / "a.log").write_bytes(numbered(0, 100))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs)
    server = start(server_factory, config, data)
    wait_stored(data, 100)
    assert server.stop() == 0
    logs.rename(tmp_path / "away")
    server = start(server_factory, config, data)
    _wait_scans()
    assert server.stop() == 0
    (tmp_path / "away").rename(logs)
    with open(logs / "a.log", "ab") as f:
        f.write(numbered(100, 150))
    server = start(server_factory, config, data)
    texts = wait_stored(data, 150)
    wait_for("file followed", lambda: server.stats()["FilesWatched"], lambda n: n == 1)
    _wait_scans()
    assert_exactly_once(stored_texts(data), 150)
    assert len(texts) >= 150


def test_symlink_switched_back_resumes_the_file(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """`current` -> rel1, then rel2 (a deploy), then rel1 again (a rollback): rel1's
    file resumes where it was, its first lines are not stored again."""
    rel1, rel2, cur, data = tmp_path / "rel1", tmp_path / "rel2", tmp_path / "cur", tmp_path / "d"
    rel1.mkdir()
    rel2.mkdir()
    (rel1 / "app.log").write_bytes(numbered(0, 50))
    (rel2 / "app.log").write_bytes(numbered(50, 60))

    def switch(to: Path) -> None:
        (tmp_path / "cur.new").symlink_to(to)
        (tmp_path / "cur.new").replace(cur)

    switch(rel1)
    inputs = [{"paths": [f"{cur}/*.log"], "service": "a", "multiline": False}]
    start(server_factory, write_config(tmp_path / "c.yaml", inputs), data)
    wait_stored(data, 50)
    switch(rel2)
    wait_stored(data, 60)
    _wait_scans()  # rel1's file is no longer matched for several scans
    switch(rel1)
    with open(rel1 / "app.log", "ab") as f:
        f.write(numbered(60, 70))
    texts = wait_stored(data, 70)
    _wait_scans()
    assert_exactly_once(stored_texts(data), 70)
    assert len(texts) >= 70


def _wait_scans() -> None:
    """A few poll intervals (0.2 s) pass: the source scanned the globs several times."""
    time.sleep(1.0)


def test_same_size_new_content_while_down_is_read(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The file truncated and rewritten to the same size while the server was down
    (same inode): new content, read; the saved size alone does not say "read"."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "app.log"
    log.write_bytes(b"old line AAAA\nold line BBBB\n")
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs)
    server = start(server_factory, config, data)
    wait_stored(data, 2)
    server.kill()
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"new line CCCC\nnew line DDDD\n")
    start(server_factory, config, data)
    texts = wait_stored(data, 4)
    assert texts == [b"old line AAAA", b"old line BBBB", b"new line CCCC", b"new line DDDD"]


def test_truncated_and_regrown_between_checks_starts_over(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Truncated and rewritten past the old offset before the next check (`cp new
    app.log`): the first line differs, so it is read again from 0, no fragment."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "ct.log"
    log.write_bytes(b"".join(b"ct-old %03d\n" % i for i in range(10)))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs, poll_interval=30)
    start(server_factory, config, data)
    wait_stored(data, 10)
    time.sleep(0.6)  # idle: the next growth is checked against the first line
    new = [b"ct-new %03d xxxxxxxxxxxxxxxxxxxx" % i for i in range(10)]
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"".join(t + b"\n" for t in new))
    wait_stored(data, 20)
    time.sleep(0.6)
    assert stored_texts(data)[10:] == new


def test_stop_keeps_a_held_event_for_the_next_start(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """SIGTERM while a stack trace is held for more lines: it is not sent half; the
    next start reads it whole from its first line (its durable position)."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "ml.log"
    head = b"2026-01-01 ERROR again\njava.lang.RuntimeException: y\n\tat z.z(Z.java:9)\n"
    log.write_bytes(b"2026-01-01 INFO first\n" + head)
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a"}]
    top = {"multiline": {"idle_timeout": 30.0}}
    config = config_with(tmp_path / "c.yaml", inputs, top)
    server = start(server_factory, config, data)
    wait_stored(data, 1)
    wait_for("lines read", lambda: server.stats()["FileLines"], lambda n: n >= 4)
    assert server.stop() == 0
    with open(log, "ab") as f:
        f.write(b"\tat z.y(Z.java:10)\n2026-01-01 INFO final\n")
    start(server_factory, config, data)
    texts = wait_stored(data, 2)
    assert texts[1] == head + b"\tat z.y(Z.java:10)", texts


def test_truncated_counter_survives_a_copytruncate(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A line cut at max_line_bytes is counted once; a later truncation of its file
    does not take the count back."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "tc.log"
    log.write_bytes(b"tc-start\n" + b"T" * 2000 + b"\n")
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = config_with(tmp_path / "c.yaml", inputs, {"ingest": {"max_line_bytes": 1000}})
    server = start(server_factory, config, data)
    wait_stored(data, 2)
    wait_for("cut counted", lambda: server.stats()["Truncated"], lambda n: n == 1)
    with open(log, "r+b") as f:
        f.truncate(0)
    wait_for("truncation seen", lambda: server.stats()["FileTruncations"], lambda n: n >= 1)
    log.write_bytes(b"tc-after-trunc\n")
    wait_stored(data, 3)
    assert server.stats()["Truncated"] == 1


def test_file_lines_wait_for_room_whatever_the_policy(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Under drop_newest with a tiny queue the file source waits for room: every
    line stored once, none dropped (the policies are for network senders)."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    n = 50_000
    (logs / "big.log").write_bytes(numbered(0, n, width=20))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    top = {"queue": {"max_events": 100, "policy": "drop_newest"}, "persist": {"fsync": "always"}}
    config = config_with(tmp_path / "c.yaml", inputs, top, read_bytes=4096)
    server = start(server_factory, config, data)
    texts = wait_stored(data, n, timeout=120)
    assert_exactly_once(texts, n)
    assert server.stats().get("Dropped", 0) == 0


def test_crash_right_after_a_rename_rotation_finishes_the_renamed_file(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """kill -9, lines written, app.log renamed to app.log.1 (which no glob matches)
    and a new app.log: the next start finds app.log.1 by its identity in the same
    directory and reads its unread end; nothing lost, nothing twice."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "app.log"
    log.write_bytes(numbered(0, 100))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs)
    server = start(server_factory, config, data)
    wait_stored(data, 100)
    time.sleep(1.2)  # the positions file names app.log at its end
    server.kill()
    with open(log, "ab") as f:
        f.write(numbered(100, 110))
    log.rename(logs / "app.log.1")
    log.write_bytes(numbered(110, 115))
    start(server_factory, config, data)
    texts = wait_stored(data, 115)
    _wait_scans()
    assert_exactly_once(stored_texts(data), 115)
    assert len(texts) >= 115
