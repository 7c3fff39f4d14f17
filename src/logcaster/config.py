"""The one configuration object, resolved once and read by every component.

Precedence, lowest to highest: defaults < YAML file < `LOGCASTER_*` environment
< command-line flags. Nested keys are joined with a double underscore in the
environment: `ingest.max_line_bytes` is `LOGCASTER_INGEST__MAX_LINE_BYTES`.
Every struct rejects unknown keys, and a bad value raises `ConfigError` naming
the dotted key and the reason.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml

from logcaster.exceptions import ConfigError
from logcaster.options import (
    ENV_PREFIX,
    AuditConfig,
    AuthConfig,
    ElasticConfig,
    EncryptConfig,
    ForwardGroupConfig,
    HttpConfig,
    IngestConfig,
    IrcConfig,
    LogLevel,
    MemoryConfig,
    MetricsConfig,
    MultilineConfig,
    OtlpConfig,
    PersistConfig,
    PositiveFloat,
    QueryConfig,
    QueueConfig,
    RateLimitConfig,
    RedactConfig,
    Section,
    StoreConfig,
    SyslogConfig,
    TailSamplingConfig,
    TlsConfig,
    TlsOverride,
)
from logcaster.parsing import user_rules
from logcaster.scaleout.options import PUBLISH_GROUP, ScaleoutConfig
from logcaster.security import settings
from logcaster.sinks.forward.target import parse_target
from logcaster.sources.files.options import SourcesConfig, check_files


class Config(Section, frozen=True):
    """Every option LogCaster reads, with its default."""

    log_level: LogLevel = "info"
    shutdown_timeout: PositiveFloat = 10.0
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    syslog: SyslogConfig = msgspec.field(default_factory=SyslogConfig)
    multiline: MultilineConfig = msgspec.field(default_factory=MultilineConfig)
    queue: QueueConfig = msgspec.field(default_factory=QueueConfig)
    tail_sampling: TailSamplingConfig = msgspec.field(default_factory=TailSamplingConfig)
    memory: MemoryConfig = msgspec.field(default_factory=MemoryConfig)
    query: QueryConfig = msgspec.field(default_factory=QueryConfig)
    persist: PersistConfig = msgspec.field(default_factory=PersistConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    forward: list[ForwardGroupConfig] = msgspec.field(default_factory=list)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    otlp: OtlpConfig = msgspec.field(default_factory=OtlpConfig)
    irc: IrcConfig = msgspec.field(default_factory=IrcConfig)
    elastic: ElasticConfig = msgspec.field(default_factory=ElasticConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    rate_limit: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)

    def tls_listeners(self) -> dict[str, TlsOverride]:
        """Each listener that runs, by name, with its `tls` overrides: every section
        with a `tls: TlsOverride` field is one (a new listener gets TLS by having it),
        unless it is off (`enabled: false`, or `port: null` as syslog)."""
        out: dict[str, TlsOverride] = {}
        for name in self.__struct_fields__:
            section = getattr(self, name)
            own = getattr(section, "tls", None)
            if not isinstance(own, TlsOverride):
                continue
            if getattr(section, "enabled", True) is False or getattr(section, "port", 0) is None:
                continue
            out[name] = own
        return out

    encrypt: EncryptConfig = msgspec.field(default_factory=EncryptConfig)
    redact: RedactConfig = msgspec.field(default_factory=RedactConfig)
    scaleout: ScaleoutConfig = msgspec.field(default_factory=ScaleoutConfig)
    sources: SourcesConfig = msgspec.field(default_factory=SourcesConfig)  # docs/file-source.md

    @property
    def store_on(self) -> bool:
        if self.store.enabled == "auto":
            return self.persist.dir is not None and self.persist.format == "raw"
        return bool(self.store.enabled)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


# --- loading -------------------------------------------------------------------------

_DEFAULTS = Config()  # the option tree, for telling options from stray environment names


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(dotted, f"'{part}' is not a section")
        node = child
    node[parts[-1]] = value


def read_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a plain mapping (not yet validated)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{path} is not valid YAML: {_yaml_reason(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{path}: the top level must be a mapping of keys")
    return data


def read_env(environ: Mapping[str, str], unknown: list[str] | None = None) -> dict[str, Any]:
    """Collect `LOGCASTER_SECTION__KEY=value` variables. Values are YAML scalars.

    A `LOGCASTER_*` name that is no option (`LOGCASTER_CHECKOUT` of some other
    tool, or a typo) is skipped and added to `unknown` for a warning: the
    environment is shared with every other program, so a stray name must not
    stop the server. A config file is LogCaster's alone: its unknown keys stay
    errors, and so does a bad value of a known variable.
    """
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        if not _is_option(dotted):
            if unknown is not None:
                unknown.append(name)
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        _set_dotted(out, dotted, value)
    return out


def _is_option(dotted: str) -> bool:
    """Whether `dotted` names an option or section of `Config` (not inside a list)."""
    node: object = _DEFAULTS
    for part in dotted.split("."):
        if not isinstance(node, msgspec.Struct) or part not in node.__struct_fields__:
            return False
        node = getattr(node, part)
    return True


_MSGSPEC_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def validate(data: Mapping[str, Any]) -> Config:
    """Turn a merged mapping into a `Config`, or raise `ConfigError`."""
    if "host" in data:
        raise ConfigError(
            "host", "removed: each listener has its own, ingest.host, syslog.host, query.host"
        )
    data = _tls_versions(data)
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        m = _MSGSPEC_PATH.match(str(exc))
        assert m is not None
        path = (m.group("path") or "").lstrip(".")
        path = re.sub(r"\[(\d+)\]", r".\1", path)
        reason = m.group("reason")
        unknown = re.match(r"Object contains unknown field `([^`]+)`", reason)
        if unknown:
            path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
            reason = "unknown option"
        else:
            reason += _choices(path)
        raise ConfigError(path or "config", reason) from exc
    _check_ports(config)
    _check_store(config)
    _check_forward(config)
    _check_scaleout(config)
    _check_multiline(config)
    check_files(config.sources.files, config.multiline)
    settings.check_security(config)
    settings.check_tls(config)
    settings.check_encrypt(config)
    settings.check_redact(config)
    return config


def _tls_versions(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """`min_version: 1.3` is a YAML number (the environment's too): read it as "1.3"."""
    sections = [data.get("tls"), *(s.get("tls") for s in data.values() if isinstance(s, dict))]
    if not any(isinstance(t, dict) and isinstance(t.get("min_version"), float) for t in sections):
        return data
    out = dict(data)
    for name, value in data.items():
        if name == "tls" and isinstance(value, dict):
            out[name] = _tls_version(value)
        elif isinstance(value, dict) and isinstance(value.get("tls"), dict):
            out[name] = {**value, "tls": _tls_version(value["tls"])}
    return out


def _tls_version(section: dict[str, Any]) -> dict[str, Any]:
    version = section.get("min_version")
    return {**section, "min_version": str(version)} if isinstance(version, float) else section


def _check_multiline(config: Config) -> None:
    multiline = config.multiline
    if multiline.max_bytes < config.ingest.max_line_bytes:
        raise ConfigError(
            "multiline.max_bytes",
            f"must be at least ingest.max_line_bytes ({config.ingest.max_line_bytes}): "
            "a grouped event holds whole lines",
        )
    if len(multiline.rules) > user_rules.MAX_RULES:
        raise ConfigError("multiline.rules", f"at most {user_rules.MAX_RULES} rules")
    for i, rule in enumerate(multiline.rules):
        for key, pattern in (("start", rule.start), ("continue", rule.continue_)):
            try:
                user_rules.compile_pattern(pattern)
            except ValueError as exc:
                raise ConfigError(f"multiline.rules.{i}.{key}", str(exc)) from exc


def _choices(dotted: str) -> str:
    """` (one of: a, b, c)` when the option at `dotted` is an enum, else ""."""
    hint: Any = Config
    for part in dotted.split("."):
        if part.isdigit():  # forward.0.spool_policy: the list's item type
            args = typing.get_args(hint)
            hint = args[0] if args else None
        elif isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            hint = typing.get_type_hints(hint).get(part)
        else:
            return ""
    values: list[str] = []
    for member in _members(hint):
        if typing.get_origin(member) is Literal:
            values += [str(v) for v in typing.get_args(member)]
        elif member is bool:
            values += ["true", "false"]
        elif member is int:
            values.append("an integer")
    if all(value == "an integer" for value in values):
        return ""  # not an enum
    return f" (one of: {', '.join(values)})"


def _members(hint: Any) -> list[Any]:
    """The types of a union (Annotated stripped), or the type alone."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(hint) for m in _members(arg)]
    return [hint]


def forward_dir(config: Config, group: ForwardGroupConfig) -> Path | None:
    """Where a group keeps its spool and dead letters (None: no spool)."""
    if group.dir is not None:
        return Path(group.dir)
    if config.persist.dir is not None:
        return Path(config.persist.dir) / "forward" / group.name
    return None


def publish_dir(config: Config) -> Path | None:
    """Where scale-out's publisher keeps its spool (None: no spool)."""
    if config.persist.dir is None:
        return None
    return Path(config.persist.dir) / "forward" / PUBLISH_GROUP


def _check_forward(config: Config) -> None:
    names: set[str] = set()
    for g, group in enumerate(config.forward):
        key = f"forward.{g}"
        if group.name in names:
            raise ConfigError(f"{key}.name", f"{group.name!r} names two groups")
        names.add(group.name)
        members = len(group.primaries) + len(group.backups)
        if group.min_success > members:
            raise ConfigError(
                f"{key}.min_success", f"{group.min_success} is more than the {members} sinks"
            )
        for kind in ("primaries", "backups"):
            for i, sink in enumerate(getattr(group, kind)):
                try:
                    parse_target(sink.url)
                except ValueError as exc:
                    raise ConfigError(f"{key}.{kind}.{i}.url", str(exc)) from exc


def _check_scaleout(config: Config) -> None:
    section = config.scaleout
    if section.publish is not None and any(g.name == PUBLISH_GROUP for g in config.forward):
        raise ConfigError(
            "forward.name", f"{PUBLISH_GROUP!r} is scale-out's publisher (scaleout.publish)"
        )
    checks = (("publish", ("redis", "rediss")), ("history", ("postgresql", "postgres")))
    for key, schemes in checks:
        url = getattr(section, key)
        if url is not None and urlsplit(url).scheme not in schemes:
            example = f"{schemes[0]}://HOST:PORT/…"
            raise ConfigError(f"scaleout.{key}", f"{url!r}: the URL must be {example}")


# Line offsets in the store's index are 32-bit.
MAX_STORE_SEGMENT_BYTES = (1 << 32) - 1


def _check_store(config: Config) -> None:
    if config.store.enabled is True:
        if config.persist.dir is None:
            raise ConfigError(
                "store.enabled", "the store needs persist.dir (its segments are the text)"
            )
        if config.persist.format != "raw":
            raise ConfigError("store.enabled", "the store needs persist.format: raw")
    if config.store_on and config.persist.max_file_bytes > MAX_STORE_SEGMENT_BYTES:
        raise ConfigError(
            "persist.max_file_bytes", f"at most {MAX_STORE_SEGMENT_BYTES} with the store on"
        )


def _check_ports(config: Config) -> None:
    """Two listeners of one protocol cannot share a fixed port."""
    tcp = {"ingest.port": config.ingest.port, "query.port": config.query.port}
    if config.syslog.port is not None:
        tcp["syslog.port"] = config.syslog.port
    if config.http.enabled:
        tcp["http.port"] = config.http.port
    if config.otlp.enabled:
        tcp["otlp.port"] = config.otlp.port
    seen: dict[int, str] = {}
    for key, port in tcp.items():
        if port and port in seen:
            raise ConfigError(key, f"port {port} is already used by {seen[port]}")
        seen[port] = key


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    unknown_env: list[str] | None = None,
) -> Config:
    """Resolve the effective configuration.

    `overrides` maps dotted keys (`ingest.port`) to values given as flags.
    `path` falls back to `$LOGCASTER_CONFIG` when not given. `LOGCASTER_*`
    variables that name no option are ignored and listed in `unknown_env`.
    """
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    merged: dict[str, Any] = {}
    if path is not None:
        merged = _deep_merge(merged, read_file(path))
    merged = _deep_merge(merged, read_env(env, unknown_env))
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(flags, dotted, value)
    merged = _deep_merge(merged, flags)
    return validate(merged)


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: the problem and where (1-based)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{exc.problem} ({where})" if exc.problem else where
    return " ".join(str(exc).split())


def dump_yaml(config: Config) -> str:
    text: str = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
    return text
