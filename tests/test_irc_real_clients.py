"""Real IRC clients against the IRC server (SPEC §7): irssi and WeeChat, from Debian's packages.

irssi runs in a private tmux server (a socket name of its own), with a home
directory, config, autolog and raw protocol log in the test's temporary
directory; what it shows is read from its screen (`tmux capture-pane`) and its
logs. WeeChat runs headless (`weechat-headless`) with its own `--dir`: commands
go in through its FIFO plugin's pipe, and what it received is read from its
logger plugin's files. Neither is told of any server but the one under test, on
127.0.0.1 and an ephemeral port.

Each client connects (irssi opens with `CAP LS 302`, WeeChat too), registers,
joins #logs-error, gets an ERROR event sent over TCP ingest within a second,
asks LogBot `!query level=ERROR limit=2` in the channel and sees its answer,
then quits; the server counts it gone. With authentication on, the token is the
connection password (irssi: `/connect HOST PORT TOKEN`, as it has no `-password`
option; WeeChat: `/server add … -password=TOKEN`), and a client without one (or
with a token that may not read logs) is refused with 464 and closed, as the
client shows.

What the clients showed is kept in tests/artifacts/ (gitignored, or
$LOGCASTER_ARTIFACTS) as `irc-<test>-<file>.txt`. scripts/test-deps installs
the clients; without them these tests fail under CI and are skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from logcaster.testing import ServerProcess, parse_stats, start_server, wait_for
from tests.browser_helpers import artifacts_dir
from tests.security_helpers import AuthServer, start_auth_server
from tests.sender_helpers import tool

CHANNEL = "#logs-error"
QUERY = "!query level=ERROR limit=2"
DELIVERY_S = 1.0  # an event reaches a channel's members within this
STEP_S = 15.0  # a client's step (start, connect, an answer, its exit) within this
SCREEN = ("-x", "220", "-y", "50")  # wide enough that no line of the test wraps


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_text(what: str, read: Callable[[], str], needle: str, timeout: float = STEP_S) -> str:
    """Poll `read()` until it holds `needle`; return the text (fail with its end)."""
    try:
        return wait_for(what, read, lambda text: needle in text, timeout=timeout)
    except TimeoutError:
        pytest.fail(f"{what}: {needle!r} not seen within {timeout} s; last:\n{read()[-4000:]}")


def _after(text: str, marker: str) -> list[str]:
    """The lines of `text` after the last one holding `marker`."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if marker in line]
    assert starts, f"{marker!r} not in:\n{text}"
    return lines[starts[-1] + 1 :]


def _save(test: str, name: str, text: str) -> None:
    directory = artifacts_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"irc-{test}-{name}.txt").write_text(text)


def _ingest(port: int, lines: list[str], token: str | None = None) -> None:
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


def _events() -> Events:
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
        _wait_text("irssi's status window", self.screen, "[(status)]")
        # The status window's lines (connection, numerics, errors) go to a file too.
        self.type(f"/window log on {self.status_log}")
        _wait_text("irssi's status log", self.status, "Log opened")

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
        return "".join(_read(p) for p in sorted(self.logs.glob(f"*/{channel}.log")))

    def status(self) -> str:
        return _read(self.status_log)

    def save(self, test: str) -> None:
        _save(test, "irssi-screen", self.last_screen)
        _save(test, "irssi-status", self.status())
        _save(test, "irssi-channel", self.channel_log())
        for raw in sorted(self.dir.glob("raw*.log")):
            _save(test, f"irssi-{raw.stem}", _read(raw))

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
            said = _read(self.output) + self.core()
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
        return _read(self.logs / f"{name}.weechatlog")

    def core(self) -> str:
        return self.log("core.weechat")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def save(self, test: str) -> None:
        for path in sorted(self.logs.glob("*.weechatlog")):
            _save(test, f"weechat-{path.stem}", _read(path))

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


# --- servers --------------------------------------------------------------------------


