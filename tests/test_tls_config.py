"""TLS options: global defaults, per-listener overrides, and every bad file a
ConfigError naming the exact key (security/tls.py, config.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from logcaster.config import Config, load_config, validate
from logcaster.exceptions import ConfigError
from logcaster.security.tls import resolve
from tests.tls_helpers import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        validate(data)
    return str(info.value)


def _global(pki: Pki, **extra: Any) -> dict[str, Any]:
    server = pki.server()
    return {"enabled": True, "cert_file": str(server.cert), "key_file": str(server.key), **extra}


def test_off_by_default_and_every_listener_overridable() -> None:
    config = Config()
    assert not config.tls.enabled
    assert set(config.tls_listeners()) == {"ingest", "query", "http"}
    with_syslog = validate({"syslog": {"port": 0}, "http": {"enabled": False}})
    assert set(with_syslog.tls_listeners()) == {"ingest", "query", "syslog"}


def test_global_switch_and_per_listener_override(pki: Pki) -> None:
    config = validate({"tls": _global(pki, client_auth="optional", ca_file=str(pki.ca_file))})
    for name, override in config.tls_listeners().items():
        settings = resolve(config.tls, override, name)
        assert settings.enabled and settings.client_auth == "optional"
    other = pki.server("other")
    config = validate(
        {
            "tls": {"cert_file": str(other.cert), "key_file": str(other.key)},
            "http": {"tls": {"enabled": True}},
            "query": {"tls": {"min_version": 1.3}},  # a YAML number, read as "1.3"
        }
    )
    http = resolve(config.tls, config.http.tls, "http")
    assert http.enabled and http.cert_file == str(other.cert)
    assert http.key("cert_file") == "tls.cert_file"
    assert not resolve(config.tls, config.ingest.tls, "ingest").enabled
    assert resolve(config.tls, config.query.tls, "query").min_version == "1.3"


def test_environment_min_version_is_a_string(pki: Pki) -> None:
    config = load_config(environ={"LOGCASTER_TLS__MIN_VERSION": "1.3"})
    assert config.tls.min_version == "1.3"


def test_bad_files_name_the_key(pki: Pki, tmp_path: Path) -> None:
    good = pki.server()
    other = pki.server("another")
    assert _error({"tls": {"enabled": True}}) == (
        "tls.cert_file: TLS is enabled but no file is given"
    )
    missing = str(tmp_path / "nope.pem")
    reason = _error({"tls": _global(pki, cert_file=missing)})
    assert reason.startswith("tls.cert_file: cannot read") and "No such file" in reason
    reason = _error({"http": {"tls": {**_global(pki), "key_file": missing}}})
    assert reason.startswith("http.tls.key_file: cannot read")
    mismatch = _error({"tls": _global(pki, key_file=str(other.key))})
    assert mismatch.startswith("tls.key_file: ") and "is not the key of" in mismatch
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    assert _error({"tls": _global(pki, cert_file=str(junk))}).startswith(
        "tls.cert_file: " + str(junk) + " holds no PEM certificate"
    )
    assert _error({"tls": _global(pki, key_file=str(good.cert))}).startswith(
        "tls.key_file: " + str(good.cert) + " holds no PEM private key"
    )
    reason = _error({"tls": _global(pki), "query": {"tls": {"client_auth": "required"}}})
    assert reason.startswith("tls.ca_file: client_auth required needs the CAs")
    reason = _error({"tls": _global(pki, ca_file=str(junk), client_auth="optional")})
    assert reason.startswith("tls.ca_file: ")
    unreadable = tmp_path / "unreadable.key"
    unreadable.write_bytes(good.key.read_bytes())
    unreadable.chmod(0)
    if not unreadable.exists() or _readable(unreadable):
        return  # root reads anything: the permission case cannot be made here
    reason = _error({"ingest": {"tls": {**_global(pki), "key_file": str(unreadable)}}})
    assert reason.startswith("ingest.tls.key_file: cannot read") and "Permission" in reason


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


def test_unused_listener_files_are_not_checked(tmp_path: Path) -> None:
    """syslog off (port null): its TLS section is not looked at."""
    validate({"syslog": {"tls": {"enabled": True, "cert_file": str(tmp_path / "x")}}})


def test_forward_sink_tls_files(pki: Pki, tmp_path: Path) -> None:
    client = pki.client("fwd")
    ok = {"url": "tls://127.0.0.1:1", "ca_file": str(pki.ca_file), **_pair(client)}
    validate({"forward": [{"name": "g", "primaries": [ok]}]})
    bad = {**ok, "ca_file": str(tmp_path / "none.pem")}
    reason = _error({"forward": [{"name": "g", "primaries": [bad]}]})
    assert reason.startswith("forward.0.primaries.0.ca_file: cannot read")
    plain = {"url": "tcp://127.0.0.1:1", "ca_file": str(pki.ca_file)}
    reason = _error({"forward": [{"name": "g", "primaries": [plain]}]})
    assert reason == "forward.0.primaries.0.ca_file: only for tls:// and https:// urls"


def _pair(pair: Any) -> dict[str, str]:
    return {"cert_file": str(pair.cert), "key_file": str(pair.key)}


def test_serve_with_a_bad_file_is_one_line_and_exit_2(pki: Pki, tmp_path: Path) -> None:
    other = pki.server("third")
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"http": {"tls": _global(pki, key_file=str(other.key))}}))
    done = subprocess.run(
        [sys.executable, "-m", "logcaster", "serve", "--config", str(conf), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "logcaster: invalid configuration: http.tls.key_file: "
    )
