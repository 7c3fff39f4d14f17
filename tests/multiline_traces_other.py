"""Python, Go and Ruby traces, with invented modules, files and messages:
entries of tests/multiline_samples.py's SAMPLES.
"""

from __future__ import annotations

_PY_CHAINED = (
    "Fluent Bit's python parser and detect-exceptions end a traceback at its final "
    "line: the blank lines, the sentence and the next traceback become separate events"
)
_PY_CARETS = (
    "Fluent Bit's python parser and detect-exceptions take one code line after each "
    "`File` line: the trace ends before the caret line"
)
_GO_EXIT = (
    "Fluent Bit's go parser and detect-exceptions end the trace before `exit status 2`, "
    "which becomes its own event"
)
_RUBY_FROM = (
    "detect-exceptions knows only the Rails form (each line here is one event to it); "
    "Fluent Bit's ruby parser groups it"
)
_RAILS = "Fluent Bit's ruby parser does not know the Rails form; detect-exceptions groups it"

TRACES: tuple[tuple[str, str, str, str], ...] = (
    # ---------------------------------------------------------------------- Python
    (
        "python-keyerror",
        "python",
        "",
        "Traceback (most recent call last):\n"
        '  File "/usr/local/lib/python3.12/site-packages/harbor_queue/consumer.py", '
        "line 140, in _dispatch\n"
        "    self.handler(message)\n"
        '  File "/srv/harbor/harbor/worker.py", line 61, in handle\n'
        "    tenant = self.tenant_of(message)\n"
        '  File "/srv/harbor/harbor/worker.py", line 88, in tenant_of\n'
        '    return message.headers["tenant_id"]\n'
        "KeyError: 'tenant_id'",
    ),
    (
        "python-exception-tuple-args",
        "python",
        "",
        "Traceback (most recent call last):\n"
        '  File "/opt/quarry/bin/crusherd", line 9, in <module>\n'
        "    check(shift)\n"
        '  File "/opt/quarry/quarry/limits.py", line 17, in check\n'
        "    raise Exception('quota', 'exceeded')\n"
        "Exception: ('quota', 'exceeded')",
    ),
    (
        "python-bare-valueerror",
        "python",
        "Fluent Bit's python parser and detect-exceptions need a colon on the final line: "
        "`ValueError` alone becomes its own event",
        "Traceback (most recent call last):\n"
        '  File "/opt/quarry/bin/crusherd", line 12, in <module>\n'
        "    main()\n"
        '  File "/opt/quarry/quarry/cli.py", line 40, in main\n'
        "    rate = parse_rate(args.rate)\n"
        '  File "/opt/quarry/quarry/cli.py", line 21, in parse_rate\n'
        "    raise ValueError\n"
        "ValueError",
    ),
    (
        "python-dotted-module-error",
        "python",
        "",
        "Traceback (most recent call last):\n"
        '  File "/srv/harbor/harbor/tasks.py", line 75, in check_manifest\n'
        "    self.compare(manifest, counted)\n"
        '  File "/srv/harbor/harbor/tasks.py", line 93, in compare\n'
        '    raise ManifestMismatch(f"expected {len(manifest)} containers, counted {counted}")\n'
        "harbor.errors.ManifestMismatch: expected 12 containers, counted 11",
    ),
    (
        "python-during-handling",
        "python",
        _PY_CHAINED,
        "Traceback (most recent call last):\n"
        '  File "/srv/harbor/harbor/settings.py", line 27, in load\n'
        "    return parse_berths(raw)\n"
        '  File "/srv/harbor/harbor/berth_file.py", line 12, in parse_berths\n'
        "    return [Berth(*fields) for fields in split_lines(raw)]\n"
        '  File "/srv/harbor/harbor/berth_file.py", line 6, in split_lines\n'
        '    raise BerthFileError(f"line {n}: expected 4 fields")\n'
        "harbor.berth_file.BerthFileError: line 3: expected 4 fields\n"
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/harbor/bin/harbord.py", line 19, in <module>\n'
        "    settings = load(CONFIG)\n"
        '  File "/srv/harbor/harbor/settings.py", line 30, in load\n'
        '    raise SettingsError(f"{path} is not a valid berth file")\n'
        "harbor.settings.SettingsError: /etc/harbor/berths.txt is not a valid berth file",
    ),
    (
        "python-direct-cause",
        "python",
        _PY_CHAINED,
        "Traceback (most recent call last):\n"
        '  File "/srv/orchard/orchard/pricing.py", line 52, in price_for\n'
        "    return self._table[(variety, grade)]\n"
        "KeyError: ('honeycrisp', 'B')\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "/srv/orchard/orchard/jobs/reprice.py", line 19, in run\n'
        "    new = pricing.price_for(lot.variety, lot.grade)\n"
        '  File "/srv/orchard/orchard/pricing.py", line 54, in price_for\n'
        "    raise PriceMissing(variety, grade) from err\n"
        "orchard.pricing.PriceMissing: ('honeycrisp', 'B')",
    ),
    (
        # Python 3.11+ underlines the failing expression.
        "python-311-carets",
        "python",
        _PY_CARETS,
        "Traceback (most recent call last):\n"
        '  File "/srv/harbor/bin/berth_report.py", line 41, in <module>\n'
        "    main()\n"
        '  File "/srv/harbor/bin/berth_report.py", line 36, in main\n'
        "    print(format_row(row))\n"
        "          ^^^^^^^^^^^^^^^\n"
        '  File "/srv/harbor/bin/berth_report.py", line 22, in format_row\n'
        "    share = row.occupied_hours / row.open_hours\n"
        "            ~~~~~~~~~~~~~~~~~~~^~~~~~~~~~~~~~~~\n"
        "ZeroDivisionError: division by zero",
    ),
    (
        "python-syntax-error-on-import",
        "python",
        _PY_CARETS,
        "Traceback (most recent call last):\n"
        '  File "/srv/harbor/bin/tides.py", line 3, in <module>\n'
        "    from harbor import tide_tables\n"
        '  File "/srv/harbor/harbor/tide_tables.py", line 58\n'
        "    if height = LOW_WATER:\n"
        "       ^^^^^^^^^^^^^^^^^^\n"
        "SyntaxError: invalid syntax. Maybe you meant '==' or ':=' instead of '='?",
    ),
    # -------------------------------------------------------------------------- Go
    (
        "go-nil-map-exit-status",
        "go",
        _GO_EXIT,
        "panic: assignment to entry in nil map\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.(*Inventory).Put(...)\n"
        "\t/home/dev/quarry/inventory.go:31\n"
        "main.main()\n"
        "\t/home/dev/quarry/main.go:18 +0x4a\n"
        "exit status 2",
    ),
    (
        "go-sigsegv",
        "go",
        _GO_EXIT,
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x28 pc=0x4b7e3a]\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.(*Crusher).Throughput(0x0)\n"
        "\t/home/dev/quarry/crusher.go:54 +0x1a\n"
        "main.report({0xc000012345, 0x3, 0x4})\n"
        "\t/home/dev/quarry/report.go:22 +0x9c\n"
        "main.main()\n"
        "\t/home/dev/quarry/main.go:40 +0x1d\n"
        "exit status 2",
    ),
    (
        "go-goroutine-created-by",
        "go",
        "",
        "panic: send on closed channel\n"
        "\n"
        "goroutine 7 [running]:\n"
        "github.com/tidewater/quarry/pipeline.(*Stage).emit(...)\n"
        "\t/go/src/github.com/tidewater/quarry/pipeline/stage.go:88\n"
        "github.com/tidewater/quarry/pipeline.(*Stage).loop(0xc0000a4000)\n"
        "\t/go/src/github.com/tidewater/quarry/pipeline/stage.go:71 +0x1b4\n"
        "created by github.com/tidewater/quarry/pipeline.Start in goroutine 1\n"
        "\t/go/src/github.com/tidewater/quarry/pipeline/start.go:25 +0x85",
    ),
    (
        # GOTRACEBACK=all: every goroutine, a blank line between them.
        "go-all-goroutines",
        "go",
        "",
        "panic: berth 4 booked twice\n"
        "\n"
        "goroutine 18 [running]:\n"
        "github.com/tidewater/quarry/booking.(*Book).Add(0xc0000a6000, {0xc00001a0c0, 0x8})\n"
        "\t/go/src/github.com/tidewater/quarry/booking/book.go:47 +0x1e5\n"
        "github.com/tidewater/quarry/booking.Import.func1()\n"
        "\t/go/src/github.com/tidewater/quarry/booking/import.go:33 +0x6b\n"
        "created by github.com/tidewater/quarry/booking.Import in goroutine 1\n"
        "\t/go/src/github.com/tidewater/quarry/booking/import.go:30 +0x9f\n"
        "\n"
        "goroutine 1 [semacquire]:\n"
        "sync.runtime_Semacquire(0xc0000b2008?)\n"
        "\t/usr/local/go/src/runtime/sema.go:62 +0x25\n"
        "sync.(*WaitGroup).Wait(0xc0000b2000)\n"
        "\t/usr/local/go/src/sync/waitgroup.go:116 +0x48\n"
        "main.main()\n"
        "\t/go/src/github.com/tidewater/quarry/cmd/quarry/main.go:26 +0x85\n"
        "\n"
        "goroutine 19 [chan receive, 2 minutes]:\n"
        "github.com/tidewater/quarry/metrics.(*Pusher).loop(0xc0000a8040)\n"
        "\t/go/src/github.com/tidewater/quarry/metrics/push.go:58 +0x7d\n"
        "created by github.com/tidewater/quarry/metrics.Start in goroutine 1\n"
        "\t/go/src/github.com/tidewater/quarry/metrics/push.go:40 +0x12a",
    ),
    (
        "go-panic-error-value",
        "go",
        "",
        "panic: load config: open /etc/quarry/quarry.yaml: no such file or directory\n"
        "\n"
        "goroutine 1 [running]:\n"
        "main.mustLoad({0x7ffd5c1e3f2a, 0x17})\n"
        "\t/app/cmd/quarryd/main.go:33 +0xd1\n"
        "main.main()\n"
        "\t/app/cmd/quarryd/main.go:15 +0x2f",
    ),
    (
        # net/http recovers a handler's panic and logs it with the goroutine's stack.
        "go-http-panic-serving",
        "go",
        "detect-exceptions does not know `http: panic serving` (each line is one event to "
        "it); Fluent Bit's go parser groups it",
        "2026/01/19 08:14:03 http: panic serving 10.20.0.14:53122: "
        "runtime error: index out of range [4] with length 4\n"
        "goroutine 231 [running]:\n"
        "net/http.(*conn).serve.func1()\n"
        "\t/usr/local/go/src/net/http/server.go:1898 +0xbe\n"
        "panic({0x6c5f20?, 0xc0001b2018?})\n"
        "\t/usr/local/go/src/runtime/panic.go:770 +0x132\n"
        "main.slotHandler({0x7a1b38, 0xc0002a40e0}, 0xc0001e6120)\n"
        "\t/app/slots.go:47 +0x2c5\n"
        "net/http.HandlerFunc.ServeHTTP(0x6f0e28, {0x7a1b38?, 0xc0002a40e0?}, 0xc0001e6120?)\n"
        "\t/usr/local/go/src/net/http/server.go:2166 +0x29\n"
        "net/http.(*conn).serve(0xc0001e2000, {0x7a2240, 0xc0001a4e10})\n"
        "\t/usr/local/go/src/net/http/server.go:2039 +0x5e8\n"
        "created by net/http.(*Server).Serve in goroutine 1\n"
        "\t/usr/local/go/src/net/http/server.go:3285 +0x4b4",
    ),
    (
        # A deferred recover that panics again (Go before 1.23 prints two lines).
        "go-recovered-repanic",
        "go",
        "Fluent Bit's go parser and detect-exceptions take the indented `panic:` line for "
        "the start of another trace, and end before `exit status 2`",
        "panic: berth 4 double booked [recovered]\n"
        "\tpanic: berth 4 double booked\n"
        "\n"
        "goroutine 7 [running]:\n"
        "testing.tRunner.func1.2({0x5f6a40, 0x6a1b30})\n"
        "\t/usr/local/go/src/testing/testing.go:1631 +0x24a\n"
        "panic({0x5f6a40?, 0x6a1b30?})\n"
        "\t/usr/local/go/src/runtime/panic.go:770 +0x132\n"
        "github.com/tidewater/quarry/booking.(*Book).Add(...)\n"
        "\t/go/src/github.com/tidewater/quarry/booking/book.go:47\n"
        "github.com/tidewater/quarry/booking.TestDoubleBooking(0xc000107520)\n"
        "\t/go/src/github.com/tidewater/quarry/booking/book_test.go:21 +0x85\n"
        "testing.tRunner(0xc000107520, 0x61d1a8)\n"
        "\t/usr/local/go/src/testing/testing.go:1689 +0xfb\n"
        "created by testing.(*T).Run in goroutine 1\n"
        "\t/usr/local/go/src/testing/testing.go:1742 +0x390\n"
        "exit status 2",
    ),
    # ------------------------------------------------------------------------ Ruby
    (
        # Ruby 3.4: single quotes, and the class before the method.
        "ruby-uncaught-34",
        "ruby",
        _RUBY_FROM,
        "/srv/ledger/lib/ledger/posting.rb:48:in 'Ledger::Posting#apply!': "
        "balance would go negative (Ledger::Overdraft)\n"
        "\tfrom /srv/ledger/lib/ledger/posting.rb:31:in 'block in Ledger::Posting.replay'\n"
        "\tfrom /srv/ledger/lib/ledger/posting.rb:30:in 'Array#each'\n"
        "\tfrom /srv/ledger/lib/ledger/posting.rb:30:in 'Ledger::Posting.replay'\n"
        "\tfrom bin/replay:12:in '<main>'",
    ),
    (
        "ruby-uncaught-backtick",
        "ruby",
        _RUBY_FROM,
        "lib/harbor/cli.rb:22:in `fetch': key not found: :berth (KeyError)\n"
        "\tfrom lib/harbor/cli.rb:22:in `run'\n"
        "\tfrom exe/harbor:6:in `<main>'",
    ),
    (
        "ruby-uncaught-block-levels",
        "ruby",
        _RUBY_FROM,
        "/srv/orchard/lib/grading.rb:17:in 'Integer#/': divided by 0 (ZeroDivisionError)\n"
        "\tfrom /srv/orchard/lib/grading.rb:17:in "
        "'block (2 levels) in Orchard::Grading.run'\n"
        "\tfrom /srv/orchard/lib/grading.rb:16:in 'Array#each'\n"
        "\tfrom /srv/orchard/lib/grading.rb:16:in 'block in Orchard::Grading.run'\n"
        "\tfrom <internal:kernel>:168:in 'Kernel#loop'\n"
        "\tfrom /srv/orchard/lib/grading.rb:12:in 'Orchard::Grading.run'\n"
        "\tfrom bin/grade:5:in '<main>'",
    ),
    (
        "rails-nomethoderror",
        "ruby",
        _RAILS,
        " NoMethodError (undefined method `tonnage' for nil:NilClass):\n"
        "  app/models/vessel.rb:42:in `berth_fee'\n"
        "  app/controllers/vessels_controller.rb:18:in `show'\n"
        "  app/controllers/concerns/tenant_scoped.rb:9:in `with_tenant'",
    ),
    (
        # Rails writes a line of two spaces after a routing error's first line.
        "rails-routing-error",
        "ruby",
        _RAILS,
        ' ActionController::RoutingError (No route matches [GET] "/berths/export.csv"):\n'
        "  \n"
        "  actionpack (7.1.3) lib/action_dispatch/middleware/debug_exceptions.rb:61:in `call'\n"
        "  actionpack (7.1.3) lib/action_dispatch/middleware/show_exceptions.rb:29:in `call'\n"
        "  railties (7.1.3) lib/rails/rack/logger.rb:37:in `call_app'\n"
        "  rack (3.0.9) lib/rack/runtime.rb:24:in `call'\n"
        "  puma (6.4.2) lib/puma/server.rb:438:in `handle_request'",
    ),
    (
        "rails-nomethoderror-34",
        "ruby",
        "detect-exceptions wants a backtick before the method, Fluent Bit's ruby parser "
        "does not know the Rails form: neither groups it",
        " NoMethodError (undefined method 'tonnage' for nil):\n"
        "  app/models/vessel.rb:42:in 'Vessel#berth_fee'\n"
        "  app/controllers/vessels_controller.rb:18:in 'VesselsController#show'\n"
        "  app/controllers/concerns/tenant_scoped.rb:9:in 'TenantScoped#with_tenant'",
    ),
)
