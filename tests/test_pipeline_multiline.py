"""Stack traces of every common language become one event each (SPEC §3, issue 16).

Each trace is checked alone, after an unrelated line, back to back with
another trace, and fed a line per read (the grouping state carries over)."""

from __future__ import annotations

import pytest

from logcaster.config import load_config
from logcaster.exceptions import ConfigError
from logcaster.options import MultilineConfig, MultilineRule
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import LineFramer

TRACES = {
    "java": [
        'Exception in thread "worker-3" java.lang.IllegalStateException: ledger closed',
        "\tat org.acme.ledger.Book.post(Book.java:88)",
        "\tat org.acme.ledger.Poster.run(Poster.java:41)",
        "",
        "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
        "\tSuppressed: java.io.IOException: flush failed",
        "\t\tat org.acme.io.Sink.close(Sink.java:12)",
        "Caused by: java.sql.SQLException: connection reset",
        "\tat org.acme.db.Pool.take(Pool.java:201)",
        "\t... 3 more",
    ],
    "java4": [
        "org.acme.web.RenderException: template missing",
        "    at org.acme.web.View.render(View.java:30)",
        "    at org.acme.web.Router.dispatch(Router.java:77)",
    ],
    "python": [
        "Traceback (most recent call last):",
        '  File "/srv/shop/cart.py", line 52, in checkout',
        "    total = price_of(items)",
        '  File "/srv/shop/cart.py", line 17, in price_of',
        "    return sum(i.price for i in items)",
        "KeyError: 'sku-19'",
    ],
    "python_chained": [
        "Traceback (most recent call last):",
        '  File "/srv/shop/pay.py", line 8, in charge',
        "    gateway.send(amount)",
        "ConnectionError: gateway down",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/srv/shop/pay.py", line 11, in charge',
        "    raise shop.errors.PaymentFailed(order)",
        "shop.errors.PaymentFailed: order 77",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "/srv/shop/main.py", line 3, in <module>',
        "Exception: ('spam', 'eggs')",
    ],
    "python_bare": [
        "Traceback (most recent call last):",
        '  File "<stdin>", line 1, in <module>',
        "ValueError",
    ],
    "go": [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 7 [running]:",
        "main.(*Queue).pop(0xc000012345, 0x5)",
        "\t/src/queue/queue.go:44 +0x1d",
        "main.worker(0xc000010000)",
        "\t/src/queue/main.go:21 +0x65",
        "created by main.start in goroutine 1",
        "\t/src/queue/main.go:12 +0x3a",
        "",
        "goroutine 1 [chan receive]:",
        "main.main()",
        "\t/src/queue/main.go:15 +0x88",
        "exit status 2",
    ],
    "go_signal": [
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x47a1b2]",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/src/app/main.go:9 +0x12",
    ],
    "node": [
        "TypeError: Cannot read properties of undefined (reading 'id')",
        "    at lookup (/srv/api/users.js:14:22)",
        "    at async Promise.all (index 0)",
        "    at new Loader (/srv/api/loader.js:5:11)",
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    ],
    "node_source": [
        "/srv/api/boot.js:3",
        "    throw new Error('no config');",
        "    ^",
        "",
        "Error: no config",
        "    at Object.<anonymous> (/srv/api/boot.js:3:11)",
    ],
    "ruby": [
        "inventory.rb:23:in 'reserve': out of stock (Inventory::Empty)",
        "\tfrom inventory.rb:40:in 'block in restock'",
        "\tfrom inventory.rb:39:in 'each'",
        "\tfrom inventory.rb:50:in '<main>'",
    ],
    "rails": [
        "NoMethodError (undefined method `title' for nil):",
        "  app/controllers/posts_controller.rb:12:in `show'",
        "  actionpack (7.1.2) lib/action_controller/metal/basic.rb:6:in `send_action'",
    ],
    "php": [
        "PHP Fatal error:  Uncaught RuntimeException: quota exceeded in /var/www/quota.php:19",
        "Stack trace:",
        "#0 /var/www/index.php(8): Quota->check()",
        "#1 {main}",
        "  thrown in /var/www/quota.php on line 19",
    ],
    "csharp": [
        "System.InvalidOperationException: Sequence contains no elements",
        "   at System.Linq.ThrowHelper.ThrowNoElementsException()",
        "   at Shop.Orders.Latest() in /src/Shop/Orders.cs:line 42",
        " ---> System.ArgumentException: empty basket",
        "   at Shop.Basket.Check() in /src/Shop/Basket.cs:line 9",
        "   --- End of inner exception stack trace ---",
        "--- End of stack trace from previous location ---",
        "   at Shop.Program.Main() in /src/Shop/Program.cs:line 5",
    ],
    "dart": [
        "Unhandled exception:",
        "Bad state: No element",
        "#0      List.first (dart:core-patch/growable_array.dart:343:5)",
        "#1      main (file:///home/dev/tally/bin/tally.dart:7:17)",
        "<asynchronous suspension>",
        "#2      _delayEntrypoint.<anonymous closure> (dart:isolate-patch/isolate.dart:297:19)",
    ],
}
SINGLE = "2026-03-01 12:00:00 INFO checkout finished in 31 ms"


