"""The rsyslog reference of the ingest benchmark: a standalone rsyslogd per run.

Each run starts its own rsyslogd in the foreground (`-n`) with its own config
(`-f`), pid file (`-i`) and work directory, all in a fresh directory of ours; it
never reads /etc/rsyslog.conf, loads no input module but imtcp (no imuxsock, so
no /dev/log; no imklog) and listens on an ephemeral loopback port only. A
system-wide rsyslog, if there is one, is neither touched nor talked to.

imtcp receives the connections and omfile writes each message's raw text plus
a newline (`%rawmsg%`) to one file; the queues, workers and parsers are at
rsyslog's defaults, omfile writes asynchronously (OMFILE_PARAMS below), and
otherwise only these differ:

- `maxMessageSize="64k"` (rsyslog's default is 8k; LogCaster's line limit is 64 KiB),
  set before any module is loaded;
- `supportOctetCountedFraming="off"` on the input: the senders frame by newline
  (octet stuffing), and with the default on, imtcp takes any line that starts
  with a digit (a `2026-01-19 ...` timestamp) for an RFC 6587 octet count, logs
  a framing error and mangles or merges the lines that follow;
- `processInternalMessages="on"`: rsyslogd's own messages go to a file in the
  work directory (a separate ruleset from the benchmark's) instead of the
  system logger.

Timing, per run: the clock starts just before the first byte is sent and stops
when the output file holds as many bytes as rsyslog writes for what was sent
(polled every 10 ms; each line comes back as itself plus a newline, except that
at its defaults rsyslog drops empty lines and escapes control characters, a tab
becoming `#011`: the traces corpus has both, the default corpus neither; see
`as_rsyslog_writes`). rsyslog treats every line as a
message: a stack-trace block becomes 15-30 messages, so lines are counted, not
events. With several main-queue workers (rsyslog starts a second one under
load) lines come out reordered; the untimed check afterwards compares the
output with what was sent as a multiset of lines (count, bytes, and a hash sum).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import _corpus
from _common import (
    CHILDREN,
    MB,
    BenchError,
    RunResult,
    ensure_command,
    free_ports,
    log,
    reference_dir,
    send_parts,
    tail,
    vm_hwm,
    wait_listening_quietly,
)

POLL_S = 0.010
STABLE_S = 2.0  # the output stopped growing this long after the senders closed: final
STOP_TIMEOUT_S = 30.0
_HASH_MASK = (1 << 64) - 1

# omfile's writing: rsyslog's usual asynchronous set-up for a busy file (a writer
# thread, a 64 KiB buffer) while keeping its default flushOnTXEnd="on", so each
# batch of messages reaches the file when its transaction ends rather than up to
# flushInterval later. (At 1M lines on a 2-core VM this was ~10-20% faster on one
# connection than omfile's defaults: asyncWriting="off", ioBufferSize="4k".)
OMFILE_PARAMS = 'asyncWriting="on" ioBufferSize="64k" flushOnTXEnd="on" flushInterval="1"'

CONFIG = """\
# Written by LogCaster's bench/ingest for one run; not a system configuration.
global(
  workDirectory="{workdir}"
  maxMessageSize="64k"
  processInternalMessages="on"
)
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="bench") {{
  action(type="omfile" file="{output}" template="raw" {omfile})
}}
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="bench"
      supportOctetCountedFraming="off")
# rsyslogd's own messages (the default ruleset).
*.* action(type="omfile" file="{internal}")
"""

# Lines of rsyslogd's own log that are not worth a warning.
_BENIGN = ("[origin software=", "high activity - starting", "exiting on signal")


def ensure_rsyslogd() -> str | None:
    """Path of rsyslogd, installing Debian's rsyslog package when it is missing."""
    found = shutil.which("rsyslogd") or _sbin("rsyslogd")
    if found:
        return found
    ensure_command("rsyslogd", "rsyslog")
    return shutil.which("rsyslogd") or _sbin("rsyslogd")


def _sbin(name: str) -> str | None:
    for d in ("/usr/sbin", "/sbin"):
        path = Path(d) / name
        if os.access(path, os.X_OK):
            return str(path)
    return None


