"""The site in a real headless Chromium against a real `archive serve` (gunicorn)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
MULTI_IMAGE = "noh-museum_N-12"  # a sample record with two images


def wait_viewer(page) -> None:
    """Until OpenSeadragon has opened the image and drawn every tile it wants."""
    page.wait_for_function(
        "() => window.archiveViewer && window.archiveViewer.world.getItemCount() > 0"
        " && window.archiveViewer.world.getItemAt(0).getFullyLoaded()",
        timeout=20_000,
    )


def settle(page) -> None:
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_object_page_viewer_loads_deep_zoom_tiles(live_server, open_page, shots, viewport):
    w = open_page(viewport)
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    w.page.click("[data-action=zoom-in]")
    w.page.click("[data-action=zoom-in]")
    settle(w.page)
    w.page.screenshot(path=shots / f"object-{viewport['width']}.png", full_page=True)
    info = [(s, u) for s, u in w.responses if u.endswith("/info.json")]
    assert info and all(s == 200 for s, _ in info), info
    tiles = w.tiles()
    assert tiles, f"no deep-zoom tiles requested: {w.responses}"
    assert all(status == 200 for status, _ in tiles), [t for t in tiles if t[0] != 200]
    assert not w.csp_errors(), w.csp_errors()
    assert not w.failed, w.failed