def framer(config: MultilineConfig | None = None) -> LineFramer:
    return LineFramer(64 * 1024, config or MultilineConfig())


def frame(text: str, per_line: bool = False, config: MultilineConfig | None = None) -> list[str]:
    f = framer(config)
    data = (text + "\n").encode()
    chunks = [line + b"\n" for line in data.split(b"\n")[:-1]] if per_line else [data]
    out = [t for c in chunks for t in f.feed(c)] + f.close()
    return [t.decode() for t in out]


@pytest.mark.parametrize("per_line", [False, True], ids=["one read", "a line per read"])
@pytest.mark.parametrize("name", sorted(TRACES))
def test_a_trace_is_one_event(name: str, per_line: bool) -> None:
    trace = "\n".join(TRACES[name])
    assert frame(trace, per_line) == [trace]
    assert frame(f"{SINGLE}\n{trace}\n{SINGLE}", per_line) == [SINGLE, trace, SINGLE]


@pytest.mark.parametrize("per_line", [False, True], ids=["one read", "a line per read"])
@pytest.mark.parametrize("second", sorted(TRACES))
@pytest.mark.parametrize("first", sorted(TRACES))
def test_two_traces_back_to_back_are_two_events(first: str, second: str, per_line: bool) -> None:
    a, b = "\n".join(TRACES[first]), "\n".join(TRACES[second])
    assert frame(f"{a}\n{b}", per_line) == [a, b]


@pytest.mark.parametrize(
    "record",
    [
        "ERROR payment failed",  # Python logging.exception with "%(levelname)s %(message)s"
        "2026-03-01 12:00:00,120 ERROR [main] org.acme.Svc - request failed",  # logback
        "E, [2026-03-01T12:00:00.12 #7] ERROR -- : sync failed",  # Ruby Logger
        "time=2026-03-01T12:00:00Z level=error msg=crash",
    ],
)
@pytest.mark.parametrize("name", ["java4", "python", "node"])
def test_a_trace_after_an_error_record_is_that_record_s(record: str, name: str) -> None:
    # The exception a logger wrote under its record belongs to the record; after
    # any other line (SINGLE, at INFO) a trace is an event of its own.
    trace = "\n".join(TRACES[name])
    for per_line in (False, True):
        assert frame(f"{record}\n{trace}\n{SINGLE}", per_line) == [f"{record}\n{trace}", SINGLE]


@pytest.mark.parametrize("per_line", [False, True], ids=["one read", "a line per read"])
def test_a_headline_under_an_error_record_joins_it_only_if_a_trace_follows(
    per_line: bool,
) -> None:
    record = "ERROR upload failed"
    assert frame(f"{record}\nError: disk quota reached\n{SINGLE}", per_line) == [
        record,
        "Error: disk quota reached",
        SINGLE,
    ]
    trace = "Error: disk quota reached\n    at write (/srv/up.js:3:9)"
    assert frame(f"{record}\n{trace}\n{SINGLE}", per_line) == [f"{record}\n{trace}", SINGLE]


def test_blank_lines_after_a_trace_stay_events_of_their_own() -> None:
    trace = "\n".join(TRACES["java4"])
    assert frame(f"{trace}\n\n\n{SINGLE}") == [trace, "", "", SINGLE]
    # Across reads: the blank lines are held with the trace, then given back.
    assert frame(f"{trace}\n\n\n{SINGLE}", per_line=True) == [trace, "", "", SINGLE]


def test_blank_lines_held_at_the_idle_flush_are_given_back() -> None:
    f = framer()
    trace = "\n".join(TRACES["java4"])
    assert f.feed(f"{trace}\n\n".encode()) == []
    assert f.flush_held() == [trace.encode(), b""]
    assert f.feed(b"\tat org.acme.Late.run(Late.java:1)\nnext\n") == [
        b"\tat org.acme.Late.run(Late.java:1)"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Error: disk quota reached",
        "ERROR: connection refused",
        "panic mode off",
        "#3 in queue",
        "goroutine count high",
        "at 10:00 the job ran",
        "exit status 2",
        "Stack trace:",
        "--- End of report ---",
    ],
)
def test_lines_that_look_like_trace_lines_stay_alone(line: str) -> None:
    assert frame(f"{SINGLE}\n{line}\n{SINGLE}") == [SINGLE, line, SINGLE]


def test_a_python_final_line_only_joins_inside_a_traceback() -> None:
    assert frame(f"{SINGLE}\nKeyError: 'x'") == [SINGLE, "KeyError: 'x'"]


def test_traces_stay_bounded_by_max_lines() -> None:
    config = MultilineConfig(max_lines=3)
    trace = TRACES["java4"] + ["    at org.acme.X.y(X.java:1)"]
    assert frame("\n".join(trace), config=config) == ["\n".join(trace[:3]), trace[3]]


