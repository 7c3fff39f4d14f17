"""Elasticsearch `_bulk` fed by real shippers: rsyslog's omelasticsearch (bulk mode)
and syslog-ng's elasticsearch-http() destination, each a private daemon
(tests/sender_helpers.py) forwarding the lines it is given to the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from logcaster.testing import ServerProcess, wait_for
from tests.sender_helpers import SYSLOG_NG_PREFIX, Rsyslogd, SyslogNg, version_dir

RSYSLOG_ES_CONF = """\
# A test's private rsyslogd (tests/test_http_elastic_senders.py); not a system configuration.
global(workDirectory="{dir}" processInternalMessages="on")
module(load="imtcp")
module(load="omelasticsearch")
template(name="es-doc" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="level" name="syslogseverity-text" format="jsonf")
  property(outname="service" name="programname" format="jsonf")
  property(outname="message" name="$.msg" format="jsonf")
}}
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{portfile}" ruleset="fwd")
ruleset(name="fwd") {{
  set $.msg = ltrim($msg);  # a BSD message's text starts with the space after its tag
  action(type="omelasticsearch" server="127.0.0.1" serverport="{target}"
         searchIndex="syslog" template="es-doc" bulkmode="on" esVersion.major="8"
         errorFile="{dir}/es-errors.json"
         queue.type="linkedlist" queue.dequeueBatchSize="64" action.resumeRetryCount="-1")
}}
*.* action(type="omfile" file="{internal}")
"""


class RsyslogdElastic(Rsyslogd):
    """rsyslogd taking lines on imtcp and sending them with omelasticsearch."""

    def __init__(self, workdir: Path, target: int) -> None:
        super().__init__(workdir, target, "tcp", "RSYSLOG_ForwardFormat")
        found = list(Path("/usr/lib").glob("*/rsyslog/omelasticsearch.so"))
        module("omelasticsearch (rsyslog-elasticsearch)", found[0] if found else None)
        (self.dir / "rsyslog.conf").write_text(
            RSYSLOG_ES_CONF.format(
                dir=self.dir,
                portfile=self.portfile,
                target=target,
                internal=self.dir / "internal.log",
            )
        )


def module(what: str, path: Path | None) -> None:
    """A daemon's plug-in this test needs: a failure under CI, else a skip."""
    if path is None or not path.exists():
        why = f"{what} is missing: run ./scripts/test-deps"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


SCL_ELASTIC = "usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf"


class SyslogNgScl(SyslogNg):
    """syslog-ng with the SCL file defining elasticsearch-http() included by path
    (the unpacked package has no system include directory)."""

    def __init__(self, workdir: Path, destination: str) -> None:
        super().__init__(workdir, destination)
        found = [p for p in (SYSLOG_NG_PREFIX / SCL_ELASTIC, Path("/") / SCL_ELASTIC) if p.exists()]
        module("syslog-ng's SCL (syslog-ng-scl)", found[0] if found else None)
        conf = self.dir / "syslog-ng.conf"
        version, rest = conf.read_text().split("\n", 1)
        conf.write_text(f'{version}\n@include "{found[0]}"\n{rest}')


def events(server: ServerProcess, params: str = "") -> list[dict[str, Any]]:
    answer = orjson.loads(server.query(f"JSON QUERY limit=1000 order=asc {params}"))
    rows: list[dict[str, Any]] = answer["events"]
    return rows


def test_rsyslog_omelasticsearch_bulk_forwards_every_line_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    lines = [
        f"<{11 if i % 5 == 0 else 14}>2026-01-19T08:00:{i % 60:02d}.000Z web-{i % 3} "
        f"ledgerd[42]: entry {i} posted"
        for i in range(200)
    ]
    with RsyslogdElastic(tmp_path / "rsyslog", server.ports["http"]) as daemon:
        daemon.send(*lines)
        rows = wait_for("200 events", lambda: events(server), lambda r: len(r) >= 200)
    assert sorted(int(ev["message"].split()[1]) for ev in rows) == list(range(200))
    ev = next(ev for ev in rows if ev["message"] == "entry 10 posted")
    assert (ev["level"], ev["service"], ev["host"]) == ("ERROR", "ledgerd", "web-1")
    assert ev["ts"] == 1768809610.0
    assert ev["fields"]["index"] == "syslog"
    assert len(events(server, "index=syslog level=ERROR")) == 40


def test_syslog_ng_elasticsearch_http_forwards_every_message_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    lib = SYSLOG_NG_PREFIX / "usr/lib/syslog-ng"
    if lib.exists():  # the unpacked package; an installed syslog-ng finds its own modules
        module(
            "syslog-ng's http module (syslog-ng-mod-http)", lib / version_dir(lib) / "libhttp.so"
        )
    url = f"http://127.0.0.1:{server.ports['http']}/_bulk"
    # elasticsearch-http() is an SCL wrapper (Debian's syslog-ng-scl) around http(),
    # written out here as that wrapper expands: one action line, then the document.
    destination = (
        f'http(url("{url}") method("POST") headers("Content-Type: application/x-ndjson") '
        'batch-lines(50) batch-timeout(200) timeout(10) delimiter("\\n") body-suffix("\\n") '
        'body("{\\"index\\":{\\"_index\\":\\"ng-${PROGRAM}\\"}}\\n'
        "$(format-json @timestamp=${ISODATE} host=${HOST} service=${PROGRAM} "
        'level=${LEVEL} message=${MESSAGE} pid=${PID})"))'
    )
    with SyslogNg(tmp_path / "syslog-ng", destination) as daemon:
        daemon.send(
            *(
                f"<{12 if i % 4 == 0 else 14}>Jan 19 08:00:00 reportd[7]: run {i} done"
                for i in range(120)
            )
        )
        rows = wait_for("120 events", lambda: events(server), lambda r: len(r) >= 120)
    assert sorted(int(ev["message"].split()[1]) for ev in rows) == list(range(120))
    ev = next(ev for ev in rows if ev["message"] == "run 4 done")
    assert (ev["level"], ev["service"]) == ("WARN", "reportd")
    assert ev["host"]  # syslog-ng's own host name: syslog(3) sends none
    assert ev["fields"]["index"] == "ng-reportd"
    assert ev["fields"]["pid"] == "7"
    assert len(events(server, "index=ng-reportd level=WARN")) == 30


def test_syslog_ng_elasticsearch_http_scl_destination_forwards_every_message_once(
    server: ServerProcess, tmp_path: Path
) -> None:
    lib = SYSLOG_NG_PREFIX / "usr/lib/syslog-ng"
    if lib.exists():
        module(
            "syslog-ng's http module (syslog-ng-mod-http)", lib / version_dir(lib) / "libhttp.so"
        )
    url = f"http://127.0.0.1:{server.ports['http']}/_bulk"
    destination = (
        f'elasticsearch-http(url("{url}") index("scl") type("") batch-lines(40) '
        'batch-timeout(200) template("$(format-json @timestamp=${ISODATE} '
        'service=${PROGRAM} level=${LEVEL} message=${MESSAGE} facility=${FACILITY})"))'
    )
    with SyslogNgScl(tmp_path / "syslog-ng", destination) as daemon:
        daemon.send(
            *(f"<{11 if i % 3 == 0 else 13}>Jan 19 08:00:00 billd: bill {i}" for i in range(90))
        )
        rows = wait_for("90 events", lambda: events(server), lambda r: len(r) >= 90)
    assert sorted(int(ev["message"].split()[1]) for ev in rows) == list(range(90))
    assert {ev["service"] for ev in rows} == {"billd"}
    assert len(events(server, "index=scl level=ERROR facility=user")) == 30
