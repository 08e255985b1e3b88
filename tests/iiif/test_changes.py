"""IIIF Change Discovery 1.0 from the catalog's change log: Create, Update and Delete of
manifests, paged, oldest first, so a harvester can fetch only what changed since it last read."""

from __future__ import annotations

import pytest
from flask import Flask

from archive.context import Archive
from archive.records import Institution, Record, record_id
from iiif import changes
from iiif.routes import presentation_blueprint

AS_JSONLD = 'application/ld+json;profile="https://www.w3.org/ns/activitystreams"'
BASE = "http://localhost"
RIGHTS = "http://rightsstatements.org/vocab/NoC-US/1.0/"


def record(local_id: str, title: str = "題", public: bool = True) -> Record:
    return Record(
        id=record_id("a-museum", local_id),
        institution="a-museum",
        local_id=local_id,
        fields={"id": local_id, "title": title},
        public=public,
        rights=RIGHTS,
    )


@pytest.fixture
def archive(config):
    arch = Archive(config)
    arch.catalog.put_institution(Institution("a-museum", {"ja": "館", "en": "Museum"}, RIGHTS))
    yield arch
    arch.close()


@pytest.fixture
def client(archive):
    app = Flask(__name__)
    app.register_blueprint(presentation_blueprint(archive))
    return app.test_client()


def read_all(client, start: str = "/iiif/3/activity/all-changes") -> list[dict]:
    """What a harvester does: from the collection's first page, follow `next`."""
    collection = client.get(start).get_json(force=True)
    url = collection["first"]["id"]
    items = []
    while url:
        page = client.get(url.removeprefix(BASE)).get_json(force=True)
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"]["id"] == f"{BASE}/iiif/3/activity/all-changes"
        items += page["orderedItems"]
        url = page.get("next", {}).get("id")
    return items


def test_an_empty_archive_has_an_empty_stream(client):
    resp = client.get("/iiif/3/activity/all-changes")
    assert resp.headers["Content-Type"] == AS_JSONLD
    doc = resp.get_json(force=True)
    assert doc["@context"] == "http://iiif.io/api/discovery/1/context.json"
    assert doc["type"] == "OrderedCollection" and doc["totalItems"] == 0
    assert read_all(client) == []


def test_create_update_delete_in_order(archive, client):
    catalog = archive.catalog
    catalog.put_record(record("1"))
    catalog.put_record(record("2"))
    catalog.put_record(record("1", title="新しい題"))  # Update
    catalog.put_record(record("1", title="新しい題"))  # unchanged: no activity
    catalog.put_record(record("2", public=False))  # hidden: Delete for the public
    catalog.put_record(record("3", public=False))  # never public: nothing
    catalog.delete_record(record_id("a-museum", "1"))  # Delete
    items = read_all(client)
    assert [(i["type"], i["object"]["id"].rsplit("/", 1)[1]) for i in items] == [
        ("Create", "a-museum_1"),
        ("Create", "a-museum_2"),
        ("Update", "a-museum_1"),
        ("Delete", "a-museum_2"),
        ("Delete", "a-museum_1"),
    ]
    for item in items:
        assert item["object"]["type"] == "Manifest"
        assert item["object"]["id"].startswith(f"{BASE}/iiif/3/manifest/")
        assert item["endTime"].endswith("Z")
    assert len({i["id"] for i in items}) == len(items)


def test_pages_link_both_ways_and_newest_is_last(archive, client):
    catalog = archive.catalog
    total = 2 * changes.PAGE_SIZE + 7
    with catalog.transaction():
        for n in range(total):
            catalog.put_record(record(f"{n:04d}"))
    doc = client.get("/iiif/3/activity/all-changes").get_json(force=True)
    assert doc["totalItems"] == total
    assert doc["last"]["id"] == f"{BASE}/iiif/3/activity/page/2"
    last = client.get("/iiif/3/activity/page/2").get_json(force=True)
    assert "next" not in last and last["prev"]["id"].endswith("/page/1")
    assert last["startIndex"] == 2 * changes.PAGE_SIZE
    assert last["orderedItems"][-1]["object"]["id"].endswith(f"a-museum_{total - 1:04d}")
    first = client.get("/iiif/3/activity/page/0").get_json(force=True)
    assert "prev" not in first and len(first["orderedItems"]) == changes.PAGE_SIZE
    assert len(read_all(client)) == total
    assert client.get("/iiif/3/activity/page/3").status_code == 404
    assert client.get("/iiif/3/activity/page/-1").status_code == 404


def test_a_harvester_fetches_only_what_changed_since_it_last_read(archive, client):
    catalog = archive.catalog
    with catalog.transaction():
        for n in range(changes.PAGE_SIZE + 3):
            catalog.put_record(record(f"{n:04d}"))
    # Yesterday: read everything; remember the last page and how many items it held.
    yesterday = client.get("/iiif/3/activity/all-changes").get_json(force=True)
    last_url = yesterday["last"]["id"].removeprefix(BASE)
    seen_on_last = len(client.get(last_url).get_json(force=True)["orderedItems"])
    # Today: two records change.
    catalog.put_record(record("0001", title="改題"))
    catalog.delete_record(record_id("a-museum", "0002"))
    # Start from yesterday's last page; skip what was seen there.
    new, url = [], last_url
    page = client.get(url).get_json(force=True)
    new += page["orderedItems"][seen_on_last:]
    while "next" in page:
        page = client.get(page["next"]["id"].removeprefix(BASE)).get_json(force=True)
        new += page["orderedItems"]
    assert [(i["type"], i["object"]["id"].rsplit("_", 1)[1]) for i in new] == [
        ("Update", "0001"),
        ("Delete", "0002"),
    ]


def test_full_pages_are_cached_longer_than_the_growing_last_page(archive, client):
    with archive.catalog.transaction():
        for n in range(changes.PAGE_SIZE + 1):
            archive.catalog.put_record(record(f"{n:04d}"))
    full = client.get("/iiif/3/activity/page/0")
    growing = client.get("/iiif/3/activity/page/1")
    assert full.cache_control.max_age > growing.cache_control.max_age
    assert full.headers["Access-Control-Allow-Origin"] == "*"
    assert (
        client.get(
            "/iiif/3/activity/page/0", headers={"If-None-Match": full.headers["ETag"]}
        ).status_code
        == 304
    )


def test_the_root_collection_links_the_stream(archive, client):
    archive.catalog.put_record(record("1"))
    top = client.get("/iiif/3/collection/top").get_json(force=True)
    assert {
        "id": f"{BASE}/iiif/3/activity/all-changes",
        "type": "OrderedCollection",
    }.items() <= top["service"][0].items()


def test_the_ingested_samples_have_one_create_per_public_record(client_ingested, ingested_home):
    """Driven by what ingest really did: one Create per record that became public."""
    from archive.catalog import Catalog
    from archive.storage import Home

    catalog = Catalog(Home(ingested_home).catalog)
    try:
        public = set(catalog.record_ids())
    finally:
        catalog.close()
    items = read_all(client_ingested)
    creates = {i["object"]["id"].rsplit("/", 1)[1] for i in items if i["type"] == "Create"}
    assert public <= creates


@pytest.fixture
def client_ingested(app):
    return app.test_client()


def test_pages_past_any_possible_sequence_number_are_404(client):
    """schemathesis found this: a page number beyond SQLite's integers must be a 404, not a 500."""
    for n in (2**63 // 100, 2**64, 10**30):
        response = client.get(f"/iiif/3/activity/page/{n}")
        assert response.status_code == 404, (n, response.status_code)
