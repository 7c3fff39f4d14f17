"""`load_config` (SPEC §12): defaults < file < LOGCASTER_* environment < flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from logcaster.config import Config, dump_yaml, load_config, validate
from logcaster.exceptions import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "logcaster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config(environ={})
    assert config == Config()
    assert config.ingest.host == config.query.host == config.syslog.host == "127.0.0.1"
    assert config.ingest.port == 9999
    assert config.query.port == 9998
    assert config.syslog.port is None
    assert config.memory.capacity == 10_000
    assert config.query.default_limit == 100
    assert config.ingest.max_line_bytes == 64 * 1024


def test_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest:\n  host: 0.0.0.0\n  port: 7000\nmultiline: {enabled: false}\n")
    config = load_config(path, environ={})
    assert (config.ingest.host, config.query.host) == ("0.0.0.0", "127.0.0.1")
    assert config.ingest.port == 7000
    assert config.ingest.max_line_bytes == 64 * 1024  # the section's other keys: defaults
    assert config.multiline.enabled is False
    assert load_config(str(path), environ={}) == config  # str or Path


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), environ={}) == Config()
    assert load_config(write(tmp_path, "# only a comment\n"), environ={}) == Config()


def test_environment_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest: {port: 7000, max_line_bytes: 2048}\n")
    config = load_config(path, environ={"LOGCASTER_INGEST__PORT": "7001"})
    assert config.ingest.port == 7001
    assert config.ingest.max_line_bytes == 2048  # merged key by key, not section by section


def test_flags_beat_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest: {port: 7000}\nmemory: {capacity: 3}\n")
    environ = {"LOGCASTER_INGEST__PORT": "7001", "LOGCASTER_MEMORY__CAPACITY": "4"}
    config = load_config(path, environ=environ, overrides={"ingest.port": 7002})
    assert config.ingest.port == 7002
    assert config.memory.capacity == 4
    # A flag that was not given (None) does not override anything.
    config = load_config(
        path,
        environ=environ,
        overrides={"ingest.port": None, "memory.capacity": 5, "query.host": None},
    )
    assert (config.ingest.port, config.memory.capacity, config.query.host) == (7001, 5, "127.0.0.1")


@pytest.mark.parametrize(
    ("name", "raw", "path", "value"),
    [
        ("LOGCASTER_INGEST__PORT", "7001", ("ingest", "port"), 7001),
        ("LOGCASTER_MULTILINE__ENABLED", "false", ("multiline", "enabled"), False),
        ("LOGCASTER_MULTILINE__ENABLED", "yes", ("multiline", "enabled"), True),
        ("LOGCASTER_MULTILINE__IDLE_TIMEOUT", "0.25", ("multiline", "idle_timeout"), 0.25),
        ("LOGCASTER_SYSLOG__PORT", "5514", ("syslog", "port"), 5514),
        ("LOGCASTER_SYSLOG__PORT", "null", ("syslog", "port"), None),
        ("LOGCASTER_SYSLOG__PORT", "", ("syslog", "port"), None),
        ("LOGCASTER_INGEST__HOST", "0.0.0.0", ("ingest", "host"), "0.0.0.0"),
        ("LOGCASTER_LOG_LEVEL", "debug", ("log_level",), "debug"),
        ("LOGCASTER_SHUTDOWN_TIMEOUT", "3", ("shutdown_timeout",), 3.0),
        ("logcaster_ingest__port", "7001", ("ingest", "port"), 9999),  # prefix is case-sensitive
    ],
)
def test_environment_values_are_yaml_scalars(
    name: str, raw: str, path: tuple[str, ...], value: Any
) -> None:
    node: Any = load_config(environ={name: raw}).to_dict()
    for part in path:
        node = node[part]
    assert node == value
    assert type(node) is type(value)


def test_environment_ignores_other_variables() -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "LOGCASTERX": "1", "INGEST__PORT": "1"}
    assert load_config(environ=environ) == Config()


def test_logcaster_config_selects_the_file(tmp_path: Path) -> None:
    chosen = write(tmp_path, "query: {port: 7100}\n", "chosen.yaml")
    other = write(tmp_path, "query: {port: 7200}\n", "other.yaml")
    environ = {"LOGCASTER_CONFIG": str(chosen)}
    assert load_config(environ=environ).query.port == 7100
    assert load_config(other, environ=environ).query.port == 7200  # an explicit path wins
    # LOGCASTER_CONFIG names the file; it is not an option called "config".
    assert load_config(environ={"LOGCASTER_CONFIG": ""}) == Config()
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(environ={"LOGCASTER_CONFIG": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize(
    ("environ", "key", "reason"),
    [
        ({"LOGCASTER_INGEST__PORT": "abc"}, "ingest.port", "Expected `int`, got `str`"),
        ({"LOGCASTER_INGEST__PORT": "-1"}, "ingest.port", ">= 0"),
        ({"LOGCASTER_QUEUE__MAX_EVENTS": "0"}, "queue.max_events", ">= 1"),
        ({"LOGCASTER_LOG_LEVEL": "loud"}, "log_level", "loud"),
        ({"LOGCASTER_QUEUE__POLICY": "drop_all"}, "queue.policy", "drop_all"),
        ({"LOGCASTER_MULTILINE__IDLE_TIMEOUT": "0"}, "multiline.idle_timeout", "> 0"),
    ],
)
def test_bad_environment_values(environ: dict[str, str], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value) == f"{key}: {info.value.reason}"


def test_environment_names_that_are_no_option_are_listed_not_applied() -> None:
    """The environment is shared with other programs: a stray LOGCASTER_* name (or a
    typo) is ignored and reported, never an error; a file's unknown key still is."""
    unknown: list[str] = []
    environ = {
        "LOGCASTER_INGEST__PORTX": "1",  # unknown key in a known section
        "LOGCASTER_NOPE": "1",
        "LOGCASTER_HOST__X": "1",  # below an option that is no section
        "LOGCASTER_FORWARD__0__NAME": "a",  # inside a list: not addressable
        "LOGCASTER_INGEST__PORT": "7001",
        "LOGCASTER_CONFIG": "",
    }
    config = load_config(environ=environ, unknown_env=unknown)
    assert config.ingest.port == 7001
    assert sorted(unknown) == [
        "LOGCASTER_FORWARD__0__NAME",
        "LOGCASTER_HOST__X",
        "LOGCASTER_INGEST__PORTX",
        "LOGCASTER_NOPE",
    ]


