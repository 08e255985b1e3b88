"""When the search cluster is down, search answers 503 with a message saying so, and
everything that does not need search (records, manifests, exports) keeps working."""

from __future__ import annotations

import socket

import pytest

from archive.config import Config


def closed_port() -> int:
    """A local port nothing listens on: a cluster that is really unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def down_client(ingested_home):
    from web import create_app

    config = Config.load(ingested_home, environ={}).replace(
        search_backend="opensearch",
        search_url=f"http://127.0.0.1:{closed_port()}",
        search_timeout=2,
    )
    app = create_app(config)
    yield app.test_client()
    app.extensions["archive"].close()


@pytest.mark.parametrize("url", ["/api/search?q=能面", "/api/search", "/api/suggest?q=能"])
def test_search_is_503_with_a_clear_message(down_client, url):
    resp = down_client.get(url)
    assert resp.status_code == 503
    assert resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc["status"] == 503 and "unreachable" in doc["error"]
    assert "Traceback" not in resp.get_data(as_text=True)


def test_bad_parameters_are_still_400_before_search_is_asked(down_client):
    resp = down_client.get("/api/search?size=1000")
    assert resp.status_code == 400 and resp.get_json()["parameter"] == "size"


def test_what_does_not_need_search_keeps_working(down_client):
    assert down_client.get("/api/records/noh-museum_N-4").status_code == 200
    assert down_client.get("/iiif/3/manifest/noh-museum_N-4").status_code == 200
    assert down_client.get("/iiif/3/collection/top").status_code == 200
    assert down_client.get("/api/export.jsonl").status_code == 200


def test_health_says_degraded_while_search_is_unreachable(down_client):
    resp = down_client.get("/api/health")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    doc = resp.get_json()
    assert doc["status"] == "degraded"
    assert doc["search"]["reachable"] is False and "unreachable" in doc["search"]["error"]
    assert doc["catalog"]["public_records"] > 0
