"""Fixture data directories of every format (tests/fixtures/datadir/README.md),
and the commands the data-directory tests run on copies of them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import google_crc32c

from logcaster.datadir.versions import segment_files
from logcaster.segments import read_batches
from logcaster.segments.blocks import encode_payload
from tests.test_cli import run_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "datadir"
# Every directory format before the current one, as the code of its time wrote it.
OLD = ["v1", "v2", "v2-index1"]


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A private copy of fixture `name` (tests change it)."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def expected_events(name: str) -> list[tuple[int, bytes]]:
    """(id, text) of every event the fixture holds, as the code that wrote it read them."""
    doc = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    return [(int(e["id"]), base64.b64decode(e["text_b64"])) for e in doc]


def stored_events(directory: Path) -> list[tuple[int, bytes]]:
    """(id, text) of every event in the directory's segments, read as #LC2 in file order."""
    return [
        (batch.first_id + i, text)
        for path in segment_files(directory)
        for batch in read_batches(path)
        for i, text in enumerate(batch.texts)
    ]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (None) under `directory`."""
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), directory)] = None
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, directory)] = Path(path).read_bytes()
    return out


def logcaster(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m logcaster ARGS` to its end, output captured (migrations get longer)."""
    return run_cli(*args, env=env, timeout=timeout)


def serve_args(directory: Path) -> list[str]:
    """A server on `directory`, every listener on port 0."""
    return ["serve", "-P", str(directory), "--port", "0", "--query-port", "0", "--http-port", "0"]


def lc1_block(first_id: int, texts: list[bytes]) -> bytes:
    """One block in the first format (#LC1), as its writer (commit 4a88998) made it."""
    payload = encode_payload(texts)
    fields = b"%d %d %d" % (first_id, len(texts), len(payload))
    crc = int(google_crc32c.extend(google_crc32c.value(fields), payload))
    return b"#LC1 %s %08x\n%s" % (fields, crc, payload)
