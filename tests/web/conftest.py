"""Fixtures for the site's browser tests: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture(scope="session")
def browser():
    from playwright import sync_api  # in the [test] extra: missing is a failure, not a skip

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser`")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page with everything it logged and fetched, for assertions after a flow."""

    page: object
    console: list[str] = field(default_factory=list)
    responses: list[tuple[int, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def csp_errors(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def errors(self) -> list[str]:
        return [m for m in self.console if m.startswith("error")]

    def tiles(self) -> list[tuple[int, str]]:
        """Image API tile requests: a region that is not 'full' (IIIF Image API 3.0 §4.1)."""
        return [
            (s, u)
            for s, u in self.responses
            if re.search(r"/iiif/3/[^/]+/(?!full/)[^/]+/[^/]+/0/default\.jpg", u)
        ]


@pytest.fixture
def open_page(browser, tmp_path):
    """open_page(viewport, lang='ja') -> Watched; contexts are closed after the test."""
    contexts = []

    def make(viewport=DESKTOP, lang="ja") -> Watched:
        context = browser.new_context(
            viewport=viewport,
            locale="ja-JP" if lang == "ja" else "en-US",
            extra_http_headers={"Accept-Language": lang},
        )
        contexts.append(context)
        page = context.new_page()
        watched = Watched(page)
        page.on("console", lambda m: watched.console.append(f"{m.type}: {m.text}"))
        page.on("response", lambda r: watched.responses.append((r.status, r.url)))
        page.on("requestfailed", lambda r: watched.failed.append(r.url))
        return watched

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go (inside pytest's tmp dir)."""
    path = tmp_path / "screenshots"
    path.mkdir()
    return path


@pytest.fixture
def serve(servers):
    """serve(home) -> base URL of a real `archive serve` on another archive home."""
    procs = []

    def start(home: Path) -> str:
        proc, base = servers.start_server(home, workers=1)
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        servers.stop_server(proc)
