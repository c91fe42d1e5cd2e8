"""Playwright driving Debian's Chromium (``apt-get install chromium``; Playwright's own browser
download is never used) against a live gateway, with every page's console errors collected."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Response

CHROMIUM = os.environ.get("IMAGEGATE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("IMAGEGATE_SCREENSHOTS_DIR")
"""Where the README's screenshots go when set (``docs``); otherwise a temp dir."""


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


@dataclass
class Watched:
    """A page whose console errors, page errors and failed requests are kept."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def goto(self, path: str) -> Response:
        response = self.page.goto(self.base_url + path)
        assert response is not None
        return response

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        for response in self.responses:
            if response.request.resource_type == "document":
                csp = response.headers.get("content-security-policy", "")
                assert "script-src 'self'" in csp, response.url
                assert "frame-ancestors 'none'" in csp, response.url


def watch(context: BrowserContext, base_url: str) -> Watched:
    page = context.new_page()
    watched = Watched(page, base_url)
    page.on(
        "console",
        lambda message: (
            watched.errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    page.on(
        "response",
        lambda response: (
            watched.responses.append(response)
            if response.url.startswith(base_url + "/console")
            else None
        ),
    )
    return watched


def sign_in(watched: Watched, key: str) -> None:
    page = watched.page
    watched.goto("/console")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/playground")


def screenshot(page: Page, name: str, tmp_dir: Path) -> Path:
    target = Path(SCREENSHOTS) if SCREENSHOTS else tmp_dir
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
