"""The public pages through Flask's test client on the ingested sample archive."""

from __future__ import annotations

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
