"""/api/records/{id}: every public field, original and normalised, its images' IIIF URLs,
its licence and how to cite it."""

from __future__ import annotations

import pytest

from archive.catalog import Catalog
from archive.storage import Home
from iiif.info import presented_size

BASE = "http://localhost"


@pytest.fixture(scope="module")
def catalog(ingested_home):
    cat = Catalog(Home(ingested_home).catalog)
    yield cat
    cat.close()


def get(client, rec_id: str) -> dict:
    resp = client.get(f"/api/records/{rec_id}")
    assert resp.status_code == 200, resp.data[:300]
    assert resp.mimetype == "application/json"
    return resp.get_json()


def test_original_and_normalised_fields(client, catalog):
    record = catalog.get_record("noh-museum_N-4")
    doc = get(client, "noh-museum_N-4")
    assert doc["id"] == record.id and doc["local_id"] == "N-4"
    assert doc["fields"] == record.fields  # exactly as the institution wrote them
    assert doc["extra"] == [{"label": k, "value": v} for k, v in record.extra]
    norm = doc["normalised"]
    assert (norm["date_start"], norm["date_end"], norm["era"]) == (
        record.date_start,
        record.date_end,
        record.era,
    )
    assert norm["century"] == (record.date_start - 1) // 100 + 1
    assert norm["title"] == {"ja": record.get("title"), "en": record.get("title_en")}
    assert norm["keywords"] == record.get("keywords")
    assert doc["institution"]["id"] == "noh-museum"
    assert doc["institution"]["name"]["ja"] == "金沢能楽美術館"


def test_rights_are_the_records_licence_with_a_label(client, catalog):
    for rec_id in catalog.record_ids():
        record = catalog.get_record(rec_id)
        rights = get(client, rec_id)["rights"]
        assert rights["uri"] == record.rights
        assert rights["label"]["en"] and rights["label"]["ja"]


def test_images_with_their_iiif_urls_at_the_presented_size(client, catalog):
    record = catalog.get_record("noh-museum_N-12")  # two images and its own cap
    doc = get(client, "noh-museum_N-12")
    assert [i["id"] for i in doc["images"]] == [i.id for i in record.images]
    for image, ref in zip(doc["images"], record.images, strict=True):
        assert (image["width"], image["height"]) == presented_size(
            ref.width, ref.height, record.max_image_size
        )
        info = client.get(image["info"].removeprefix(BASE))
        assert info.status_code == 200
        assert info.get_json()["id"] == image["service"]
        assert info.get_json()["width"] == image["width"]
        assert client.get(image["thumbnail"].removeprefix(BASE)).status_code == 200
    assert doc["manifest"] == f"{BASE}/iiif/3/manifest/noh-museum_N-12"
    assert doc["url"] == f"{BASE}/object/noh-museum_N-12"


def test_cite_this_and_bibtex(client, catalog):
    doc = get(client, "noh-museum_N-4")
    cite = doc["citation"]
    assert "能面 増女" in cite["ja"] and "金沢能楽美術館" in cite["ja"]
    assert f"{BASE}/object/noh-museum_N-4" in cite["ja"]
    assert "Noh mask: Zō-onna" in cite["en"] and "Kanazawa Noh Museum" in cite["en"]
    bib = cite["bibtex"]
    assert bib.startswith("@misc{noh-museum_N-4,") and bib.rstrip().endswith("}")
    assert "year = {1336}" in bib and f"url = {{{BASE}/object/noh-museum_N-4}}" in bib
    assert bib.count("{") == bib.count("}")


def test_non_public_and_unknown_records_are_404(client, catalog):
    hidden = set(catalog.record_ids(public_only=False)) - set(catalog.record_ids())
    for rec_id in [*hidden, "noh-museum_NOPE", "bad id", "../etc/passwd", "x" * 500]:
        resp = client.get(f"/api/records/{rec_id}")
        assert resp.status_code == 404, rec_id
        assert resp.get_json()["status"] == 404


def test_conditional_requests(client):
    first = client.get("/api/records/noh-museum_N-4")
    assert (
        client.get(
            "/api/records/noh-museum_N-4", headers={"If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )


@pytest.fixture(scope="module")
def catalog_records(catalog):
    ids = catalog.record_ids(public_only=False)
    return list(catalog.get_records(ids, public_only=False))


def test_similar_records_are_public_and_nearest_first(client, catalog_records):
    public = [r for r in catalog_records if r.public]
    resp = client.get(f"/api/records/{public[0].id}/similar?limit=5")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["id"] == public[0].id
    assert 1 <= len(body["items"]) <= 5
    public_ids = {r.id for r in public}
    assert all(item["id"] in public_ids and item["id"] != public[0].id for item in body["items"])


def test_similar_records_bad_input(client, catalog_records):
    hidden = [r for r in catalog_records if not r.public]
    assert client.get("/api/records/no-such_X/similar").status_code == 404
    if hidden:
        assert client.get(f"/api/records/{hidden[0].id}/similar").status_code == 404
    public = next(r for r in catalog_records if r.public)
    resp = client.get(f"/api/records/{public.id}/similar?limit=0")
    assert resp.status_code == 400 and resp.get_json()["parameter"] == "limit"


def test_record_api_says_where_each_reading_came_from(client, catalog_records):
    record = next(r for r in catalog_records if r.public and r.get("title"))
    readings = client.get(f"/api/records/{record.id}").get_json()["readings"]
    assert readings, record.id
    for name, entry in readings.items():
        assert entry["source"] in {"curator", "sudachi"} and entry["reading"], name
    if record.get("title_kana"):
        assert readings["title"] == {"reading": record.get("title_kana"), "source": "curator"}