@pytest.mark.parametrize(
    "environ",
    [
        {"LOGCASTER_INGEST": "5", "LOGCASTER_INGEST__PORT": "1"},
        {"LOGCASTER_INGEST__PORT": "1", "LOGCASTER_INGEST": "5"},
    ],
)
def test_a_value_where_a_section_belongs(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=environ)
    assert info.value.key.startswith("ingest")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('ingest: {port: "abc"}\n', "ingest.port", "Expected `int`, got `str`"),
        ("queue: {max_events: -1}\n", "queue.max_events", ">= 1"),
        ("ingest: {portx: 1}\n", "ingest.portx", "unknown option"),
        ("memory: [1, 2]\n", "memory", "Expected `object`"),
        ("- a\n", "", "top level must be a mapping"),
        ("42\n", "", "top level must be a mapping"),
        ("ingest: {port: 1\n", "", "not valid YAML"),
        ("persist: {rotate_interval: weekly}\n", "persist.rotate_interval", "weekly"),
        ("persist: {rotate_interval: 0}\n", "persist.rotate_interval", ">= 1"),
        ("persist: {rotate_interval: 0.5}\n", "persist.rotate_interval", "got `float`"),
        ("persist: {compress: maybe}\n", "persist.compress", "Expected `bool`"),
        ("persist: {retention_files: 0}\n", "persist.retention_files", ">= 1"),
        ("persist: {retention_age: -1}\n", "persist.retention_age", "> 0"),
        ("persist: {retention_bytes: 1 GB}\n", "persist.retention_bytes", "got `str`"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.key == key
    assert reason in info.value.reason
    if not key:
        assert str(path) in str(info.value)


def test_bad_flag_values() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={"memory.capacity": 0})
    assert info.value.key == "memory.capacity"
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides={"ingest.port": 70000})
    assert info.value.key == "ingest.port"


