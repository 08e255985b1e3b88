"""The Image API over HTTP (Flask test client on real pyramids): status codes, headers,
info.json, every parameter form and format, on both 3.0 and 2.1."""

from __future__ import annotations

import io

import pytest
import pyvips
from PIL import Image


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_info_json_v3_describes_the_real_pyramid(pattern, make_image, iclient):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/info.json")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert '<http://iiif.io/api/image/3/level2.json>;rel="profile"' in resp.headers["Link"]
    info = resp.get_json()
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["id"] == f"http://localhost/iiif/3/{img}"
    assert info["type"] == "ImageService3"
    assert info["profile"] == "level2"
    assert (info["width"], info["height"]) == (1000, 700)
    assert info["sizes"] == [
        {"width": 250, "height": 175},
        {"width": 500, "height": 350},
        {"width": 1000, "height": 700},
    ]
    assert info["tiles"] == [{"width": 256, "height": 256, "scaleFactors": [1, 2, 4]}]
    assert set(info["extraFormats"]) == {"webp", "gif", "tif", "pdf", "jp2"}
    assert info["extraQualities"] == ["color", "gray", "bitonal"]
    assert "sizeUpscaling" in info["extraFeatures"] and "mirroring" in info["extraFeatures"]
    assert (info["maxWidth"], info["maxHeight"], info["maxArea"]) == (10000, 10000, 36_000_000)
    assert info["partOf"] == [
        {"id": "http://localhost/iiif/3/manifest/test-museum_A-1", "type": "Manifest"}
    ]


def test_info_json_v2(pattern, make_image, iclient):
    img = make_image("A-1", pattern(1000, 700))
    info = iclient.get(f"/iiif/2/{img}/info.json").get_json()
    assert info["@context"] == "http://iiif.io/api/image/2/context.json"
    assert info["@id"] == f"http://localhost/iiif/2/{img}"
    assert info["protocol"] == "http://iiif.io/api/image"
    assert info["profile"][0] == "http://iiif.io/api/image/2/level2.json"
    extras = info["profile"][1]
    assert {"jpg", "png", "webp", "gif", "tif", "pdf"} <= set(extras["formats"])
    assert "bitonal" in extras["qualities"] and "rotationArbitrary" in extras["supports"]


