"""The public pages through Flask's test client on the ingested sample archive."""

from __future__ import annotations

import json
import re

import pytest

from archive.records import RECORD_ID_RE

PAGES = [
    "/",
    "/search",
    "/search?q=能面",
    "/about",
    "/help",
    "/compare",
    "/institution/noh-museum",
    "/object/noh-museum_N-12",
]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_renders_in_both_languages(client, path, lang):
    resp = client.get(path, headers={"Accept-Language": lang})
    assert resp.status_code == 200, resp.data[:500]
    html = resp.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    other = "en" if lang == "ja" else "ja"
    assert re.search(rf'<a class="lang-switch" href="[^"]*lang={other}"', html)
    assert 'hreflang="ja"' in html and 'hreflang="en"' in html and 'hreflang="x-default"' in html
    assert '<link rel="canonical"' in html
    # No UI key leaks untranslated (translate() shows a missing key as itself).
    assert not re.search(r">\s*(?:nav|results|object|facet|home|inst|error)\.[a-z_]+\s*<", html)


def test_security_headers_on_pages(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "object-src 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_language_query_sets_cookie_and_cookie_wins_over_browser(client):
    resp = client.get("/?lang=en", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in resp.get_data(as_text=True)
    assert "lang=en" in resp.headers["Set-Cookie"]
    again = client.get("/about", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in again.get_data(as_text=True)


def test_accept_language_picks_english_and_defaults_to_japanese(app):
    fresh = app.test_client()
    html = fresh.get("/", headers={"Accept-Language": "fr, en-GB;q=0.8, ja;q=0.5"}).get_data(True)
    assert '<html lang="en">' in html
    assert '<html lang="ja">' in app.test_client().get("/").get_data(True)


def test_unknown_page_is_a_helpful_404(client):
    resp = client.get("/object/noh-museum_NO-SUCH-MASK", headers={"Accept-Language": "ja"})
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "ページが見つかりません" in html
    assert 'action="/search"' in html  # a search box
    assert "/search?q=NO%20SUCH%20MASK" in html  # a search for what they were after
    assert "/institution/noh-museum" in html
    assert "Traceback" not in html


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("size=7", "size"),
        ("sort=price", "sort"),
        ("view=table", "view"),
        ("year_from=1900&year_to=1800", "year_from"),
        ("year_to=x", "year_to"),
    ],
)
def test_bad_search_parameters_are_400_naming_the_parameter(client, query, parameter):
    resp = client.get(f"/search?{query}")
    assert resp.status_code == 400
    assert parameter in resp.get_data(as_text=True)


def test_object_page_has_viewer_metadata_and_iiif(client):
    html = client.get("/object/noh-museum_N-12", headers={"Accept-Language": "ja"}).get_data(True)
    assert 'id="osd"' in html
    assert "/iiif/3/noh-museum_N-12~" in html and "/info.json" in html
    assert "/iiif/3/manifest/noh-museum_N-12" in html
    assert "application/ld+json" in html and "og:image" in html
    assert "/vendor/openseadragon/openseadragon.min.js" in html


def test_object_page_lists_similar_public_objects(client, app):
    page = client.get("/object/noh-museum_N-12", headers={"Accept-Language": "en"})
    html = page.get_data(True)
    assert "Similar objects" in html
    near = app.extensions["archive"].search.similar("noh-museum_N-12", 6)
    assert near and f'href="/object/{near[0]}' in html


def test_search_lists_public_records_with_institution_facet(client, app):
    html = client.get("/search?institution=noh-museum").get_data(True)
    ids = set(re.findall(r'href="/object/([^"?]+)', html))
    assert ids and all(RECORD_ID_RE.match(i) and i.startswith("noh-museum") for i in ids)
    assert 'aria-current="true" class="on"' in html  # the chosen facet value shows as on


def test_vendor_route_serves_only_allow_listed_files(client):
    ok = client.get("/vendor/openseadragon/openseadragon.min.js")
    assert ok.status_code == 200 and ok.mimetype == "text/javascript"
    assert client.get("/vendor/openseadragon/package.json").status_code == 404
    assert client.get("/vendor/openseadragon/..%2fpackage.json").status_code == 404
    assert client.get("/vendor/left-pad/index.js").status_code == 404


def test_static_files_are_versioned_compressed_and_cached_for_a_year(client):
    html = client.get("/").get_data(as_text=True)
    css = re.search(r'href="(/static/site\.css\?v=\w+)"', html).group(1)
    resp = client.get(css, headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    assert resp.cache_control.max_age == 31_536_000 and not resp.cache_control.no_cache
    assert client.get(css, headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304


def test_pages_are_gzipped_when_asked(client):
    resp = client.get("/search", headers={"Accept-Encoding": "gzip, br"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in resp.headers["Vary"]


# --- findable: sitemap, JSON-LD, Open Graph, canonical -------------------------------------------
def _non_public_ids(app) -> list[str]:
    catalog = app.extensions["archive"].catalog
    public = set(catalog.record_ids(public_only=True))
    hidden = [i for i in catalog.record_ids(public_only=False) if i not in public]
    assert hidden, "the sample collections have a non-public record"
    return hidden


def test_sitemap_lists_every_public_object_and_nothing_else(client, app):
    xml = client.get("/sitemap.xml").get_data(as_text=True)
    listed = set(re.findall(r"<loc>[^<]*/object/([^<]+)</loc>", xml))
    assert listed == set(app.extensions["archive"].catalog.record_ids())
    assert listed.isdisjoint(_non_public_ids(app))
    assert "/institution/noh-museum</loc>" in xml
    assert "Sitemap:" in client.get("/robots.txt").get_data(as_text=True)


def test_non_public_records_are_404_and_never_listed(client, app):
    for rid in _non_public_ids(app):
        assert client.get(f"/object/{rid}").status_code == 404
        assert rid not in client.get("/search?size=100").get_data(as_text=True)
        compare = client.get(f"/compare?id={rid}").get_data(as_text=True)
        assert f"/object/{rid}" not in compare and f"manifest/{rid}" not in compare


def test_object_page_json_ld_open_graph_and_canonical(client):
    html = client.get("/object/noh-museum_N-12?lang=en").get_data(as_text=True)
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    data = json.loads(block.group(1))
    assert data["@context"] == "https://schema.org" and data["@type"] == "CreativeWork"
    assert data["url"].endswith("/object/noh-museum_N-12") and data["name"]
    assert data["license"].startswith("http") and data["image"][0].endswith("/default.jpg")
    og = re.search(r'<meta property="og:image" content="([^"]+)"', html).group(1)
    assert re.match(r"https?://[^/]+/iiif/3/noh-museum_N-12~[0-9a-f]{10}\.[0-9a-f]{10}/full/", og)
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', html).group(1)
    assert canonical.endswith("/object/noh-museum_N-12?lang=en")


def test_public_url_setting_makes_absolute_urls(ingested_home):
    from archive.config import Config
    from web import create_app

    app = create_app(
        Config.load(ingested_home, environ={}).replace(public_url="https://museum.example.jp")
    )
    try:
        html = app.test_client().get("/object/noh-museum_N-12").get_data(as_text=True)
    finally:
        app.extensions["archive"].close()
    assert 'href="https://museum.example.jp/object/noh-museum_N-12?lang=ja"' in html
    assert "https://museum.example.jp/iiif/3/manifest/noh-museum_N-12" in html


# --- compare, citation, downloads --------------------------------------------------------------
def test_compare_list_lives_in_a_cookie(app):
    c = app.test_client()
    resp = c.get("/compare?id=noh-museum_N-12&id=noh-museum_N-1&id=bad%20id")
    assert "compare=noh-museum_N-12.noh-museum_N-1;" in resp.headers["Set-Cookie"]
    html = c.get("/object/noh-museum_N-2").get_data(as_text=True)
    assert "/compare?id=noh-museum_N-12&amp;id=noh-museum_N-1&amp;id=noh-museum_N-2" in html
    page = c.get("/compare").get_data(as_text=True)
    assert page.count('class="chip"') == 2 and "mirador.min.js" in page
    assert "'unsafe-inline'" in c.get("/compare").headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in c.get("/").headers["Content-Security-Policy"]


def test_object_page_cites_and_offers_downloads_the_rights_allow(client):
    html = client.get("/object/noh-museum_N-12", headers={"Accept-Language": "ja"}).get_data(True)
    assert "閲覧）" in html and "@misc{noh-museum_N-12" in html
    # The Noh museum's records are In Copyright: only a small size is offered.
    sizes = re.findall(r'/full/([^/]+)/0/default\.jpg" download', html)
    assert sizes and all(s == "!800,800" or re.match(r"!?\d+,\d+", s) for s in sizes)
    assert '/full/max/0/default.jpg" download' not in html


# --- search down ---------------------------------------------------------------------------------
def test_search_down_is_a_503_page_and_the_rest_still_works(ingested_home):
    from archive.config import Config
    from web import create_app

    config = Config.load(ingested_home, environ={}).replace(
        search_backend="elasticsearch", search_url="http://127.0.0.1:9", search_timeout=1.0
    )
    app = create_app(config)
    try:
        c = app.test_client()
        resp = c.get("/search?q=能", headers={"Accept-Language": "ja"})
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        assert "検索を一時的に利用できません" in resp.get_data(as_text=True)
        for path in ("/", "/object/noh-museum_N-12", "/institution/noh-museum"):
            page = c.get(path)
            assert page.status_code == 200, path
            assert 'class="wrap notice"' in page.get_data(as_text=True)
    finally:
        app.extensions["archive"].close()


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_the_site_has_no_write_endpoints(client, method):
    for path in ("/", "/search", "/object/noh-museum_N-12", "/compare"):
        resp = getattr(client, method)(path, data={"q": "x"})
        assert resp.status_code == 405, (method, path)
        assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/object/%00",
        "/object/" + "a" * 5000,
        "/search?q=%FF%FE",
        "/search?era=%00",
        "/institution/..%2f..",
        "/compare?id=%0d%0a",
        "/object/noh-museum_N-12?iiif-content=%%%",
        "/sitemap/0.xml",
    ],
)
def test_odd_requests_never_500(client, path):
    resp = client.get(path)
    assert resp.status_code < 500, path
    assert "Traceback" not in resp.get_data(as_text=True)


def test_a_broken_shared_view_link_says_what_is_wrong(client):
    html = client.get("/object/noh-museum_N-12?iiif-content=bm90LWpzb24").get_data(as_text=True)
    assert 'role="alert"' in html and "iiif-content" in html


def test_english_pages_name_object_types_in_english(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert re.search(r'object_type=[^"]+">Noh mask <span', html)
    results = client.get("/search?lang=en").get_data(as_text=True)
    assert '<span class="facet-value">Noh mask</span>' in results
    ja = client.get("/search?lang=ja").get_data(as_text=True)
    assert '<span class="facet-value">能面</span>' in ja


def test_english_pages_name_materials_and_creators_in_english(client):
    """From the curators' material_en and creator_en; Japanese pages keep the originals."""
    en = client.get("/search?lang=en&institution=city-archives").get_data(as_text=True)
    assert '<span class="facet-value">Colour on paper</span>' in en
    assert '<span class="facet-value">Construction office of the Kaga domain</span>' in en
    ja = client.get("/search?lang=ja&institution=city-archives").get_data(as_text=True)
    assert '<span class="facet-value">紙本著色</span>' in ja
    assert '<span class="facet-value">加賀藩作事方</span>' in ja


def test_about_page_credits_the_dictionary_and_models_in_both_languages(app):
    # JMdict's licence (CC BY-SA 4.0) asks for attribution where it is used
    credits = (("ja", "電子辞書研究開発グループ"), ("en", "Electronic Dictionary Research"))
    for lang, words in credits:
        html = app.test_client().get(f"/about?lang={lang}").get_data(as_text=True)
        assert words in html and "JMdict" in html and "CC BY-SA 4.0" in html
