"""Stack traces of every common language, for `bench/ingest --corpus traces`.

The default corpus' multi-line events are the seed simulators' error blocks,
which LogCaster groups by their header line. Real services also write raw stack
traces with no header at all: Java (`\\tat` and `    at` frames, `Caused by:`,
`Suppressed:`, `... N more`, a blank line after a message that ended in a
newline), Python (chained tracebacks, 3.11+ caret lines, bare and dotted final
lines), Go (panics with their goroutine dumps, `[signal ...]`, `created by`,
`exit status 2`), Node, Ruby (uncaught and Rails forms), PHP, C# (inner
exceptions, async boundaries) and Dart. This module makes such traces for
bench/_corpus.py's generation loop, in place of the default corpus' blocks:
about 20% of the corpus' lines are trace lines, each trace one expected event.

It also turns one in three of the "plain" single lines into look-alikes: lines
that only resemble part of a trace (`Error: ...` as an application message,
`at 06:00 ...`, `panic mode ...`, a PHP warning without a stack) and are each
one event wherever they stand, after a trace too. Only forms on which every
sensible grouping agrees are used here (see tests/multiline_samples.py for the
disputed ones): the corpus' expected event count is the lines outside traces
plus one per trace.

Everything is drawn from the generator's seeded `random.Random` after the
single-line pools, so the same seed and size give the same bytes; the traces
are pre-rendered into a pool of 1,024 and picked at random. Changing anything
here changes the corpus bytes: bump bench/_corpus.py's CORPUS_VERSION so that
cached corpora in bench/out are made again.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from _corpus_blocks import Blocks, Pods
from _corpus_lines import SINGLE_SHARES

TRACE_LINE_SHARE = 0.20  # share of all lines inside traces
_POOL_BITS = 10  # 1,024 pre-rendered traces
_LOOK_ALIKE_EVERY = 3  # one in three "plain" pool lines becomes a look-alike

# One event each, wherever they stand: none is a frame, a cause or a trace's
# first line to any of the anchors (Fluent Bit's parsers, detect-exceptions).
_LOOK_ALIKES = (
    "Error: upload to cold storage failed, will retry in 30s",
    "Exception: none raised by the nightly reconcile",
    "at 06:00 the berth schedule was published",
    "panic mode disabled for region eu-2",
    "goroutine budget: 5000, in use: 4121",
    "Caused by operator request: maintenance window opened",
    "audit.flush: 310 records written",
    "TypeError count since deploy: 0",
    'PHP Warning:  Undefined array key "tonnage" in /var/www/harbor/src/Manifest.php on line 52',
    "Completed 500 Internal Server Error in 31ms (ActiveRecord: 4.0ms | Allocations: 2210)",
    "Traceback capture turned off for worker 2",
    "Unhandled exception rate: 0.2/min",
    "main.go:88: serving on :9090",
    '{"level":"error","msg":"render failed",'
    '"stack":"TypeError: row is undefined\\n    at render (/srv/web/app.js:10:5)"}',
)

# ------------------------------------------------------------------------------- Java

_J_PKGS = (
    "com.tidewater.berths",
    "com.tidewater.ledger",
    "com.tidewater.tariffs",
    "io.quarryworks.crusher",
    "org.orchardline.grading",
)
_J_CLASSES = (
    "BerthPlanner",
    "LedgerWriter",
    "TariffTable",
    "CrusherStats",
    "GradeService",
    "ManifestReader",
    "DockScheduler",
)
_J_METHODS = ("assign", "post", "lookup", "refresh", "grade", "read", "schedule", "apply")
_J_LIB_FRAMES = (
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
    "java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:635)",
    "java.base/java.lang.Thread.run(Thread.java:1570)",
    "java.base/java.util.ArrayList.forEach(ArrayList.java:1590)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:880)",
    "org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:170)",
)
_J_EXCEPTIONS = (
    "java.lang.IllegalStateException: berth {n} is already assigned",
    "java.io.UncheckedIOException: manifest {n} could not be read",
    "java.util.NoSuchElementException: no tariff for code T{n}",
    "com.tidewater.ledger.LedgerException: entry {n} would unbalance the day",
    'java.lang.NullPointerException: Cannot invoke "Vessel.tonnage()" because "v" is null',
    "java.sql.SQLTimeoutException: query exceeded {n} ms",
)
_J_CAUSES = (
    "java.net.SocketTimeoutException: Read timed out",
    "java.net.ConnectException: Connection refused",
    "java.io.EOFException: unexpected end of stream after {n} bytes",
    'java.lang.NumberFormatException: For input string: "{n}x"',
)


def _java_frame(rnd: random.Random) -> str:
    if rnd.random() < 0.3:
        return rnd.choice(_J_LIB_FRAMES)
    cls = rnd.choice(_J_CLASSES)
    return (
        f"{rnd.choice(_J_PKGS)}.{cls}.{rnd.choice(_J_METHODS)}({cls}.java:{rnd.randint(20, 480)})"
    )


def _java(rnd: random.Random) -> list[str]:
    at = "\tat " if rnd.random() < 0.8 else "    at "
    indent = at[:-3]
    first = rnd.choice(_J_EXCEPTIONS).format(n=rnd.randint(2, 9999))
    if rnd.random() < 0.2:
        first = f'Exception in thread "worker-{rnd.randint(1, 16)}" {first}'
    lines = [first]
    if rnd.random() < 0.1:
        lines.append("")  # the message ended in a newline
    lines += [at + _java_frame(rnd) for _ in range(rnd.randint(3, 12))]
    if rnd.random() < 0.15:
        cause = rnd.choice(_J_CAUSES).format(n=rnd.randint(2, 9999))
        lines.append(f"{indent}Suppressed: {cause}")
        lines += [f"{indent}{at}{_java_frame(rnd)}" for _ in range(rnd.randint(1, 3))]
        lines.append(f"{indent}{indent}... {rnd.randint(2, 9)} more")
    for _ in range(rnd.choice((0, 1, 1, 2))):
        cause = rnd.choice(_J_CAUSES).format(n=rnd.randint(2, 9999))
        lines.append(f"Caused by: {cause}")
        lines += [at + _java_frame(rnd) for _ in range(rnd.randint(1, 5))]
        tail = "more" if rnd.random() < 0.7 else "common frames omitted"
        lines.append(f"{indent}... {rnd.randint(3, 40)} {tail}")
    return lines


# ----------------------------------------------------------------------------- Python

_PY_FILES = (
    "/srv/harbor/harbor/berths.py",
    "/srv/harbor/harbor/ledger.py",
    "/srv/orchard/orchard/grading.py",
    "/srv/orchard/orchard/jobs/reprice.py",
    "/opt/quarry/quarry/crusher.py",
)
_PY_CODE = (
    ("assign", "berth = self.free_berths[vessel.size]"),
    ("post_entry", "self.book.append(entry.validate())"),
    ("grade_lot", "return GRADES[lot.score // 10]"),
    ("reprice", "price = table.lookup(lot.variety, lot.grade)"),
    ("throughput", "return self.tonnes / self.hours"),
    ("run", "return job.execute()"),
)
_PY_FINALS = (
    "KeyError: 'berth_{n}'",
    "harbor.errors.BerthTaken: berth {n} is taken",
    "Exception: ('quota', '{n}')",
    "ValueError",
    "ZeroDivisionError: division by zero",
    "orchard.pricing.PriceMissing: no price for lot {n}",
    "TimeoutError: [Errno 110] Connection timed out",
)
_PY_SEPARATORS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def _python(rnd: random.Random) -> list[str]:
    lines: list[str] = []
    for i in range(rnd.choice((1, 1, 1, 2, 2, 3))):
        if i:
            lines += ["", rnd.choice(_PY_SEPARATORS), ""]
        lines.append("Traceback (most recent call last):")
        for j in range(rnd.randint(1, 6)):
            func, code = ("<module>", "main()") if j == 0 and i == 0 else rnd.choice(_PY_CODE)
            path = rnd.choice(_PY_FILES)
            lines.append(f'  File "{path}", line {rnd.randint(3, 400)}, in {func}')
            lines.append("    " + code)
            if rnd.random() < 0.25:  # Python 3.11+ marks the failing expression
                lines.append("    " + "^" * len(code))
        lines.append(rnd.choice(_PY_FINALS).format(n=rnd.randint(2, 999)))
    return lines


# --------------------------------------------------------------------------------- Go

_GO_PANICS = (
    "runtime error: invalid memory address or nil pointer dereference",
    "assignment to entry in nil map",
    "runtime error: index out of range [{n}] with length {n}",
    "send on closed channel",
    "load tariffs: open /etc/quarry/tariffs.yaml: no such file or directory",
    "runtime error: integer divide by zero",
)
# A frame's call -> its file.
_GO_CALLS = {
    "main.main()": "/app/main.go",
    "github.com/quarryworks/crusher/stats.(*Meter).Rate(0x0)": "/app/stats/meter.go",
    "github.com/quarryworks/crusher/shift.Close({0xc00001c0f0, 0x3})": "/app/shift/close.go",
    "github.com/quarryworks/crusher/belt.(*Belt).run(0xc0000b4000)": "/app/belt/belt.go",
    "main.loadConfig({0x7ffd8e2a1f31, 0x19})": "/app/config.go",
}
_GO_FRAMES = tuple(_GO_CALLS.items())


def _go_frames(rnd: random.Random, n: int) -> list[str]:
    lines: list[str] = []
    for _ in range(n):
        call, path = rnd.choice(_GO_FRAMES)
        line = rnd.randint(12, 300)
        if rnd.random() < 0.2:  # inlined: no arguments, no offset
            lines += [f"{call.rpartition('(')[0]}(...)", f"\t{path}:{line}"]
        else:
            lines += [call, f"\t{path}:{line} +0x{rnd.randint(0x10, 0x3FF):x}"]
    return lines


def _go(rnd: random.Random) -> list[str]:
    msg = rnd.choice(_GO_PANICS).format(n=rnd.randint(1, 64))
    lines = [f"panic: {msg}"]
    if "nil pointer" in msg:
        lines.append(
            f"[signal SIGSEGV: segmentation violation code=0x1 addr=0x{rnd.randint(0, 0xFF):x} "
            f"pc=0x{rnd.randint(0x400000, 0x4FFFFF):x}]"
        )
    gid = rnd.choice((1, 1, 7, 23, 118))
    lines += ["", f"goroutine {gid} [running]:", *_go_frames(rnd, rnd.randint(1, 6))]
    if gid != 1:
        lines.append("created by github.com/quarryworks/crusher/belt.Start in goroutine 1")
        lines.append(f"\t/app/belt/start.go:{rnd.randint(10, 90)} +0x{rnd.randint(0x10, 0xFF):x}")
    if rnd.random() < 0.2:  # GOTRACEBACK=all: the other goroutines too
        state = rnd.choice(("chan receive", "select", "IO wait, 2 minutes"))
        lines += ["", f"goroutine {gid + 1} [{state}]:", *_go_frames(rnd, rnd.randint(1, 3))]
    if rnd.random() < 0.3:  # `go run` reports the exit code
        lines.append("exit status 2")
    return lines


# ------------------------------------------------------------------------------- Node

_JS_ERRORS = (
    "TypeError: Cannot read properties of undefined (reading 'berth')",
    "ReferenceError: tideTable is not defined",
    "RangeError: Invalid time value",
    "Error: upstream ledger-svc answered 503",
    "SyntaxError: Unexpected end of JSON input",
    "ValidationError: manifest.weight must be a positive number",
)
_JS_FILES = ("src/berths.js", "src/ledger/client.js", "src/routes/manifest.js", "src/voyage.js")
_JS_NAMES = ("assignBerth", "postEntry", "LedgerClient.request", "parseManifest", "Voyage.load")


def _node(rnd: random.Random) -> list[str]:
    lines = [rnd.choice(_JS_ERRORS)]
    for _ in range(rnd.randint(3, 10)):
        file = rnd.choice(_JS_FILES)
        where = f"/srv/harbor-api/{file}:{rnd.randint(5, 300)}:{rnd.randint(3, 40)}"
        kind = rnd.random()
        if kind < 0.45:
            lines.append(f"    at {rnd.choice(_JS_NAMES)} ({where})")
        elif kind < 0.65:
            lines.append(f"    at async {rnd.choice(_JS_NAMES)} ({where})")
        elif kind < 0.75:
            lines.append(f"    at new Voyage ({where})")
        elif kind < 0.85:
            lines.append(f"    at {where}")
        elif kind < 0.93:
            lines.append("    at Array.map (<anonymous>)")
        else:
            lines.append(
                "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
            )
    return lines


# ------------------------------------------------------------------------------- Ruby

_RB_MESSAGES = (
    "balance would go negative (Ledger::Overdraft)",
    "key not found: :berth (KeyError)",
    "wrong number of arguments (given 1, expected 2) (ArgumentError)",
    "tariff table is frozen (RuntimeError)",
)
# A method as Ruby 3.4 names it -> its file (older Rubies name the method only).
_RB_METHODS = {
    "Ledger::Posting#apply!": "lib/ledger/posting.rb",
    "block in Ledger::Book#replay": "lib/ledger/book.rb",
    "Array#each": "lib/ledger/book.rb",
    "Vessel#berth_fee": "app/models/vessel.rb",
    "VesselsController#show": "app/controllers/vessels_controller.rb",
}
_RB_FRAMES = tuple(_RB_METHODS.items())
_RB_OWNER = re.compile(r"[\w:]+[#.]")  # "Ledger::Book#" in "block in Ledger::Book#replay"


def _rb_where(method: str, new_style: bool) -> str:
    """How a backtrace line names `method`: 'Owner#name' (Ruby 3.4) or `name'."""
    return f"'{method}'" if new_style else f"`{_RB_OWNER.sub('', method)}'"


