"""/api/search and /api/suggest on the ingested samples: fields, facets, filters, and a
400 naming the parameter for anything malformed."""

from __future__ import annotations

import pytest

from archive.catalog import Catalog
from archive.storage import Home
from iiif.info import image_tag
from search.base import FACETS

BASE = "http://localhost"


@pytest.fixture(scope="module")
def catalog(ingested_home):
    cat = Catalog(Home(ingested_home).catalog)
    yield cat
    cat.close()


def search(client, query: str = "", status: int = 200) -> dict:
    resp = client.get(f"/api/search{query}")
    assert resp.status_code == status, (query, resp.status_code, resp.data[:400])
    assert resp.mimetype == "application/json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    return resp.get_json()


def test_empty_query_lists_every_public_record(client, catalog):
    doc = search(client, "?size=100")
    assert doc["total"] == catalog.count() == len(doc["items"])
    assert {i["id"] for i in doc["items"]} == set(catalog.record_ids())
    assert (doc["page"], doc["size"]) == (1, 100)


def test_items_carry_every_field_with_absolute_urls(client, catalog):
    doc = search(client, "?q=増女")
    item = next(i for i in doc["items"] if i["id"] == "noh-museum_N-4")
    record = catalog.get_record("noh-museum_N-4")
    assert item["local_id"] == "N-4" and item["institution"] == "noh-museum"
    assert item["title"] == record.get("title")
    assert item["date"] == record.get("date")
    assert item["manifest"] == f"{BASE}/iiif/3/manifest/noh-museum_N-4"
    assert item["url"] == f"{BASE}/object/noh-museum_N-4"
    image = record.images[0]
    pinned = f"{image.id}.{image_tag(image.version, image.width, image.height)}"
    assert not record.max_image_size
    assert item["thumbnail"] == f"{BASE}/iiif/3/{pinned}/full/!400,400/0/default.jpg"
    assert client.get(item["thumbnail"].removeprefix(BASE)).status_code == 200
    assert client.get(item["manifest"].removeprefix(BASE)).status_code == 200
    assert any("<mark>" in text for text in item["highlights"].values())


def test_titles_in_the_language_asked(client):
    en = search(client, "?q=増女&lang=en")
    assert any(i["title"] == "Noh mask: Zō-onna" for i in en["items"])
    assert search(client, "?q=Zō-onna")["total"] >= 1  # English text is searchable too


def test_every_facet_is_answered_with_labels(client, catalog):
    doc = search(client, "?lang=en")
    assert list(doc["facets"]) == list(FACETS)
    institutions = {f["value"]: f for f in doc["facets"]["institution"]}
    assert institutions["noh-museum"]["label"] == "Kanazawa Noh Museum"
    assert institutions["noh-museum"]["count"] == catalog.count("noh-museum")
    assert {f["value"] for f in doc["facets"]["has_images"]} <= {"true", "false"}
    assert all(f["label"].endswith(("century", "century BCE")) for f in doc["facets"]["century"])
    ja = search(client, "")
    assert {f["label"] for f in ja["facets"]["institution"]} >= {"金沢能楽美術館"}
    assert all(f["label"].endswith("世紀") for f in ja["facets"]["century"])


def test_filters_narrow_and_repeat_as_or(client, catalog):
    noh = search(client, "?institution=noh-museum&size=100")
    assert noh["total"] == catalog.count("noh-museum")
    assert {i["institution"] for i in noh["items"]} == {"noh-museum"}
    both = search(client, "?institution=noh-museum&institution=craft-museum&size=100")
    assert both["total"] == catalog.count("noh-museum") + catalog.count("craft-museum")
    masks = search(client, "?object_type=能面")
    assert masks["total"] >= 1
    assert masks["total"] == next(
        f["count"] for f in search(client, "")["facets"]["object_type"] if f["value"] == "能面"
    )


def test_year_range_and_images(client, catalog):
    meiji = search(client, "?year_from=1868&year_to=1912&size=100")
    for item in meiji["items"]:
        record = catalog.get_record(item["id"])
        assert record.date_end >= 1868 and record.date_start <= 1912
    with_images = search(client, "?has_images=true&size=100")
    assert with_images["total"] == sum(1 for r in catalog.records() if r.images)


def test_sort_and_pages(client):
    first = search(client, "?sort=date_asc&size=5")
    second = search(client, "?sort=date_asc&size=5&page=2")
    assert len(first["items"]) == 5
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}


def test_non_public_records_never_appear(client, catalog):
    hidden = set(catalog.record_ids(public_only=False)) - set(catalog.record_ids())
    assert hidden
    for rec_id in hidden:
        title = catalog.get_record(rec_id, public_only=False).get("title")
        doc = search(client, f"?q={title}&size=100")
        assert rec_id not in {i["id"] for i in doc["items"]}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?size=0", "size"),
        ("?size=101", "size"),
        ("?size=abc", "size"),
        ("?size=", "size"),
        ("?page=0", "page"),
        ("?page=-1", "page"),
        ("?page=1.5", "page"),
        ("?page=99999", "page"),
        ("?sort=random", "sort"),
        ("?lang=fr", "lang"),
        ("?has_images=maybe", "has_images"),
        ("?year_from=abc", "year_from"),
        ("?year_to=99999", "year_to"),
        ("?year_from=1900&year_to=1800", "year_from"),
        ("?q=" + "あ" * 501, "q"),
        ("?institution=", "institution"),
        ("?creator=" + "x" * 201, "creator"),
        ("?size=10&size=20", "size"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, query, parameter):
    doc = search(client, query, status=400)
    assert doc["parameter"] == parameter
    assert parameter in doc["error"]


def test_suggest(client):
    resp = client.get("/api/suggest?q=能")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["q"] == "能" and doc["suggestions"]
    assert all("能" in s for s in doc["suggestions"])
    assert client.get("/api/suggest").get_json() == {"q": "", "suggestions": []}
    assert client.get("/api/suggest?q=能&limit=2").get_json()["suggestions"].__len__() <= 2
    bad = client.get("/api/suggest?q=能&limit=0")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "limit"
