"""What every response tells caches (a CDN, the browser): how long, how to revalidate
(ETag, 304 for If-None-Match), and on what the body varies — only where it really does.
Every id and link is built from ``public_url``, whatever Host a request arrives with."""

from __future__ import annotations

import json
import re

import pytest

from archive.config import Config

RECORD = "noh-museum_N-12"


def vary(resp) -> set[str]:
    return {v.strip() for v in resp.headers.get("Vary", "").split(",") if v.strip()}


def revalidates(client, path: str, **kwargs) -> None:
    """A second request with the first's ETag is a 304 with no body and the same policy."""
    first = client.get(path, **kwargs)
    assert first.status_code == 200, path
    etag = first.headers["ETag"]
    headers = {**kwargs.pop("headers", {}), "If-None-Match": etag}
    again = client.get(path, headers=headers, **kwargs)
    assert again.status_code == 304, path
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        (f"/iiif/3/manifest/{RECORD}", "public, max-age=300"),
        ("/iiif/3/collection/top", "public, max-age=300"),
        ("/iiif/3/collection/noh-museum", "public, max-age=300"),
        ("/iiif/3/activity/all-changes", "public, max-age=60"),
        (f"/api/records/{RECORD}", "public, max-age=300"),
        ("/api/search?q=%E8%83%BD", "public, max-age=60"),
        ("/api/suggest?q=%E8%83%BD", "public, max-age=60"),
        ("/api/openapi.json", "public, max-age=3600"),
    ],
)
def test_documents_have_a_lifetime_an_etag_and_304(client, path, policy):
    resp = client.get(path)
    assert resp.headers["Cache-Control"] == policy
    # The same bytes for every visitor: nothing but the encoding varies.
    assert vary(resp) == {"Accept-Encoding"}
    revalidates(client, path)


def test_gzipped_documents_revalidate_with_their_weak_etag(client):
    path = f"/iiif/3/manifest/{RECORD}"
    resp = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["ETag"].startswith("W/")
    again = client.get(
        path, headers={"Accept-Encoding": "gzip", "If-None-Match": resp.headers["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/", f"/object/{RECORD}", "/search?q=%E8%83%BD", "/about"])
def test_pages_live_a_minute_vary_by_language_and_revalidate(client, path):
    resp = client.get(path)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "public, max-age=60"
    # Language comes from the cookie or Accept-Language; the body is gzipped or not.
    assert vary(resp) == {"Accept-Language", "Cookie", "Accept-Encoding"}
    revalidates(client, path)
    revalidates(client, path, headers={"Accept-Encoding": "gzip"})
    gz = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip" and gz.headers["ETag"].startswith("W/")


def test_a_response_that_sets_a_cookie_is_never_for_a_shared_cache(client):
    resp = client.get(f"/object/{RECORD}?lang=en")  # an explicit choice is remembered
    assert "Set-Cookie" in resp.headers
    assert resp.headers["Cache-Control"] == "private, no-cache"
    client.set_cookie("lang", "en")
    again = client.get(f"/object/{RECORD}?lang=en")
    assert "Set-Cookie" not in again.headers
    assert again.headers["Cache-Control"] == "public, max-age=60"


def test_machine_files_live_an_hour(client):
    for path in ("/robots.txt", "/sitemap.xml"):
        resp = client.get(path)
        assert resp.headers["Cache-Control"] == "public, max-age=3600", path
    revalidates(client, "/robots.txt")


def test_errors_are_kept_briefly_or_not_at_all(client):
    for path in ("/object/noh-museum_NOPE", "/api/records/noh-museum_NOPE", "/iiif/3/manifest/x"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["Cache-Control"] == "public, max-age=60", path
    bad = client.get("/api/search?size=0")
    assert bad.status_code == 400 and bad.headers["Cache-Control"] == "public, max-age=60"
    assert client.get("/api/health").headers["Cache-Control"] == "no-store"


def test_every_response_says_how_long_it_may_be_kept(client):
    """A CDN's default lifetime applies only where a response says nothing."""
    for path in (
        "/",
        "/help",
        "/compare",
        "/oai?verb=Identify",
        "/api/export.jsonl",
        "/sitemap/1.xml",
        "/nowhere",
        "/iiif/3/nowhere",
    ):
        assert client.get(path).headers.get("Cache-Control"), path


@pytest.fixture(scope="module")
def public_client(ingested_home):
    from web import create_app

    app = create_app(
        Config.load(ingested_home, environ={"ARCHIVE_PUBLIC_URL": "https://museum.example.jp"})
    )
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["archive"].close()


def test_every_id_is_built_from_public_url(public_client):
    """Whatever Host a request came with (a node's own address behind the load balancer,
    or a forged one), what we publish names the public address only."""
    headers = {"Host": "node-7.internal:8000"}
    manifest = public_client.get(f"/iiif/3/manifest/{RECORD}", headers=headers).get_json()
    service = manifest["items"][0]["items"][0]["items"][0]["body"]["service"][0]["id"]
    assert service.startswith("https://museum.example.jp/iiif/3/")
    identifier = service.rsplit("/", 1)[1]
    paths = [
        f"/iiif/3/manifest/{RECORD}",
        "/iiif/3/collection/top",
        "/iiif/3/collection/noh-museum",
        "/iiif/3/activity/all-changes",
        "/iiif/3/activity/page/0",
        f"/iiif/3/{identifier}/info.json",
        f"/iiif/2/{identifier}/info.json",
        f"/api/records/{RECORD}",
        "/api/search?q=%E8%83%BD",
        "/api/openapi.json",
        f"/object/{RECORD}",
        "/sitemap.xml",
        "/robots.txt",
        "/oai?verb=ListRecords&metadataPrefix=oai_dc",
    ]
    for path in paths:
        resp = public_client.get(path, headers=headers)
        assert resp.status_code == 200, path
        text = resp.get_data(as_text=True)
        assert "node-7.internal" not in text, path
        assert "museum.example.jp" in text, path
    info = json.loads(public_client.get(f"/iiif/3/{identifier}/info.json", headers=headers).data)
    assert info["id"] == service
    tile = public_client.get(f"/iiif/3/{identifier}/full/max/0/default.jpg", headers=headers)
    assert re.search(r"<https://museum\.example\.jp/iiif/3/", tile.headers["Link"])
