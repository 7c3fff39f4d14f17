"""Browser tests: pytest fixtures that drive Debian's Chromium through Playwright.

The browser is Debian's `chromium` package (scripts/test-deps installs it), launched by
its path: Playwright's own browser download (`playwright install`) is never used, as
it fetches from outside the package registries. One browser per test module (launching
it costs most of a browser test's time); each test gets its own context and page, so
cookies, storage and colour scheme never leak between tests.

Registered for every test through `pytest_plugins` in tests/conftest.py:

    def test_x(page: Page) -> None: ...

    @pytest.mark.parametrize("color_scheme", ["dark"])  # overrides the fixture below
    def test_y(page: Page) -> None: ...

Playwright's sync API cannot run inside a running asyncio loop; the suite's tests are
plain sync functions (servers run in child processes), so these fixtures are too. The
reverse also holds, and is why the browser is per module, not per session: while
Playwright is started, its own event loop stays marked as the thread's running loop
between calls (playwright/_impl/_greenlets.py, wait_for_future), so `asyncio.run()`
in any test raises "cannot be called from a running event loop" until it stops. A
session-wide browser broke every later test that uses asyncio.run (tests/
test_components.py and 16 other modules). So: browser tests live in modules of their
own (tests/test_browser_*.py) and never call asyncio.run themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from tests.sender_helpers import tool

if TYPE_CHECKING:
    # Only for annotations: the fixtures import Playwright themselves, so a missing
    # package is a skip (or, under CI, a failure) in browser tests, not an import
    # error that stops every test.
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")  # Debian's launcher (sources /etc/chromium.d)
VIEWPORT_WIDTH = 1280
VIEWPORT_HEIGHT = 800
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # in .gitignore

ColorScheme = Literal["light", "dark", "no-preference"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for one test module, closed (with Playwright) at its end:
    module scope, not session, so asyncio.run works again in the modules after it."""
    executable = tool(str(CHROMIUM))  # shutil.which takes a path: exactly Debian's
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "the playwright package is missing: run make install-dev"
        if os.environ.get("CI") == "true":  # as tests/sender_helpers.py's tool()
            pytest.fail(why)
        pytest.skip(why)
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root, and Chromium refuses to start its
        # sandbox as root.
        launched = p.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def color_scheme() -> ColorScheme:
    """The page's prefers-color-scheme; a test picks another with
    `@pytest.mark.parametrize("color_scheme", ["dark"])`."""
    return "light"


@pytest.fixture
def page(browser: Browser, color_scheme: ColorScheme) -> Iterator[Page]:
    """A fresh page in its own context (1280x800), closed after the test."""
    context = browser.new_context(
        viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT}, color_scheme=color_scheme
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def artifacts_dir() -> Path:
    """Where screenshots go: $LOGCASTER_ARTIFACTS (CI may collect it), else tests/artifacts."""
    configured = os.environ.get("LOGCASTER_ARTIFACTS")
    return Path(configured) if configured else ARTIFACTS


def save_screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of `page` as `<artifacts>/<name>.png` and return its path."""
    directory = artifacts_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name if name.endswith(".png") else f"{name}.png")
    page.screenshot(path=path, full_page=full_page)
    return path