def _ruby(rnd: random.Random) -> list[str]:
    new_style = rnd.random() < 0.5  # Ruby 3.4: 'Class#method'; older: `method'
    if rnd.random() < 0.6:  # uncaught, as the interpreter prints it
        method, path = rnd.choice(_RB_FRAMES)
        where = _rb_where(method, new_style)
        message = rnd.choice(_RB_MESSAGES)
        lines = [f"/srv/ledger/{path}:{rnd.randint(5, 200)}:in {where}: {message}"]
        for _ in range(rnd.randint(1, 8)):
            method, path = rnd.choice(_RB_FRAMES)
            where = _rb_where(method, new_style)
            lines.append(f"\tfrom /srv/ledger/{path}:{rnd.randint(5, 200)}:in {where}")
        main = _rb_where("<main>", new_style)
        lines.append(f"\tfrom bin/replay:{rnd.randint(3, 30)}:in {main}")
        return lines
    # Rails' error log: a leading space, the class and the message, indented frames
    if rnd.random() < 0.5:
        lines = [" NoMethodError (undefined method `tonnage' for nil):"]
    else:  # a routing error adds a line of two spaces
        lines = [' ActionController::RoutingError (No route matches [GET] "/berths/9.csv"):', "  "]
    for _ in range(rnd.randint(2, 9)):
        method, path = rnd.choice(_RB_FRAMES)
        lines.append(f"  {path}:{rnd.randint(5, 200)}:in {_rb_where(method, False)}")
    return lines


