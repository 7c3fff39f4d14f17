"""Errors written for people: start-up failures, reloads, stray environment
variables, enum values, JSON error answers and the debug log (issue 14: 14, 16).

Every test runs the real `logcaster` command or a real server process.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.conftest import ServerFactory
from tests.test_cli import EXIT_CONFIG, clean_env, run_cli, write


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 2 and exactly one stderr line, no traceback, naming `words`."""
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "serve", "--port", "0", "--query-port", "0", "--http-port", "0", *args, env=env, timeout=20
    )


# --- start-up failures: one line, exit 2 ---------------------------------------------


def test_persist_dir_that_is_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("not a directory\n")
    result = serve("-P", str(path))
    assert_one_line_failure(result, "persist.dir", str(path), "not a directory")


def test_persist_dir_under_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    result = serve("-P", str(path / "data"))
    assert_one_line_failure(result, "persist.dir", str(path / "data"), "Not a directory")


def test_persist_dir_in_proc() -> None:
    result = serve("-P", "/proc/logcaster-no-such-dir")
    assert_one_line_failure(result, "persist.dir", "/proc/logcaster-no-such-dir")


@contextlib.contextmanager
def read_only_mount(where: Path) -> Iterator[Path]:
    """A small read-only tmpfs at `where` (root only), unmounted afterwards."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr!r}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_persist_dir_on_a_read_only_filesystem(tmp_path: Path) -> None:
    with read_only_mount(tmp_path / "ro") as ro:
        result = serve("-P", str(ro / "data"))
    assert_one_line_failure(result, "persist.dir", "Read-only file system")


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "serve", "--port", "0", "--query-port", str(port), "--http-port", "0", timeout=20
        )
    assert_one_line_failure(result, "query.port", f"127.0.0.1:{port}", "in use")


def test_bad_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "queue: {max_events: many}\n")
    result = serve("--config", path)
    assert_one_line_failure(result, "queue.max_events")


# --- SIGHUP reload -------------------------------------------------------------------


def test_failed_reload_logs_its_reason_and_keeps_serving(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    path = write(tmp_path, "memory: {capacity: 50}\n")
    server = server_factory("--config", path, env=clean_env())
    write(tmp_path, "memory: {capacity: 0}\n")
    server.proc.send_signal(signal.SIGHUP)
    failed = wait_for(
        "config_reload_failed",
        lambda: [d for d in server.logs if d["event"] == "config_reload_failed"],
        bool,
    )
    assert "memory.capacity" in failed[0]["error"]
    assert failed[0]["level"] == "error"
    assert server.query("COUNT") == "COUNT: 0\n"  # still serving, with the old config
    assert server.proc.poll() is None


# --- stray LOGCASTER_* variables -----------------------------------------------------


@pytest.mark.parametrize("name", ["LOGCASTER_CHECKOUT", "LOGCASTER_INGEST__NO_SUCH_KEY"])
def test_unknown_environment_variable_warns_and_serves(
    server_factory: ServerFactory, name: str
) -> None:
    server = server_factory(env=clean_env(**{name: "1", "LOGCASTER_MEMORY__CAPACITY": "3"}))
    warnings = [d for d in server.logs if d["event"] == "unknown_env_variable"]
    assert [(w["variable"], w["level"]) for w in warnings] == [(name, "warning")]
    # Known variables still apply.
    server.send(b"".join(b"line %d\n" % i for i in range(5)))
    server.wait_total(5)
    assert server.query("COUNT") == "COUNT: 3\n"


def test_config_file_with_an_unknown_key_stays_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest: {no_such_key: 1}\n")
    result = serve("--config", path, env=clean_env(LOGCASTER_CHECKOUT="main"))
    assert result.returncode == EXIT_CONFIG
    assert "ingest.no_such_key: unknown option" in result.stderr


def test_config_check_warns_about_unknown_environment_variables() -> None:
    result = run_cli("config", "check", env=clean_env(LOGCASTER_CHECKOUT="main"))
    assert result.returncode == 0, result.stderr
    assert "LOGCASTER_CHECKOUT is not a LogCaster option; ignored" in result.stderr


# --- enum errors list the allowed values -----------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "queue: {policy: fast}\n",
            "queue.policy: Invalid enum value 'fast' "
            "(one of: block, drop_newest, drop_oldest, reject, sample)",
        ),
        (
            "persist: {fsync: sometimes}\n",
            "persist.fsync: Invalid enum value 'sometimes' (one of: always, interval, never)",
        ),
        ("store: {enabled: maybe}\n", "store.enabled: Invalid enum value 'maybe' (one of: auto"),
    ],
)
def test_config_enum_errors_list_the_allowed_values(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    result = run_cli("config", "check", write(tmp_path, yaml_text))
    assert result.returncode == EXIT_CONFIG
    assert message in result.stderr


def test_environment_enum_error_lists_the_allowed_values() -> None:
    result = serve(env=clean_env(LOGCASTER_LOG_LEVEL="verbose"))
    assert_one_line_failure(result, "log_level", "(one of: debug, info, warning, error)")


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("QUERY order=newest", "order must be asc or desc, not 'newest'"),
        ("QUERY source=disk", "source must be memory, store or all, not 'disk'"),
        ("QUERY keyword=a operator=XOR", "operator must be AND or OR, not 'XOR'"),
        ("QUERY level=LOUD", "use one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL"),
    ],
)
def test_query_enum_errors_list_the_allowed_values(
    server: ServerProcess, command: str, allowed: str
) -> None:
    reply = server.query(command)
    assert reply.startswith("ERROR: Invalid query syntax: ") and allowed in reply, reply


# --- JSON commands answer errors in JSON -------------------------------------------------


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("JSON QUERY order=newest", "Invalid query syntax: order must be asc or desc"),
        ("json FROB", "Unknown command. Use HELP for usage."),
        ("JSON", "Empty command. Use HELP for usage."),
        ("JSON COUNT now", "Invalid query syntax: COUNT takes no arguments"),
        ("QUERY limit=-1 format=json", "Invalid query syntax: limit must be a non-negative"),
    ],
)
def test_json_commands_answer_errors_in_json(
    server: ServerProcess, command: str, error: str
) -> None:
    reply = server.query(command)
    assert reply.endswith("\n") and reply.count("\n") == 1, reply
    doc = json.loads(reply)
    assert list(doc) == ["error"] and doc["error"].startswith(error), doc
    # The same command without JSON: the text error line.
    if command.upper().startswith("JSON"):
        text = server.query(command[4:].strip())
        assert text == f"ERROR: {doc['error']}\n"


def test_query_command_exits_1_on_a_json_error(server: ServerProcess) -> None:
    result = run_cli(
        "query", "--json", "QUERY", "order=newest", "--query-port", str(server.query_port)
    )
    assert result.returncode == 1
    assert "order must be asc or desc" in json.loads(result.stdout)["error"]


# --- --log-level debug ---------------------------------------------------------------------


def test_debug_log_has_connections_and_queries(server_factory: ServerFactory) -> None:
    server = server_factory("--log-level", "debug", env=clean_env())
    with socket.create_connection(("127.0.0.1", server.ingest_port)) as sock:
        sock.sendall(b"hello debug\n")
        ingest_peer = "tcp:{}:{}".format(*sock.getsockname())
    server.wait_total(1)
    assert server.query("QUERY keyword=hello").startswith("FOUND: 1 matches")

    def events(name: str) -> list[dict[str, object]]:
        return [doc for doc in server.logs if doc["event"] == name]

    wait_for("query log", lambda: events("query"), lambda found: len(found) >= 2)
    opened = {doc["peer"] for doc in events("connection_opened")}
    closed = wait_for(
        "the ingest connection's close",
        lambda: {doc["peer"] for doc in events("connection_closed")},
        lambda peers: ingest_peer in peers,
    )
    assert ingest_peer in opened and ingest_peer in closed
    assert any(str(peer).startswith("query:127.0.0.1:") for peer in opened & closed)
    query = next(doc for doc in events("query") if doc["command"] == "QUERY keyword=hello")
    assert query["answer"] == "FOUND: 1 matches" and query["level"] == "debug"
    assert isinstance(query["ms"], float) and query["ms"] >= 0
    # At the default level none of this is logged.
    quiet = server_factory(env=clean_env())
    assert quiet.query("COUNT") == "COUNT: 0\n"
    assert quiet.stop() == 0
    assert not [doc for doc in quiet.logs if doc["level"] == "debug"]
