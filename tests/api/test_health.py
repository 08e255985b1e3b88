"""/api/health, for load balancers and monitors: ok, degraded (search unreachable or
behind: see also test_search_unavailable.py) and unavailable (the catalog unreadable)."""

from __future__ import annotations

import pytest

from archive import __version__
from archive.config import Config


def test_ok_with_counts_that_agree(client, app):
    resp = client.get("/api/health")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    doc = resp.get_json()
    catalog = app.extensions["archive"].catalog
    assert doc["status"] == "ok" and doc["version"] == __version__
    assert doc["catalog"]["public_records"] == catalog.count() > 0
    assert doc["search"] == {
        "backend": "sqlite",
        "documents": catalog.count(),
        "vectors": "on",
        "with_vectors": catalog.count(),
        "reachable": True,
    }
    assert "/" not in str(doc["search"]), "no file paths on a public endpoint"


@pytest.fixture
def empty_app(home):
    from web import create_app

    app = create_app(Config.load(home, environ={}))
    yield app
    app.extensions["archive"].close()


def test_degraded_while_an_ingest_left_search_behind(empty_app):
    catalog = empty_app.extensions["archive"].catalog
    client = empty_app.test_client()
    assert client.get("/api/health").get_json()["status"] == "ok"
    catalog.set_meta("search_behind", "2026-11-26T10:00:00Z: ingest in progress")
    doc = client.get("/api/health").get_json()
    assert doc["status"] == "degraded" and "ingest in progress" in doc["search"]["behind"]


def test_unavailable_when_the_catalog_cannot_be_read(empty_app, home):
    archive = empty_app.extensions["archive"]
    archive.catalog.close()
    (home / "catalog.sqlite").write_bytes(b"not a database at all " * 512)
    for leftover in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / leftover).unlink(missing_ok=True)
    resp = empty_app.test_client().get("/api/health")
    assert resp.status_code == 503
    doc = resp.get_json()
    assert doc["status"] == "unavailable" and "catalog unreadable" in doc["catalog"]["error"]