# -------------------------------------------------------------------------------- PHP

_PHP_ERRORS = (
    "InvalidArgumentException: berth code must not be empty",
    "PDOException: SQLSTATE[HY000] [2002] Connection refused",
    "RuntimeException: tariff table missing for 2026",
    "Error: Call to undefined method Harbor\\Berth\\Berth::tonnage()",
)
_PHP_FRAMES = (
    ("src/Berth/BerthRepository.php", "Harbor\\Berth\\BerthRepository->find('B{n}')"),
    ("src/Http/BerthController.php", "Harbor\\Http\\BerthController->show(Array)"),
    ("src/Tariff/Calculator.php", "Harbor\\Tariff\\Calculator::rate({n})"),
    (
        "src/Db/Connection.php",
        "PDO->__construct('mysql:host=db;...', 'harbor', Object(SensitiveParameterValue))",
    ),
)


def _php(rnd: random.Random) -> list[str]:
    error = rnd.choice(_PHP_ERRORS)
    file = f"/var/www/harbor/{rnd.choice(_PHP_FRAMES)[0]}"
    line = rnd.randint(10, 300)
    prefix = "[19-Jan-2026 08:12:44 UTC] " if rnd.random() < 0.4 else ""
    lines = [f"{prefix}PHP Fatal error:  Uncaught {error} in {file}:{line}", "Stack trace:"]
    n = rnd.randint(1, 7)
    for i in range(n):
        path, call = rnd.choice(_PHP_FRAMES)
        call = call.format(n=rnd.randint(1, 99))
        lines.append(f"#{i} /var/www/harbor/{path}({rnd.randint(10, 300)}): {call}")
    lines += [f"#{n} {{main}}", f"  thrown in {file} on line {line}"]
    return lines


