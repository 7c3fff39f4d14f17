"""Inputs whose grouping the anchors and this project's own rules do not agree on.

Data only, read through tests/multiline_samples.py (`DISPUTED`). Nothing here is
an expected answer: each entry gives the input and the groupings that a
reasonable tool makes of it, each as the list of event texts it would produce,
so a decision can be recorded later against one of them. Entry: (name, why it
is disputed, the input's text, ((who groups it so, events), ...)). The events
of every grouping joined with "\\n" give the input's text again.
"""

from __future__ import annotations

_LOGGED_TRACEBACK = (
    "ERROR:harbor.sync:sync of berth 4 failed\n"
    "Traceback (most recent call last):\n"
    '  File "/srv/harbor/harbor/sync.py", line 31, in sync_berth\n'
    "    remote.push(berth)\n"
    '  File "/srv/harbor/harbor/remote.py", line 88, in push\n'
    "    raise RemoteRejected(resp.status)\n"
    "harbor.remote.RemoteRejected: 409"
)
_SPRING_LINE = (
    "2026-01-19T08:14:02.117Z ERROR 1 --- [berths] [nio-8080-exec-3] "
    "c.t.berths.BerthController : berth assignment failed"
)
_SPRING_TRACE = (
    "java.lang.IllegalStateException: berth 4 is already assigned\n"
    "\tat com.tidewater.berths.BerthPlanner.assign(BerthPlanner.java:88)\n"
    "\tat com.tidewater.berths.BerthController.assign(BerthController.java:41)"
)
_NODE_CRASH = (
    "/srv/harbor-api/src/worker.js:27",
    "    throw new RangeError(`batch size ${size} out of range`);",
    "    ^",
    "",
    "RangeError: batch size 0 out of range\n"
    "    at runBatch (/srv/harbor-api/src/worker.js:27:11)\n"
    "    at Object.<anonymous> (/srv/harbor-api/src/worker.js:40:1)\n"
    "    at Module._compile (node:internal/modules/cjs/loader:1376:14)",
    "",
    "Node.js v20.11.1",
)
_NODE_PROPS = (
    "Error: connect ECONNREFUSED 10.20.0.7:5432\n"
    "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16) {",
    "  errno: -111,",
    "  code: 'ECONNREFUSED',",
    "  syscall: 'connect',",
    "  address: '10.20.0.7',",
    "  port: 5432",
    "}",
)
_GO_FATAL = (
    "fatal error: concurrent map writes",
    "",
    "goroutine 23 [running]:",
    "main.(*Cache).Put(...)",
    "\t/app/cache.go:40",
    "main.worker(0xc000014090)",
    "\t/app/worker.go:17 +0x8d",
    "created by main.main in goroutine 1",
    "\t/app/main.go:12 +0x45",
    "exit status 2",
)
_PSQL = (
    "org.postgresql.util.PSQLException: ERROR: duplicate key value violates unique "
    'constraint "berth_booking_pkey"',
    "  Detail: Key (berth_id, day)=(4, 2026-01-21) already exists.",
    "\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse"
    "(QueryExecutorImpl.java:2725)",
    "\tat com.tidewater.berths.BookingRepository.insert(BookingRepository.java:52)",
)
_INFO = "[INFO] 2026-01-19 08:14:02.117 berth-api/v3.2.0: uploading manifest M-2291"
_TAB_LINE = "\tretrying in 5s (attempt 2/3)"
_JSON = ("{", '  "berth": 4,', '  "state": "open"', "}")
_TRACE = (
    "java.lang.IllegalStateException: berth 4 is already assigned\n"
    "\tat com.tidewater.berths.BerthPlanner.assign(BerthPlanner.java:88)"
)
_NEXT = "[INFO] 2026-01-19 08:14:03.001 berth-api/v3.2.0: next request"
_RUBY_HIGHLIGHT = (
    "/srv/ledger/lib/ledger/fees.rb:14:in 'Ledger::Fees.for': undefined method 'tonnage' "
    "for nil (NoMethodError)",
    "",
    "    vessel.tonnage * RATE",
    "          ^^^^^^^^",
    "\tfrom /srv/ledger/lib/ledger/invoice.rb:22:in 'Ledger::Invoice#total'\n"
    "\tfrom bin/invoice:9:in '<main>'",
)
_EXCEPTION_GROUP = (
    "  + Exception Group Traceback (most recent call last):",
    '  |   File "/srv/harbor/harbor/bulk.py", line 40, in assign_all',
    '  |     raise ExceptionGroup("2 berths failed", errors)',
    "  | ExceptionGroup: 2 berths failed (2 sub-exceptions)",
    "  +-+---------------- 1 ----------------",
    "    | harbor.errors.BerthTaken: berth 4 is taken",
    "    +---------------- 2 ----------------",
    "    | harbor.errors.BerthTaken: berth 9 is taken",
    "    +------------------------------------",
)
_PHP_NEXT = (
    "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in "
    "/var/www/harbor/src/Db/Connection.php:18\n"
    "Stack trace:\n"
    "#0 /var/www/harbor/src/Db/Connection.php(18): PDO->__construct('mysql:host=db;d...', "
    "'harbor', Object(SensitiveParameterValue))\n"
    "#1 {main}",
    "",
    "Next Harbor\\Db\\DatabaseDown: berth database unavailable in "
    "/var/www/harbor/src/Db/Connection.php:22",
    "Stack trace:",
    "#0 /var/www/harbor/public/index.php(12): Harbor\\Db\\Connection::open()",
    "#1 {main}",
    "  thrown in /var/www/harbor/src/Db/Connection.php on line 22",
)
_DOTNET_CONSOLE = (
    "fail: Tidewater.Berths.Worker[0]",
    "      Berth sync failed for berth 4",
    "      System.InvalidOperationException: Berth 4 has no schedule\n"
    "         at Tidewater.Berths.Sync.Run(Int32 berth) in "
    "/src/Tidewater.Berths/Sync.cs:line 31\n"
    "         at Tidewater.Berths.Worker.ExecuteAsync(CancellationToken stoppingToken) in "
    "/src/Tidewater.Berths/Worker.cs:line 22",
)

