"""Presentation building blocks on records put straight into a catalog: paged collections
for large institutions, language fallbacks, navDate limits, behavior values, logo safety."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from flask import Flask

from archive.context import Archive
from archive.records import ImageRef, Institution, Record, image_id, record_id
from iiif import presentation
from iiif.presentation import COLLECTION_PAGE_SIZE, Links, build_manifest
from iiif.routes import presentation_blueprint

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "shared" / "iiif-schema" / "iiif_3_0.json").read_text(
        encoding="utf-8"
    )
)
RIGHTS = "https://creativecommons.org/licenses/by/4.0/"
LINKS = Links("https://museum.example.jp/")


def institution(inst_id: str = "big-museum", **kw) -> Institution:
    return Institution(id=inst_id, name={"ja": "大きな館", "en": "Big Museum"}, rights=RIGHTS, **kw)


def record(
    local_id: str, *, images: int = 1, inst: str = "big-museum", public: bool = True, **fields
) -> Record:
    rec_id = record_id(inst, local_id)
    refs = [
        ImageRef(
            id=image_id(rec_id, f"images/{local_id}-{n}.jpg"),
            source=f"images/{local_id}-{n}.jpg",
            width=3000,
            height=2000,
            version="v1",
        )
        for n in range(images)
    ]
    return Record(
        id=rec_id,
        institution=inst,
        local_id=local_id,
        fields={"id": local_id, "title": f"資料{local_id}", **fields},
        public=public,
        rights=RIGHTS,
        images=refs,
    )


def valid(doc: dict) -> dict:
    jsonschema.validate(doc, SCHEMA)
    return doc


@pytest.fixture
def archive(config, tmp_path):
    arch = Archive(config)
    yield arch
    arch.close()


@pytest.fixture
def client(archive):
    app = Flask(__name__)
    app.register_blueprint(presentation_blueprint(archive))
    return app.test_client()


# --- pure builders ------------------------------------------------------------------------
def test_links_strip_the_trailing_slash():
    assert LINKS.manifest("a_b") == "https://museum.example.jp/iiif/3/manifest/a_b"
    assert LINKS.collection() == "https://museum.example.jp/iiif/3/collection/top"
    assert LINKS.collection("x", 2) == "https://museum.example.jp/iiif/3/collection/x/2"
    assert LINKS.thumbnail("a_b~0123456789").endswith("/a_b~0123456789/full/!400,400/0/default.jpg")


def test_label_and_summary_keep_only_the_languages_we_have():
    doc = json.loads(build_manifest(record("1", description="解説"), institution(), LINKS).jsonld())
    assert doc["label"] == {"ja": ["資料1"]}
    assert doc["summary"] == {"ja": ["解説"]}
    both = json.loads(
        build_manifest(
            record("2", title_en="Object 2", description_en="Notes"), institution(), LINKS
        ).jsonld()
    )
    assert both["label"] == {"ja": ["資料2"], "en": ["Object 2"]}
    assert both["summary"] == {"en": ["Notes"]}


def test_a_record_without_a_title_is_labelled_by_its_local_id():
    rec = record("X-9")
    rec.fields["title"] = ""
    doc = valid(json.loads(build_manifest(rec, institution(), LINKS).jsonld()))
    assert doc["label"] == {"none": ["X-9"]}


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (1895, "1895-01-01T00:00:00Z"),
        (794, "0794-01-01T00:00:00Z"),
        (1, "0001-01-01T00:00:00Z"),
        (0, None),
        (-300, None),
        (None, None),
    ],
)
def test_nav_date_from_the_normalised_start_year(start, expected):
    rec = record("1")
    rec.date_start = start
    assert presentation.nav_date(rec) == expected
    doc = valid(json.loads(build_manifest(rec, institution(), LINKS).jsonld()))
    assert doc.get("navDate") == expected


@pytest.mark.parametrize(
    ("value", "images", "expected"),
    [
        ("paged", 3, ["paged"]),
        ("冊子", 3, ["paged"]),
        ("Continuous", 1, ["continuous"]),
        ("巻子", 2, ["continuous"]),
        ("", 2, ["individuals"]),
        ("", 1, None),
        ("nonsense", 2, ["individuals"]),
        ("nonsense", 1, None),
    ],
)
def test_behavior_values(value, images, expected):
    assert presentation.behavior_of(record("1", images=images, behavior=value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("right-to-left", "right-to-left"),
        ("右から左", "right-to-left"),
        ("top-to-bottom", "top-to-bottom"),
        ("", None),
        ("nonsense", None),
    ],
)
def test_viewing_direction_values(value, expected):
    assert presentation.viewing_direction_of(record("1", viewing_direction=value)) == expected


def test_capped_records_have_canvases_at_the_cap():
    rec = record("1", images=2)
    rec.max_image_size = 1500
    doc = json.loads(build_manifest(rec, institution(), LINKS).jsonld())
    assert [(c["width"], c["height"]) for c in doc["items"]] == [(1500, 1000)] * 2


def test_https_rights_are_published_in_the_http_form_iiif_requires():
    doc = valid(json.loads(build_manifest(record("1"), institution(), LINKS).jsonld()))
    assert doc["rights"] == "http://creativecommons.org/licenses/by/4.0/"


def test_a_record_without_images_is_still_a_valid_manifest():
    doc = valid(json.loads(build_manifest(record("1", images=0), institution(), LINKS).jsonld()))
    assert doc["items"] == [] and "thumbnail" not in doc


# --- large institutions: nested collections ----------------------------------------------------
def fill(archive: Archive, count: int, inst: str = "big-museum") -> None:
    archive.catalog.put_institution(institution(inst))
    with archive.catalog.transaction():
        for n in range(count):
            archive.catalog.put_record(record(f"{n:05d}", images=0, inst=inst))
    archive.catalog.put_record(record("hidden", inst=inst, public=False))


def test_over_a_thousand_objects_the_collection_is_paged(archive, client):
    total = 2 * COLLECTION_PAGE_SIZE + 5
    fill(archive, total)
    top = valid(client.get("/iiif/3/collection/big-museum").get_json(force=True))
    pages = [item["id"] for item in top["items"]]
    assert all(item["type"] == "Collection" for item in top["items"])
    assert pages == [f"http://localhost/iiif/3/collection/big-museum/{n}" for n in (1, 2, 3)]
    listed = []
    for url in pages:
        page = valid(client.get(url.removeprefix("http://localhost")).get_json(force=True))
        assert len(page["items"]) <= COLLECTION_PAGE_SIZE
        assert page["partOf"][0]["id"] == "http://localhost/iiif/3/collection/big-museum"
        listed += [item["id"].rsplit("/", 1)[1] for item in page["items"]]
    assert listed == archive.catalog.record_ids("big-museum")
    assert len(listed) == total  # the hidden record is not listed
    assert client.get("/iiif/3/collection/big-museum/4").status_code == 404
    assert client.get("/iiif/3/collection/big-museum/0").status_code == 404


def test_up_to_a_thousand_objects_the_collection_lists_manifests(archive, client):
    fill(archive, COLLECTION_PAGE_SIZE)
    top = valid(client.get("/iiif/3/collection/big-museum").get_json(force=True))
    assert len(top["items"]) == COLLECTION_PAGE_SIZE
    assert {item["type"] for item in top["items"]} == {"Manifest"}
    assert client.get("/iiif/3/collection/big-museum/1").status_code == 404


def test_an_institution_with_no_public_objects_is_not_in_the_root(archive, client):
    fill(archive, 2)
    archive.catalog.put_institution(institution("empty-museum"))
    archive.catalog.put_record(record("x", inst="empty-museum", public=False))
    top = valid(client.get("/iiif/3/collection/top").get_json(force=True))
    assert [i["id"].rsplit("/", 1)[1] for i in top["items"]] == ["big-museum"]


# --- the logo route only serves an image inside the institution's folder ------------------------
def test_logo_is_served_from_inside_the_folder_only(archive, client, tmp_path):
    folder = tmp_path / "museum"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG secret")
    (folder / "notes.txt").write_text("not an image")
    catalog = archive.catalog
    catalog.put_institution(institution("a-museum", logo="img/logo.png", source=str(folder)))
    resp = client.get("/iiif/3/logo/a-museum")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    for logo in ("../secret.png", str(tmp_path / "secret.png"), "notes.txt", "missing.png"):
        catalog.put_institution(institution("a-museum", logo=logo, source=str(folder)))
        assert client.get("/iiif/3/logo/a-museum").status_code == 404, logo
    catalog.put_institution(institution("a-museum"))
    assert client.get("/iiif/3/logo/a-museum").status_code == 404


# --- cached documents are never stale -----------------------------------------------------------
def test_changes_show_at_once_even_within_the_same_second(archive, client):
    catalog = archive.catalog
    catalog.put_institution(institution())
    catalog.put_record(record("1"))
    url, coll = "/iiif/3/manifest/big-museum_1", "/iiif/3/collection/big-museum"
    assert client.get(url).get_json(force=True)["label"] == {"ja": ["資料1"]}
    assert client.get(coll).get_json(force=True)["items"][0]["label"] == {"ja": ["資料1"]}
    for title in ("改題一", "改題二"):  # two updates, quicker than the clock's seconds
        catalog.put_record(record("1", title=title))
        assert client.get(url).get_json(force=True)["label"] == {"ja": [title]}
        assert client.get(coll).get_json(force=True)["items"][0]["label"] == {"ja": [title]}
    catalog.put_institution(institution(homepage="https://new.example.org/"))
    agent = client.get(url).get_json(force=True)["provider"][0]
    assert "https://new.example.org/" in [h["id"] for h in agent["homepage"]]


def test_an_institution_change_moves_last_modified(archive, client):
    """A client revalidating with If-Modified-Since alone sees the new provider data."""
    import time

    catalog = archive.catalog
    catalog.put_institution(institution())
    catalog.put_record(record("1"))
    url = "/iiif/3/manifest/big-museum_1"
    first = client.get(url).headers["Last-Modified"]
    assert client.get(url, headers={"If-Modified-Since": first}).status_code == 304
    time.sleep(1.1)  # timestamps have one-second resolution
    catalog.put_institution(institution(homepage="https://moved.example.org/"))
    for path in (url, "/iiif/3/collection/big-museum", "/iiif/3/collection/top"):
        resp = client.get(path, headers={"If-Modified-Since": first})
        assert resp.status_code == 200, path
        assert resp.headers["Last-Modified"] != first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("茶碗", "茶碗"),
        ("a < b", "<span>a &lt; b</span>"),  # Mirador would read it as HTML
        ("a & b", "a & b"),
        ("<img src=x onerror=alert(1)>", "<span>&lt;img src=x onerror=alert(1)&gt;</span>"),
        (" <b>x</b> ", "<span> &lt;b&gt;x&lt;/b&gt; </span>"),
    ],
)
def test_text_that_looks_like_html_is_shown_literally(text, expected):
    from iiif.presentation import lang_map

    assert lang_map(text) == {"ja": [expected]}