# --------------------------------------------------------------------------------- C#

_CS_ERRORS = (
    "System.InvalidOperationException: Sequence contains no matching element",
    "System.ArgumentNullException: Value cannot be null. (Parameter 'manifest')",
    "System.TimeoutException: ledger did not answer within 00:00:05",
    "Tidewater.Berths.BerthClosedException: Berth 7 is closed for maintenance",
)
_CS_INNER = (
    "System.Net.Sockets.SocketException (111): Connection refused",
    "System.IO.IOException: Unable to read data from the transport connection",
    "System.FormatException: The input string 'n/a' was not in a correct format.",
)
# The application's own methods -> their source files.
_CS_METHODS = {
    "Tidewater.Berths.BerthPlanner.Pick(Vessel vessel)": "Tidewater.Berths/BerthPlanner.cs",
    "Tidewater.Ledger.LedgerClient.PostAsync(Entry entry)": "Tidewater.Ledger/LedgerClient.cs",
    "Tidewater.Settlement.Worker.ExecuteAsync(CancellationToken stoppingToken)": "Worker.cs",
}
_CS_OWN = tuple(_CS_METHODS.items())
_CS_FRAMEWORK = (
    "   at System.Linq.ThrowHelper.ThrowNoMatchException()",
    "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, "
    "HttpRequestMessage initialRequest, Boolean async, CancellationToken cancellationToken)",
    "   at System.Number.ThrowFormatException[TChar](ReadOnlySpan`1 value)",
)


