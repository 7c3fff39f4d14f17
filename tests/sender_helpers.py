"""Private syslog daemons as real senders for tests/test_syslog_senders.py.

Each test starts its own rsyslogd or syslog-ng in the foreground, with its own
config, work directory, pid file (and, for syslog-ng, persist file and control
socket) in the test's temporary directory. Neither reads the system's config,
loads a module that touches /dev/log or the kernel log, or listens anywhere but
an ephemeral loopback port or a socket file of ours; both forward to the
LogCaster server under test. A system-wide daemon, if any, is never touched.

syslog-ng comes from Debian's syslog-ng-core, unpacked by scripts/test-deps into
a private prefix (it conflicts with the rsyslog package); an installed
`syslog-ng` on the PATH is used as it is.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SYSLOG_NG_PREFIX = Path(
    os.environ.get("LOGCASTER_SYSLOG_NG_PREFIX", "/opt/logcaster-test-deps/syslog-ng")
)
START_TIMEOUT = 15.0


def tool(name: str, *fallbacks: Path) -> str:
    """The path of a sender this test needs: a failure under CI, else a skip."""
    found = shutil.which(name) or next((str(p) for p in fallbacks if os.access(p, os.X_OK)), None)
    if found is None:
        why = f"{name} is missing: run ./scripts/test-deps"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found


def _wait(what: str, ok: Callable[[], object], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `ok()` (the daemon is listening); fail with its output if it exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while not ok():
        said = log.read_text(errors="replace") if log.exists() else ""
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {said}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {START_TIMEOUT} s: {said}")
        time.sleep(0.02)


class _Daemon:
    """A child process in its own directory, stopped (TERM, then KILL) on exit."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, cwd=self.dir
            )
        return self.proc

    def __enter__(self) -> _Daemon:
        return self

    def __exit__(self, *exc_info: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


RSYSLOG_CONF = """\
# A test's private rsyslogd (tests/sender_helpers.py); not a system configuration.
global(workDirectory="{dir}" processInternalMessages="on" {globals})
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{portfile}" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{target}" protocol="{protocol}"
         template="{template}" {action})
}}
*.* action(type="omfile" file="{internal}")
"""


class Rsyslogd(_Daemon):
    """rsyslogd taking RFC 3164/5424 lines on imtcp and forwarding them with omfwd
    (`protocol` udp or tcp, `template` one of rsyslog's built-in templates;
    `globals` and `action`: more parameters of each, TLS's for one)."""

    def __init__(
        self,
        workdir: Path,
        target: int,
        protocol: str,
        template: str,
        *,
        globals: str = "",
        action: str = "",
    ) -> None:
        super().__init__(workdir)
        self.binary = tool("rsyslogd", Path("/usr/sbin/rsyslogd"))
        self.portfile = self.dir / "imtcp.port"
        conf = self.dir / "rsyslog.conf"
        conf.write_text(
            RSYSLOG_CONF.format(
                dir=self.dir,
                portfile=self.portfile,
                target=target,
                protocol=protocol,
                template=template,
                internal=self.dir / "internal.log",
                globals=globals,
                action=action,
            )
        )
        self.argv = [self.binary, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")]

    def __enter__(self) -> Rsyslogd:
        proc = self._spawn(self.argv)
        _wait("rsyslogd", self._listening, proc, self.log)
        return self

    def _listening(self) -> bool:
        return self.portfile.exists() and self.portfile.read_text().strip().isdigit()

    def send(self, *lines: str) -> None:
        """Hand rsyslogd messages over its TCP input, newline-framed, as a sender would."""
        port = int(self.portfile.read_text())
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall("".join(line + "\n" for line in lines).encode())


class SyslogNg(_Daemon):
    """syslog-ng reading local messages from a unix-dgram socket (as from syslog(3))
    and sending them with one destination (`network(...)` or `syslog(...)`)."""

    def __init__(self, workdir: Path, destination: str, rewrite: str = "") -> None:
        super().__init__(workdir)
        binary = tool("syslog-ng", SYSLOG_NG_PREFIX / "usr/sbin/syslog-ng")
        self.socket = self.dir / "in.sock"
        self.env = dict(os.environ)
        self.argv = [binary]
        if binary.startswith(str(SYSLOG_NG_PREFIX)):  # the unpacked package
            lib = SYSLOG_NG_PREFIX / "usr/lib/syslog-ng"
            self.env["LD_LIBRARY_PATH"] = str(lib)
            self.argv.append(f"--module-path={lib / version_dir(lib)}")
        conf = self.dir / "syslog-ng.conf"
        conf.write_text(
            f"@version: {config_version(self.argv, self.env)}\n"
            "# A test's private syslog-ng (tests/sender_helpers.py); not a system configuration.\n"
            "options { stats-freq(0); keep-hostname(yes); chain-hostnames(no); };\n"
            f'source s_in {{ unix-dgram("{self.socket}"); }};\n'
            f"destination d_out {{ {destination}; }};\n"
            f"log {{ source(s_in); {rewrite} destination(d_out); }};\n"
        )
        self.argv += [
            "-F",
            "--no-caps",
            "-f",
            str(conf),
            "-R",
            str(self.dir / "persist"),
            "-p",
            str(self.dir / "pid"),
            "-c",
            str(self.dir / "ctl"),
        ]

    def __enter__(self) -> SyslogNg:
        proc = self._spawn(self.argv, self.env)
        _wait("syslog-ng", self.socket.exists, proc, self.log)
        return self

    def send(self, *messages: str) -> None:
        """Write messages to syslog-ng's socket as syslog(3) does: one datagram each."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            for message in messages:
                sock.sendto(message.encode(), str(self.socket))


def version_dir(lib: Path) -> str:
    """The modules' folder of an unpacked syslog-ng (`usr/lib/syslog-ng/3.38`)."""
    (found,) = [p.name for p in lib.iterdir() if p.is_dir() and p.name[:1].isdigit()]
    return found


def config_version(argv: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(
        [*argv, "--version"], capture_output=True, text=True, env=env, check=True, timeout=10
    ).stdout
    for line in out.splitlines():
        if line.startswith("Config version:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no config version in syslog-ng --version: {out!r}")
