"""Java, C# / .NET and Node traces (their frames are `at` lines), with invented
packages, files and messages: entries of tests/multiline_samples.py's SAMPLES.
"""

from __future__ import annotations

_SPLIT_AT_ARROW = (
    "Fluent Bit's java parser (detect-exceptions' csharp rules are the same) has no rule "
    "for ` ---> ` lines: the trace ends before the first one"
)

TRACES: tuple[tuple[str, str, str, str], ...] = (
    # ------------------------------------------------------------------------ Java
    (
        "java-tab-frames",
        "java",
        "",
        "java.lang.IllegalStateException: shipment 88213 has no carrier assigned\n"
        "\tat com.tidewater.dispatch.ShipmentPlanner.assign(ShipmentPlanner.java:142)\n"
        "\tat com.tidewater.dispatch.ShipmentPlanner.planAll(ShipmentPlanner.java:97)\n"
        "\tat com.tidewater.dispatch.DispatchJob.run(DispatchJob.java:58)\n"
        "\tat java.base/java.util.concurrent.ThreadPoolExecutor.runWorker"
        "(ThreadPoolExecutor.java:1136)\n"
        "\tat java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run"
        "(ThreadPoolExecutor.java:635)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:1570)",
    ),
    (
        "java-space-frames-caused-by",
        "java",
        "",
        "org.springframework.dao.DataAccessResourceFailureException: "
        "could not open JDBC connection for ledger query\n"
        "    at org.springframework.jdbc.datasource.DataSourceUtils.getConnection"
        "(DataSourceUtils.java:84)\n"
        "    at com.tidewater.ledger.repo.EntryRepository.findOpen(EntryRepository.java:61)\n"
        "    at com.tidewater.ledger.service.ReconcileService.reconcile"
        "(ReconcileService.java:203)\n"
        "    at com.tidewater.ledger.api.ReconcileController.post(ReconcileController.java:44)\n"
        "Caused by: java.net.ConnectException: Connection refused\n"
        "    at java.base/sun.nio.ch.Net.pollConnect(Native Method)\n"
        "    at java.base/sun.nio.ch.Net.pollConnectNow(Net.java:672)\n"
        "    at java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:547)\n"
        "    ... 9 more",
    ),
    (
        "java-nested-causes-logback",
        "java",
        "",
        "com.tidewater.billing.InvoiceException: invoice INV-2026-0417 could not be rendered\n"
        "\tat com.tidewater.billing.InvoiceRenderer.render(InvoiceRenderer.java:77)"
        " ~[billing-core-3.2.0.jar:3.2.0]\n"
        "\tat com.tidewater.billing.InvoiceJob.execute(InvoiceJob.java:39)"
        " ~[billing-core-3.2.0.jar:3.2.0]\n"
        "\tat org.quartz.core.JobRunShell.run(JobRunShell.java:202) ~[quartz-2.3.2.jar:na]\n"
        "Caused by: com.tidewater.templates.TemplateException: "
        "unknown placeholder {{vat_number}} in invoice.ftl\n"
        "\tat com.tidewater.templates.Engine.resolve(Engine.java:118)"
        " ~[templates-1.4.1.jar:1.4.1]\n"
        "\tat com.tidewater.billing.InvoiceRenderer.render(InvoiceRenderer.java:71)"
        " ~[billing-core-3.2.0.jar:3.2.0]\n"
        "\t... 2 common frames omitted\n"
        "Caused by: java.util.NoSuchElementException: vat_number\n"
        "\tat java.base/java.util.HashMap$HashIterator.nextNode(HashMap.java:1604) ~[na:na]\n"
        "\tat com.tidewater.templates.Context.require(Context.java:54)"
        " ~[templates-1.4.1.jar:1.4.1]\n"
        "\tat com.tidewater.templates.Engine.resolve(Engine.java:112)"
        " ~[templates-1.4.1.jar:1.4.1]\n"
        "\t... 3 common frames omitted",
    ),
    (
        "java-suppressed",
        "java",
        "",
        "java.io.UncheckedIOException: failed to write manifest for batch 5531\n"
        "\tat com.tidewater.export.ManifestWriter.write(ManifestWriter.java:66)\n"
        "\tat com.tidewater.export.ExportRunner.lambda$runBatch$2(ExportRunner.java:120)\n"
        "\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1590)\n"
        "\tat com.tidewater.export.ExportRunner.runBatch(ExportRunner.java:118)\n"
        "\tSuppressed: java.io.IOException: close failed: stream already reset\n"
        "\t\tat com.tidewater.export.SftpStream.close(SftpStream.java:203)\n"
        "\t\tat com.tidewater.export.ManifestWriter.write(ManifestWriter.java:58)\n"
        "\t\t... 3 more\n"
        "Caused by: java.io.IOException: remote side closed the channel\n"
        "\tat com.tidewater.export.SftpStream.flush(SftpStream.java:171)\n"
        "\tat com.tidewater.export.ManifestWriter.write(ManifestWriter.java:63)\n"
        "\t... 3 more",
    ),
    (
        # The message ended in a newline, so the JVM printed an empty line after it.
        "java-blank-line-after-message",
        "java",
        "",
        "java.lang.IllegalArgumentException: route file rejected: line 14 has 3 columns\n"
        "\n"
        "\tat com.tidewater.routes.CsvRouteLoader.parseLine(CsvRouteLoader.java:88)\n"
        "\tat com.tidewater.routes.CsvRouteLoader.load(CsvRouteLoader.java:41)\n"
        'Caused by: java.lang.NumberFormatException: For input string: "14,5"\n'
        "\n"
        "\tat java.base/java.lang.NumberFormatException.forInputString"
        "(NumberFormatException.java:67)\n"
        "\tat java.base/java.lang.Integer.parseInt(Integer.java:662)\n"
        "\tat com.tidewater.routes.CsvRouteLoader.parseLine(CsvRouteLoader.java:80)\n"
        "\t... 1 more",
    ),
    (
        "java-blank-line-between-frames",
        "java",
        "detect-exceptions and Fluent Bit allow an empty line only right after an "
        "exception line: they end the trace at it, and the frames after it become one "
        "event each",
        "java.util.NoSuchElementException: no berth with code B-17\n"
        "\tat java.base/java.util.Optional.orElseThrow(Optional.java:377)\n"
        "\tat com.tidewater.berths.BerthIndex.byCode(BerthIndex.java:58)\n"
        "\n"
        "\tat com.tidewater.berths.BerthIndex.rebuild(BerthIndex.java:73)\n"
        "\tat com.tidewater.berths.BerthIndex.onChange(BerthIndex.java:40)",
    ),
    (
        "java-exception-in-thread",
        "java",
        "",
        'Exception in thread "reconcile-1" java.lang.ArithmeticException: / by zero\n'
        "\tat com.tidewater.ledger.Averages.perBerth(Averages.java:29)\n"
        "\tat com.tidewater.ledger.DailyReport.build(DailyReport.java:112)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:1570)",
    ),
    # ---------------------------------------------------------------------- C# / .NET
    (
        "csharp-frames-in-file-line",
        "csharp",
        "",
        "System.InvalidOperationException: Sequence contains no matching element\n"
        "   at System.Linq.ThrowHelper.ThrowNoMatchException()\n"
        "   at System.Linq.Enumerable.First[TSource](IEnumerable`1 source, "
        "Func`2 predicate)\n"
        "   at Tidewater.Berths.BerthPlanner.Pick(Vessel vessel) in "
        "/src/Tidewater.Berths/BerthPlanner.cs:line 64\n"
        "   at Tidewater.Berths.Api.BerthsController.Assign(Int32 vesselId) in "
        "/src/Tidewater.Berths.Api/Controllers/BerthsController.cs:line 29\n"
        "   at lambda_method41(Closure, Object, Object[])",
    ),
    (
        "csharp-inner-exception",
        "csharp",
        _SPLIT_AT_ARROW,
        "System.Net.Http.HttpRequestException: Connection refused (ledger-svc:8080)\n"
        " ---> System.Net.Sockets.SocketException (111): Connection refused\n"
        "   at System.Net.Sockets.Socket.AwaitableSocketAsyncEventArgs.ThrowException("
        "SocketError error, CancellationToken cancellationToken)\n"
        "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, "
        "Int32 port, HttpRequestMessage initialRequest, Boolean async, "
        "CancellationToken cancellationToken)\n"
        "   --- End of inner exception stack trace ---\n"
        "   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, "
        "Int32 port, HttpRequestMessage initialRequest, Boolean async, "
        "CancellationToken cancellationToken)\n"
        "   at Tidewater.Ledger.LedgerClient.PostAsync(Entry entry) in "
        "/src/Tidewater.Ledger/LedgerClient.cs:line 57\n"
        "   at Tidewater.Settlement.DayCloser.CloseAsync(DateOnly day) in "
        "/src/Tidewater.Settlement/DayCloser.cs:line 33",
    ),
    (
        "csharp-async-previous-location",
        "csharp",
        "Fluent Bit knows only the older `... previous location where exception was "
        "thrown ---` wording, detect-exceptions neither: both end the trace at this line",
        "System.TimeoutException: ledger did not answer within 00:00:05\n"
        "   at Tidewater.Ledger.LedgerClient.WaitAsync(Task task) in "
        "/src/Tidewater.Ledger/LedgerClient.cs:line 88\n"
        "   at Tidewater.Ledger.LedgerClient.PostAsync(Entry entry) in "
        "/src/Tidewater.Ledger/LedgerClient.cs:line 61\n"
        "--- End of stack trace from previous location ---\n"
        "   at Tidewater.Settlement.DayCloser.CloseAsync(DateOnly day) in "
        "/src/Tidewater.Settlement/DayCloser.cs:line 33\n"
        "   at Tidewater.Settlement.Worker.ExecuteAsync(CancellationToken stoppingToken) in "
        "/src/Tidewater.Settlement/Worker.cs:line 25",
    ),
    (
        "csharp-unhandled-exception-prefix",
        "csharp",
        "",
        "Unhandled exception. System.ArgumentNullException: Value cannot be null. "
        "(Parameter 'manifest')\n"
        "   at System.ArgumentNullException.Throw(String paramName)\n"
        "   at Tidewater.Manifests.ManifestParser.Parse(String manifest) in "
        "/src/Tidewater.Manifests/ManifestParser.cs:line 18\n"
        "   at Tidewater.Cli.Program.Main(String[] args) in "
        "/src/Tidewater.Cli/Program.cs:line 14",
    ),
    (
        "csharp-framework-previous-location",
        "csharp",
        "detect-exceptions has no rule for `--- End of stack trace ...` and ends the "
        "trace there; Fluent Bit groups it",
        "System.IO.IOException: The tariff share \\\\files01\\tariffs is not reachable\n"
        "   at Tidewater.Tariffs.ShareReader.<ReadAsync>d__4.MoveNext() in "
        "C:\\build\\Tidewater.Tariffs\\ShareReader.cs:line 52\n"
        "--- End of stack trace from previous location where exception was thrown ---\n"
        "   at System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()\n"
        "   at System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccessAndDebuggerNotification"
        "(Task task)\n"
        "   at Tidewater.Tariffs.TariffService.<RefreshAsync>d__9.MoveNext() in "
        "C:\\build\\Tidewater.Tariffs\\TariffService.cs:line 31",
    ),
    (
        "csharp-inner-exception-twice",
        "csharp",
        _SPLIT_AT_ARROW,
        "System.InvalidOperationException: Settlement for 2026-01-19 failed\n"
        " ---> Tidewater.Ledger.LedgerException: Entry 4411 could not be posted\n"
        " ---> System.FormatException: The input string 'n/a' was not in a correct format.\n"
        "   at System.Number.ThrowFormatException[TChar](ReadOnlySpan`1 value)\n"
        "   at System.Decimal.Parse(String s, IFormatProvider provider)\n"
        "   at Tidewater.Ledger.EntryMapper.Amount(String raw) in "
        "/src/Tidewater.Ledger/EntryMapper.cs:line 27\n"
        "   --- End of inner exception stack trace ---\n"
        "   at Tidewater.Ledger.LedgerWriter.Post(Entry entry) in "
        "/src/Tidewater.Ledger/LedgerWriter.cs:line 45\n"
        "   --- End of inner exception stack trace ---\n"
        "   at Tidewater.Settlement.DayCloser.Close(DateOnly day) in "
        "/src/Tidewater.Settlement/DayCloser.cs:line 19",
    ),
    # ------------------------------------------------------------------------ Node
    (
        "node-typeerror",
        "javascript",
        "",
        "TypeError: Cannot read properties of undefined (reading 'berth')\n"
        "    at assignBerth (/srv/harbor-api/src/berths.js:41:27)\n"
        "    at Array.map (<anonymous>)\n"
        "    at planArrivals (/srv/harbor-api/src/planner.js:88:22)\n"
        "    at Layer.handle [as handle_request] "
        "(/srv/harbor-api/node_modules/express/lib/router/layer.js:95:5)\n"
        "    at next (/srv/harbor-api/node_modules/express/lib/router/route.js:149:13)",
    ),
    (
        "node-referenceerror-esm",
        "javascript",
        "",
        "ReferenceError: tideTable is not defined\n"
        "    at computeWindow (file:///srv/harbor-api/src/tides.mjs:12:3)\n"
        "    at file:///srv/harbor-api/src/index.mjs:7:1\n"
        "    at ModuleJob.run (node:internal/modules/esm/module_job:234:25)\n"
        "    at async ModuleLoader.import (node:internal/modules/esm/loader:473:24)\n"
        "    at async asyncRunEntryPointWithESMLoader (node:internal/modules/run_main:123:5)",
    ),
    (
        "node-async-frames",
        "javascript",
        "",
        "Error: upstream ledger-svc answered 503\n"
        "    at LedgerClient.request (/srv/harbor-api/src/ledger/client.js:77:13)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
        "    at async Promise.all (index 2)\n"
        "    at async settleDay (/srv/harbor-api/src/jobs/settle.js:31:19)\n"
        "    at async Job.run (/srv/harbor-api/src/jobs/job.js:18:7)",
    ),
    (
        "node-new-constructor",
        "javascript",
        "",
        "RangeError: Invalid time value\n"
        "    at Date.toISOString (<anonymous>)\n"
        "    at new Voyage (/srv/harbor-api/src/voyage.js:19:34)\n"
        "    at Voyage.fromRow (/srv/harbor-api/src/voyage.js:52:12)\n"
        "    at Array.map (<anonymous>)\n"
        "    at VoyageRepository.list (/srv/harbor-api/src/repo/voyages.js:23:27)\n"
        "    at async listVoyages (/srv/harbor-api/src/routes/voyages.js:11:19)",
    ),
    (
        "node-custom-error-class",
        "javascript",
        "",
        "ValidationError: manifest.weight must be a positive number\n"
        "    at validateManifest (/srv/harbor-api/src/validate.js:64:11)\n"
        "    at /srv/harbor-api/src/routes/manifest.js:22:5\n"
        "    at async Promise.all (index 0)\n"
        "    at async importManifests (/srv/harbor-api/src/routes/manifest.js:19:3)",
    ),
    (
        "node-syntaxerror-json",
        "javascript",
        "",
        "SyntaxError: Unexpected token '<', \"<!DOCTYPE \"... is not valid JSON\n"
        "    at JSON.parse (<anonymous>)\n"
        "    at parseJSONFromBytes (node:internal/deps/undici/undici:5472:19)\n"
        "    at successSteps (node:internal/deps/undici/undici:5454:27)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n"
        "    at async fetchTideTable (/srv/harbor-api/src/tides.js:30:18)",
    ),
)
