"""The file-tail source (issue 23, docs/file-source.md): real server, real files.

Rotation and kill -9 are in test_file_source_rotation.py.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from logcaster.pipeline.batch import split_label
from logcaster.sources.files.labels import file_label, file_position, service_of
from logcaster.testing import wait_for
from tests.conftest import ServerFactory
from tests.file_source_helpers import (
    assert_exactly_once,
    numbered,
    start,
    stored_sources,
    stored_texts,
    wait_stored,
    write_config,
)
from tests.metrics_helpers import http_get, metrics_text, samples, value
from tests.test_operator_errors import assert_one_line_failure, serve


def test_lines_of_present_and_new_files(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A file present at start is read whole (read_from: beginning); files created
    under the glob later are found and read whole too; every event carries the
    input's service, and its source is the input's label without the position."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    (logs / "a.log").write_bytes(numbered(0, 1000))
    (logs / "skip.log").write_bytes(b"excluded\n")
    inputs = [{"paths": [f"{logs}/*.log"], "exclude": ["*/skip.log"], "service": "shop"}]
    env = {"LOGCASTER_STORE__INDEX_DELAY_MS": "50"}
    server = start(server_factory, write_config(tmp_path / "c.yaml", inputs), data, env=env)
    wait_stored(data, 1000)
    (logs / "b.log").write_bytes(numbered(1000, 1500))
    with open(logs / "c.log", "ab") as f:  # appears empty, written later
        f.flush()
        wait_for("c.log seen", lambda: server.stats()["FilesWatched"], lambda n: n >= 2)
        f.write(numbered(1500, 2000))
    texts = wait_stored(data, 2000)
    assert_exactly_once(texts, 2000)
    assert b"excluded" not in texts
    doc = json.loads(server.query("JSON QUERY limit=5"))
    assert {ev["service"] for ev in doc["events"]} == {"shop"}
    assert {ev["source"] for ev in doc["events"]} == {"file:shop"}
    # The store indexes the input's service too (its texts name none).
    wait_for("indexed", server.stats, lambda s: s["StoreIndexed"] >= 2000)
    for where in ("store", "memory"):
        found = json.loads(server.query(f"JSON QUERY source={where} service=shop max_count=5000"))
        assert found["found"] == 2000, where
    # /metrics: the source's families, and the level tally by the input's service.
    entries = wait_for(
        "tallied",
        lambda: samples(metrics_text(server.ports["http"])),
        lambda found: value(found, "logcaster_logging_entries_total", component="shop") >= 2000,
    )
    assert value(entries, "logcaster_files_watched") == 3
    assert value(entries, "logcaster_file_lines_total") == 2000
    # On disk each block's label carries the file's key and the offset it ends at.
    assert all(s.startswith("file:shop\x1f") for s in stored_sources(data))
    stats = server.stats()
    assert stats["FilesWatched"] == 3 and stats["FileLines"] == 2000
    # The source binds no port: readiness does not wait for one.
    assert http_get(server.ports["http"], "/readyz")[0] == 200
    assert stats["FileReadBytes"] == sum(p.stat().st_size for p in logs.glob("[abc].log"))


def test_binary_file_is_stored_as_tcp_stores_it(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """NUL bytes, invalid UTF-8 and CRLF: every line is stored byte for byte, exactly
    as the same bytes sent over TCP are."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    blob = bytes(range(256)).replace(b"\n", b"") * 3
    lines = [b"bin " + blob[i : i + 97] for i in range(0, len(blob), 97)]
    lines += [b"nul\x00in the middle", b"\xff\xfe not utf-8 \xc3\x28", b"crlf line\r"]
    payload = b"\n".join(lines) + b"\n"
    (logs / "blob.bin").write_bytes(payload)
    inputs = [{"paths": [f"{logs}/*.bin"], "service": "bin", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs)
    # Grouping off for TCP too: each line one event on both paths.
    env = {"LOGCASTER_MULTILINE__ENABLED": "false"}
    server = start(server_factory, config, data, env=env)
    from_file = wait_stored(data, len(lines))
    server.send(payload)
    both = wait_stored(data, 2 * len(lines))
    from_tcp = both[len(lines) :]
    assert from_file == from_tcp == [line.removesuffix(b"\r") for line in lines]


def test_file_deleted_while_being_read(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A file unlinked mid-read is read to its end through the open descriptor, then
    closed: nothing lost, nothing twice, the rotation counted."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    n = 200_000
    path = logs / "big.log"
    path.write_bytes(numbered(0, n, width=40))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "big", "multiline": False}]
    # A small queue and a disk sync per write keep the reading slow enough to delete mid-way.
    config = write_config(tmp_path / "c.yaml", inputs, read_bytes=65536)
    env = {"LOGCASTER_QUEUE__MAX_EVENTS": "2000", "LOGCASTER_PERSIST__FSYNC": "always"}
    server = start(server_factory, config, data, env=env)
    wait_stored(data, 1)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        before = len(stored_texts(data))
        path.unlink()
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert before < n  # the file was deleted while being read
    texts = wait_stored(data, n)
    assert_exactly_once(texts, n)
    stats = wait_for("closed", server.stats, lambda s: s["FilesWatched"] == 0)
    assert stats["FileRotations"] == 1
    # Backpressure: the queue filled and the source waited instead of dropping.
    assert stats["Dropped"] == 0 and stats["HighWatermark"] >= 1


