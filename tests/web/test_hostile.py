"""Hostile metadata (script tags, quotes, javascript: URLs) is shown as text everywhere.

A collection with such a record is ingested through the real CLI, then its pages
are read both as HTML (nothing executable appears) and in Chromium (nothing runs,
the text reads as the curator wrote it).
"""

from __future__ import annotations

import csv
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pyvips
from click.testing import CliRunner

from archive.cli import cli
from archive.config import Config
from archive.records import record_id

TITLE = '<script>alert("title")</script></script><script>alert(1)</script>'
CREATOR = "\"' onmouseover='alert(2)' x=\""
DESCRIPTION = "<img src=x onerror=alert(3)> & <b>bold</b> \"quoted\" 'single'"
LINK = "javascript:alert(4)"
KEYWORD = '"><svg onload=alert(5)>'
HOSTILE_ID = record_id("evil-museum", "E-1")


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    folder = root / "evil"
    (folder / "images").mkdir(parents=True)
    pyvips.Image.xyz(320, 240).extract_band(0).cast("uchar").bandjoin([0, 0]).write_to_file(
        str(folder / "images" / "e1.jpg")
    )
    (folder / "institution.toml").write_text(
        'id = "evil-museum"\n'
        'name = { ja = "<i>悪意</i>美術館", en = "Evil \\"Museum\\" <b>" }\n'
        'homepage = "https://example.org/?q=<script>"\n'
        'rights = "http://rightsstatements.org/vocab/InC/1.0/"\n'
        '[records]\npath = "records.csv"\n'
        '[fields]\nid = "id"\ntitle = "title"\ncreator = "creator"\n'
        'description = "description"\nkeywords = "keywords"\nimages = "images"\n',
        encoding="utf-8",
    )
    with open(folder / "records.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "title", "creator", "description", "keywords", "images", "参考URL"])
        writer.writerow(["E-1", TITLE, CREATOR, DESCRIPTION, KEYWORD, "images/e1.jpg", LINK])
    home = root / "home"
    result = CliRunner().invoke(
        cli, ["--home", str(home), "ingest", str(folder)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture(scope="module")
def hostile_client(hostile_home):
    from web import create_app

    app = create_app(Config.load(hostile_home, environ={}))
    yield app.test_client()
    app.extensions["archive"].close()


PAGES = [
    "/",
    f"/object/{HOSTILE_ID}",
    "/search?q=alert",
    "/search",
    "/institution/evil-museum",
    f"/compare?id={HOSTILE_ID}&open=1",
    "/about",
]


class Tags(HTMLParser):
    """Every element and attribute the browser would build from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_hostile_metadata_is_escaped_in_html(hostile_client, path, lang):
    resp = hostile_client.get(path, headers={"Accept-Language": lang})
    assert resp.status_code == 200
    parser = Tags()
    parser.feed(resp.get_data(as_text=True))
    for tag, attrs in parser.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert tag not in ("i", "b", "svg") or "aria-hidden" in attrs or "role" in attrs, tag
        assert tag != "img" or attrs.get("src") != "x"
        for name in ("href", "src", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:text")), (tag, attrs)
        if tag == "script":  # only our own files and non-executed JSON data islands
            assert attrs.get("src", "").startswith("/") or attrs.get("type") in (
                "application/ld+json",
                "application/json",
            ), attrs


def test_hostile_text_reads_as_written_on_the_object_page(hostile_client):
    html = hostile_client.get(f"/object/{HOSTILE_ID}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html
    assert "javascript:alert(4)" in html  # shown, as text, never as a link
    assert "\\u003c/script\\u003e" in html  # JSON-LD cannot close its script element


@pytest.mark.browser
@pytest.mark.slow
def test_hostile_metadata_runs_nothing_in_a_browser(hostile_home, open_page, serve):
    base = serve(hostile_home)
    for path in PAGES:
        w = open_page()
        dialogs: list[str] = []
        w.page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
        w.page.goto(base + path)
        w.page.wait_for_load_state("networkidle")
        assert dialogs == [], (path, dialogs)
        assert w.page.locator("svg[onload], [onmouseover], [onerror]").count() == 0
        # Mirador (on /compare) renders manifest values as HTML: the manifest escapes
        # values that look like HTML (iiif.presentation.plain), so they show as text there too.
        assert w.page.locator("img[src=x]").count() == 0, path
        assert not w.csp_errors(), (path, w.csp_errors())
    w = open_page()
    w.page.goto(f"{base}/object/{HOSTILE_ID}")
    assert w.page.inner_text("h1") == TITLE
    assert DESCRIPTION in w.page.inner_text(".metadata")
    assert LINK in w.page.inner_text(".metadata")
    assert w.page.locator("a[href^='javascript:']").count() == 0
