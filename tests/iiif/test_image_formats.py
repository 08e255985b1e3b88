"""The three formats the official validator cannot check on Python 3 (webp, pdf, jp2),
byte for byte: the file signature, the media type, and the validator's own colour squares
decoded back out of each format, for both API versions."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import pyvips
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
VALIDATOR_IMAGE = (
    REPO.parent / "shared" / "iiif-validator" / "67352ccc-d1b0-11e1-89ae-279075081939.png"
)
SIGNATURES = {
    "webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "pdf": lambda b: b.startswith(b"%PDF-") and b.rstrip().endswith(b"%%EOF"),
    "jp2": lambda b: b[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" and b"ftypjp2 " in b[:32],
}
MEDIA = {"webp": "image/webp", "pdf": "application/pdf", "jp2": "image/jp2"}


def square_colour(image: Image.Image, col: int, row: int, scale: float) -> tuple[int, ...]:
    x, y = int((col * 100 + 50) * scale), int((row * 100 + 50) * scale)
    return image.convert("RGB").getpixel((x, y))


def pdf_image(data: bytes) -> Image.Image:
    """The one image XObject of our PDF (Pillow writes JPEG-in-PDF, DCTDecode)."""
    start = data.index(b"stream", data.index(b"/Subtype /Image")) + len(b"stream")
    start += 2 if data[start : start + 2] == b"\r\n" else 1
    end = data.index(b"endstream", start)
    return Image.open(io.BytesIO(data[start:end].rstrip(b"\r\n")))


@pytest.fixture
def validator_image(make_image):
    if not VALIDATOR_IMAGE.is_file():
        pytest.fail(f"missing {VALIDATOR_IMAGE}")
    source = pyvips.Image.new_from_file(str(VALIDATOR_IMAGE))
    if source.hasalpha():
        source = source.flatten()
    return make_image("V-1", source.colourspace("srgb").cast("uchar"))


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("fmt", ["webp", "pdf", "jp2"])
def test_format_bytes_and_colours(validator_image, iclient, version, fmt):
    # The image is a 10×10 grid of 100-pixel squares; colours from the validator's table.
    truth = {
        (0, 0): (61, 170, 126),
        (9, 9): (161, 119, 182),
        (4, 2): (232, 227, 23),
        (7, 5): (99, 3, 54),
    }
    resp = iclient.get(f"/iiif/{version}/{validator_image}/full/500,/0/default.{fmt}")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == MEDIA[fmt]
    assert SIGNATURES[fmt](resp.data), resp.data[:32]
    image = pdf_image(resp.data) if fmt == "pdf" else Image.open(io.BytesIO(resp.data))
    if fmt != "pdf":
        assert image.format == {"webp": "WEBP", "jp2": "JPEG2000"}[fmt]
    assert image.size == (500, 500)
    for (col, row), colour in truth.items():
        got = square_colour(image, col, row, 0.5)
        assert all(abs(a - b) < 8 for a, b in zip(got, colour, strict=True)), (col, row, got)


@pytest.mark.parametrize("fmt", ["webp", "pdf", "jp2"])
def test_format_with_gray_and_rotation(validator_image, iclient, fmt):
    resp = iclient.get(f"/iiif/3/{validator_image}/0,0,200,100/100,/90/gray.{fmt}")
    assert resp.status_code == 200
    assert SIGNATURES[fmt](resp.data)
    image = pdf_image(resp.data) if fmt == "pdf" else Image.open(io.BytesIO(resp.data))
    assert image.size == (50, 100)
    r, g, b = image.convert("RGB").getpixel((25, 50))
    assert abs(r - g) < 4 and abs(g - b) < 4


def test_advertised_formats_are_exactly_those_that_work(make_image, iclient):
    """info.json lists a format only if a request for it really returns that format."""
    from PIL import features

    img = make_image("A-1")
    info3 = iclient.get(f"/iiif/3/{img}/info.json").get_json()
    info2 = iclient.get(f"/iiif/2/{img}/info.json").get_json()
    advertised = {"jpg", "png", *info3["extraFormats"]}
    assert advertised == set(info2["profile"][1]["formats"])
    assert ("jp2" in advertised) == features.check("jpg_2000")
    for fmt in advertised:
        resp = iclient.get(f"/iiif/3/{img}/full/64,/0/default.{fmt}")
        assert resp.status_code == 200, fmt
