"""One timed ingest run with N dashboards open on the live tail (bench/dashboard).

A fresh `logcaster serve` (bench/_ingest_run.py's `start_logcaster`); `pages`
headless Chromium pages, each in a context of its own, on the dashboard's
`#live` view, waited for until each one's `.state` reads `live` (its
`/api/v1/tail` stream is open and past the replay) and STATS counts that many
tail subscribers. Then the corpus goes over TCP with bench/ingest's machinery
(`send_parts`, one connection per part) and is timed as bench/ingest times it:
from just before the first byte to the STATS reply showing every event
delivered (`wait_total`). Untimed afterwards: the queue drains, the pages
finish drawing what they got, and each page is asked what it shows; then the
pages close and the server stops.

The browser is Debian's Chromium driven by Playwright's sync API, one browser
for the whole benchmark (`Dashboards`), never a browser Playwright downloads.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _corpus
from _common import MB, BenchError, cpu_seconds, send_parts
from _ingest_run import (
    finish_logcaster,
    settle,
    start_logcaster,
    stop_logcaster,
    wait_total,
)
from _query_port import parse_stats, query, stat_int, total_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")  # Debian's launcher, as tests/browser_helpers.py
VIEWPORT = {"width": 1280, "height": 800}  # as the browser tests
LIVE_TIMEOUT_S = 30.0  # for every page to read `live` and be counted as a subscriber
QUIET_S = 1.0  # the pages' lists and STATS TailSkipped unchanged this long: drawn
QUIET_MAX_S = 60.0

# What a page shows, read after the run: the live view's state, the items its
# virtual list holds (its spacer's height over the row height; at most live.js'
# MAX_ROWS), the `skipped` rows drawn in the DOM (the list draws only the rows
# on screen and a few around them) and the events those rows say were skipped.
# `last` (the last drawn row's text) only tells whether the page still draws.
READ_VIEW_JS = """async () => {
  const { ROW_PX } = await import("/ui/vlist.js");
  const view = document.querySelector("#view-live");
  const space = view.querySelector(".vlist-space");
  const skipped = [...view.querySelectorAll(".row.skipped")];
  const rows = view.querySelectorAll(".row");
  return {
    state: view.querySelector(".state").textContent,
    rows: Math.round(parseFloat(space.style.height || "0") / ROW_PX),
    skipped_rows: skipped.length,
    skipped_shown: skipped.reduce(
      (n, r) => n + (parseInt(r.textContent.replace(/^\\D*/, ""), 10) || 0), 0),
    last: rows.length ? rows[rows.length - 1].textContent : "",
  };
}"""
LIVE_JS = """() => {
  const s = document.querySelector("#view-live .state");
  return s !== null && s.textContent === "live";
}"""


@dataclass
class PageView:
    """What one dashboard page showed once the run was over."""

    state: str  # the live view's state text ("live" while its stream is open)
    rows: int  # items the live view holds (events and skipped rows; capped by live.js)
    skipped_rows: int  # `skipped` rows drawn in the DOM (the visible end of the list)
    skipped_shown: int  # the events those rows say were skipped


@dataclass
class DashboardRun:
    pages: int
    seconds: float
    events_per_s: float
    lines_per_s: float
    mb_per_s: float
    sent_s: float
    cpu_s: float | None  # the server's CPU seconds over the timed part
    browser_cpu_s: float | None  # Chromium's and Playwright's driver's, same span
    total: int
    tail_skipped: int | None  # STATS TailSkipped at the end: summed over the pages
    exit_code: int | None
    views: list[PageView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Dashboards:
    """One headless Chromium for the whole benchmark; pages are opened per run."""

    def __init__(self, executable: str) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise BenchError(
                f"the playwright package is missing (make install-dev): {exc}"
            ) from exc
        if not Path(executable).exists():
            raise BenchError(f"no Chromium at {executable} (Debian's chromium package)")
        self._pw: Playwright = sync_playwright().start()
        try:
            # --no-sandbox: run as root, Chromium refuses its sandbox.
            self.browser: Browser = self._pw.chromium.launch(
                executable_path=executable, headless=True, args=["--no-sandbox"]
            )
        except BaseException:
            self._pw.stop()
            raise

    def open(self, http_port: int, n: int) -> list[BrowserContext]:
        """`n` pages on the live view, each in its own context, once each reads `live`."""
        contexts: list[BrowserContext] = []
        try:
            pages: list[Page] = []
            for _ in range(n):
                context = self.browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
                contexts.append(context)
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{http_port}/#live")
                pages.append(page)
            for i, page in enumerate(pages):
                try:
                    page.wait_for_function(LIVE_JS, timeout=LIVE_TIMEOUT_S * 1000)
                except Exception as exc:
                    raise BenchError(f"page {i + 1} of {n} never read `live`: {exc}") from exc
            return contexts
        except BaseException:
            close_all(contexts)
            raise

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def close_all(contexts: Sequence[BrowserContext]) -> None:
    for context in contexts:
        with contextlib.suppress(Exception):  # a page that is gone is closed enough
            context.close()


def read_view(context: BrowserContext) -> dict[str, Any]:
    doc: dict[str, Any] = context.pages[0].evaluate(READ_VIEW_JS)
    return doc


SETTLE_S = 1.0  # after the pages read `live`, before the clock


def _tree_cpu(root: int, exclude: int) -> dict[int, float]:
    """CPU seconds of each live process under `root` (not `root` itself), leaving out
    `exclude` and what is under it: here Playwright's driver and the Chromium it
    started, without the server."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, float] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid == exclude:
            continue
        todo.extend(children.get(pid, []))
        cpu = cpu_seconds(pid)
        if cpu is not None:
            found[pid] = cpu
    return found