_WHOLE = "one event: the whole input"
_ANCHORS = "detect-exceptions (all languages)"

Entry = tuple[str, str, str, tuple[tuple[str, tuple[str, ...]], ...]]


def _whole_or_parts(
    name: str, why: str, parts: tuple[str, ...], parts_by: str, whole_by: str = _WHOLE
) -> Entry:
    """An input that is either one event or, to `parts_by`, one event per part."""
    text = "\n".join(parts)
    return (name, why, text, ((whole_by, (text,)), (parts_by, parts)))


_LOG_CALL = "one event: the log call"
_SPEC_WHITESPACE = "SPEC §3's leading-whitespace rule"

DISPUTED: tuple[Entry, ...] = (
    _whole_or_parts(
        "python-logged-traceback",
        "logging.exception() writes its message line, then the traceback: one call, but "
        "the anchors start the trace at `Traceback`",
        tuple(_LOGGED_TRACEBACK.split("\n", 1)),
        _ANCHORS + "; Fluent Bit's python parser",
        _LOG_CALL + " (SPEC §3 joins a trace to its header)",
    ),
    _whole_or_parts(
        "java-after-logger-line",
        "a logger line followed by the trace it logged (Spring Boot's console format)",
        (_SPRING_LINE, _SPRING_TRACE),
        _ANCHORS + "; Fluent Bit's java parser",
        _LOG_CALL,
    ),
    _whole_or_parts(
        "node-uncaught-caret",
        "Node's crash report: the throwing line and a caret, the trace, its version",
        _NODE_CRASH,
        _ANCHORS,
    ),
    _whole_or_parts(
        "node-error-properties",
        "util.inspect prints an error's own properties after its stack, in braces",
        _NODE_PROPS,
        _ANCHORS,
    ),
    _whole_or_parts(
        "go-fatal-error",
        "a runtime fatal error dumps goroutines like a panic, but its first line is "
        "`fatal error:`, which neither the issue nor the anchors list",
        _GO_FATAL,
        _ANCHORS + "; Fluent Bit's go parser",
    ),
    _whole_or_parts(
        "java-psql-detail-line",
        "PostgreSQL's JDBC driver puts an indented `Detail:` line after the exception line",
        _PSQL,
        _ANCHORS + "; Fluent Bit's java parser",
    ),
    _whole_or_parts(
        "tab-indented-app-line",
        "SPEC §3 joins a line with leading whitespace to the event before it; the issue "
        "says a line that is not part of a trace must not be swallowed",
        (_INFO, _TAB_LINE),
        _ANCHORS + "; Fluent Bit's parsers",
        "one event: " + _SPEC_WHITESPACE,
    ),
    (
        "json-pretty-printed",
        "a JSON document over several lines, indented",
        "\n".join(_JSON),
        (
            ("one event: one JSON document", ("\n".join(_JSON),)),
            (_SPEC_WHITESPACE, ("\n".join(_JSON[:3]), _JSON[3])),
            (_ANCHORS + "; Fluent Bit's parsers", _JSON),
        ),
    ),
    (
        "trace-then-blank-line",
        "where an empty line after a finished trace goes; the trace and the next line "
        "are not in dispute (dropping the empty line is a third choice)",
        f"{_TRACE}\n\n{_NEXT}",
        (
            ("the empty line ends the trace", (_TRACE + "\n", _NEXT)),
            (_ANCHORS + "; an empty line is an event of its own", (_TRACE, "", _NEXT)),
        ),
    ),
    _whole_or_parts(
        "ruby-error-highlight",
        "Ruby 3.1+ (error_highlight) adds a blank line, the code and carets after the "
        "first line of a NoMethodError",
        _RUBY_HIGHLIGHT,
        "Fluent Bit's ruby parser",
    ),
    _whole_or_parts(
        "python-exception-group",
        "Python 3.11's exception groups: the first line is indented, so after a single "
        "line the leading-whitespace rule would glue it there",
        _EXCEPTION_GROUP,
        _ANCHORS,
    ),
    _whole_or_parts(
        "php-next-chained",
        "PHP prints an exception's previous one, then `Next` and the outer one",
        _PHP_NEXT,
        "detect-exceptions (php)",
    ),
    _whole_or_parts(
        "dotnet-console-logger",
        "Microsoft.Extensions.Logging's console format: a `fail:` line, then the message "
        "and the exception indented under it",
        _DOTNET_CONSOLE,
        _ANCHORS + "; Fluent Bit's java parser",
        f"{_LOG_CALL} ({_SPEC_WHITESPACE})",
    ),
)