def _rule(**kw: object) -> MultilineConfig:
    rule = {"name": "batch", "start": r"BEGIN \d+", "continue": r"\| "} | kw
    return load_config(None, environ={}, overrides={"multiline.rules": [rule]}).multiline


def test_a_user_rule_groups_its_own_blocks() -> None:
    config = _rule()
    block = "BEGIN 7\n| row one\n| row two"
    assert frame(f"{SINGLE}\n{block}\nBEGIN 8\n| x\n{SINGLE}", config=config) == [
        SINGLE,
        block,
        "BEGIN 8\n| x",
        SINGLE,
    ]
    assert frame(f"{block}\n{SINGLE}", per_line=True, config=config) == [block, SINGLE]


def test_a_user_rule_can_be_scoped_to_other_listeners() -> None:
    scoped = MultilineConfig(rules=[MultilineRule(**_rule_args(), listeners=["ingest"])])
    f = LineFramer(1024, scoped, Grouper.for_listener(scoped, "file"))
    assert f.feed(b"BEGIN 1\n| a\nnext\n") + f.close() == [b"BEGIN 1", b"| a", b"next"]


def _rule_args() -> dict[str, str]:
    return {"name": "batch", "start": r"BEGIN \d+", "continue_": r"\| "}


@pytest.mark.parametrize(
    ("rule", "key", "reason"),
    [
        ({"start": "("}, "multiline.rules.0.start", "not a valid RE2 pattern"),
        ({"continue": "(?!x)"}, "multiline.rules.0.continue", "not a valid RE2 pattern"),
        ({"start": ""}, "multiline.rules.0.start", "empty pattern"),
        ({"start": "a" * 5000}, "multiline.rules.0.start", "longer than 4096 bytes"),
    ],
)
def test_bad_user_rules_are_config_errors(rule: dict[str, str], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as failed:
        _rule(**rule)
    assert failed.value.key == key
    assert reason in failed.value.reason


# Found by a fault probe of the first version (issue 16 review).
@pytest.mark.parametrize(
    "text",
    [
        # .NET Framework's prefix and its long End-of marker
        "Unhandled Exception: System.NullReferenceException: Object reference not set.\n"
        "   at A.B()\n"
        "--- End of stack trace from previous location where exception was thrown ---\n"
        "   at C.D()",
        # Go's runtime stack and elided frames
        "fatal error: unexpected signal during runtime execution\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1]\n\n"
        "runtime stack:\nruntime.throw({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\n\n"
        "goroutine 1 [syscall]:\nmain.main()\n\t/a.go:1 +0x1\n"
        "...additional frames elided...",
        # Node: a top-level throw (unindented code line) and an internal error
        "/app/a.js:1\nthrow new Error('x');\n^\n\nError: x\n"
        "    at Object.<anonymous> (/app/a.js:1:7)\n\nNode.js v20.11.0",
        "node:internal/errors:496\n    ErrorCaptureStackTrace(err);\n    ^\n\n"
        "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'\n"
        "    at f (node:internal/x:1:1) {\n  code: 'ERR_MODULE_NOT_FOUND'\n}\n\nNode.js v20.1.0",
        "C:\\app\\server.js:42\n    throw err;\n    ^\n\nError: boom\n"
        "    at f (C:\\app\\server.js:42:5)",
    ],
)
def test_probed_traces_are_one_event(text: str) -> None:
    for per_line in (False, True):
        assert frame(f"{SINGLE}\n{text}\n{SINGLE}", per_line) == [SINGLE, text, SINGLE]


def test_a_blank_line_given_back_stays_given_back_at_any_cut() -> None:
    text = "java.lang.IllegalStateException: x\n\tat a.b(C.java:1)\n\n2024 INFO next\n" * 3
    whole = frame(text.rstrip("\n"))
    for cut in range(len(text)):
        f = framer()
        data = text.encode()
        out = f.feed(data[:cut]) + f.feed(data[cut:]) + f.close()
        assert [t.decode() for t in out] == whole, cut


def test_one_line_php_errors_and_dart_messages_swallow_nothing_unbounded() -> None:
    assert frame("PHP Warning:  oops on line 3\nNext retry in 5s\n#1 job queued") == [
        "PHP Warning:  oops on line 3",
        "Next retry in 5s",
        "#1 job queued",
    ]
    # A Dart message may quote one source line; nothing more joins without a frame.
    lines = [f"2026-03-01 12:00:0{i} INFO tick" for i in range(4)]
    out = frame("Unhandled exception:\nBad state: x\n" + "\n".join(lines))
    assert out[1:] == lines[1:]


def test_user_rules_keep_indented_continuation_lines() -> None:
    assert frame("INFO x\n  a\n  b\n  c", config=_rule()) == ["INFO x\n  a\n  b\n  c"]
    block = "BEGIN 1\n  indented\n| x"
    assert frame(f"{block}\nnext", config=_rule()) == [block, "next"]


def test_multiline_max_bytes_below_the_line_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as failed:
        load_config(None, environ={}, overrides={"multiline.max_bytes": 2048})
    assert failed.value.key == "multiline.max_bytes"
