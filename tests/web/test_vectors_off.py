"""``search_vectors = false``: an archive on weak hardware that embeds nothing.

One collection is ingested through the real CLI with the setting off; the site and the
API on it answer text-only search and explain the empty similar objects; turned on
again, `archive reindex` embeds what is missing.
"""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from archive.cli import cli
from archive.config import Config

OFF = {"ARCHIVE_SEARCH_VECTORS": "false"}


def _counts(home) -> tuple[int, int]:
    """(documents, vectors) in the embedded index."""
    db = sqlite3.connect(home / "search.sqlite")
    try:
        return tuple(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("docs", "vectors")
        )
    finally:
        db.close()


@pytest.fixture(scope="module")
def off_home(tmp_path_factory, sample_images):
    """A home with the small city-archives collection ingested, vectors off."""
    from search import vectors

    home = tmp_path_factory.mktemp("vectors-off") / "home"
    folder = next(p for p in sample_images if p.name == "city-archives")
    start = vectors.embedded
    result = CliRunner().invoke(
        cli, ["--home", str(home), "ingest", str(folder)], env=OFF, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert vectors.embedded == start  # nothing embedded in this process
    return home


@pytest.fixture(scope="module")
def off_client(off_home):
    from web import create_app

    app = create_app(Config.load(off_home, environ=OFF))
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["archive"].close()


def test_ingest_stores_no_vector_and_status_says_so(off_home):
    documents, with_vectors = _counts(off_home)
    assert documents > 0 and with_vectors == 0
    result = CliRunner().invoke(cli, ["--home", str(off_home), "status"], env=OFF)
    assert result.exit_code == 0, result.output
    assert "vectors off (search_vectors = false)" in result.output


def test_health_says_vectors_are_off(off_client):
    data = off_client.get("/api/health").get_json()
    assert data["status"] == "ok"
    assert data["search"]["vectors"] == "off" and data["search"]["with_vectors"] == 0


def test_similar_is_empty_with_a_reason_and_the_object_page_serves(off_client):
    found = off_client.get("/api/search?q=&size=1").get_json()
    record_id = found["items"][0]["id"]
    resp = off_client.get(f"/api/records/{record_id}/similar")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["items"] == [] and "search_vectors" in body["reason"]
    assert off_client.get("/api/records/no-such_X/similar").status_code == 404
    page = off_client.get(f"/object/{record_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Similar objects" not in page.get_data(True)


def test_search_is_text_only_and_asking_for_meaning_is_no_error(off_client):
    for q in ("市", "map of the city", "地図"):
        hybrid = off_client.get("/api/search", query_string={"q": q, "size": 100})
        text = off_client.get(
            "/api/search", query_string={"q": q, "size": 100, "semantic": "false"}
        )
        assert hybrid.status_code == text.status_code == 200
        assert hybrid.get_json() == text.get_json()
    assert off_client.get("/search?q=map").status_code == 200


def test_reindex_with_vectors_on_again_embeds_what_is_missing(off_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(off_home, home)
    runner = CliRunner()
    status = runner.invoke(
        cli, ["--home", str(home), "status"], env={"ARCHIVE_SEARCH_VECTORS": "true"}
    )
    documents, _none = _counts(home)
    assert f"{documents} without a vector: run `archive reindex`" in status.output
    on = {"ARCHIVE_SEARCH_VECTORS": "true"}
    result = runner.invoke(cli, ["--home", str(home), "reindex"], env=on, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert _counts(home) == (documents, documents)
    status = runner.invoke(cli, ["--home", str(home), "status"], env=on)
    assert "without a vector" not in status.output and "vectors off" not in status.output
