"""The real IRC clients the tests drive (tests/test_irc_real_clients.py): irssi in
a private tmux server and WeeChat headless, each with its own home in the
test's temporary directory, and what they showed read from their screens and
logs (and kept in tests/artifacts/)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logcaster.testing import wait_for
from tests.browser_helpers import artifacts_dir
from tests.sender_helpers import tool

CHANNEL = "#logs-error"
QUERY = "!query level=ERROR limit=2"
DELIVERY_S = 1.0  # an event reaches a channel's members within this
STEP_S = 15.0  # a client's step (start, connect, an answer, its exit) within this
SCREEN = ("-x", "220", "-y", "50")  # wide enough that no line of the test wraps


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_text(what: str, read: Callable[[], str], needle: str, timeout: float = STEP_S) -> str:
    """Poll `read()` until it holds `needle`; return the text (fail with its end)."""
    try:
        return wait_for(what, read, lambda text: needle in text, timeout=timeout)
    except TimeoutError:
        pytest.fail(f"{what}: {needle!r} not seen within {timeout} s; last:\n{read()[-4000:]}")


def lines_after(text: str, marker: str) -> list[str]:
    """The lines of `text` after the last one holding `marker`."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if marker in line]
    assert starts, f"{marker!r} not in:\n{text}"
    return lines[starts[-1] + 1 :]


def _save(test: str, name: str, text: str) -> None:
    directory = artifacts_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"irc-{test}-{name}.txt").write_text(text)


def ingest_lines(port: int, lines: list[str], token: str | None = None) -> None:
    """Send log lines over TCP ingest (after an AUTH line with `token`); wait for the
    server to close, so every line has been read."""
    head = f"#LOGCASTER AUTH {token}\n" if token else ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((head + "".join(line + "\n" for line in lines)).encode())
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    if token:
        assert reply == b"#OK AUTH\n", reply


@dataclass(frozen=True)
class Events:
    """Three ERROR events (two sent before the client joins, one while it is in the
    channel) and a WARN that #logs-error must not show."""

    tag: str

    @property
    def earlier(self) -> list[str]:
        return [
            f"2026-12-05T09:58:00Z ERROR [payment-api] charge failed first-{self.tag}",
            f"2026-12-05T09:59:00Z ERROR [payment-api] charge failed second-{self.tag}",
        ]

    @property
    def live(self) -> list[str]:
        return [
            f"2026-12-05T10:00:00Z WARN [payment-api] retrying warn-{self.tag}",
            f"2026-12-05T10:00:01Z ERROR [payment-api] charge failed live-{self.tag}",
        ]

    def check_answer(self, lines: list[str]) -> None:
        """LogBot's answer to QUERY, newest first, two rows and what it left out."""
        said = [line.rstrip() for line in lines if "LogBot" in line]
        assert len(said) >= 4, lines
        assert said[0].endswith("FOUND: 3 matches"), said
        assert f"ERROR [payment-api] charge failed live-{self.tag} #" in said[1], said
        assert f"ERROR [payment-api] charge failed second-{self.tag} #" in said[2], said
        assert said[3].endswith("... 1 more: add limit=N (up to 50)"), said
        assert f"first-{self.tag}" not in "\n".join(said), said


def make_events() -> Events:
    return Events(secrets.token_hex(4))


# --- irssi in tmux --------------------------------------------------------------------

IRSSI_CONFIG = """\
# A test's private irssi (tests/test_irc_real_clients.py): one server, nothing to join.
servers = (
  {{ address = "127.0.0.1"; chatnet = "LogCaster"; port = "{port}"; use_tls = "no";
    autoconnect = "no"; }}
);
chatnets = {{ LogCaster = {{ type = "IRC"; }}; }};
settings = {{
  core = {{
    nick = "{nick}"; user_name = "{nick}"; real_name = "irssi under test";
    settings_autosave = "no"; server_reconnect_time = "1h";
  }};
  # irssi's flood control sends 5 commands at once, then one each 2.2 s (its channel
  # sync always at that pace): the test's dozen (CAP and registration, MODE +i, JOIN,
  # MODE, WHO, MODE b, !query, QUIT) would take some 15 s. A tenth of a second here.
  "irc/core" = {{ cmd_queue_speed = "100msec"; }};
  "fe-common/core" = {{
    autolog = "yes"; autolog_path = "{logs}/$tag/$0.log"; autolog_level = "ALL";
    autolog_colors = "no";
  }};
}};
"""


