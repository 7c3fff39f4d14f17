"""One owner per data directory (issue 14, item 1): real servers, real kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from logcaster.segments.lock import LOCK_NAME, DataDirLock, DataDirLocked, lock_holder
from logcaster.testing import ServerProcess, free_port, wait_for
from tests.conftest import ServerFactory
from tests.test_data_cli import run_data

SERVE = (sys.executable, "-m", "logcaster", "serve")


def _serve_once(data: Path) -> subprocess.CompletedProcess[str]:
    """`logcaster serve -P data` on free ports, expected to refuse at once."""
    return subprocess.run(
        [*SERVE, "-P", str(data), "--port", "0", "--query-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _store_events(server: ServerProcess, n: int) -> None:
    server.send(b"".join(b"locked line %04d\n" % i for i in range(n)))
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == n)


def _indexer_pid(server: ServerProcess) -> int:
    started = wait_for(
        "indexer",
        lambda: [log for log in server.logs if log.get("event") == "indexer_started"],
        bool,
    )
    return int(started[-1]["pid"])


def test_second_server_on_one_dir_refuses_naming_the_owner(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data))
    _store_events(first, 20)

    second = _serve_once(data)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"in use by process {first.pid}" in lines[0]
    assert str(data) in lines[0] and "Traceback" not in second.stderr
    # The refused start touched nothing: the first server goes on as before.
    assert first.query("COUNT") == "COUNT: 20\n"
    assert first.stop() == 0
    # Stopped: the lock is free again, and its file names nobody.
    assert lock_holder(data) is None
    assert (data / LOCK_NAME).read_text() == ""


def test_read_only_commands_work_while_a_server_runs(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory("-P", str(data), "--log-level", "info")
    _store_events(server, 30)
    assert lock_holder(data) == server.pid

    validate = run_data("validate", str(data))
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "OK: " in validate.stdout
    assert f"in use by process {server.pid}" in validate.stderr  # a note, not a refusal
    inspect = run_data("inspect", str(data))
    assert inspect.returncode == 0, inspect.stderr
    cat = wait_for(
        "events on disk",
        lambda: run_data("cat", str(data)),
        lambda r: r.stdout.count("locked line") == 30,
    )
    assert cat.returncode == 0

    # What a writing command does: the reusable lock refuses, naming the server.
    with pytest.raises(DataDirLocked) as refused:
        DataDirLock(data).acquire()
    assert refused.value.pid == server.pid
    assert f"in use by process {server.pid}" in str(refused.value)
    # The probes took nothing away: the server still writes and answers.
    server.send(b"one more\n")
    wait_for("delivery", server.stats, lambda s: s["Delivered"] == 31)


def test_kill_9_leaves_a_stale_lock_file_that_never_blocks_a_restart(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = server_factory("-P", str(data), "--log-level", "info")
    _store_events(first, 25)
    # The store's indexer child never shares the lock's open file description.
    indexer = _indexer_pid(first)
    lock_file = os.path.realpath(data / LOCK_NAME)
    fds = Path(f"/proc/{indexer}/fd")
    assert all(os.path.realpath(fd) != lock_file for fd in fds.iterdir())

    # kill -9 the server alone (not its process group): its child may outlive it.
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(10)
    assert (data / LOCK_NAME).read_text().strip() == str(first.pid)  # left behind
    assert lock_holder(data) is None

    second = server_factory("-P", str(data))
    assert lock_holder(data) == second.pid
    assert second.query("COUNT") == "COUNT: 25\n"


def test_lock_api_excludes_within_one_process_and_releases_on_error(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    with DataDirLock(data) as lock:
        assert data.is_dir() and lock.held
        assert lock_holder(data) == os.getpid()
        with pytest.raises(DataDirLocked):
            DataDirLock(data).acquire()  # flock is per open file: a second open conflicts
    assert lock_holder(data) is None
    with pytest.raises(RuntimeError), DataDirLock(data):
        raise RuntimeError("a failing command")
    assert lock_holder(data) is None
    DataDirLock(data).acquire().release()


def test_data_dir_that_cannot_hold_a_lock_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _serve_once(blocker)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(blocker) in result.stderr


def test_an_indexer_left_by_a_killed_server_finishes_before_the_next_one_starts(
    tmp_path: Path,
) -> None:
    """The index has one writer: a start waits while an earlier indexer holds
    DIR/index/lock (here the test plays that indexer, still busy)."""
    data = tmp_path / "data"
    earlier_indexer = DataDirLock(data / "index").acquire()
    server = ServerProcess(["-P", str(data), "--port", "0", "--query-port", "0"])
    try:
        waiting = wait_for(
            "the wait",
            lambda: [log for log in server.logs if log.get("event") == "waiting_for_indexer"],
            bool,
        )
        assert waiting[0]["pid"] == os.getpid()
        assert not server.ports  # not ready: nothing touched the index meanwhile
        earlier_indexer.release()
        server.wait_ready()
        indexer = _indexer_pid(server)
        wait_for(
            "the new indexer's lock", lambda: lock_holder(data / "index"), lambda h: h == indexer
        )
    finally:
        earlier_indexer.release()
        server.kill()


def test_a_forward_group_dir_has_one_owner_too(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A group's own `dir` (its spool, outside any -P) is locked like a data dir."""
    from tests.forward_helpers import group, write_config

    spool_dir = tmp_path / "g"
    cfg = write_config(
        tmp_path, forward=[group("up", [f"tcp://127.0.0.1:{free_port()}"], dir=str(spool_dir))]
    )
    first = server_factory("--config", cfg)
    second = subprocess.run(
        [*SERVE, "--config", cfg, "--port", "0", "--query-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1
    assert f"{spool_dir} is in use by process {first.pid}" in second.stderr
