"""`logcaster restore` (issue 23): it verifies every checksum before DIR gets
anything, refuses a non-empty DIR without --force and a DIR a server holds,
and reads zstd archives from a pipe as well as plain tars from files."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from logcaster.testing import start_server
from tests.backup_helpers import line, logcaster, manifest_of, run_backup, run_restore, validate
from tests.conftest import ServerFactory

EVENTS = 3000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory of EVENTS numbered events, its server stopped."""
    data = tmp_path_factory.mktemp("source") / "data"
    server = start_server("-P", str(data))
    try:
        server.send(b"".join(line(i) + b"\n" for i in range(1, EVENTS + 1)))
        server.wait_total(EVENTS)
        assert server.stop() == 0
    finally:
        server.kill()
    yield data


@pytest.fixture(scope="module")
def archive(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("archive") / "b.tar"
    assert run_backup(source, out)["snapshot_id"] == EVENTS
    return out


def stored(data: Path) -> bytes:
    done = logcaster("data", "cat", str(data))
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[bytes], words: str) -> None:
    """Exit 2 and one line on stderr holding `words`."""
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1 and words in err, err


def untouched(target: Path) -> None:
    assert not target.with_name(target.name + ".partial").exists()
    assert not target.with_name(target.name + ".replaced").exists()


def test_restore_round_trip_and_refusals(source: Path, archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    out = run_restore(archive, target)
    assert f"restored into {target}, snapshot id {EVENTS}" in out
    validate(target)
    assert stored(target) == stored(source)
    assert not (target / "lock").read_bytes()  # a lock file, held by no one

    refused(logcaster("restore", str(archive), str(target)), "is not empty (give --force")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep-me").write_text("operator's file")
    refused(logcaster("restore", str(archive), str(other)), "is not empty")
    assert (other / "keep-me").read_text() == "operator's file"
    untouched(other)

    run_restore(archive, other, "--force")
    assert not (other / "keep-me").exists()
    validate(other)
    assert stored(other) == stored(source)
    untouched(other)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_a_damaged_archive_writes_nothing(archive: Path, tmp_path: Path) -> None:
    raw = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        active = tar.getmember("data/active.log")
    cases = {
        "content": (flip(raw, active.offset_data + active.size // 2), "fails its checksum"),
        "header": (flip(raw, active.offset + 10), "damaged or truncated"),
        "truncated": (raw[: active.offset_data + 1000], "damaged or truncated"),
    }
    for name, (bad, words) in cases.items():
        path = tmp_path / f"{name}.tar"
        path.write_bytes(bad)
        target = tmp_path / f"to-{name}"
        refused(logcaster("restore", str(path), str(target)), words)
        assert not target.exists(), name
        untouched(target)
    # An existing DIR keeps what it holds, --force or not.
    target = tmp_path / "kept"
    target.mkdir()
    (target / "mine").write_text("x")
    refused(logcaster("restore", str(tmp_path / "content.tar"), str(target), "--force"), "fails")
    assert [p.name for p in target.iterdir()] == ["mine"]
    untouched(target)


def test_zstd_through_pipes(source: Path, tmp_path: Path) -> None:
    done = logcaster("backup", str(source), "-", "--zstd")
    assert done.returncode == 0, done.stderr
    packed = done.stdout
    assert packed[:4] == b"\x28\xb5\x2f\xfd"
    assert manifest_of(packed)["snapshot_id"] == EVENTS
    assert len(packed) < sum(f.stat().st_size for f in source.rglob("*") if f.is_file()) / 2
    target = tmp_path / "from-stdin"
    restored = logcaster("restore", "-", str(target), stdin=packed)
    assert restored.returncode == 0, restored.stderr
    validate(target)
    assert stored(target) == stored(source)
    # A flipped byte inside the zstd frame: its checksum (or the tar's) catches it.
    refused(
        logcaster("restore", "-", str(tmp_path / "bad"), stdin=flip(packed, len(packed) // 2)), ""
    )
    assert not (tmp_path / "bad").exists()


def test_restore_refuses_a_directory_a_server_holds(
    archive: Path, tmp_path: Path, server_factory: ServerFactory
) -> None:
    data = tmp_path / "live"
    server = server_factory("-P", str(data))
    refused(
        logcaster("restore", str(archive), str(data), "--force"),
        f"is in use by process {server.pid}",
    )
    untouched(data)


def test_backup_errors_are_one_line(source: Path, tmp_path: Path) -> None:
    refused(logcaster("backup", str(tmp_path / "missing"), str(tmp_path / "x.tar")), "no such")
    (tmp_path / "exists.tar").write_bytes(b"")
    refused(logcaster("backup", str(source), str(tmp_path / "exists.tar")), "exists")
    refused(logcaster("backup", str(source), str(source / "in.tar")), "inside the data directory")
    assert not list(source.glob(".logcaster-backup-*"))  # no staging left behind


def test_progress_only_on_a_terminal(source: Path, tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "logcaster", "backup", str(source), str(tmp_path / "t.tar")],
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        shown = b""
        with contextlib.suppress(OSError):  # EIO once the writer is gone
            while chunk := os.read(primary, 65536):
                shown += chunk
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    assert done.returncode == 0
    assert re.search(rb"\rbackup: [\d.]+ / [\d.]+ MiB \(100%\)", shown), shown
    quiet = logcaster("backup", str(source), str(tmp_path / "q.tar"))  # stderr: a pipe
    assert b"MiB" not in quiet.stderr and quiet.stderr.count(b"\n") == 1


def test_a_killed_backups_staging_is_removed_by_the_next(source: Path, tmp_path: Path) -> None:
    """kill -9 leaves `.logcaster-backup-<pid>/` (hard links, and a lock its process
    held); the next backup finds the lock free and removes it, and copies none of it."""
    backup = subprocess.Popen(
        [sys.executable, "-m", "logcaster", "backup", str(source), "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert backup.stdout is not None
    # The stream began, so the links are made; the archive (~400 KB) is larger than
    # the pipe's buffer, so the backup waits for this reader, its staging in place.
    backup.stdout.read(512)
    backup.kill()
    backup.wait(10)
    backup.stdout.close()
    left = list(source.glob(".logcaster-backup-*"))
    assert len(left) == 1 and list(left[0].rglob("active.log")), left
    manifest = run_backup(source, tmp_path / "next.tar")
    assert not list(source.glob(".logcaster-backup-*"))
    assert all(".logcaster-backup-" not in f["name"] for f in manifest["files"])