class Irssi:
    """irssi in a tmux server of its own; `screen()` is what it shows."""

    def __init__(self, workdir: Path, port: int, nick: str = "irssitest") -> None:
        self.tmux = tool("tmux")
        self.irssi = tool("irssi")
        self.dir = workdir
        self.home = workdir / "home"
        self.logs = workdir / "logs"
        self.home.mkdir(parents=True)
        self.logs.mkdir()
        self.status_log = workdir / "status.log"
        self.nick = nick
        (self.home / "config").write_text(IRSSI_CONFIG.format(port=port, nick=nick, logs=self.logs))
        self.socket = f"logcaster-irc-{os.getpid()}-{secrets.token_hex(4)}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        self.env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=str(self.home))
        self.started = False
        self.socket_path: Path | None = None
        self.last_screen = ""  # the last capture that showed something (irssi may be gone)

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux, "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    def start(self) -> None:
        self.started = True
        argv = [self.irssi, f"--home={self.home}"]
        self._tmux("new-session", "-d", "-s", "irssi", *SCREEN, "--", *argv)
        shown = self._tmux("display-message", "-p", "#{socket_path}").stdout.strip()
        self.socket_path = Path(shown) if shown else None  # tmux leaves it behind
        wait_text("irssi's status window", self.screen, "[(status)]")
        # The status window's lines (connection, numerics, errors) go to a file too.
        self.type(f"/window log on {self.status_log}")
        wait_text("irssi's status log", self.status, "Log opened")

    def type(self, line: str) -> None:
        """Type `line` at irssi's prompt and press Enter."""
        self._tmux("send-keys", "-t", "irssi", "-l", line)
        self._tmux("send-keys", "-t", "irssi", "Enter")

    def screen(self) -> str:
        done = self._tmux("capture-pane", "-p", "-J", "-t", "irssi", check=False)
        if done.returncode == 0 and done.stdout.strip():
            self.last_screen = done.stdout
        return done.stdout if done.returncode == 0 else ""

    def running(self) -> bool:
        return self._tmux("has-session", "-t", "irssi", check=False).returncode == 0

    def channel_log(self, channel: str = CHANNEL) -> str:
        return "".join(read_text(p) for p in sorted(self.logs.glob(f"*/{channel}.log")))

    def status(self) -> str:
        return read_text(self.status_log)

    def save(self, test: str) -> None:
        _save(test, "irssi-screen", self.last_screen)
        _save(test, "irssi-status", self.status())
        _save(test, "irssi-channel", self.channel_log())
        for raw in sorted(self.dir.glob("raw*.log")):
            _save(test, f"irssi-{raw.stem}", read_text(raw))

    def stop(self) -> None:
        if self.started:
            self._tmux("kill-server", check=False)
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)


@contextlib.contextmanager
def irssi_in_tmux(workdir: Path, port: int, test: str) -> Iterator[Irssi]:
    client = Irssi(workdir, port)
    try:
        client.start()
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.screen()
        client.stop()
        client.save(test)


# --- WeeChat, headless ----------------------------------------------------------------


class WeeChat:
    """weechat-headless with its own --dir; `command()` goes through its FIFO."""

    def __init__(self, workdir: Path) -> None:
        self.binary = tool("weechat-headless")
        self.dir = workdir / "weechat"
        self.logs = workdir / "weechat-logs"
        self.dir.mkdir(parents=True)
        self.fifo = self.dir / "fifo"
        self.output = workdir / "weechat.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *commands: str) -> None:
        """Start with only the irc, logger and fifo plugins; the logger writes every
        line at once, to our directory; then run `commands`."""
        setup = [
            "/set logger.file.flush_delay 0",
            f"/set logger.file.path {self.logs}",
            f"/set fifo.file.path {self.fifo}",
            *commands,
        ]
        argv = [self.binary, "--dir", str(self.dir), "-P", "irc,logger,fifo"]
        argv += ["-r", "; ".join(setup)]
        env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(self.dir)}
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env
            )
        wait_for("WeeChat's FIFO", self._fifo_open, bool, timeout=STEP_S)

    def _fifo_open(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            said = read_text(self.output) + self.core()
            pytest.fail(f"weechat-headless exited with {self.proc.returncode}: {said}")
        return self.fifo.exists()

    def command(self, text: str, buffer: str = "core.weechat") -> None:
        """`text` (a /command or a message) in `buffer`, through the FIFO."""
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: nobody reads it
        try:
            os.write(fd, f"{buffer} *{text}\n".encode())
        finally:
            os.close(fd)

    def log(self, name: str) -> str:
        return read_text(self.logs / f"{name}.weechatlog")

    def core(self) -> str:
        return self.log("core.weechat")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def save(self, test: str) -> None:
        for path in sorted(self.logs.glob("*.weechatlog")):
            _save(test, f"weechat-{path.stem}", read_text(path))

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def weechat_headless(workdir: Path, test: str) -> Iterator[WeeChat]:
    client = WeeChat(workdir)
    try:
        yield client
    finally:
        client.stop()
        client.save(test)