@pytest.mark.parametrize(
    ("overrides", "key", "other"),
    [
        ({"ingest.port": 7000, "query.port": 7000}, "query.port", "ingest.port"),
        ({"ingest.port": 7000, "syslog.port": 7000}, "syslog.port", "ingest.port"),
        ({"query.port": 7000, "syslog.port": 7000}, "syslog.port", "query.port"),
    ],
)
def test_port_clash(overrides: dict[str, Any], key: str, other: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ={}, overrides=overrides)
    assert info.value.key == key
    assert info.value.reason == f"port 7000 is already used by {other}"


def test_port_clash_across_sources(tmp_path: Path) -> None:
    path = write(tmp_path, "ingest: {port: 7000}\n")
    with pytest.raises(ConfigError, match=r"already used by ingest\.port"):
        load_config(path, environ={"LOGCASTER_QUERY__PORT": "7000"})
    # A flag that moves one of them away resolves the clash.
    config = load_config(
        path, environ={"LOGCASTER_QUERY__PORT": "7000"}, overrides={"ingest.port": 7001}
    )
    assert (config.ingest.port, config.query.port) == (7001, 7000)


def test_port_zero_and_syslog_off_never_clash() -> None:
    config = load_config(environ={}, overrides={"ingest.port": 0, "query.port": 0})
    assert (config.ingest.port, config.query.port) == (0, 0)
    config = load_config(
        environ={}, overrides={"ingest.port": 0, "query.port": 0, "syslog.port": 0}
    )
    assert config.syslog.port == 0


def test_dump_yaml_round_trips(tmp_path: Path) -> None:
    config = load_config(
        environ={"LOGCASTER_SYSLOG__PORT": "5514", "LOGCASTER_MULTILINE__IDLE_TIMEOUT": "0.5"},
        overrides={"memory.capacity": 42},
    )
    text = dump_yaml(config)
    assert validate(yaml.safe_load(text)) == config
    assert load_config(write(tmp_path, text), environ={}) == config


def test_example_file_lists_every_option_with_its_default() -> None:
    example = REPO / "logcaster.example.yaml"
    assert load_config(example, environ={}) == Config()
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))

    def keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for key, value in node.items():
            out.add(prefix + key)
            if isinstance(value, dict):
                out |= keys(value, f"{prefix}{key}.")
        return out

    assert keys(raw) == keys(Config().to_dict())


def test_persist_housekeeping_options() -> None:
    config = load_config(
        environ={
            "LOGCASTER_PERSIST__ROTATE_INTERVAL": "hourly",
            "LOGCASTER_PERSIST__COMPRESS": "false",
            "LOGCASTER_PERSIST__RETENTION_FILES": "10",
            "LOGCASTER_PERSIST__RETENTION_AGE": "86400",
            "LOGCASTER_PERSIST__RETENTION_BYTES": "1073741824",
        }
    )
    p = config.persist
    assert (p.rotate_interval, p.compress) == ("hourly", False)
    assert (p.retention_files, p.retention_age, p.retention_bytes) == (10, 86400, 1 << 30)
    assert (
        load_config(environ={"LOGCASTER_PERSIST__ROTATE_INTERVAL": "30"}).persist.rotate_interval
        == 30
    )
    defaults = Config().persist
    assert defaults.rotate_interval is None and defaults.compress is True
    assert (defaults.retention_files, defaults.retention_age, defaults.retention_bytes) == (
        None,
        None,
        None,
    )


def test_the_old_top_level_host_says_where_it_went(tmp_path: Path) -> None:
    """One `host` bound every listener, the query port too (issue 14, item 10)."""
    with pytest.raises(ConfigError, match=r"ingest\.host, syslog\.host, query\.host") as info:
        load_config(write(tmp_path, "host: 0.0.0.0\n"), environ={})
    assert info.value.key == "host"