def test_too_many_files_warns_naming_the_glob(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Past max_open_files the extra files wait, with one warning naming the glob and
    the count; they are read when files read to their end give up their slot after
    a turn (waiting.py), no file deleted."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    for i in range(5):
        (logs / f"f{i}.log").write_bytes(numbered(i * 100, i * 100 + 100))
    glob = f"{logs}/*.log"
    inputs = [{"paths": [glob], "service": "many"}]
    config = write_config(tmp_path / "c.yaml", inputs, max_open_files=3)
    server = start(server_factory, config, data)
    warned = wait_for(
        "the warning",
        lambda: [log for log in server.logs if log.get("event") == "too_many_files"],
        lambda found: len(found) > 0,
    )
    assert len(warned) == 1, warned
    assert warned[0]["glob"] == glob and warned[0]["matched"] == 5
    assert "sources.files.max_open_files" in warned[0]["reason"]
    texts = wait_stored(data, 500)
    assert_exactly_once(texts, 500)
    assert server.stats()["FilesWatched"] <= 3


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"inputs": [{"paths": ["/x/*.log"]}]}, ["sources.files.inputs.0", "service"]),
        ({"inputs": [{"paths": [], "service": "a"}]}, ["sources.files.inputs.0.paths"]),
        (
            {"inputs": [{"paths": ["/x"], "service": "a", "multiline": "java"}]},
            ["sources.files.inputs.0.multiline", "'java'", "multiline.rules"],
        ),
        ({"inputs": [], "read_from": "middle"}, ["sources.files.read_from", "beginning"]),
        ({"max_open_files": 0}, ["sources.files.max_open_files"]),
        ({"inputs": [{"paths": ["/x"], "service": "a b"}]}, ["sources.files.inputs.0.service"]),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, files: dict[str, object], words: list[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"sources": {"files": files}}))
    assert_one_line_failure(serve("--config", str(config)), *words)


def test_damaged_positions_file_stops_the_start(tmp_path: Path) -> None:
    """A positions file that is not one is not guessed around: one line naming it."""
    data = tmp_path / "data"
    (data / "sources").mkdir(parents=True)
    positions = data / "sources" / "file-positions.json"
    positions.write_text("{not json")
    inputs = [{"paths": [f"{tmp_path}/*.log"], "service": "a"}]
    config = write_config(tmp_path / "c.yaml", inputs)
    result = serve("--config", str(config), "-P", str(data), "--log-level", "warning")
    assert_one_line_failure(result, "sources.files", str(positions), "not a positions file")


def test_restart_resumes_and_reads_what_came_meanwhile(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A clean stop saves the positions; lines appended while the server is down and a
    file created meanwhile are read at the next start, nothing twice. An unfinished
    last line waits for its newline across the restart."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    log = logs / "a.log"
    log.write_bytes(numbered(0, 500) + b"line 500 unfinis")
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs)
    server = start(server_factory, config, data)
    wait_stored(data, 500)
    assert server.stop() == 0
    saved = json.loads((data / "sources" / "file-positions.json").read_text())
    assert [e["offset"] for e in saved["files"].values()] == [len(numbered(0, 500))]
    with open(log, "ab") as f:
        f.write(b"hed\n" + numbered(501, 800))
    (logs / "b.log").write_bytes(numbered(800, 1000))
    start(server_factory, config, data)
    texts = wait_stored(data, 1000)
    assert b"line 500 unfinished" in texts
    assert_exactly_once(texts, 1000)


def test_long_lines_are_cut_as_on_tcp(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A line past ingest.max_line_bytes, read over several chunks, is stored cut and
    marked, counted in Truncated; the lines around it are whole."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    long = b"line 1 " + b"y" * 300_000
    (logs / "a.log").write_bytes(numbered(0, 1) + long + b"\n" + numbered(2, 3))
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs, read_bytes=65536)
    env = {"LOGCASTER_INGEST__MAX_LINE_BYTES": "1024"}
    server = start(server_factory, config, data, env=env)
    texts = wait_stored(data, 3)
    assert texts[0] == b"line 0 " and texts[2] == b"line 2 "
    assert (
        len(texts[1]) == 1024 and texts[1].startswith(b"line 1 yyy") and texts[1].endswith(b"...")
    )
    assert server.stats()["Truncated"] == 1


def test_read_from_end_skips_what_was_there_at_the_first_start(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """read_from: end: a file present at the very first start is read from after its
    last complete line (an unfinished one is read once it ends); a file that appears
    later is read whole; after a restart the saved positions rule, not `end`."""
    logs, data = tmp_path / "logs", tmp_path / "data"
    logs.mkdir()
    old = logs / "old.log"
    old.write_bytes(b"history 1\nhistory 2\nline 0 ")
    inputs = [{"paths": [f"{logs}/*.log"], "service": "a", "multiline": False}]
    config = write_config(tmp_path / "c.yaml", inputs, read_from="end")
    server = start(server_factory, config, data)
    wait_for("followed", server.stats, lambda s: s["FilesWatched"] == 1)
    with open(old, "ab") as f:
        f.write(b"\n" + numbered(1, 100))
    (logs / "new.log").write_bytes(numbered(100, 200))
    wait_stored(data, 200)
    assert server.stop() == 0
    with open(old, "ab") as f:
        f.write(numbered(200, 300))
    start(server_factory, config, data)
    texts = wait_stored(data, 300)
    assert not any(t.startswith(b"history") for t in texts)
    assert_exactly_once(texts, 300)


def test_a_file_position_is_no_client_session() -> None:
    """The forward spool and scale-out's writers read a `mark_label` mark as a client
    session and deduplicate on its line numbers: a file's label must not be one."""
    label = file_label("shop", "0123456789abcdef0123456789abcdef", 4096)
    assert split_label(label) == (label, None)
    assert file_position(label) == ("0123456789abcdef0123456789abcdef", 4096)
    assert service_of(label) == "shop" and file_position("tcp:1.2.3.4:5") is None
