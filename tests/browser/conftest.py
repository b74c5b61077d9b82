"""Browser fixtures: Debian's chromium driven by Playwright (async API: the suite's tests run in
pytest-asyncio's loop) against a real `paymod serve` on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from e2e.support import Server, running_server

CHROMIUM = os.environ.get("PAYMOD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
#: Set by `python -m browser.screenshots`: where the flows save the docs' screenshots.
SCREENSHOTS = os.environ.get("PAYMOD_DASHBOARD_SCREENSHOTS")
if SCREENSHOTS:
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        message = f"no chromium at {CHROMIUM}: `apt-get install chromium` (./dev test does when it can)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(database_url, tmp_path) as running:
        yield running


@pytest.fixture
async def context(browser: Browser, server: Server) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(base_url=server.base_url, viewport=DESKTOP, locale="en-US")
    # Offline, as an operator's machine without internet: anything but the server itself fails.
    await opened.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(server.base_url) else route.abort(),
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def shot(page: Page, name: str) -> None:
    """Saves a screenshot for docs/dashboard.md when asked to (see tests/browser/screenshots.py)."""
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