def _cs_frames(rnd: random.Random, n: int) -> list[str]:
    lines: list[str] = []
    for _ in range(n):
        if rnd.random() < 0.3:
            lines.append(rnd.choice(_CS_FRAMEWORK))
        else:
            method, file = rnd.choice(_CS_OWN)
            lines.append(f"   at {method} in /src/{file}:line {rnd.randint(10, 300)}")
    return lines


def _csharp(rnd: random.Random) -> list[str]:
    prefix = "Unhandled exception. " if rnd.random() < 0.3 else ""
    lines = [prefix + rnd.choice(_CS_ERRORS)]
    if rnd.random() < 0.4:
        lines.append(" ---> " + rnd.choice(_CS_INNER))
        lines += _cs_frames(rnd, rnd.randint(1, 4))
        lines.append("   --- End of inner exception stack trace ---")
    lines += _cs_frames(rnd, rnd.randint(1, 5))
    if rnd.random() < 0.4:  # an await rethrew it
        lines.append("--- End of stack trace from previous location ---")
        lines += _cs_frames(rnd, rnd.randint(1, 4))
    return lines


# ------------------------------------------------------------------------------- Dart

_DART_MESSAGES = (
    "Bad state: ledger is closed",
    "Exception: tariff table missing",
    "RangeError (index): Index out of range: index should be less than 3: 3",
    "Instance of 'BerthConflict'",
    "Invalid argument(s): tonnage must be positive",
)
_DART_FRAMES = (
    "Ledger.append (package:harbor_ledger/src/ledger.dart:{l}:{c})",
    "Reconciler.run (package:harbor_ledger/src/reconciler.dart:{l}:{c})",
    "List.[] (dart:core-patch/growable_array.dart:{l}:{c})",
    "main (file:///home/dev/harbor_ledger/bin/reconcile.dart:{l}:{c})",
)


