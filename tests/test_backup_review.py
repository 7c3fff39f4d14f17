"""Review findings on `logcaster backup` / `restore` (issue 23), each a regression
test: a backup of a restored directory, old formats, mtimes, a mount point as
DIR, DIR's owner and mode, malformed manifests, what a restore may touch beside
DIR, and `data validate` on a spool directory. The sources are copies of the
fixture data directories (tests/fixtures/datadir), no server needed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from logcaster.backup import manifest as manifest_module
from logcaster.backup.pin import BackupError
from tests.backup_helpers import logcaster, manifest_of, run_backup, run_restore, validate
from tests.datadir_helpers import copy_fixture
from tests.test_backup_restore import refused, stored

MOUNT_ENV = "LOGCASTER_TEST_MOUNT_POINT"


def test_a_backup_of_a_restored_directory_restores(tmp_path: Path) -> None:
    source = copy_fixture("v2", tmp_path)
    run_backup(source, tmp_path / "a.tar")
    first = tmp_path / "c1"
    run_restore(tmp_path / "a.tar", first)
    assert (first / "restored" / "config" / "effective.yaml").is_file()
    done = logcaster("backup", str(first), str(tmp_path / "b.tar"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(b"\n") == 1 and b"restored/" in done.stderr, done.stderr
    names = [f["name"] for f in manifest_of((tmp_path / "b.tar").read_bytes())["files"]]
    assert not [n for n in names if n.startswith("data/restored/")], names
    second = tmp_path / "zz"
    run_restore(tmp_path / "b.tar", second)
    validate(second)
    assert stored(second) == stored(source)


def test_no_archive_its_restore_would_refuse() -> None:
    files = [{"name": "data/restored/config/effective.yaml"}, {"name": "config/effective.yaml"}]
    with pytest.raises(BackupError, match="same place"):
        manifest_module.check_restorable(files)
    manifest_module.check_restorable([{"name": "data/active.log"}, {"name": "config/x.yaml"}])


def test_only_v2_and_current_directories_are_backed_up(tmp_path: Path) -> None:
    old = copy_fixture("v1", tmp_path)
    out = tmp_path / "v1.tar"
    refused(logcaster("backup", str(old), str(out)), "format v1")
    done = logcaster("backup", str(old), str(out))
    assert b"tar -C" in done.stderr and b"migrate" in done.stderr, done.stderr
    assert not out.exists() and not out.with_name("v1.tar.partial").exists()
    newer = copy_fixture("v2", tmp_path / "newer")
    (newer / "FORMAT").write_text('{"format": 99}\n')
    refused(logcaster("backup", str(newer), str(out)), "newer than v3")
    assert not out.exists()


def test_restore_keeps_each_files_mtime(tmp_path: Path) -> None:
    source = copy_fixture("v2", tmp_path)
    when = 1_600_000_000  # 2020: retention and migration read this age
    for path in source.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))
    run_backup(source, tmp_path / "a.tar")
    target = tmp_path / "out"
    run_restore(tmp_path / "a.tar", target)
    copied = [p for p in target.rglob("*") if p.is_file() and p.name != "lock"]
    copied = [p for p in copied if (source / p.relative_to(target)).exists()]
    assert len(copied) >= 5, copied
    for path in copied:
        assert int(path.stat().st_mtime) == when, path


def test_restore_into_a_mount_point(tmp_path: Path) -> None:
    source = copy_fixture("v2", tmp_path)
    run_backup(source, tmp_path / "a.tar")
    volume = tmp_path / "volume"
    volume.mkdir()
    inode = volume.stat().st_ino  # a mount point stays: its entries are replaced, not it
    env = {**os.environ, MOUNT_ENV: str(volume)}

    def restore(*extra: str) -> subprocess.CompletedProcess[bytes]:
        archive = str(tmp_path / "a.tar")
        return subprocess.run(
            [sys.executable, "-m", "logcaster", "restore", archive, str(volume), *extra],
            capture_output=True,
            env=env,
            timeout=120,
            check=False,
        )

    done = restore()
    assert done.returncode == 0, done.stderr
    assert stored(volume) == stored(source)
    assert volume.stat().st_ino == inode
    assert not (volume / ".logcaster-restore.partial").exists()
    assert not (tmp_path / "volume.partial").exists()
    # What an interrupted restore left inside the volume does not make it "not empty".
    for path in list(volume.iterdir()):
        if path.is_dir():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        else:
            path.unlink()
    (volume / ".logcaster-restore.partial").mkdir()
    done = restore()
    assert done.returncode == 0, done.stderr
    assert stored(volume) == stored(source)
    assert volume.stat().st_ino == inode
    refused(restore(), "is not empty")  # it holds data now
    assert restore("--force").returncode == 0
    assert stored(volume) == stored(source) and volume.stat().st_ino == inode


def test_restore_keeps_the_owner_and_mode_of_an_existing_dir(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root (chown)")
        pytest.skip("needs root (chown)")
    source = copy_fixture("v2", tmp_path)
    run_backup(source, tmp_path / "a.tar")
    own = tmp_path / "own"
    own.mkdir()
    os.chown(own, 12345, 12345)
    own.chmod(0o750)
    run_restore(tmp_path / "a.tar", own)
    st = own.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (12345, 12345, 0o750)
    paths = list(own.rglob("*"))
    assert len(paths) > 5
    for path in paths:
        assert (path.stat().st_uid, path.stat().st_gid) == (12345, 12345), path


def _archive(members: dict[str, bytes], **manifest: Any) -> bytes:
    """A tar of `members` and a manifest: the real one's fields, overridden by `manifest`."""
    listed = [
        {"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        for n, b in members.items()
    ]
    doc: dict[str, Any] = {"format": "logcaster-backup", "version": 1, "files": listed}
    doc.update(external=[], snapshot_id=None)
    doc.update(manifest)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in [*members.items(), ("MANIFEST.json", json.dumps(doc).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_a_malformed_manifest_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    body = b"not a segment, but a file\n"
    good = {"data/node-id": body}
    sha = hashlib.sha256(body).hexdigest()
    cases = {
        "missing key": (_archive(good, files=[{"name": "data/node-id", "size": len(body)}]), "sha"),
        "files a string": (_archive(good, files="data/node-id"), "files"),
        "size a string": (
            _archive(good, files=[{"name": "data/node-id", "size": "26", "sha256": sha}]),
            "size",
        ),
        "bad external": (_archive(good, external=[{"nam": 1}]), "external"),
        "external a dict": (_archive(good, external={"a": "b"}), "external"),
        "no data": (_archive({}), "no data/"),
        "only outside files": (_archive({"config/effective.yaml": b"a: 1\n"}), "no data/"),
    }
    for case, (archive, words) in cases.items():
        target = tmp_path / case.replace(" ", "-")
        target.mkdir()
        (target / "mine").write_text("the operator's")
        path = tmp_path / "bad.tar"
        path.write_bytes(archive)
        done = logcaster("restore", str(path), str(target), "--force")
        refused(done, words)
        assert b"Traceback" not in done.stderr, case
        assert [p.name for p in target.iterdir()] == ["mine"], case
        assert not target.with_name(target.name + ".partial").exists(), case
    path.write_bytes(_archive(good))
    run_restore(path, tmp_path / "fine")  # the same archive, well formed, restores
    assert (tmp_path / "fine" / "node-id").read_bytes() == body


def test_restore_touches_nothing_beside_dir_it_does_not_own(tmp_path: Path) -> None:
    source = copy_fixture("v2", tmp_path)
    archive = tmp_path / "a.tar"
    run_backup(source, archive)
    refused(logcaster("restore", str(archive), str(tmp_path / "nope" / "a" / "b")), "nope/a")
    assert not (tmp_path / "nope").exists()

    # DIR.replaced: the original data an interrupted --force restore parked.
    target = tmp_path / "t"
    target.mkdir()
    parked = tmp_path / "t.replaced"
    parked.mkdir()
    (parked / "original").write_text("the only copy")
    for extra in ((), ("--force",)):
        refused(logcaster("restore", str(archive), str(target), *extra), "t.replaced")
    assert (parked / "original").read_text() == "the only copy"
    parked.rename(tmp_path / "kept")

    # DIR.partial that no restore made: refused, left alone.
    other = tmp_path / "t.partial"
    other.mkdir()
    (other / "someone-elses").write_text("x")
    refused(logcaster("restore", str(archive), str(target)), "t.partial")
    assert (other / "someone-elses").read_text() == "x"
    (other / "someone-elses").unlink()
    other.rmdir()

    # DIR.partial of a restore killed half-way: the next restore reuses it.
    with subprocess.Popen(
        [sys.executable, "-m", "logcaster", "restore", "-", str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as killed:
        assert killed.stdin is not None
        raw = archive.read_bytes()
        killed.stdin.write(raw[: len(raw) // 2])
        killed.stdin.flush()
        for _ in range(200):
            if other.exists() and any(other.rglob("*.log")):
                break
            time.sleep(0.05)
        killed.kill()
    assert other.is_dir()
    run_restore(archive, target)
    assert stored(target) == stored(source)
    assert not other.exists()


def test_validate_reports_a_spool_directorys_format(tmp_path: Path) -> None:
    data = copy_fixture("v2", tmp_path)
    migrated = logcaster("migrate", str(data))
    assert migrated.returncode == 0, migrated.stderr
    spool = data / "forward" / next(p.name for p in (data / "forward").iterdir()) / "spool"
    assert json.loads((spool / "FORMAT").read_text()) == {"spool": 1}
    done = logcaster("data", "validate", str(spool))
    out = done.stdout.decode()
    assert "format: spool v1" in out and "unknown" not in out, out
    as_json = logcaster("data", "validate", "--json", str(spool))
    doc = json.loads(as_json.stdout)
    assert doc["format"]["spool"] == 1, doc["format"]
