"""The dashboard's live tail in Debian's Chromium (issue 20): events sent over TCP
appear, scrolling up pauses without moving the view, filters apply server side, the
detail panel filters on a click, hostile event text stays text, and sign-in."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from logcaster.testing import ServerProcess, start_server
from tests.browser_helpers import save_screenshot
from tests.security_helpers import start_auth_server

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page

LIVE_MS = 1000  # issue 20: sent events show in the live tail within 1 s


@pytest.fixture(scope="module")
def dash() -> Iterator[ServerProcess]:
    server = start_server()
    try:
        yield server
    finally:
        server.kill()


def url(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.ports['http']}/"


def send(server: ServerProcess, lines: list[str], token: str | None = None) -> None:
    """Lines over the TCP ingest port (after an AUTH line when the server asks for one)."""
    head = f"#LOGCASTER AUTH {token}\n" if token else ""
    with socket.create_connection(("127.0.0.1", server.ports["ingest"])) as sock:
        sock.sendall((head + "\n".join(lines) + "\n").encode())


def line(level: str, service: str, text: str, n: int = 0) -> str:
    return f"[{level}] 2026-12-05 10:00:{n % 60:02d}.000 {service}/v1 pod/{service}-1: {text}"


def open_live(page: Page, server: ServerProcess) -> None:
    page.goto(url(server))
    page.wait_for_selector(".state:text('live')")


def rows(page: Page) -> list[str]:
    return page.locator("#view-live .row").all_inner_texts()


def test_events_sent_over_tcp_appear_within_a_second(dash: ServerProcess, page: Page) -> None:
    open_live(page, dash)
    mark = uuid.uuid4().hex[:8]
    send(
        dash,
        [
            line(lv, "billing", f"paid {mark} #{i}", i)
            for i, lv in enumerate(("INFO", "WARN", "ERROR"))
        ],
    )
    page.wait_for_selector(f".row.lv-error:has-text('paid {mark} #2')", timeout=LIVE_MS)
    assert page.locator(f".row.lv-warn:has-text('{mark}') .c-level").inner_text() == "WARN"
    save_screenshot(page, "dashboard-live")


def test_scrolling_up_pauses_and_resume_goes_on(dash: ServerProcess, page: Page) -> None:
    open_live(page, dash)
    mark = uuid.uuid4().hex[:8]
    send(dash, [line("INFO", "api", f"first {mark} {i:03d}", i) for i in range(300)])
    page.wait_for_selector(f".row:has-text('first {mark} 299')")
    page.locator("#view-live .vlist").evaluate("n => { n.scrollTop = 0; }")
    page.wait_for_selector(".badge:visible")
    top = rows(page)[:5]
    send(dash, [line("INFO", "api", f"later {mark} {i:03d}", i) for i in range(50)])
    page.wait_for_selector(".badge:has-text('Paused, 50 new')")
    assert rows(page)[:5] == top  # the view did not move
    assert not page.locator(f".row:has-text('later {mark}')").count()
    page.click(".badge")
    page.wait_for_selector(f".row:has-text('later {mark} 049')")
    assert page.locator(".badge").is_hidden()


def test_level_and_service_filters_apply_server_side(dash: ServerProcess, page: Page) -> None:
    open_live(page, dash)
    page.click("#view-live button.level:text('ERROR')")
    page.fill("#view-live .filter-service", "checkout")
    page.wait_for_timeout(400)  # the typing pause before a text filter applies
    page.wait_for_selector(".state:text('live')")
    mark = uuid.uuid4().hex[:8]
    send(
        dash,
        [
            line("INFO", "checkout", f"{mark} info"),
            line("ERROR", "search", f"{mark} other service"),
            line("ERROR", "checkout", f"{mark} wanted"),
        ],
    )
    page.wait_for_selector(f".row:has-text('{mark} wanted')")
    assert [r for r in rows(page) if mark in r] == [r for r in rows(page) if f"{mark} wanted" in r]


def test_the_detail_shows_every_field_and_a_click_filters(dash: ServerProcess, page: Page) -> None:
    open_live(page, dash)
    mark = uuid.uuid4().hex[:8]
    send(dash, [line("WARN", "ledger", f"slow {mark} request_id=req-{mark} took_ms=950")])
    page.click(f".row:has-text('slow {mark}')")
    detail = page.locator("#detail")
    detail.wait_for()
    assert detail.locator("th:text('request_id')").count() == 1
    assert f"slow {mark}" in detail.locator("pre.body").inner_text()
    save_screenshot(page, "dashboard-detail")
    detail.locator(f"button.value:text('req-{mark}')").click()
    page.wait_for_selector(f".chip:has-text('request_id=req-{mark}')")
    page.keyboard.press("Escape")
    page.wait_for_selector(".state:text('live')")
    send(
        dash,
        [
            line("WARN", "ledger", f"other {mark}"),
            line("INFO", "ledger", f"again request_id=req-{mark}"),
        ],
    )
    page.wait_for_selector(f".row:has-text('again request_id=req-{mark}')")
    assert not page.locator(f".row:has-text('other {mark}')").count()


def test_hostile_event_text_is_shown_as_text_and_runs_nothing(
    dash: ServerProcess, page: Page
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # alert() from a script that ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_live(page, dash)
    hostile = [
        "<script>alert('script')</script> xss-1",
        "<img src=x onerror=\"alert('img')\"> xss-2",
        "\x1b[31mred\x1b[0m xss-3",
        "\u202eevil.exe xss-4",
    ]
    send(dash, hostile)
    page.wait_for_selector(".row:has-text('xss-4')")
    texts = page.locator("#view-live .c-message").all_inner_texts()
    assert any("<script>alert('script')</script> xss-1" in t for t in texts)
    assert any("<img src=x onerror=" in t for t in texts)
    assert any("\\x1b[31mred\\x1b[0m xss-3" in t for t in texts)
    assert any("\\u202eevil.exe xss-4" in t for t in texts)
    assert page.locator(".vlist img, .vlist script").count() == 0  # in any view
    page.click(".row:has-text('xss-2')")
    assert "onerror" in page.locator("#detail pre.body").inner_text()
    assert page.locator("#detail img").count() == 0
    page.wait_for_timeout(200)
    assert dialogs == []


def test_sign_in_takes_a_viewer_token_and_refuses_others(tmp_path: Path, page: Page) -> None:
    auth = start_auth_server(tmp_path)
    try:
        page.goto(url(auth.server))
        page.wait_for_selector("#signin:visible")
        assert page.locator("#view-live").is_hidden()
        page.fill("#signin input[name=token]", "lc_nope_nope")
        page.click("#signin button")
        page.wait_for_selector("#notice:has-text('refused')")
        page.fill("#signin input[name=token]", auth.tokens["ingest"])
        page.click("#signin button")
        page.wait_for_selector("#notice:has-text('READ_LOGS')")
        page.goto(url(auth.server))
        page.fill("#signin input[name=token]", auth.tokens["viewer"])
        page.click("#signin button")
        page.wait_for_selector(".state:text('live')")
        assert page.evaluate("location.href").find("lc_") < 0  # never in the URL
        mark = uuid.uuid4().hex[:8]
        send(auth.server, [line("INFO", "auth", f"seen {mark}")], auth.tokens["ingest"])
        page.wait_for_selector(f".row:has-text('seen {mark}')")
    finally:
        auth.server.kill()


def test_a_phone_screen_shows_every_view_without_sideways_scrolling(
    dash: ServerProcess, page: Page
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    send(dash, [line("ERROR", "phone", "a long message " * 20)])
    for view in ("live", "search", "charts"):
        page.goto(url(dash) + f"#{view}")
        page.wait_for_selector(f"#view-{view}:visible")
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (view, overflow)
        save_screenshot(page, f"dashboard-phone-{view}")
