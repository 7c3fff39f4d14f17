"""PHP and Dart traces (their frames are `#N` lines), with invented classes,
files and messages: entries of tests/multiline_samples.py's SAMPLES.
"""

from __future__ import annotations

_DART_MESSAGE = "detect-exceptions ends the trace at a Dart message not on its fixed list"

_PHP = (
    (
        "php-fatal-uncaught",
        "php",
        "",
        "PHP Fatal error:  Uncaught InvalidArgumentException: berth code must not be empty "
        "in /var/www/harbor/src/Berth/BerthCode.php:23\n"
        "Stack trace:\n"
        "#0 /var/www/harbor/src/Berth/BerthRepository.php(61): "
        "Harbor\\Berth\\BerthCode->__construct('')\n"
        "#1 /var/www/harbor/src/Http/BerthController.php(34): "
        "Harbor\\Berth\\BerthRepository->find('')\n"
        "#2 /var/www/harbor/public/index.php(27): Harbor\\Http\\BerthController->show(Array)\n"
        "#3 {main}\n"
        "  thrown in /var/www/harbor/src/Berth/BerthCode.php on line 23",
    ),
    (
        # PHP's error_log stamps the first line only.
        "php-error-log-prefix",
        "php",
        "",
        "[19-Jan-2026 08:12:44 UTC] PHP Fatal error:  Uncaught PDOException: "
        "SQLSTATE[HY000] [2002] Connection refused in /var/www/harbor/src/Db/Connection.php:18\n"
        "Stack trace:\n"
        "#0 /var/www/harbor/src/Db/Connection.php(18): PDO->__construct('mysql:host=db;d...', "
        "'harbor', Object(SensitiveParameterValue))\n"
        "#1 /var/www/harbor/src/Db/Connection.php(9): Harbor\\Db\\Connection->connect()\n"
        "#2 /var/www/harbor/public/index.php(12): Harbor\\Db\\Connection::open()\n"
        "#3 {main}\n"
        "  thrown in /var/www/harbor/src/Db/Connection.php on line 18",
    ),
    (
        "php-typeerror-internal-function",
        "php",
        "",
        "PHP Fatal error:  Uncaught TypeError: Harbor\\Tariff\\Calculator::rate(): "
        "Argument #1 ($tonnage) must be of type int, string given, called in "
        "/var/www/harbor/src/Tariff/Invoice.php on line 52 and defined in "
        "/var/www/harbor/src/Tariff/Calculator.php:17\n"
        "Stack trace:\n"
        "#0 /var/www/harbor/src/Tariff/Invoice.php(52): Harbor\\Tariff\\Calculator::rate('12t')\n"
        "#1 [internal function]: Harbor\\Tariff\\Invoice->Harbor\\Tariff\\{closure}(Array)\n"
        "#2 /var/www/harbor/src/Tariff/Invoice.php(49): array_map(Object(Closure), Array)\n"
        "#3 /var/www/harbor/bin/invoice.php(20): Harbor\\Tariff\\Invoice->total()\n"
        "#4 {main}\n"
        "  thrown in /var/www/harbor/src/Tariff/Calculator.php on line 17",
    ),
    (
        # PHP 5's form: no `thrown in` line after `{main}`.
        "php5-exception-with-message",
        "php",
        "",
        "exception 'RuntimeException' with message 'tariff table missing for 2026' in "
        "/var/www/harbor/lib/Tariff.php:41\n"
        "Stack trace:\n"
        "#0 /var/www/harbor/lib/Invoice.php(88): Tariff->lookup(2026)\n"
        "#1 /var/www/harbor/cron/invoice.php(12): Invoice->build()\n"
        "#2 {main}",
    ),
    (
        "php-uncaught-error-framework",
        "php",
        "",
        "PHP Fatal error:  Uncaught Error: Call to undefined method "
        "Harbor\\Berth\\Berth::tonnage() in /var/www/harbor/src/Fees/FeeCalculator.php:31\n"
        "Stack trace:\n"
        "#0 /var/www/harbor/src/Fees/FeeCalculator.php(18): "
        "Harbor\\Fees\\FeeCalculator->forBerth(Object(Harbor\\Berth\\Berth))\n"
        "#1 /var/www/harbor/src/Http/FeeController.php(40): "
        "Harbor\\Fees\\FeeCalculator->quote(Object(Harbor\\Berth\\Berth), 3)\n"
        "#2 /var/www/harbor/vendor/slim/slim/Slim/Handlers/Strategies/RequestResponse.php(38): "
        "Harbor\\Http\\FeeController->quote(Object(Slim\\Psr7\\Request), "
        "Object(Slim\\Psr7\\Response), Array)\n"
        "#3 /var/www/harbor/public/index.php(31): Slim\\App->run()\n"
        "#4 {main}\n"
        "  thrown in /var/www/harbor/src/Fees/FeeCalculator.php on line 31",
    ),
)
_DART = (
    (
        "dart-bad-state-async",
        "dart",
        "",
        "Unhandled exception:\n"
        "Bad state: ledger is closed\n"
        "#0      Ledger.append (package:harbor_ledger/src/ledger.dart:57:7)\n"
        "#1      Reconciler.run (package:harbor_ledger/src/reconciler.dart:33:14)\n"
        "<asynchronous suspension>\n"
        "#2      main (file:///home/dev/harbor_ledger/bin/reconcile.dart:11:3)\n"
        "<asynchronous suspension>",
    ),
    (
        "dart-custom-exception",
        "dart",
        _DART_MESSAGE,
        "Unhandled exception:\n"
        "BerthConflictException: berth 4 already booked for 2026-01-21\n"
        "#0      BookingService.book (package:harbor_booking/src/booking_service.dart:88:7)\n"
        "#1      main (file:///home/dev/harbor_booking/bin/book.dart:14:18)",
    ),
    (
        "dart-instance-of",
        "dart",
        "",
        "Unhandled exception:\n"
        "Instance of 'TariffMissing'\n"
        "#0      TariffTable.lookup (package:harbor_tariffs/src/table.dart:42:5)\n"
        "#1      Invoice.total (package:harbor_tariffs/src/invoice.dart:19:28)\n"
        "#2      main (file:///home/dev/harbor_tariffs/bin/invoice.dart:8:22)\n"
        "#3      _delayEntrypointInvocation.<anonymous closure> "
        "(dart:isolate-patch/isolate_patch.dart:295:33)\n"
        "#4      _RawReceivePort._handleMessage (dart:isolate-patch/isolate_patch.dart:184:12)",
    ),
    (
        # The exception names the source and marks the offending character.
        "dart-format-exception-source",
        "dart",
        "",
        "Unhandled exception:\n"
        "FormatException: Unexpected character (at character 1)\n"
        "<html><body>maintenance</body></html>\n"
        "^\n"
        "\n"
        "#0      _ChunkedJsonParser.fail (dart:convert-patch/convert_patch.dart:1463:5)\n"
        "#1      _parseJson (dart:convert-patch/convert_patch.dart:35:10)\n"
        "#2      JsonDecoder.convert (dart:convert/json.dart:610:36)\n"
        "#3      TideClient.fetch (package:harbor_tides/src/client.dart:27:18)\n"
        "<asynchronous suspension>\n"
        "#4      main (file:///home/dev/harbor_tides/bin/tides.dart:6:15)\n"
        "<asynchronous suspension>",
    ),
    (
        # From frame 10 on, "#N" takes one more column and the padding one less.
        "dart-null-check-many-frames",
        "dart",
        _DART_MESSAGE,
        "Unhandled exception:\n"
        "Null check operator used on a null value\n"
        "#0      Berth.assign (package:harbor_berths/src/berth.dart:31:22)\n"
        "#1      Planner._place (package:harbor_berths/src/planner.dart:77:11)\n"
        "#2      Planner.plan.<anonymous closure> (package:harbor_berths/src/planner.dart:52:9)\n"
        "#3      List.forEach (dart:core-patch/growable_array.dart:416:8)\n"
        "#4      Planner.plan (package:harbor_berths/src/planner.dart:51:14)\n"
        "#5      PlanCommand.run (package:harbor_berths/src/cli.dart:40:25)\n"
        "#6      CommandRunner.runCommand (package:args/command_runner.dart:212:13)\n"
        "#7      CommandRunner.run.<anonymous closure> (package:args/command_runner.dart:122:25)\n"
        "#8      new Future.sync (dart:async/future.dart:311:31)\n"
        "#9      CommandRunner.run (package:args/command_runner.dart:122:14)\n"
        "#10     main (file:///home/dev/harbor_berths/bin/berths.dart:9:22)\n"
        "<asynchronous suspension>",
    ),
)
TRACES: tuple[tuple[str, str, str, str], ...] = (*_PHP, *_DART)
