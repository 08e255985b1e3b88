"""The site in a real headless Chromium (Debian's) against a real `archive serve` (granian).

Every page type is screenshotted at phone and desktop width, checked by axe-core
(served by the site from node_modules) and must log no CSP violation; then the
flows people use: search, filter, page, switch language, zoom, share a view,
compare in Mirador, and the keyboard for the viewer and the facets.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
MULTI_IMAGE = "noh-museum_N-12"  # a sample record with two images
RIGHT_TO_LEFT = "literature-hall_L-003"  # a notebook in Japanese binding: right-to-left
PAGE_TYPES = {
    "home": "/",
    "search": "/search?q=%E8%83%BD",
    "object": f"/object/{MULTI_IMAGE}",
    "institution": "/institution/noh-museum",
    "compare": f"/compare?id={MULTI_IMAGE}&id=noh-museum_N-1&open=1",
    "about": "/about",
    "help": "/help",
    "not-found": "/object/noh-museum_NO-SUCH-THING",
}
AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def wait_viewer(page) -> None:
    """Until OpenSeadragon has opened the image and drawn every tile it wants."""
    page.wait_for_function(
        "() => window.archiveViewer && window.archiveViewer.world.getItemCount() > 0"
        " && window.archiveViewer.world.getItemAt(0).getFullyLoaded()",
        timeout=20_000,
    )


def wait_mirador_tiles(watched) -> None:
    watched.page.wait_for_function(
        "() => document.querySelectorAll('#mirador canvas').length > 0", timeout=30_000
    )
    watched.page.wait_for_load_state("networkidle")


def image_region(page) -> list[float]:
    return page.evaluate(
        "() => { const v = window.archiveViewer, r = v.world.getItemAt(0)"
        ".viewportToImageRectangle(v.viewport.getBounds(true));"
        " return [r.x, r.y, r.width, r.height]; }"
    )


def axe_violations(page, base: str) -> list[dict]:
    page.add_script_tag(url=f"{base}/vendor/axe-core/axe.min.js")
    return page.evaluate(AXE)


@pytest.mark.parametrize("name", list(PAGE_TYPES))
def test_page_type_screenshots_axe_and_csp(live_server, open_page, shots, name):
    path = PAGE_TYPES[name]
    for viewport in (PHONE, DESKTOP):
        w = open_page(viewport)
        resp = w.page.goto(live_server + path)
        assert resp.status == (404 if name == "not-found" else 200)
        if name == "object":
            wait_viewer(w.page)
        elif name == "compare":
            wait_mirador_tiles(w)
        w.page.wait_for_load_state("networkidle")
        w.page.screenshot(path=shots / f"{name}-{viewport['width']}.png", full_page=True)
        violations = axe_violations(w.page, live_server)
        assert violations == [], violations
        assert not w.csp_errors(), w.csp_errors()
        broken = [(s, u) for s, u in w.responses if s >= 400 and u != live_server + path]
        assert not broken, broken


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_object_viewer_loads_deep_zoom_tiles(live_server, open_page, shots, viewport):
    w = open_page(viewport)
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    w.page.click("[data-action=zoom-in]")
    w.page.click("[data-action=zoom-in]")
    w.page.wait_for_load_state("networkidle")
    wait_viewer(w.page)
    w.page.screenshot(path=shots / f"object-zoomed-{viewport['width']}.png")
    info = [(s, u) for s, u in w.responses if u.endswith("/info.json")]
    assert info and all(s == 200 for s, _ in info), info
    tiles = w.tiles()
    assert tiles, f"no deep-zoom tiles requested: {w.responses}"
    assert all(status == 200 for status, _ in tiles), [t for t in tiles if t[0] != 200]
    assert not w.csp_errors(), w.csp_errors()
    assert not w.failed, w.failed


def test_thumbnail_strip_switches_image(live_server, open_page):
    w = open_page(DESKTOP)
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    first = w.page.evaluate(
        "() => window.archiveViewer.world.getItemAt(0).source['@id'] ||"
        " window.archiveViewer.world.getItemAt(0).source.id"
    )
    w.page.click(".strip button[data-index='1']")
    w.page.wait_for_function("() => window.archiveViewer.currentPage() === 1")
    wait_viewer(w.page)
    second = w.page.evaluate(
        "() => window.archiveViewer.world.getItemAt(0).source['@id'] ||"
        " window.archiveViewer.world.getItemAt(0).source.id"
    )
    assert first != second
    assert w.page.get_attribute(".strip button[data-index='1']", "aria-current") == "true"
    assert "2" in w.page.inner_text("#viewer-page")


def test_right_to_left_books_page_leftwards(live_server, open_page):
    """viewingDirection right-to-left: page 1 at the right of the strip, "next" is the
    left-hand button; left-to-right objects stay as they were."""
    w = open_page(DESKTOP)

    def x(selector: str) -> float:
        return w.page.locator(selector).bounding_box()["x"]

    w.page.goto(f"{live_server}/object/{RIGHT_TO_LEFT}")
    wait_viewer(w.page)
    assert x(".strip button[data-index='0']") > x(".strip button[data-index='1']")
    assert x("[data-action='next']") < x("[data-action='prev']")
    w.page.click("[data-action='next']")
    w.page.wait_for_function("() => window.archiveViewer.currentPage() === 1")
    assert w.page.inner_text("#viewer-page").strip().startswith(("2", "画像 2", "Image 2"))

    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    assert x(".strip button[data-index='0']") < x(".strip button[data-index='1']")
    assert x("[data-action='next']") > x("[data-action='prev']")
    assert not w.csp_errors(), w.csp_errors()


def test_shared_view_link_reopens_the_same_region(live_server, open_page):
    w = open_page(DESKTOP)
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    w.page.click(".strip button[data-index='1']")
    w.page.wait_for_function("() => window.archiveViewer.currentPage() === 1")
    wait_viewer(w.page)
    # Zoom well inside the image, off centre, so the view is a region of it on every side.
    w.page.evaluate(
        "() => { const v = window.archiveViewer, s = v.world.getItemAt(0).getContentSize();"
        " v.viewport.zoomTo(v.viewport.getZoom() * 6,"
        " new OpenSeadragon.Point(0.4, 0.6 * s.y / s.x), true); }"
    )
    w.page.wait_for_function(
        "() => document.getElementById('share-url').value.includes('iiif-content=')"
    )
    w.page.wait_for_timeout(300)  # the share link follows 'animation-finish'
    shared = w.page.input_value("#share-url")
    before = image_region(w.page)
    assert "iiif-content" in parse_qs(urlparse(shared).query)

    again = open_page(DESKTOP)
    again.page.goto(shared.replace(urlparse(shared).netloc, urlparse(live_server).netloc))
    wait_viewer(again.page)
    assert again.page.evaluate("() => window.archiveViewer.currentPage()") == 1
    after = image_region(again.page)
    width = again.page.evaluate("() => window.archiveViewer.world.getItemAt(0).getContentSize().x")
    assert all(abs(a - b) <= 0.02 * width for a, b in zip(before, after, strict=True)), (
        before,
        after,
    )


def test_viewer_from_the_keyboard(live_server, open_page):
    w = open_page(DESKTOP)
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    wait_viewer(w.page)
    zoom = w.page.evaluate("() => window.archiveViewer.viewport.getZoom()")
    w.page.focus(".openseadragon-canvas")
    assert w.page.evaluate("() => document.activeElement.getAttribute('role')") == "application"
    w.page.keyboard.down("Equal")  # OpenSeadragon zooms while the key is held
    w.page.wait_for_timeout(400)
    w.page.keyboard.up("Equal")
    w.page.wait_for_function(f"() => window.archiveViewer.viewport.getZoom() > {zoom} * 1.05")
    w.page.keyboard.press("ArrowRight")
    w.page.keyboard.press("r")
    w.page.wait_for_function("() => window.archiveViewer.viewport.getRotation() === 90")
    w.page.keyboard.press("0")
    # The toolbar is plain buttons: Tab reaches them and Enter works them.
    w.page.focus("[data-action=rotate]")
    w.page.keyboard.press("Enter")
    w.page.wait_for_function("() => window.archiveViewer.viewport.getRotation() === 180")
    w.page.focus("[data-action=fullscreen]")
    w.page.keyboard.press("Enter")
    w.page.wait_for_function(
        "() => document.fullscreenElement && document.fullscreenElement.id === 'viewer-frame'"
    )
    assert w.page.get_attribute("[data-action=fullscreen]", "aria-pressed") == "true"


def test_search_filter_page_and_back(live_server, open_page, shots):
    w = open_page(DESKTOP, lang="ja")
    page = w.page
    page.goto(live_server + "/")
    page.fill("#q", "")
    page.click(".search-box button")
    page.wait_for_url(re.compile(r"/search\?q=$|/search$|/search\?q="))
    total_all = page.inner_text("#count")
    # Filter by institution from the facet, with the keyboard.
    link = page.locator("#facet-institution ~ ul a", has_text="金沢能楽美術館").first
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"institution=noh-museum"))
    assert page.locator(".chip-remove").count() == 1
    assert page.inner_text("#count") != total_all
    ids = page.eval_on_selector_all(".cards a", "els => els.map(e => e.getAttribute('href'))")
    assert ids and all(i.startswith("/object/noh-museum") for i in ids)
    # Remove the filter again, then page through everything.
    page.click(".chip-remove")
    page.wait_for_url(re.compile(r"/search\??(q=)?$"))
    page.click(".pagination a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    assert page.locator(".pagination a[aria-current=page]").inner_text() == "2"
    page2 = page.eval_on_selector_all(".cards a", "els => els.map(e => e.getAttribute('href'))")
    page.go_back()
    page.wait_for_url(re.compile(r"/search\??(q=)?$"))
    page1 = page.eval_on_selector_all(".cards a", "els => els.map(e => e.getAttribute('href'))")
    assert set(page1).isdisjoint(page2)
    # List view and a sort order are in the URL too.
    page.click(".view-switch a >> nth=1")
    page.wait_for_url(re.compile(r"view=list"))
    page.select_option("select[name=sort]", "date_asc")
    page.wait_for_url(re.compile(r"sort=date_asc"))
    assert "view=list" in page.url
    page.screenshot(path=shots / "search-list.png", full_page=True)
    assert not w.csp_errors(), w.csp_errors()


def test_result_navigation_previous_and_next(live_server, open_page):
    w = open_page(DESKTOP)
    w.page.goto(live_server + "/search?institution=noh-museum&sort=date_asc")
    first = w.page.locator(".cards a").first.get_attribute("href")
    second = w.page.locator(".cards a").nth(1).get_attribute("href")
    w.page.click(".cards a >> nth=0")
    w.page.wait_for_url(re.compile(r"/object/"))
    assert w.page.locator(".result-nav a[rel=prev]").count() == 0
    w.page.click(".result-nav a[rel=next]")
    w.page.wait_for_url(re.compile(r"/object/"))
    assert urlparse(w.page.url).path == second.split("?")[0] != first.split("?")[0]
    w.page.click(".result-nav a >> nth=0")  # back to the results, same state
    w.page.wait_for_url(re.compile(r"/search\?institution=noh-museum&sort=date_asc"))


def test_language_switch_sticks_across_pages(live_server, open_page):
    w = open_page(PHONE, lang="ja")
    w.page.goto(f"{live_server}/object/{MULTI_IMAGE}")
    assert w.page.get_attribute("html", "lang") == "ja"
    ja_title = w.page.inner_text("h1")
    w.page.click(".lang-switch")
    w.page.wait_for_url(re.compile(r"lang=en"))
    assert w.page.get_attribute("html", "lang") == "en"
    assert w.page.inner_text("h1") != ja_title
    assert w.page.inner_text("#meta-h") == "Details"
    w.page.click(".site-nav a[href='/search']")
    w.page.wait_for_url(re.compile(r"/search"))
    assert w.page.get_attribute("html", "lang") == "en"
    w.page.click(".lang-switch")
    w.page.wait_for_url(re.compile(r"lang=ja"))
    assert w.page.get_attribute("html", "lang") == "ja"


def test_mirador_opens_a_manifest_and_renders_its_first_canvas_from_our_tiles(
    live_server, open_page, shots
):
    w = open_page(DESKTOP)
    w.page.goto(f"{live_server}/compare?id={MULTI_IMAGE}&open=1")
    wait_mirador_tiles(w)
    w.page.wait_for_function(
        "() => [...document.querySelectorAll('#mirador canvas')].some(c => c.width > 0)"
    )
    w.page.screenshot(path=shots / "mirador.png")
    manifests = [(s, u) for s, u in w.responses if f"/iiif/3/manifest/{MULTI_IMAGE}" in u]
    assert manifests and all(s == 200 for s, _ in manifests)
    canvas_one = [u for s, u in w.responses if s == 200 and "/info.json" in u]
    assert canvas_one, "Mirador did not fetch the first canvas's image service"
    tiles = w.tiles()
    assert tiles and all(s == 200 for s, _ in tiles), tiles
    assert not w.csp_errors(), w.csp_errors()
