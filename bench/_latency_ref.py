"""bench/latency's reference: the same paced load and markers into a standalone
rsyslogd (imtcp -> omfile, bench/_rsyslog.py's configuration), each marker found
when it appears in rsyslog's output file.

rsyslog has no query side: "queryable" there is "written to its file", where
grep or tail -f would see it (omfile writes each batch at its transaction's end,
no fsync). The file is read from where the last read stopped every poll, so
finding a marker costs what is new, not the whole file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from _common import CHILDREN, BenchError, free_ports, tail, wait_listening_quietly
from _latency_run import Load, Markers
from _rsyslog import CONFIG, OMFILE_PARAMS

SOURCE = "rsyslog"
READ_BYTES = 8 << 20  # at most this much of the file per poll: the rest next time


def watch_file(
    path: Path,
    markers: Markers,
    poll_s: float,
    timeout_s: float,
    done: Callable[[], bool],
    check: Callable[[], None],
) -> None:
    """Read what `path` grew by every `poll_s`; a marker is found when a read holds
    its token, missing `timeout_s` after it was sent."""
    token_re = re.compile(re.escape(markers.prefix.encode()) + rb"m\d{6}")
    offset = 0
    carry = b""  # the unfinished last line of the previous read
    seen: set[bytes] = set()  # every token read so far (a marker may be read before it is listed)
    tick = time.perf_counter()
    with_file = None
    try:
        while True:
            check()
            finished = done()
            snapshot = list(markers.markers)
            if with_file is None and path.exists():
                with_file = path.open("rb")
            if with_file is not None:
                with_file.seek(offset)
                data = with_file.read(READ_BYTES)
                offset += len(data)
                cut = data.rfind(b"\n") + 1
                seen.update(token_re.findall(carry + data[:cut]))
                carry = (carry + data[cut:])[-4096:] if cut == 0 else data[cut:]
            now = time.perf_counter()
            waiting = False
            for m in snapshot:
                if SOURCE in m.found or SOURCE in m.missing:
                    continue
                if m.token.encode() in seen:
                    m.found[SOURCE] = now
                elif now - m.sent > timeout_s:
                    m.missing.add(SOURCE)
                else:
                    waiting = True
            if finished and not waiting:
                return
            tick += poll_s
            time.sleep(max(0.0, tick - time.perf_counter()))
    finally:
        if with_file is not None:
            with_file.close()


def run_rsyslog(
    rsyslogd: str,
    data: bytes,
    ends: array[int],
    rate: float,
    args: argparse.Namespace,
    prefix: str,
) -> tuple[Markers, float]:
    """One reference run at `rate`: (its markers, the load's achieved rate over them)."""
    a: dict[str, float] = {
        k: float(getattr(args, k))
        for k in ("batch_ms", "warmup", "seconds", "markers_per_s", "poll_ms", "marker_timeout")
    }
    work = Path(tempfile.mkdtemp(prefix=f"logcaster-bench-latency-rsyslog-{os.getpid()}-"))
    output = work / "out.log"
    (port,) = free_ports(1)
    conf = work / "rsyslog.conf"
    conf.write_text(
        CONFIG.format(
            workdir=work,
            output=output,
            internal=work / "internal.log",
            port=port,
            omfile=OMFILE_PARAMS,
        )
    )
    cmd = [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")]
    with (work / "stderr.log").open("wb") as err:
        proc = CHILDREN.spawn(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)

    def check() -> None:
        if proc.poll() is not None:
            raise BenchError(f"rsyslogd exited with status {proc.returncode}")

    try:
        wait_listening_quietly([port], [proc], "rsyslogd")
        load = Load(port, data, ends, rate, a["batch_ms"] / 1000)
        load.start()
        time.sleep(a["warmup"])
        check()
        mark = (time.perf_counter(), load.lines)
        count = max(1, round(a["seconds"] * a["markers_per_s"]))
        markers = Markers(port, prefix, 1 / a["markers_per_s"], count)
        markers.start()
        sent: list[float] = []

        def done() -> bool:
            if not markers.done():
                return False
            if not sent:
                sent.append(load.sent_rate(mark))
            return True

        watch_file(output, markers, a["poll_ms"] / 1000, a["marker_timeout"], done, check)
        load.finish()
        return markers, sent[0]
    except Exception:
        text = tail(work / "stderr.log")
        if text:
            print(f"rsyslogd's stderr, last lines:\n{text}", flush=True)
        raise
    finally:
        CHILDREN.kill(proc)
        shutil.rmtree(work, ignore_errors=True)
