"""IIIF Presentation 3.0 on the ingested sample collections: every manifest and collection
validates against the official JSON Schema, and says what issue 6 asks of it."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from archive.catalog import Catalog
from archive.config import Config
from archive.storage import Home
from iiif.info import image_tag, presented_size

# tests/conftest.py SHARED: the folder beside the repository.
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "iiif-schema" / "iiif_3_0.json"
JSONLD = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
BASE = "http://localhost"


@cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def assert_valid(doc: dict) -> None:
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{doc.get('id')}: " + "; ".join(
        f"{list(e.path)}: {e.message[:200]}" for e in errors[:5]
    )


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url[len(BASE) :]


def get_json(client, url: str) -> dict:
    resp = client.get(path_of(url) if url.startswith("http") else url)
    assert resp.status_code == 200, (url, resp.status_code, resp.data[:300])
    return json.loads(resp.data)


@pytest.fixture(scope="module")
def catalog(ingested_home) -> Catalog:
    cat = Catalog(Home(ingested_home).catalog)
    yield cat
    cat.close()


def public_ids(catalog: Catalog) -> list[str]:
    return catalog.record_ids()


def hidden_ids(catalog: Catalog) -> list[str]:
    everything = set(catalog.record_ids(public_only=False))
    return sorted(everything - set(catalog.record_ids()))


# --- schema validity of everything we publish --------------------------------------------------
def test_every_collection_and_manifest_validates_and_lists_every_public_record(client, catalog):
    top = get_json(client, "/iiif/3/collection/top")
    assert_valid(top)
    assert top["type"] == "Collection" and top["id"] == f"{BASE}/iiif/3/collection/top"
    seen = []
    for ref in top["items"]:
        assert ref["type"] == "Collection"
        assert set(ref["label"]) == {"ja", "en"}
        collection = get_json(client, ref["id"])
        assert_valid(collection)
        assert collection["id"] == ref["id"]
        for item in collection["items"]:
            assert item["type"] == "Manifest"
            manifest = get_json(client, item["id"])
            assert_valid(manifest)
            seen.append(manifest["id"])
    assert sorted(seen) == sorted(f"{BASE}/iiif/3/manifest/{i}" for i in public_ids(catalog))


def test_the_institution_collections_are_the_institutions_with_public_objects(client, catalog):
    top = get_json(client, "/iiif/3/collection/top")
    expected = [i.id for i in catalog.institutions() if catalog.count(i.id)]
    assert [r["id"] for r in top["items"]] == [f"{BASE}/iiif/3/collection/{i}" for i in expected]


# --- one manifest in detail ------------------------------------------------------------------
def test_one_canvas_per_image_in_order_at_the_presented_size(client, catalog):
    for rec_id in public_ids(catalog):
        record = catalog.get_record(rec_id)
        manifest = get_json(client, f"/iiif/3/manifest/{rec_id}")
        assert len(manifest["items"]) == len(record.images)
        for canvas, image in zip(manifest["items"], record.images, strict=True):
            size = presented_size(image.width, image.height, record.max_image_size)
            assert (canvas["width"], canvas["height"]) == size
            [page] = canvas["items"]
            [anno] = page["items"]
            assert anno["motivation"] == "painting" and anno["target"] == canvas["id"]
            body = anno["body"]
            assert body["type"] == "Image" and (body["width"], body["height"]) == size
            # The identifier is pinned to this version of the pixels at this size.
            service = f"{BASE}/iiif/3/{image.id}.{image_tag(image.version, *size)}"
            assert body["service"] == [
                {"id": service, "type": "ImageService3", "profile": "level2"}
            ]


def test_canvas_sizes_agree_with_the_image_api_for_capped_images(client, catalog):
    """The canvas is the size the Image API says the image is (a capped image, its cap)."""
    capped = [r for r in catalog.records() if r.max_image_size and r.images]
    assert capped, "the samples have capped images"
    for record in capped[:3]:
        manifest = get_json(client, f"/iiif/3/manifest/{record.id}")
        for canvas in manifest["items"]:
            service = canvas["items"][0]["items"][0]["body"]["service"][0]["id"]
            info = get_json(client, service + "/info.json")
            assert (info["width"], info["height"]) == (canvas["width"], canvas["height"])
            assert max(canvas["width"], canvas["height"]) <= record.max_image_size


def test_manifest_properties_for_a_bilingual_record(client, catalog):
    record = catalog.get_record("noh-museum_N-4")
    inst = catalog.get_institution("noh-museum")
    m = get_json(client, "/iiif/3/manifest/noh-museum_N-4")
    assert m["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert m["label"] == {"ja": [record.get("title")], "en": [record.get("title_en")]}
    assert m["summary"] == {"ja": [record.get("description")], "en": [record.get("description_en")]}
    labels = {kv["label"].get("en", kv["label"].get("none", [""]))[0]: kv for kv in m["metadata"]}
    for name in (
        "Object number",
        "Creator",
        "Date",
        "Object type",
        "Material and technique",
        "Dimensions",
        "Keywords",
        "Period",
        "Years (normalised)",
        "Rights",
        "Holding institution",
    ):
        assert name in labels, name
        assert labels[name]["label"]["ja"], name  # bilingual labels
    assert labels["Creator"]["value"] == {
        "ja": [record.get("creator")],
        "en": [record.get("creator_en")],
    }
    assert labels["Years (normalised)"]["value"] == {
        "none": [f"{record.date_start}–{record.date_end}"]
    }
    for label, value in record.extra:  # unmapped columns are kept
        assert any(
            kv["value"].get("ja", kv["value"].get("none")) == [value]
            and label in json.dumps(kv["label"], ensure_ascii=False)
            for kv in m["metadata"]
        ), label
    assert m["requiredStatement"]["value"]["ja"] == [(inst.credit or inst.name)["ja"]]
    assert m["rights"] == record.rights.replace("https://", "http://")
    [agent] = m["provider"]
    assert agent["type"] == "Agent" and agent["label"]["en"] == [inst.name["en"]]
    assert inst.homepage in [h["id"] for h in agent["homepage"]]
    [logo] = agent["logo"]
    resp = client.get(path_of(logo["id"]))
    assert resp.status_code == 200 and resp.mimetype == logo["format"]
    assert m["homepage"][0]["id"] == f"{BASE}/object/noh-museum_N-4"
    assert m["homepage"][0]["format"] == "text/html"
    [see_also] = m["seeAlso"]
    assert see_also["format"] == "application/json"
    assert get_json(client, see_also["id"])["id"] == "noh-museum_N-4"
    assert m["partOf"][0]["id"] == f"{BASE}/iiif/3/collection/noh-museum"
    assert m["navDate"] == f"{record.date_start:04d}-01-01T00:00:00Z"
    [thumb] = m["thumbnail"]
    assert thumb["id"].endswith("/full/!400,400/0/default.jpg")
    assert thumb["service"][0]["type"] == "ImageService3"
    assert client.get(path_of(thumb["id"])).status_code == 200


@pytest.mark.parametrize(
    ("rec_id", "behavior"),
    [
        ("literature-hall_L-003", ["paged"]),  # notebook, behavior = paged in the data
        ("city-archives_A-scroll-001", ["continuous"]),  # handscroll
        ("noh-museum_N-1", ["individuals"]),  # two views of a mask, nothing said
        ("noh-museum_N-4", None),  # one image
    ],
)
def test_behavior_comes_from_the_collection_data(client, rec_id, behavior):
    assert get_json(client, f"/iiif/3/manifest/{rec_id}").get("behavior") == behavior


@pytest.mark.parametrize(
    ("rec_id", "direction"),
    [
        ("literature-hall_L-003", "right-to-left"),  # Japanese binding: "right-to-left"
        ("city-archives_A-scroll-001", "right-to-left"),  # handscroll: 右から左 in the TSV
        ("noh-museum_N-1", None),  # nothing said: the default, left-to-right, is left unsaid
    ],
)
def test_viewing_direction_comes_from_the_collection_data(client, rec_id, direction):
    assert get_json(client, f"/iiif/3/manifest/{rec_id}").get("viewingDirection") == direction


# --- what is not public is nowhere -------------------------------------------------------------
def test_non_public_records_have_no_manifest_and_are_in_no_collection(client, catalog):
    hidden = hidden_ids(catalog)
    assert len(hidden) >= 2, "the samples have non-public records"
    for rec_id in hidden:
        resp = client.get(f"/iiif/3/manifest/{rec_id}")
        assert resp.status_code == 404
        assert resp.get_json()["status"] == 404
    everything = json.dumps(
        [get_json(client, r["id"]) for r in get_json(client, "/iiif/3/collection/top")["items"]]
    )
    for rec_id in hidden:
        assert rec_id not in everything


@pytest.mark.parametrize(
    "url",
    [
        "/iiif/3/manifest/no-such_record",
        "/iiif/3/manifest/..%2F..%2Fetc",
        "/iiif/3/manifest/" + "x" * 300,
        "/iiif/3/collection/no-such-museum",
        "/iiif/3/collection/Bad_Id",
        "/iiif/3/collection/noh-museum/1",
        "/iiif/3/collection/noh-museum/0",
        "/iiif/3/logo/no-such-museum",
    ],
)
def test_unknown_things_are_json_404s(client, url):
    resp = client.get(url)
    assert resp.status_code == 404
    assert resp.mimetype == "application/json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


# --- HTTP: media type, CORS, caching, compression ---------------------------------------------
def test_served_as_iiif_json_ld_with_cors(client):
    for url in (
        "/iiif/3/manifest/noh-museum_N-4",
        "/iiif/3/collection/top",
        "/iiif/3/collection/noh-museum",
    ):
        resp = client.get(url)
        assert resp.headers["Content-Type"] == JSONLD
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_etag_and_last_modified_give_304(client):
    url = "/iiif/3/manifest/noh-museum_N-4"
    first = client.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_gzip_only_when_asked(client):
    url = "/iiif/3/collection/noh-museum"
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    # The compressed variant's (weak) validator still revalidates.
    again = client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
    )
    assert again.status_code == 304


def test_public_url_setting_makes_every_id_absolute_on_it(ingested_home):
    from web import create_app

    config = Config.load(ingested_home, environ={}).replace(public_url="https://museum.example.jp/")
    app = create_app(config)
    try:
        body = app.test_client().get("/iiif/3/manifest/noh-museum_N-4").get_data(as_text=True)
    finally:
        app.extensions["archive"].close()
    doc = json.loads(body)
    assert doc["id"] == "https://museum.example.jp/iiif/3/manifest/noh-museum_N-4"
    assert "http://localhost" not in body


def test_ids_are_stable_across_requests(client):
    url = "/iiif/3/manifest/literature-hall_L-003"
    assert client.get(url).data == client.get(url).data


# --- stable, citable ids -----------------------------------------------------------------------
@pytest.mark.slow
def test_a_fresh_ingest_publishes_identical_manifests_and_collections(
    client, sample_images, tmp_path, runner
):
    """Ids come from the institutions' own ids and file names, never from ingest order or
    time: ingesting the same folders into another archive publishes the same documents."""
    from archive.cli import cli
    from web import create_app

    home = tmp_path / "again"
    result = runner.invoke(cli, ["--home", str(home), "ingest", *map(str, reversed(sample_images))])
    assert result.exit_code == 0, result.output
    again = create_app(Config.load(home, environ={}))
    try:
        other = again.test_client()
        top = get_json(client, "/iiif/3/collection/top")
        assert get_json(other, "/iiif/3/collection/top") == top
        for ref in top["items"]:
            collection = get_json(client, ref["id"])
            assert get_json(other, ref["id"]) == collection
            for item in collection["items"]:
                assert get_json(other, item["id"]) == get_json(client, item["id"]), item["id"]
    finally:
        again.extensions["archive"].close()


def test_served_by_the_real_server_with_gzip_and_cors(live_server):
    import urllib.request

    url = f"{live_server}/iiif/3/manifest/literature-hall_L-003"
    request = urllib.request.Request(
        url, headers={"Accept-Encoding": "gzip", "Origin": "https://viewer.example.org"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.headers["Content-Type"] == JSONLD
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        doc = json.loads(gzip.decompress(resp.read()))
    assert_valid(doc)
    assert doc["id"] == url and len(doc["items"]) == 8
