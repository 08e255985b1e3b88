"""Capped images (max_image_size) are presented as the capped image everywhere, and no
request on either API version yields more detail than that capped image holds."""

from __future__ import annotations

import pytest
import pyvips

CAP = 500  # the noise image is 2000×1500: presented as 500×375


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def detail_beyond(image: pyvips.Image, pixels_w: int) -> float:
    """Mean difference between ``image`` and itself band-limited to ``pixels_w`` across.

    An image made from at most ``pixels_w`` columns of information survives the round
    trip nearly unchanged; one with finer detail (full-resolution noise) does not.
    """
    image = image.cast("float")
    small = image.resize(pixels_w / image.width)
    back = small.resize(
        image.width / small.width, vscale=image.height / small.height, kernel="linear"
    )
    back = back.gravity("north-west", image.width, image.height, extend="copy")
    return (image - back).abs().avg()


@pytest.fixture
def capped(make_image, noise):
    return make_image("R-1", noise(2000, 1500), cap=CAP)


def test_info_describes_the_capped_image(capped, iclient):
    for version in ("2", "3"):
        info = iclient.get(f"/iiif/{version}/{capped}/info.json").get_json()
        assert (info["width"], info["height"]) == (500, 375)
        assert max(s["width"] for s in info["sizes"]) == 500
        assert info["tiles"][0]["scaleFactors"] == [1, 2]


@pytest.mark.parametrize(
    ("version", "path", "size"),
    [
        ("3", "full/max/0/default.png", (500, 375)),
        ("3", "full/^max/0/default.png", (500, 375)),
        ("3", "full/^2000,/0/default.png", (2000, 1500)),
        ("3", "full/^pct:400/0/default.png", (2000, 1500)),
        ("3", "full/^!2000,2000/0/default.png", (2000, 1500)),
        ("3", "square/^1500,1500/0/default.png", (1500, 1500)),
        ("3", "0,0,50,50/^500,500/0/default.png", (500, 500)),
        ("3", "pct:0,0,10,10/^500,/0/default.png", (500, 380)),
        ("3", "0,0,50,50/^500,500/!90/gray.tif", (500, 500)),
        ("3", "0,0,50,50/^500,500/0/color.webp", (500, 500)),
        ("3", "0,0,50,50/^500,500/0/default.jpg", (500, 500)),
        ("2", "full/full/0/default.png", (500, 375)),
        ("2", "full/2000,/0/default.png", (2000, 1500)),
        ("2", "0,0,50,50/500,500/0/default.png", (500, 500)),
        ("2", "0,0,50,50/!500,500/0/default.png", (500, 500)),
    ],
)
def test_no_request_yields_more_than_the_capped_detail(capped, iclient, version, path, size):
    resp = iclient.get(f"/iiif/{version}/{capped}/{path}")
    assert resp.status_code == 200, resp.data
    out = decode(resp.data)
    assert (out.width, out.height) == size
    # The region's presented width is the most information it may carry.
    region = path.split("/")[0]
    presented_w = {"full": 500, "square": 375}.get(region, 50)
    assert detail_beyond(out, presented_w) < 6, "more detail than the capped image"


def test_the_leak_check_can_fail(make_image, iclient, noise):
    """Control: the same requests on an uncapped image do carry full-resolution detail."""
    img = make_image("U-1", noise(2000, 1500))
    out = decode(iclient.get(f"/iiif/3/{img}/0,0,200,200/max/0/default.png").data)
    assert detail_beyond(out, 50) > 15


def test_regions_beyond_the_capped_image_are_400(capped, iclient):
    assert iclient.get(f"/iiif/3/{capped}/500,0,10,10/max/0/default.jpg").status_code == 400
    assert iclient.get(f"/iiif/3/{capped}/0,0,2000,1500/max/0/default.jpg").status_code == 200
    assert iclient.get(f"/iiif/3/{capped}/full/501,/0/default.jpg").status_code == 400


def test_stitching_tiles_gives_back_only_the_capped_image(capped, iclient):
    """Tiles at every scale factor tile the 500×375 image; together no more than it."""
    info = iclient.get(f"/iiif/3/{capped}/info.json").get_json()
    full = decode(iclient.get(f"/iiif/3/{capped}/full/max/0/default.png").data)
    for sf in info["tiles"][0]["scaleFactors"]:
        span = 256 * sf
        for y in range(0, 375, span):
            for x in range(0, 500, span):
                w, h = min(span, 500 - x), min(span, 375 - y)
                url = f"/iiif/3/{capped}/{x},{y},{w},{h}/{-(-w // sf)},/0/default.png"
                resp = iclient.get(url)
                assert resp.status_code == 200, url
                if sf == 1:
                    tile = decode(resp.data)
                    diff = (tile.cast("float") - full.crop(x, y, w, h).cast("float")).abs()
                    assert diff.avg() < 2, url


def test_thumbnail_of_a_capped_image(capped, iclient):
    out = decode(iclient.get(f"/iiif/3/{capped}/full/!400,400/0/default.jpg").data)
    assert (out.width, out.height) == (400, 300)