def test_json_ld_when_asked(make_image, iclient):
    img = make_image("A-1")
    resp = iclient.get(f"/iiif/3/{img}/info.json", headers={"Accept": "application/ld+json"})
    assert resp.headers["Content-Type"] == (
        'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    )
    assert "Accept" in resp.headers["Vary"]
    resp = iclient.get(f"/iiif/2/{img}/info.json", headers={"Accept": "application/ld+json"})
    assert resp.headers["Content-Type"].startswith("application/ld+json")
    assert "image/2/context.json" in resp.headers["Content-Type"]


def test_public_url_is_used_for_ids(make_image, image_archive):
    from flask import Flask

    from iiif.routes import image_blueprint

    img = make_image("A-1")
    image_archive.config = image_archive.config.replace(public_url="https://museum.example.jp/")
    app = Flask(__name__)
    app.register_blueprint(image_blueprint(image_archive))
    info = app.test_client().get(f"/iiif/3/{img}/info.json").get_json()
    assert info["id"] == f"https://museum.example.jp/iiif/3/{img}"


@pytest.mark.parametrize("version", ["2", "3"])
def test_base_uri_redirects_to_info(make_image, iclient, version):
    img = make_image("A-1")
    resp = iclient.get(f"/iiif/{version}/{img}")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"http://localhost/iiif/{version}/{img}/info.json"


@pytest.mark.parametrize(
    ("url", "size"),
    [
        ("full/max/0/default.jpg", (1000, 700)),
        ("full/500,/0/default.jpg", (500, 350)),
        ("full/,350/0/default.jpg", (500, 350)),
        ("full/pct:25/0/default.jpg", (250, 175)),
        ("full/300,300/0/default.jpg", (300, 300)),
        ("full/!300,300/0/default.jpg", (300, 210)),
        ("square/max/0/default.jpg", (700, 700)),
        ("10,20,300,200/max/0/default.jpg", (300, 200)),
        ("900,600,500,500/max/0/default.jpg", (100, 100)),
        ("pct:10,10,50,50/max/0/default.jpg", (500, 350)),
        ("full/^1500,/0/default.jpg", (1500, 1050)),
        ("full/^pct:150/0/default.jpg", (1500, 1050)),
        ("full/^max/0/default.jpg", (1000, 700)),
        ("full/max/90/default.jpg", (700, 1000)),
        ("full/max/!180/default.jpg", (1000, 700)),
        ("0,0,100,100/max/45/default.png", (142, 142)),
    ],
)
def test_sizes_v3(pattern, make_image, iclient, url, size):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/{url}")
    assert resp.status_code == 200, resp.data
    out = decode(resp.data)
    assert abs(out.width - size[0]) <= 1 and abs(out.height - size[1]) <= 1


@pytest.mark.parametrize(
    ("url", "size"),
    [
        ("full/full/0/default.jpg", (1000, 700)),
        ("full/max/0/default.jpg", (1000, 700)),
        ("full/1500,/0/default.jpg", (1500, 1050)),
        ("full/pct:200/0/native.jpg", None),
        ("full/!2000,2000/0/default.jpg", (2000, 1400)),
    ],
)
def test_sizes_v2(pattern, make_image, iclient, url, size):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/2/{img}/{url}")
    if size is None:
        assert resp.status_code == 400
        return
    assert resp.status_code == 200, resp.data
    out = decode(resp.data)
    assert (out.width, out.height) == size


def test_pixels_come_from_the_right_place(pattern, make_image, iclient):
    """Red and green encode x and y mod 256: a region must show its own coordinates."""
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/300,400,40,40/max/0/default.png")
    out = decode(resp.data)
    r, g, b = out.getpoint(20, 20)[:3]
    assert abs(r - (320 % 256)) <= 6 and abs(g - (420 % 256)) <= 6 and abs(b - 128) <= 6
    # Mirroring flips horizontally before rotation.
    out = decode(iclient.get(f"/iiif/3/{img}/0,0,200,100/max/!0/default.png").data)
    assert abs(out.getpoint(0, 50)[0] - 199) <= 6
    out = decode(iclient.get(f"/iiif/3/{img}/0,0,200,100/max/90/default.png").data)
    assert (out.width, out.height) == (100, 200)
    # 90° clockwise: output (u, v) shows source (x=v, y=height-1-u).
    r, g = out.getpoint(0, 150)[:2]
    assert abs(r - 150) <= 6 and abs(g - 99) <= 6


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize(
    ("fmt", "media", "pil_format"),
    [
        ("jpg", "image/jpeg", "JPEG"),
        ("png", "image/png", "PNG"),
        ("webp", "image/webp", "WEBP"),
        ("gif", "image/gif", "GIF"),
        ("tif", "image/tiff", "TIFF"),
        ("jp2", "image/jp2", "JPEG2000"),
    ],
)
def test_formats_decode_with_pillow(pattern, make_image, iclient, version, fmt, media, pil_format):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/{version}/{img}/full/200,/0/default.{fmt}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == media
    pil = Image.open(io.BytesIO(resp.data))
    assert pil.format == pil_format
    assert pil.size == (200, 140)


def test_pdf_is_a_real_pdf_with_the_image(pattern, make_image, iclient):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/full/200,/0/default.pdf")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.data.startswith(b"%PDF-") and resp.data.rstrip().endswith(b"%%EOF")
    assert b"/Width 200" in resp.data and b"/Height 140" in resp.data


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_qualities(pattern, make_image, iclient, fmt):
    img = make_image("A-1", pattern(1000, 700))
    gray = decode(iclient.get(f"/iiif/3/{img}/full/200,/0/gray.{fmt}").data)
    if gray.bands >= 3:  # some formats store gray as RGB: then r == g == b
        assert (gray[0] - gray[1]).abs().max() <= 3 and (gray[1] - gray[2]).abs().max() <= 3
    bitonal = decode(iclient.get(f"/iiif/3/{img}/full/200,/0/bitonal.png").data)
    assert bitonal.bands == 1
    values = set(bytes(bitonal.cast("uchar").write_to_memory()))
    assert values <= {0, 255}
    color = decode(iclient.get(f"/iiif/3/{img}/full/200,/0/color.{fmt}").data)
    assert color.bands >= 3 and (color[0] - color[1]).abs().max() > 100


@pytest.mark.parametrize(
    "path",
    [
        "bogus/max/0/default.jpg",
        "0,0,0,10/max/0/default.jpg",
        "2000,0,10,10/max/0/default.jpg",
        "full/full/0/default.jpg",  # 3.0 has no "full" size
        "full/2000,/0/default.jpg",  # upscaling without ^
        "full/0,/0/default.jpg",
        "full/pct:0/0/default.jpg",
        "full/max/361/default.jpg",
        "full/max/-90/default.jpg",
        "full/max/abc/default.jpg",
        "full/max/0/native.jpg",
        "full/max/0/default.bmp",
        "full/max/0/default",
        "full/^20000,/0/default.jpg",  # above maxWidth
        "full/^9000,9000/0/default.jpg",  # above maxArea
        "full/99999999999999999999,/0/default.jpg",
    ],
)
def test_bad_requests_are_400_with_a_reason(pattern, make_image, iclient, path):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/{path}")
    assert resp.status_code == 400, path
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert any(
        word in resp.get_data(as_text=True)
        for word in ("region", "size", "rotation", "quality", "format", "width", "height", "area")
    )


@pytest.mark.parametrize(
    "image_id",
    ["nope", "test-museum_Z-9~0123456789", "../../etc/passwd", "a~b", "test-museum_A-1"],
)
def test_unknown_ids_are_404(make_image, iclient, image_id):
    make_image("A-1")
    for path in ("info.json", "full/max/0/default.jpg"):
        resp = iclient.get(f"/iiif/3/{image_id}/{path}")
        assert resp.status_code == 404
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_non_public_images_are_404_everywhere(make_image, iclient):
    img = make_image("S-1", public=False)
    for version in ("2", "3"):
        for path in (
            "",
            "/info.json",
            "/full/max/0/default.jpg",
            "/0,0,256,256/256,/0/default.jpg",
        ):
            assert iclient.get(f"/iiif/{version}/{img}{path}").status_code == 404


def test_link_header_canonical_and_profile(pattern, make_image, iclient):
    img = make_image("A-1", pattern(1000, 700))
    resp = iclient.get(f"/iiif/3/{img}/full/500,/0/default.jpg")
    link = resp.headers["Link"]
    assert f'<http://localhost/iiif/3/{img}/full/500,350/0/default.jpg>;rel="canonical"' in link
    assert '<http://iiif.io/api/image/3/level2.json>;rel="profile"' in link
    resp = iclient.get(f"/iiif/2/{img}/full/500,/0/default.jpg")
    assert (
        f'<http://localhost/iiif/2/{img}/full/500,/0/default.jpg>;rel="canonical"'
        in resp.headers["Link"]
    )


def test_http_caching_validators_and_304(make_image, iclient):
    img = make_image("A-1")
    url = f"/iiif/3/{img}/full/200,/0/default.jpg"
    first = iclient.get(url)
    assert first.status_code == 200
    assert "public" in first.headers["Cache-Control"]
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = iclient.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert iclient.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert iclient.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    info = iclient.get(f"/iiif/3/{img}/info.json")
    assert (
        iclient.get(
            f"/iiif/3/{img}/info.json", headers={"If-None-Match": info.headers["ETag"]}
        ).status_code
        == 304
    )


def test_head_options_and_other_methods(make_image, iclient):
    img = make_image("A-1")
    url = f"/iiif/3/{img}/full/200,/0/default.jpg"
    head = iclient.head(url)
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(iclient.get(url).data)
    options = iclient.options(url)
    assert options.status_code == 204
    assert options.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in options.headers["Access-Control-Allow-Methods"]
    post = iclient.post(url)
    assert post.status_code == 405 and "GET" in post.headers["Allow"]


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        ("/", 303),
        ("/full/max/0", 404),
        ("/full/max/0/default.jpg/extra", 404),
        ("/info.json/x", 404),
        ("/info.xml", 404),
    ],
)
def test_other_shapes_of_image_urls(make_image, iclient, tail, status):
    img = make_image("A-1")
    assert iclient.get(f"/iiif/3/{img}{tail}").status_code == status


def test_conditional_forms(make_image, iclient):
    img = make_image("A-1")
    url = f"/iiif/2/{img}/full/100,/0/default.png"
    etag = iclient.get(url).headers["ETag"]
    assert iclient.get(url, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert iclient.get(url, headers={"If-None-Match": "*"}).status_code == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
    assert (
        iclient.get(
            url,
            headers={"If-None-Match": '"x"', "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
        ).status_code
        == 200
    )
    assert (
        iclient.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code
        == 200
    )
    assert iclient.get(url, headers={"If-Modified-Since": "yesterday"}).status_code == 200


def test_errors_say_which_parameter(make_image, iclient):
    img = make_image("A-1")
    body = iclient.get(f"/iiif/3/{img}/full/max/0/default.bmp").get_data(as_text=True)
    assert body.startswith("format 'bmp'")
    body = iclient.get(f"/iiif/3/{img}/full/max/1e3/default.jpg").get_data(as_text=True)
    assert body.startswith("rotation '1e3'")
