"""Image API URLs a CDN can keep: pinned identifiers (``<image id>.<tag>``) are immutable
for a year, bare image ids live five minutes, and a pinned identifier of pixels since
replaced is never answered with the new pixels, only sent on to the current one."""

from __future__ import annotations

import pytest
import pyvips
from hypothesis import given
from hypothesis import strategies as st

from archive.records import record_id
from iiif.info import image_tag, split_identifier, versioned_id
from iiif.presentation import identifier

IMMUTABLE = "public, max-age=31536000, immutable"
TILE = "0,0,256,256/256,/0/default.jpg"


def pinned(archive, local_id: str) -> str:
    record = archive.catalog.get_record(record_id("test-museum", local_id), public_only=False)
    return identifier(record.images[0], record.max_image_size)


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_tag_is_a_function_of_the_pixels_and_the_presented_size():
    assert image_tag("abc", 100, 50) == image_tag("abc", 100, 50)
    assert image_tag("abc", 100, 50) != image_tag("abd", 100, 50)
    assert image_tag("abc", 100, 50) != image_tag("abc", 50, 25)
    # A cap is part of the identifier: the same pixels shown smaller are other URLs.
    assert versioned_id("a_b~0123456789", "v1", 1000, 700, 0) != versioned_id(
        "a_b~0123456789", "v1", 1000, 700, 500
    )
    assert versioned_id("a_b~0123456789", "v1", 1000, 700, 2000) == versioned_id(
        "a_b~0123456789", "v1", 1000, 700, 0
    )


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("a_b~0123456789", ("a_b~0123456789", None)),
        ("a_b~0123456789.0a1b2c3d4e", ("a_b~0123456789", "0a1b2c3d4e")),
        ("a_b~0123456789.", ("a_b~0123456789.", None)),
        ("a_b~0123456789.zz", ("a_b~0123456789.zz", None)),
        ("a_b~0123456789.0A1B2C3D4E", ("a_b~0123456789.0A1B2C3D4E", None)),
    ],
)
def test_split_identifier(identifier, expected):
    assert split_identifier(identifier) == expected


@given(st.text(alphabet="abc019_~.-xyzABC", max_size=40))
def test_split_identifier_is_total_and_loses_nothing(text):
    image_id, tag = split_identifier(text)
    assert (f"{image_id}.{tag}" if tag is not None else image_id) == text
    assert tag is None or len(tag) == 10


def test_pinned_tiles_are_immutable_and_revalidate(make_image, image_archive, iclient):
    make_image("A-1")
    ident = pinned(image_archive, "A-1")
    resp = iclient.get(f"/iiif/3/{ident}/{TILE}")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == IMMUTABLE
    assert "Vary" not in resp.headers  # the bytes depend on the URL alone
    again = iclient.get(f"/iiif/3/{ident}/{TILE}", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Cache-Control"] == IMMUTABLE
    assert again.headers["ETag"] == resp.headers["ETag"]
    render = iclient.get(f"/iiif/2/{ident}/full/!300,300/0/default.png")
    assert render.status_code == 200 and render.headers["Cache-Control"] == IMMUTABLE


def test_bare_ids_keep_working_with_a_short_lifetime(make_image, image_archive, iclient):
    img = make_image("A-1")
    ident = pinned(image_archive, "A-1")
    bare = iclient.get(f"/iiif/3/{img}/{TILE}")
    assert bare.status_code == 200
    assert bare.headers["Cache-Control"] == "public, max-age=300"
    assert bare.data == iclient.get(f"/iiif/3/{ident}/{TILE}").data
    info = iclient.get(f"/iiif/3/{img}/info.json")
    assert info.headers["Cache-Control"] == "public, max-age=300"
    assert info.get_json()["id"] == f"http://localhost/iiif/3/{img}"


def test_pinned_info_json_names_its_pinned_id(make_image, image_archive, iclient):
    make_image("A-1")
    ident = pinned(image_archive, "A-1")
    for version, key in (("3", "id"), ("2", "@id")):
        resp = iclient.get(f"/iiif/{version}/{ident}/info.json")
        assert resp.status_code == 200
        assert resp.get_json()[key] == f"http://localhost/iiif/{version}/{ident}"
        assert resp.headers["Cache-Control"] == "public, max-age=3600"
        assert resp.headers["Vary"] == "Accept"
        again = iclient.get(
            f"/iiif/{version}/{ident}/info.json", headers={"If-None-Match": resp.headers["ETag"]}
        )
        assert again.status_code == 304
    bare = iclient.get(f"/iiif/3/{ident.split('.')[0]}/info.json")
    assert bare.headers["ETag"] != iclient.get(f"/iiif/3/{ident}/info.json").headers["ETag"]


def test_reingest_sends_old_pinned_urls_on_never_new_pixels(make_image, image_archive, iclient):
    black = pyvips.Image.black(600, 400, bands=3).copy(interpretation="srgb")
    make_image("A-1", black, version="v1")
    old = pinned(image_archive, "A-1")
    assert decode(iclient.get(f"/iiif/3/{old}/{TILE}").data).avg() < 3
    white = (pyvips.Image.black(800, 500, bands=3) + 255).cast("uchar").copy(interpretation="srgb")
    make_image("A-1", white, version="v2")
    new = pinned(image_archive, "A-1")
    assert new != old and split_identifier(new)[0] == split_identifier(old)[0]
    for path in (f"/iiif/3/{old}/{TILE}", f"/iiif/2/{old}/{TILE}"):
        resp = iclient.get(path)
        assert resp.status_code == 302
        assert resp.headers["Location"] == "http://localhost" + path.replace(old, new)
        assert resp.headers["Cache-Control"] == "public, max-age=60"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = iclient.get(f"/iiif/3/{old}/info.json")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"http://localhost/iiif/3/{new}/info.json"
    resp = iclient.get(f"/iiif/3/{old}")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"http://localhost/iiif/3/{new}/info.json"
    tile = iclient.get(f"/iiif/3/{new}/{TILE}")
    assert tile.headers["Cache-Control"] == IMMUTABLE
    assert decode(tile.data).avg() > 250


def test_a_new_cap_is_a_new_identifier(make_image, image_archive, iclient):
    make_image("A-1", version="v1")
    full = pinned(image_archive, "A-1")
    make_image("A-1", version="v1", cap=300)
    capped = pinned(image_archive, "A-1")
    assert capped != full
    assert iclient.get(f"/iiif/3/{full}/full/max/0/default.jpg").status_code == 302
    resp = iclient.get(f"/iiif/3/{capped}/full/max/0/default.jpg")
    assert resp.status_code == 200 and decode(resp.data).width == 300


def test_unknown_and_hidden_identifiers_are_404_briefly_cached(make_image, image_archive, iclient):
    make_image("A-1")
    make_image("A-2", public=False)
    ident = pinned(image_archive, "A-1")
    hidden = pinned(image_archive, "A-2")
    bare = ident.split(".")[0]
    for path in (
        f"/iiif/3/{bare}.zzzz/info.json",
        f"/iiif/3/{bare}.0000000000x/{TILE}",
        f"/iiif/3/{hidden}/{TILE}",
        f"/iiif/3/{hidden}/info.json",
        f"/iiif/3/{ident.replace('~', '~f')}/info.json",
    ):
        resp = iclient.get(path)
        assert resp.status_code == 404, path
        assert resp.headers["Cache-Control"] == "public, max-age=60"
    bad = iclient.get(f"/iiif/3/{ident}/full/0,0/0/default.jpg")
    assert bad.status_code == 400 and "immutable" not in bad.headers["Cache-Control"]
