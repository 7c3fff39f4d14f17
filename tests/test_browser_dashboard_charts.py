"""The dashboard's charts in Debian's Chromium (issue 20): drawn from /metrics while
events flow, with values that match what the server says in /api/v1/stats."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from logcaster.testing import ServerProcess, start_server
from tests.browser_helpers import save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHARTS = ("levels", "errors", "queue", "drops", "lag", "latency")
MIX = ("INFO", "INFO", "WARN", "ERROR", "DEBUG", "INFO")  # 1 in 6 is an error


@pytest.fixture
def flowing(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server with a store, fed 120 events every 0.1 s until the test ends."""
    server = start_server("-P", str(tmp_path / "data"))
    stop = threading.Event()

    def feed() -> None:
        n = 0
        while not stop.is_set():
            lines = [
                f"[{MIX[i % len(MIX)]}] 2026-12-05 10:00:00.000 svc/v1: event {n} {i}"
                for i in range(120)
            ]
            with socket.create_connection(("127.0.0.1", server.ports["ingest"])) as sock:
                sock.sendall(("\n".join(lines) + "\n").encode())
            n += 1
            stop.wait(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield server
    finally:
        stop.set()
        feeder.join(5)
        server.kill()


def stats(server: ServerProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/stats"
    with urllib.request.urlopen(url, timeout=10) as reply:
        doc: dict[str, float] = orjson.loads(reply.read())
        return doc


def test_the_charts_draw_what_the_server_reports(flowing: ServerProcess, page: Page) -> None:
    page.goto(f"http://127.0.0.1:{flowing.ports['http']}/#charts")
    # Rates need two readings of /metrics, 2 s apart.
    page.wait_for_selector("[data-chart=levels] .now:has-text('ev/s')", timeout=15_000)
    page.wait_for_timeout(2500)  # a few points on every chart
    for chart in CHARTS:
        canvas = page.locator(f"[data-chart={chart}] canvas")
        assert canvas.count() == 1, chart
        painted = canvas.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
        )
        assert painted > 100, chart
    rate = float(page.locator("[data-chart=levels] .now").inner_text().split()[0])
    assert rate > 100  # about 1,200 events/s are sent
    error_pct = float(page.locator("[data-chart=errors] .now").inner_text().split()[0])
    assert abs(error_pct - 100 / 6) < 2
    queue, capacity = page.locator("[data-chart=queue] .now").inner_text().split(" / ")
    assert int(capacity) == 50_000 and 0 <= int(queue) <= stats(flowing)["QueuePeakEvents"]
    assert page.locator("[data-chart=sinks] td").all_inner_texts() == ["up", "up"]  # memory, file
    lag = page.locator("[data-chart=lag] .now").inner_text()
    assert lag.isdigit() and int(lag) <= stats(flowing)["Total"]
    save_screenshot(page, "dashboard-charts")


@pytest.mark.parametrize("color_scheme", ["dark"])
def test_the_charts_follow_the_dark_theme(flowing: ServerProcess, page: Page) -> None:
    page.goto(f"http://127.0.0.1:{flowing.ports['http']}/#charts")
    page.wait_for_selector("[data-chart=levels] .now:has-text('ev/s')", timeout=15_000)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 19, 24)"
    save_screenshot(page, "dashboard-charts-dark")
