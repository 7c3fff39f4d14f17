"""The browser chain end to end: Debian's Chromium, driven by Playwright, against a real
server's HTTP front end. Fast (a few seconds, most of it launching the browser); the
browser tests proper build on the same fixtures (tests/browser_helpers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from logcaster.testing import ServerProcess
from tests.browser_helpers import save_screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_openapi_document_opens_in_chromium(server: ServerProcess, page: Page) -> None:
    url = f"http://127.0.0.1:{server.ports['http']}/api/v1/openapi.json"
    response = page.goto(url)
    assert response is not None and response.ok, response
    # Chromium shows a JSON document as text in a <pre>: the page's text is the body.
    assert '"openapi"' in page.inner_text("body")
    assert save_screenshot(page, "browser-smoke-openapi").stat().st_size > 0
