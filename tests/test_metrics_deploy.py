"""deploy/: every metric the Grafana dashboard's queries name exists in a real
server's /metrics, and promtool accepts the Prometheus scrape config."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from logcaster.scaleout.writer_metrics import WriterMetrics
from tests.conftest import ServerFactory
from tests.forward_helpers import HttpReceiver, group, write_config
from tests.metrics_helpers import PROMETHEUS_PREFIX, metrics_text, served_names
from tests.sender_helpers import tool

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"

# PromQL words that are not metric names: functions and aggregations (followed by
# "("), the grouping and matching keywords, Grafana's variables.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_STRIP = re.compile(
    r'"(?:\\.|[^"\\])*"'  # strings
    r"|\{[^}]*\}"  # label matchers
    r"|\[[^\]]*\]"  # ranges ([5m], [$__rate_interval])
    r"|\b(?:by|without|on|ignoring)\s*\([^)]*\)"  # grouping label lists
)
_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    bare = _STRIP.sub(" ", expr)
    names = set()
    for match in _WORD.finditer(bare):
        word = match.group()
        start = match.start()
        called = bare[match.end() :].lstrip().startswith("(")
        if called or word in _KEYWORDS or (start and bare[start - 1] in "0123456789.$"):
            continue
        names.add(word)
    return names


def dashboard_exprs() -> list[str]:
    doc = json.loads((DEPLOY / "grafana" / "logcaster.json").read_text())
    exprs = [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]
    for variable in doc["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):  # label_values(METRIC, label)
            exprs.append(query["query"].removeprefix("label_values(").partition(",")[0])
    return exprs


def alert_exprs() -> list[str]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for g in doc["groups"] for rule in g["rules"]]


def _alert_names(writer: bool) -> set[str]:
    """The metric names the alert rules read: the writers' or the server's
    (`up` is Prometheus's own)."""
    names = set().union(*(promql_metrics(e) for e in alert_exprs())) - {"up"}
    return {n for n in names if n.startswith("logcaster_writer_") == writer}


def test_promql_names_are_found() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, frontend) (rate(logcaster_query_duration_"
        'seconds_bucket{instance=~"$instance"}[$__rate_interval]))) / on (job) x_total'
    )
    assert promql_metrics(expr) == {"logcaster_query_duration_seconds_bucket", "x_total"}


def test_every_dashboard_metric_is_served(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """A server with the parts the dashboard shows (a forward group, the store)
    after some traffic and a query: each name the panels read is served (a
    labelled family that counted nothing yet is served without samples)."""
    config = write_config(tmp_path, forward=[group("out", [receiver.url])])
    server = server_factory("-P", str(tmp_path / "data"), "--config", config)
    server.send(b"[INFO] 2026-01-19 10:00:00.000 api/v1 pod/a: hello\n")
    server.wait_total(1)
    server.query("QUERY keyword=hello")
    served = served_names(metrics_text(server.ports["http"]))
    wanted = set().union(*(promql_metrics(e) for e in dashboard_exprs()))
    assert len(wanted) > 20
    assert sorted(wanted - served) == []
    assert sorted(_alert_names(writer=False) - served) == []


def test_the_alert_rules_are_valid_and_read_what_is_served() -> None:
    binary = tool("promtool", PROMETHEUS_PREFIX / "usr/bin/promtool")
    checked = subprocess.run(
        [binary, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    writer = generate_latest(WriterMetrics().registry).decode()
    assert sorted(_alert_names(writer=True) - served_names(writer)) == []


def test_the_scrape_config_is_valid() -> None:
    binary = tool("promtool", PROMETHEUS_PREFIX / "usr/bin/promtool")
    checked = subprocess.run(
        [binary, "check", "config", str(DEPLOY / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