@pytest.fixture
def irc_server() -> Iterator[ServerProcess]:
    """A server with the IRC listener on an ephemeral port."""
    server = start_server("-I", "0")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server with authentication on and the IRC listener; tokens of every role."""
    server = start_auth_server(tmp_path_factory.mktemp("auth") / "data", "-I", "0")
    try:
        yield server
    finally:
        server.server.kill()


def _irc_clients(server: ServerProcess) -> float:
    return server.stats()["IrcClients"]


def _auth_irc_clients(auth: AuthServer) -> float:
    return parse_stats(auth.query("STATS", auth.tokens["viewer"]))["IrcClients"]


# --- the tests ------------------------------------------------------------------------


def test_irssi_joins_gets_errors_live_and_asks_logbot(
    irc_server: ServerProcess, tmp_path: Path
) -> None:
    server, events = irc_server, _events()
    _ingest(server.ingest_port, events.earlier)
    server.wait_total(2)
    port = server.ports["irc"]
    raw = tmp_path / "raw.log"
    with irssi_in_tmux(tmp_path, port, "irssi") as irssi:
        irssi.type(f"/connect -rawlog {raw} 127.0.0.1 {port}")
        status = _wait_text("irssi registered", irssi.status, "End of /MOTD command.")
        assert "Welcome to the LogCaster IRC Network irssitest!~irssitest@127.0.0.1" in status
        sent = [line[3:] for line in _read(raw).splitlines() if line.startswith("<< ")]
        assert sent[0] == "CAP LS 302", sent  # a modern client asks for capabilities first
        got = _wait_text("CAP in the raw log", partial(_read, raw), "CAP END")
        assert ">> :logcaster CAP * LS :" in got
        assert ">> :logcaster 001 irssitest :Welcome" in got
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 1) == 1

        irssi.type(f"/join {CHANNEL}")
        joined = _wait_text("irssi in the channel", irssi.channel_log, "Total of 2 nicks")
        assert f"irssitest [~irssitest@127.0.0.1] has joined {CHANNEL}" in joined
        assert "[@LogBot] [ irssitest]" in joined  # LogBot holds the channel

        start = time.monotonic()
        _ingest(server.ingest_port, events.live)
        shown = _wait_text("the live event", irssi.channel_log, f"live-{events.tag}", DELIVERY_S)
        took = time.monotonic() - start
        line = next(x for x in shown.splitlines() if f"live-{events.tag}" in x)
        assert re.search(
            rf"<@LogBot> 10:00:01 ERROR \[payment-api\] charge failed live-{events.tag} #\d+$",
            line,
        ), line
        assert f"warn-{events.tag}" not in shown  # a WARN is not #logs-error's
        _wait_text("the live event on screen", irssi.screen, f"live-{events.tag}", DELIVERY_S)
        assert took < DELIVERY_S

        irssi.type(QUERY)
        answer = _wait_text("LogBot's answer", irssi.channel_log, "... 1 more")
        asked = f"< irssitest> {QUERY}"
        events.check_answer(_after(answer, asked))
        screen = _wait_text("the answer on screen", irssi.screen, "... 1 more")
        assert "<@LogBot> FOUND: 3 matches" in screen
        events.check_answer(_after(screen, asked))
        assert f"PRIVMSG {CHANNEL} :{QUERY}" in _read(raw)
        # irssi's channel sync (MODE, WHO, MODE b): every query answered, or it never syncs.
        _wait_text("irssi's channel sync", irssi.channel_log, f"Join to {CHANNEL} was synced")
        raw_text = _read(raw)
        for reply in (" 324 irssitest #logs-error +nt", " 315 irssitest ", " 368 irssitest "):
            assert reply in raw_text, raw_text
        errors = re.findall(r"^>> :logcaster ([45]\d\d) .*$", raw_text, re.MULTILINE)
        assert errors == ["451"], raw_text  # only for irssi's `JOIN :` probe before CAP END

        irssi.type("/quit done testing")
        wait_for("irssi to exit", irssi.running, lambda up: not up, timeout=STEP_S)
        assert "<< QUIT :done testing" in _read(raw)
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 0) == 0
        assert "Log closed" in irssi.channel_log()


def test_weechat_joins_gets_errors_live_and_asks_logbot(
    irc_server: ServerProcess, tmp_path: Path
) -> None:
    server, events = irc_server, _events()
    _ingest(server.ingest_port, events.earlier)
    server.wait_total(2)
    port = server.ports["irc"]
    with weechat_headless(tmp_path, "weechat") as weechat:
        weechat.start(
            f"/server add lc 127.0.0.1/{port} -notls -nicks=weetest -username=weetest"
            " -realname=WeeChat_under_test",
            "/connect lc",
        )
        server_log = partial(weechat.log, "irc.server.lc")
        said = _wait_text("WeeChat registered", server_log, "End of /MOTD command.")
        assert "irc: client capability, server supports: " in said  # CAP LS, answered empty
        assert "Welcome to the LogCaster IRC Network weetest!~weetest@127.0.0.1" in said
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 1) == 1

        weechat.command(f"/join {CHANNEL}", "irc.server.lc")
        channel_log = partial(weechat.log, f"irc.lc.{CHANNEL}")
        joined = _wait_text("WeeChat in the channel", channel_log, f"Channel {CHANNEL}: 2 nicks")
        assert f"weetest (~weetest@127.0.0.1) has joined {CHANNEL}" in joined
        assert "(1 op, 1 normal)" in joined

        start = time.monotonic()
        _ingest(server.ingest_port, events.live)
        shown = _wait_text("the live event", channel_log, f"live-{events.tag}", DELIVERY_S)
        took = time.monotonic() - start
        line = next(x for x in shown.splitlines() if f"live-{events.tag}" in x)
        assert re.search(
            rf"\t@LogBot\t10:00:01 ERROR \[payment-api\] charge failed live-{events.tag} #\d+$",
            line,
        ), line
        assert f"warn-{events.tag}" not in shown
        assert took < DELIVERY_S

        weechat.command(QUERY, f"irc.lc.{CHANNEL}")
        answer = _wait_text("LogBot's answer", channel_log, "... 1 more")
        events.check_answer(_after(answer, f"\tweetest\t{QUERY}"))
        # WeeChat asks the channel's modes on joining (MODE #logs-error: 324, 329).
        _wait_text("the channel's modes", channel_log, "Channel created on")
        for text in (server_log(), channel_log()):
            assert "=!=" not in text, text  # no error numeric, nothing WeeChat objected to

        weechat.command("/quit done testing")
        wait_for("WeeChat to exit", weechat.running, lambda up: not up, timeout=STEP_S)
        assert weechat.proc is not None and weechat.proc.returncode == 0
        assert wait_for("IrcClients", lambda: _irc_clients(server), lambda n: n == 0) == 0


def test_irssi_with_authentication_needs_a_reading_token(auth: AuthServer, tmp_path: Path) -> None:
    port = auth.server.ports["irc"]
    viewer = auth.tokens["viewer"]
    with irssi_in_tmux(tmp_path, port, "irssi-auth") as irssi:
        # No password: 464, then the server closes the link.
        nopass = tmp_path / "raw-nopass.log"
        irssi.type(f"/connect -rawlog {nopass} 127.0.0.1 {port}")
        status = _wait_text("irssi refused", irssi.status, "Closing Link")
        raw = _wait_text("the refusal in the raw log", partial(_read, nopass), "Closing Link")
        assert ">> :logcaster 464 irssitest :Password incorrect" in raw, raw
        assert ">> ERROR :Closing Link: 127.0.0.1 (Password incorrect)" in raw, raw
        assert ":logcaster 001" not in raw
        assert "Password incorrect" in status
        assert "Password incorrect" in irssi.screen()

        # A token that may send logs but not read them: refused the same way. (irssi
        # takes the password after the port: it has no `/connect -password`.)
        ingest, with_ingest = auth.tokens["ingest"], tmp_path / "raw-ingest.log"
        irssi.type(f"/connect -rawlog {with_ingest} 127.0.0.1 {port} {ingest}")
        raw = _wait_text("ingest token refused", partial(_read, with_ingest), "Closing Link")
        assert f"<< PASS {ingest}" in raw
        assert ">> :logcaster 464 irssitest :Password incorrect" in raw, raw
        assert ":logcaster 001" not in raw

        # A viewer's token: in, and the channel streams to it.
        with_viewer = tmp_path / "raw-viewer.log"
        irssi.type(f"/connect -rawlog {with_viewer} 127.0.0.1 {port} {viewer}")
        raw = _wait_text("registered with a token", partial(_read, with_viewer), " 376 irssitest")
        assert f"<< PASS {viewer}" in raw
        assert ">> :logcaster 001 irssitest :Welcome" in raw
        irssi.type(f"/join {CHANNEL}")
        _wait_text("irssi in the channel", irssi.channel_log, "Total of 2 nicks")
        tag = secrets.token_hex(4)
        _ingest(
            auth.server.ingest_port,
            [f"2026-12-05T10:00:00Z ERROR [payment-api] behind a token {tag}"],
            auth.tokens["ingest"],
        )
        _wait_text("the event", irssi.channel_log, tag, DELIVERY_S)
        irssi.type("/quit")
        wait_for("irssi to exit", irssi.running, lambda up: not up, timeout=STEP_S)
    assert wait_for("IrcClients", partial(_auth_irc_clients, auth), lambda n: n == 0) == 0


def test_weechat_with_authentication_uses_the_token_as_password(
    auth: AuthServer, tmp_path: Path
) -> None:
    port = auth.server.ports["irc"]
    viewer = auth.tokens["viewer"]
    with weechat_headless(tmp_path, "weechat-auth") as weechat:
        weechat.start(
            f"/server add nopass 127.0.0.1/{port} -notls -nicks=weetest -username=weetest"
            " -noautoreconnect",
            f"/server add lc 127.0.0.1/{port} -notls -nicks=weetest2 -username=weetest"
            f" -password={viewer}",
            "/connect nopass",
            "/connect lc",
        )
        refused = _wait_text(
            "WeeChat refused", partial(weechat.log, "irc.server.nopass"), "Closing Link"
        )
        assert "Password incorrect" in refused
        assert "Welcome to the LogCaster" not in refused
        said = _wait_text(
            "WeeChat registered", partial(weechat.log, "irc.server.lc"), "End of /MOTD command."
        )
        assert "Welcome to the LogCaster IRC Network weetest2!" in said
        weechat.command(f"/join {CHANNEL}", "irc.server.lc")
        channel_log = partial(weechat.log, f"irc.lc.{CHANNEL}")
        _wait_text("WeeChat in the channel", channel_log, f"Channel {CHANNEL}: 2 nicks")
        tag = secrets.token_hex(4)
        _ingest(
            auth.server.ingest_port,
            [f"2026-12-05T10:00:00Z ERROR [payment-api] behind a token {tag}"],
            auth.tokens["ingest"],
        )
        _wait_text("the event", channel_log, tag, DELIVERY_S)
        weechat.command("/quit")
        wait_for("WeeChat to exit", weechat.running, lambda up: not up, timeout=STEP_S)
    assert wait_for("IrcClients", partial(_auth_irc_clients, auth), lambda n: n == 0) == 0