def _cpu_between(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The CPU the processes alive at the end used since `before` (one started
    since, all of its own). Not the difference of sums: a process that ended in
    between (a closed page's renderer) would take its whole life off the total."""
    if not after:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _wait_subscribers(query_port: int, n: int, check: Any) -> None:
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    while True:
        check()
        subs = stat_int(parse_stats(query(query_port, "STATS")), "TailSubscribers")
        if subs is None or subs == n:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"STATS counts {subs} tail subscribers, {n} pages are open")
        time.sleep(0.05)


def _quiet(query_port: int, contexts: Sequence[BrowserContext]) -> list[dict[str, Any]]:
    """Wait until the pages' lists and STATS TailSkipped stop changing: what they show."""
    deadline = time.monotonic() + QUIET_MAX_S
    last: object = None
    since = time.monotonic()
    while True:
        views = [read_view(c) for c in contexts]
        skipped = parse_stats(query(query_port, "STATS")).get("TailSkipped")
        now = time.monotonic()
        sign = (skipped, [(v["rows"], v["last"]) for v in views])
        if sign != last:
            last, since = sign, now
        elif now - since >= QUIET_S or now > deadline:
            return views
        time.sleep(0.1)


def run_dashboard(
    server_cmd: Sequence[str],
    corpus: _corpus.CorpusInfo,
    parts: Sequence[memoryview],
    timeout_s: float,
    dashboards: Dashboards,
    pages: int,
) -> DashboardRun:
    server = start_logcaster(server_cmd)
    contexts: list[BrowserContext] = []
    failed = True
    try:
        if pages:
            contexts = dashboards.open(server.http_port, pages)
            _wait_subscribers(server.query_port, pages, server.check)
            # Open dashboards, not opening ones: a page's own start (modules,
            # layout, fonts) is over before the clock starts.
            time.sleep(SETTLE_S)
        expected = corpus.events
        warnings: list[str] = []
        me = os.getpid()
        cpu0, bcpu0 = cpu_seconds(server.proc.pid), _tree_cpu(me, server.proc.pid)
        sent = send_parts(server.ingest_port, parts, server.check)
        stats, end = wait_total(
            server.query_port, sent.t0, expected, timeout_s, server.check, warnings
        )
        seconds = end - sent.t0
        cpu1, bcpu1 = cpu_seconds(server.proc.pid), _tree_cpu(me, server.proc.pid)
        # Untimed from here: the queue drains, the pages draw what they got.
        stats = settle(server.query_port, stats, server.check)
        views: list[PageView] = []
        if contexts:
            views = [
                PageView(**{k: v for k, v in doc.items() if k != "last"})
                for doc in _quiet(server.query_port, contexts)
            ]
            stats = parse_stats(query(server.query_port, "STATS"))
        total = total_of(stats)
        if total != expected:
            warnings.append(f"final Total={total:,}, expected {expected:,} events")
        dropped = stat_int(stats, "Dropped")
        if dropped:
            warnings.append(f"server dropped {dropped:,} events")
        not_live = [v.state for v in views if v.state != "live"]
        if not_live:
            warnings.append(f"{len(not_live)} pages ended not live: {not_live[0]!r}")
        close_all(contexts)
        contexts = []
        code = stop_logcaster(server, warnings)
        failed = False
        bcpu = _cpu_between(bcpu0, bcpu1)
        return DashboardRun(
            pages=pages,
            seconds=seconds,
            events_per_s=corpus.events / seconds,
            lines_per_s=corpus.lines / seconds,
            mb_per_s=corpus.nbytes / seconds / MB,
            sent_s=sent.sent_s,
            cpu_s=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
            browser_cpu_s=bcpu,
            total=total,
            tail_skipped=stat_int(stats, "TailSkipped"),
            exit_code=code,
            views=views,
            warnings=warnings,
        )
    finally:
        close_all(contexts)
        finish_logcaster(server, failed)
