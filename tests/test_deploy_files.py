"""deploy/ checked by the tools that read it, and the server's side of the systemd
unit (sd_notify: READY=1 once bound, the watchdog, reload and stop)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from logcaster.config import load_config
from logcaster.testing import start_server
from tests.sender_helpers import tool

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "logcaster.service"
VENV_LOGCASTER = ROOT / ".venv" / "bin" / "logcaster"


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_verifies_and_its_exposure_is_ok(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    # verify needs ExecStart's program to exist: this checkout's stands in for /opt's.
    unit = tmp_path / "logcaster.service"
    unit.write_text(
        UNIT.read_text().replace("/opt/logcaster/.venv/bin/logcaster", str(VENV_LOGCASTER))
    )
    verify = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", security.stdout)
    assert found is not None, security.stdout[-2000:] + security.stderr
    assert float(found[1]) <= 3.0 and found[2] == "OK", found[0]


def test_the_unit_has_what_the_runbook_relies_on() -> None:
    d = _directives(UNIT.read_text())
    assert d["Type"] == ["notify"] and d["WatchdogSec"] and d["NotifyAccess"] == ["main"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert int(d["TimeoutStopSec"][0].rstrip("s")) > 10  # above shutdown_timeout's 10 s
    assert int(d["LimitNOFILE"][0]) >= 65536 and d["StateDirectory"] == ["logcaster"]
    assert "-P /var/lib/logcaster" in d["ExecStart"][0]  # StateDirectory's path
    assert d["User"] == ["logcaster"] and d["RestartPreventExitStatus"] == ["2"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert d[key] == [value], key
    assert set(d["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


class _NotifySocket:
    """What systemd listens on: a datagram socket; `next()` is the next message."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(10)

    def until(self, wanted: str) -> list[str]:
        """Messages up to and including the first holding `wanted`."""
        seen: list[str] = []
        while True:
            message = self.sock.recv(4096).decode()
            seen.append(message)
            if wanted in message.splitlines():
                return seen


def test_the_server_tells_systemd_ready_watchdog_reload_and_stop(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    listener = _NotifySocket(path)
    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}
    config = tmp_path / "logcaster.yaml"
    config.write_text("log_level: info\n")
    server = start_server("--config", str(config), env=env)
    try:
        ready = listener.until("READY=1")[-1].splitlines()
        assert f"MAINPID={server.pid}" in ready
        with socket.create_connection(("127.0.0.1", server.ingest_port), timeout=5):
            pass  # READY=1 came after the listeners were bound
        started = time.monotonic()
        listener.until("WATCHDOG=1")
        listener.until("WATCHDOG=1")
        assert time.monotonic() - started < 2.0  # every 0.1 s: half of WATCHDOG_USEC
        os.kill(server.pid, signal.SIGHUP)
        assert any("RELOADING=1" in m for m in listener.until("READY=1"))
        os.kill(server.pid, signal.SIGTERM)
        listener.until("STOPPING=1")
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
        listener.sock.close()


def test_the_logrotate_file_is_read_without_error(tmp_path: Path) -> None:
    logrotate = tool("logrotate")
    text = (ROOT / "deploy" / "logrotate" / "logcaster").read_text()
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "logcaster.log").write_text('{"event":"ready"}\n')
    config = tmp_path / "logcaster"
    config.write_text(text.replace("/var/log/logcaster", str(logs)))
    done = subprocess.run(
        [logrotate, "-d", "-s", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "error" not in out.lower(), out
    assert "Handling 1 logs" in out, out


def _venv_tool(name: str) -> str:
    """A checker the dev lock file installs next to this interpreter."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{path}: run `make install-dev`"
    return str(path)


def test_the_dockerfile_lints_clean_and_runs_as_a_user_with_a_healthcheck() -> None:
    dockerfile = ROOT / "Dockerfile"
    linted = subprocess.run(
        [_venv_tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = dockerfile.read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2  # multi-stage
    assert "--require-hashes -r requirements.lock" in text  # from the lock file only
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'VOLUME ["/var/lib/logcaster"]' in text


def test_the_kubernetes_manifests_validate_against_the_openapi_schemas() -> None:
    files = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
    assert {f.name for f in files} >= {"statefulset.yaml", "service.yaml", "configmap.yaml"}
    checked = subprocess.run(
        [_venv_tool("kubernetes-validate"), "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    docs = {f.stem: yaml.safe_load(f.read_text()) for f in files}
    pod = docs["statefulset"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert docs["statefulset"]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert pod["terminationGracePeriodSeconds"] > 10  # above shutdown_timeout
    # The ConfigMap holds a configuration the server accepts.
    config = load_config(
        environ={}, overrides=yaml.safe_load(docs["configmap"]["data"]["logcaster.yaml"])
    )
    assert config.persist.dir == "/var/lib/logcaster" and config.http.host == "0.0.0.0"