def rsyslog_version(rsyslogd: str) -> str | None:
    try:
        out = subprocess.run(
            [rsyslogd, "-v"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.splitlines()[:1]
    if not first:
        return None
    return " ".join(first[0].removesuffix("compiled with:").split()) or None


def reference_description(rsyslogd: str) -> str:
    version = rsyslog_version(rsyslogd) or rsyslogd
    return (
        f"{version}: rsyslogd -n -f <conf> -i <pidfile>, imtcp on 127.0.0.1 "
        f'(supportOctetCountedFraming="off", maxMessageSize="64k") -> omfile '
        f"%rawmsg%\\n ({OMFILE_PARAMS}), other settings at rsyslog's defaults"
    )


_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")


def as_rsyslog_writes(sent: bytes) -> bytes:
    """The bytes imtcp -> omfile `%rawmsg%\\n` writes for `sent` at rsyslog's defaults:
    empty lines dropped, control characters escaped as `#` and three octal digits."""
    out = _CONTROL.sub(lambda m: b"#%03o" % m[0][0], sent)
    if out.startswith(b"\n") or b"\n\n" in out:
        out = b"".join(line + b"\n" for line in out.split(b"\n") if line)
    return out


def _line_hash(data: bytes) -> tuple[int, int]:
    """(line count, order-independent hash sum) of newline-terminated lines."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return len(lines), sum(map(hash, lines)) & _HASH_MASK


class RsyslogReference:
    """One connection count's rsyslog runs: a fresh rsyslogd and output file per run."""

    def __init__(self, rsyslogd: str, parts: Sequence[memoryview]) -> None:
        self.rsyslogd = rsyslogd
        self.parts = parts
        self.nbytes = sum(len(p) for p in parts)
        self.dir = Path(
            tempfile.mkdtemp(
                prefix=f"logcaster-bench-rsyslog-{os.getpid()}-", dir=reference_dir(self.nbytes)
            )
        )
        self.conf = self.dir / "rsyslog.conf"
        self.pidfile = self.dir / "rsyslogd.pid"
        self.output = self.dir / "out.log"
        self.internal = self.dir / "rsyslogd-internal.log"
        self.stderr = self.dir / "rsyslogd-stderr.log"
        expected = as_rsyslog_writes(b"".join(bytes(p) for p in parts))
        self.out_bytes = len(expected)  # what rsyslog's file holds once it has everything
        self.expected_lines, self.expected_hash = _line_hash(expected)

    def _write_config(self, port: int) -> None:
        self.conf.write_text(
            CONFIG.format(
                workdir=self.dir,
                output=self.output,
                internal=self.internal,
                port=port,
                omfile=OMFILE_PARAMS,
            )
        )

    def run(self, corpus: _corpus.CorpusInfo, timeout_s: float) -> RunResult:
        for path in (self.output, self.internal, self.stderr, self.pidfile):
            path.unlink(missing_ok=True)
        (port,) = free_ports(1)
        self._write_config(port)
        cmd = [self.rsyslogd, "-n", "-f", str(self.conf), "-i", str(self.pidfile)]
        with self.stderr.open("wb") as err:
            proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            wait_listening_quietly([port], [proc], "rsyslogd")

            def check() -> None:
                if proc.poll() is not None:
                    raise BenchError(f"rsyslogd exited with status {proc.returncode}")

            sent = send_parts(port, self.parts, check)
            end, size = self._wait_written(sent.t0, timeout_s, check)
            seconds = end - sent.t0
            warnings: list[str] = []
            if size != self.out_bytes:
                warnings.append(
                    f"rsyslog's output stopped at {size:,} bytes of {self.out_bytes:,}; "
                    f"timed to the last change"
                )
            rss = vm_hwm(proc.pid)  # untimed from here on
            proc.send_signal(signal.SIGTERM)
            try:
                code: int | None = proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                warnings.append(f"rsyslogd did not exit within {STOP_TIMEOUT_S:g} s of SIGTERM")
                code = None
            if code not in (0, None):
                warnings.append(f"rsyslogd exited with status {code} after SIGTERM")
            written, warn = self._verify()
            warnings += warn
            warnings += self._own_complaints()
            return RunResult(
                seconds=seconds,
                lines_per_s=corpus.lines / seconds,
                mb_per_s=corpus.nbytes / seconds / MB,
                sent_s=sent.sent_s,
                peak_rss_bytes=rss,
                total=written,
                exit_code=code,
                warnings=warnings,
            )
        except Exception:
            for path in (self.stderr, self.internal):
                text = tail(path)
                if text:
                    log(f"rsyslogd's {path.name}, last lines:\n{text}")
            raise
        finally:
            CHILDREN.kill(proc)

    def _wait_written(
        self, t0: float, timeout_s: float, check: Callable[[], None]
    ) -> tuple[float, int]:
        """(when the output held everything sent, or stopped growing; its size)."""
        deadline = t0 + timeout_s
        last_size = -1
        changed_at = time.perf_counter()
        while True:
            try:
                size = os.stat(self.output).st_size
            except FileNotFoundError:
                size = 0
            now = time.perf_counter()
            if size != last_size:
                last_size, changed_at = size, now
            if size >= self.out_bytes:
                return now, size
            check()
            if now - changed_at > STABLE_S:
                return changed_at, size
            if now > deadline:
                raise BenchError(f"timeout: rsyslog wrote {size:,} of {self.out_bytes:,} bytes")
            time.sleep(POLL_S)

    def _verify(self) -> tuple[int, list[str]]:
        """(lines written, warnings): did rsyslog write every line sent, unchanged?"""
        try:
            data = self.output.read_bytes()
        except FileNotFoundError:
            data = b""
        lines, digest = _line_hash(data)
        warnings: list[str] = []
        if lines != self.expected_lines:
            lost = self.expected_lines - lines
            what = f"lost {lost:,}" if lost > 0 else f"added {-lost:,}"
            warnings.append(
                f"rsyslog wrote {lines:,} lines of {self.expected_lines:,} sent ({what})"
            )
        elif digest != self.expected_hash or len(data) != self.out_bytes:
            warnings.append("rsyslog wrote as many lines as were sent, but not the same lines")
        return lines, warnings

    def _own_complaints(self) -> list[str]:
        """rsyslogd's own messages that look like trouble (at most 3, and a count)."""
        found: list[str] = []
        # In the foreground rsyslogd also echoes its messages to stderr: read one.
        path = self.internal if self.internal.exists() else self.stderr
        with contextlib.suppress(OSError):
            found = [
                line.strip()
                for line in path.read_text(errors="replace").splitlines()
                if line.strip() and not any(b in line for b in _BENIGN)
            ]
        if not found:
            return []
        more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
        return [f"rsyslogd said: {line}" for line in found[:3]] + ([more] if more else [])

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
