"""The raw socket-to-file reference of the ingest benchmark: one socat per connection."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import _corpus
from _common import (
    CHILDREN,
    MB,
    SEND_CHUNK,
    BenchError,
    RunResult,
    ensure_command,
    free_ports,
    reference_dir,
    send_parts_to,
    wait_listening_quietly,
)

SOCAT_BLOCK = 262_144  # socat's read/write size (its default is 8 KiB)


def ensure_socat() -> str | None:
    """Path of socat, installing the Debian package when it is missing."""
    return ensure_command("socat", "socat")


def socat_command(socat: str, port: int | str, path: Path | str) -> list[str]:
    return [
        socat,
        "-u",
        "-b",
        str(SOCAT_BLOCK),
        f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
        f"OPEN:{path},wronly",
    ]


def reference_description(socat: str, nbytes: int) -> str:
    cmd = " ".join(socat_command(socat, "<port>", reference_dir(nbytes) / "<file>"))
    return f"one socat per connection, each into a preallocated file: {cmd}"


class RawReference:
    """The raw socket-to-file reference: one socat per connection, each writing its file.

    Each file is preallocated (written with zeros, untimed) before every run and
    socat overwrites it in place (`OPEN:...,wronly`, no truncation, no append),
    so the timed part is socket reads plus file writes. Appending to fresh files
    instead makes the time depend mostly on how fast the machine hands out new
    pages (on the VM this was written on, 2-5x slower and very noisy at 5M lines),
    which LogCaster, keeping a bounded buffer, never pays. A run ends when every
    socat has written all its bytes and exited; the contents are then checked.
    """

    def __init__(self, socat: str, parts: Sequence[memoryview]) -> None:
        self.socat = socat
        self.parts = parts
        self.dir = reference_dir(sum(len(p) for p in parts))
        self.files = [
            self.dir / f"logcaster-bench-raw-{os.getpid()}-{i}.log" for i in range(len(parts))
        ]

    def command(self, port: int, path: Path) -> list[str]:
        return socat_command(self.socat, port, path)

    def _prepare(self) -> None:
        zeros = bytes(SEND_CHUNK)
        for path, part in zip(self.files, self.parts, strict=True):
            with path.open("r+b" if path.exists() else "wb") as f:
                for off in range(0, len(part), SEND_CHUNK):
                    f.write(zeros[: min(SEND_CHUNK, len(part) - off)])
                f.truncate(len(part))

    def _verify(self) -> None:
        for path, part in zip(self.files, self.parts, strict=True):
            if path.read_bytes() != part:
                raise BenchError(f"socat's file {path} does not hold the bytes sent")

    def run(self, corpus: _corpus.CorpusInfo) -> RunResult:
        self._prepare()  # untimed
        ports = free_ports(len(self.parts))
        procs = [
            CHILDREN.spawn(
                self.command(port, path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
            for port, path in zip(ports, self.files, strict=True)
        ]
        try:
            wait_listening_quietly(ports, procs, "socat")

            def check() -> None:
                for proc in procs:
                    if proc.poll() not in (None, 0):
                        raise BenchError(f"socat exited with status {proc.returncode}")

            sent = send_parts_to(ports, self.parts, check)
            for proc in procs:
                proc.wait(120.0)
            end = time.perf_counter()
            check()
            seconds = end - sent.t0
            self._verify()  # untimed
            return RunResult(
                seconds=seconds,
                lines_per_s=corpus.lines / seconds,
                mb_per_s=corpus.nbytes / seconds / MB,
                sent_s=sent.sent_s,
            )
        except subprocess.TimeoutExpired:
            raise BenchError("socat did not finish writing within 120 s") from None
        finally:
            for proc in procs:
                CHILDREN.kill(proc)

    def close(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