def _dart(rnd: random.Random) -> list[str]:
    lines = ["Unhandled exception:", rnd.choice(_DART_MESSAGES)]
    for i in range(rnd.randint(2, 12)):
        frame = rnd.choice(_DART_FRAMES).format(l=rnd.randint(5, 300), c=rnd.randint(1, 40))
        lines.append(f"#{i:<7}{frame}")  # Dart pads "#N" to 8 columns
        if rnd.random() < 0.2:
            lines.append("<asynchronous suspension>")
    return lines


_BUILDERS: tuple[Callable[[random.Random], list[str]], ...] = (
    _java,
    _python,
    _go,
    _node,
    _ruby,
    _php,
    _csharp,
    _dart,
)


def trace_blocks(rnd: random.Random, pods: Pods, pools: dict[str, list[str]]) -> Blocks:
    """The traces corpus' multi-line events; also puts the look-alikes into `pools`."""
    plain = pools["plain"]
    for i in range(0, len(plain), _LOOK_ALIKE_EVERY):
        # "%.0s" eats the timestamp the generator passes to every plain line.
        text = _LOOK_ALIKES[(i // _LOOK_ALIKE_EVERY) % len(_LOOK_ALIKES)]
        plain[i] = "%.0s" + text.replace("%", "%%")
    traces = [_BUILDERS[i % len(_BUILDERS)](rnd) for i in range(1 << _POOL_BITS)]
    mean = sum(len(t) for t in traces) / len(traces)
    singles = sum(share for _, share in SINGLE_SHARES)

    def make(rnd: random.Random, budget: int, ts: str, rid: int) -> list[str] | None:
        trace = traces[rnd.getrandbits(_POOL_BITS)]
        return None if len(trace) - 1 > budget else trace

    scale = (1.0 - TRACE_LINE_SHARE) / singles
    return Blocks(
        line_share=TRACE_LINE_SHARE,
        mean_lines=mean,
        singles_scale=scale,
        make=make,
        joins=_joins_record,
    )


# docs/multiline.md: a Python traceback or a JVM/JS/.NET exception right under a
# record at error level is that record's exception, one event with it.
_ERROR_RECORD = re.compile(
    r"(?:^|[\s\[|:(])(?:ERROR|FATAL|CRITICAL|SEVERE|CRIT|ERR|EMERG|ALERT)(?:[\s\]|:)]|$)"
    r"|level=(?:error|fatal|critical)\b"
)
_RECORD_TRACE = re.compile(
    r"Traceback \(most recent call last\):|Exception in thread |Unhandled exception\. "
    r"|(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable|Fault)(?::|$)"
    r"|(?:[A-Z][A-Za-z]*)?(?:Error|Exception)(?::|$)"
)


def _joins_record(before: str, block: list[str]) -> bool:
    return bool(_ERROR_RECORD.search(before)) and bool(_RECORD_TRACE.match(block[0]))
