"""The `logcaster` command as a subprocess (SPEC §12): config check, serve, query."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from logcaster.config import Config
from logcaster.testing import ServerProcess
from tests.conftest import ServerFactory

EXIT_CONFIG = 2


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any LOGCASTER_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGCASTER_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", *args],
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        timeout=timeout,
        check=False,
    )


def write(tmp_path: Path, text: str, name: str = "logcaster.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port bound (not listening) for the test's duration: nothing else can bind it,
    and connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def send_lines(server: ServerProcess, n: int) -> None:
    server.send("".join(f"line {i}\n" for i in range(n)).encode())
    server.wait_total(n)


# --- config check --------------------------------------------------------------------


def test_config_check_prints_the_effective_config(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest:\n  port: 7000\nmemory: {capacity: 50}\n")
    result = run_cli("config", "check", path)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    expected = Config().to_dict()
    expected["ingest"]["port"] = 7000
    expected["memory"]["capacity"] = 50
    assert doc == expected  # every option, with the defaults filled in


def test_config_check_without_a_file_prints_the_defaults() -> None:
    result = run_cli("config", "check")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == Config().to_dict()


def test_config_check_reads_logcaster_config(tmp_path: Path) -> None:
    path = write(tmp_path, "query: {port: 7100}\n")
    result = run_cli("config", "check", env=clean_env(LOGCASTER_CONFIG=path))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["query"]["port"] == 7100


def test_config_check_environment_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest: {port: 7000, max_line_bytes: 1024}\nlog_level: warning\n")
    env = clean_env(
        LOGCASTER_INGEST__PORT="7001", LOGCASTER_LOG_LEVEL="debug", LOGCASTER_SYSLOG__PORT="5514"
    )
    result = run_cli("config", "check", path, env=env)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["ingest"]["port"] == 7001  # env over file
    assert doc["ingest"]["max_line_bytes"] == 1024  # the file's other keys stay
    assert doc["log_level"] == "debug"
    assert doc["syslog"]["port"] == 5514  # env over default


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('ingest: {port: "abc"}\n', "ingest.port", "Expected `int`, got `str`"),
        ("ingest: {port: 70000}\n", "ingest.port", "<= 65535"),
        ("queue: {max_events: -1}\n", "queue.max_events", ">= 1"),
        ("ingest: {portx: 1}\n", "ingest.portx", "unknown option"),
        ("portx: 1\n", "portx", "unknown option"),
        ("ingest: 5\n", "ingest", "Expected `object`"),
        ("log_level: loud\n", "log_level", "loud"),
        ("ingest: {port: 7000}\nquery: {port: 7000}\n", "query.port", "already used"),
        ("- a\n- b\n", "", "top level must be a mapping"),
        ("ingest: [1\n", "", "not valid YAML"),
    ],
)
def test_config_check_rejects_bad_values(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    result = run_cli("config", "check", path)
    assert result.returncode == EXIT_CONFIG
    assert result.stdout == ""
    assert reason in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line, also for YAML errors
    if key:
        assert f"{key}: " in result.stderr
    else:
        assert path in result.stderr  # a file-level error names the file


def test_config_check_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    result = run_cli("config", "check", missing)
    assert result.returncode == EXIT_CONFIG
    assert "cannot read config file" in result.stderr and missing in result.stderr


def test_config_check_rejects_bad_environment_values() -> None:
    result = run_cli("config", "check", env=clean_env(LOGCASTER_INGEST__PORT="abc"))
    assert result.returncode == EXIT_CONFIG
    assert "ingest.port: Expected `int`, got `str`" in result.stderr
    # A name that is no option is not an error in the environment (it is shared
    # with other programs): a warning names it (tests/test_operator_errors.py).
    result = run_cli("config", "check", env=clean_env(LOGCASTER_QUEUE__MAXEVENTS="5"))
    assert result.returncode == 0
    assert "LOGCASTER_QUEUE__MAXEVENTS is not a LogCaster option" in result.stderr


# --- serve -------------------------------------------------------------------------


def test_serve_help_lists_the_flags() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--query-port",
        "--buffer-size",
        "--syslog-port",
        "--config",
        "--log-level",
    ):
        assert flag in result.stdout, flag


def test_top_level_help_and_version() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("serve", "query", "config"):
        assert command in result.stdout
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("logcaster ")


@pytest.mark.parametrize(
    ("args", "env", "key"),
    [
        (("--config", "BAD"), {}, "memory.capacity"),
        (("--port", "70000"), {}, "ingest.port"),
        (("--buffer-size", "0"), {}, "memory.capacity"),
        ((), {"LOGCASTER_QUEUE__MAX_EVENTS": "abc"}, "queue.max_events"),
        ((), {"LOGCASTER_CONFIG": "BAD"}, "memory.capacity"),
    ],
)
def test_serve_with_a_bad_config_exits_2(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], key: str
) -> None:
    # Not a port: the test's own `--port 0 --query-port 0` flags would override it.
    bad = write(tmp_path, 'memory: {capacity: "abc"}\n')
    argv = [bad if a == "BAD" else a for a in args]
    if "--port" not in argv:
        argv += ["--port", "0"]
    argv += ["--query-port", "0"]
    environ = clean_env(**{k: bad if v == "BAD" else v for k, v in env.items()})
    result = run_cli("serve", *argv, env=environ, timeout=10)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert f"{key}: " in result.stderr


def test_serve_exits_2_when_a_port_is_taken() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--query-port", "0")
    assert result.returncode == EXIT_CONFIG
    assert result.stderr == (
        f"logcaster: cannot start: ingest.port: cannot listen on 127.0.0.1:{port}: "
        "Address already in use\n"
    )


@pytest.mark.parametrize(
    ("file_capacity", "env_capacity", "flag_capacity", "expected"),
    [
        (3, None, None, 3),  # file over defaults
        (3, 4, None, 4),  # environment over file
        (3, 4, 5, 5),  # flags over environment
        (None, 4, None, 4),
    ],
)
def test_serve_precedence(
    server_factory: ServerFactory,
    tmp_path: Path,
    file_capacity: int | None,
    env_capacity: int | None,
    flag_capacity: int | None,
    expected: int,
) -> None:
    """Observed through the buffer size: 8 lines in, COUNT says the effective capacity."""
    args: list[str] = []
    if file_capacity is not None:
        args += ["--config", write(tmp_path, f"memory: {{capacity: {file_capacity}}}\n")]
    env = clean_env()
    if env_capacity is not None:
        env["LOGCASTER_MEMORY__CAPACITY"] = str(env_capacity)
    if flag_capacity is not None:
        args += ["--buffer-size", str(flag_capacity)]
    server = server_factory(*args, env=env)
    send_lines(server, 8)
    assert server.query("COUNT") == f"COUNT: {expected}\n"


def test_serve_port_flags_beat_environment_and_file(
    server_factory: ServerFactory, tmp_path: Path, held_port: int
) -> None:
    # If the file's or the environment's port won, binding it would fail (it is held).
    path = write(tmp_path, f"ingest: {{port: {held_port}}}\nquery: {{port: {held_port}}}\n")
    env = clean_env(
        LOGCASTER_INGEST__PORT=str(held_port),
        LOGCASTER_QUERY__PORT=str(held_port),
        LOGCASTER_CONFIG=path,
    )
    # Same port for both listeners would also be a config error, unless flags win.
    server = server_factory("--port", "0", "--query-port", "0", env=env)
    assert held_port not in (server.ingest_port, server.query_port)
    assert server.ingest_port != server.query_port
    assert server.query("COUNT") == "COUNT: 0\n"


def test_serve_logs_json_lines(server_factory: ServerFactory) -> None:
    server = server_factory(env=clean_env())
    send_lines(server, 3)
    assert server.query("CLEAR") == "OK: cleared 3 events\n"
    assert server.stop() == 0
    assert server.raw_stderr, "the server logged nothing"
    logs: list[dict[str, Any]] = []
    for raw in server.raw_stderr:
        doc = json.loads(raw)
        assert isinstance(doc, dict), raw
        assert isinstance(doc["event"], str) and doc["event"], raw
        assert doc["level"] in ("debug", "info", "warning", "error"), raw
        logs.append(doc)
    by_event = {doc["event"]: doc for doc in logs}
    assert by_event["ready"]["ports"] == {
        "ingest": server.ingest_port,
        "query": server.query_port,
        "http": server.ports["http"],
    }
    assert by_event["memory_cleared"]["events"] == 3
    assert "draining" in by_event
    stopped = by_event["stopped"]
    assert (stopped["received"], stopped["delivered"], stopped["drained"]) == (3, 3, True)


# --- query ---------------------------------------------------------------------------


def test_query_command(server: ServerProcess) -> None:
    port = str(server.query_port)
    result = run_cli("query", "COUNT", "--query-port", port)
    assert (result.returncode, result.stdout) == (0, "COUNT: 0\n")
    send_lines(server, 2)
    result = run_cli("query", "--port", port, "QUERY", "keyword=line", "limit=1")
    assert result.returncode == 0
    assert result.stdout.startswith("FOUND: 2 matches\n[")
    assert result.stdout.endswith("] line 1\n")
    result = run_cli("query", "--json", "COUNT", "--query-port", port)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"count": 2}


def test_query_command_error_reply_exits_1(server: ServerProcess) -> None:
    result = run_cli("query", "FOO", "--query-port", str(server.query_port))
    assert result.returncode == 1
    assert result.stdout == "ERROR: Unknown command. Use HELP for usage.\n"
    result = run_cli("query", "QUERY", "limit=abc", "--query-port", str(server.query_port))
    assert result.returncode == 1
    assert result.stdout.startswith("ERROR: Invalid query syntax: ")


def test_query_command_exits_1_when_nothing_listens(held_port: int) -> None:
    result = run_cli("query", "COUNT", "--query-port", str(held_port), "--timeout", "5")
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot query 127.0.0.1:{held_port}" in result.stderr
