"""Derivative caching: the disk LRU stays bounded, exact tiles are the stored JPEG tiles,
and re-ingesting an image never serves its old pixels (from disk or over HTTP)."""

from __future__ import annotations

import io
import os
import time

import pytest
import pyvips
from PIL import Image as PILImage

from iiif.cache import DiskCache
from iiif.image_tiff import read_pyramid


def decode(data: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(data, "")


def test_disk_cache_is_bounded_and_evicts_least_recently_used(tmp_path):
    cache = DiskCache(tmp_path / "c", max_bytes=100_000)
    keys = [cache.key("img", "v1", str(i)) for i in range(30)]
    for i, key in enumerate(keys[:9]):
        cache.put(key, bytes([i]) * 10_000)
        os.utime(cache._path(key), (time.time() - 1000 + i, time.time() - 1000 + i))
    assert cache.get(keys[0]) == bytes([0]) * 10_000  # touched: now the most recent
    for key in keys[9:]:
        cache.put(key, b"x" * 10_000)
        assert cache.usage() <= 100_000
    assert cache.get(keys[-1]) == b"x" * 10_000
    assert cache.get(keys[1]) is None  # old and untouched: evicted
    assert cache.usage() <= 100_000


def test_disk_cache_disabled_and_oversized(tmp_path):
    off = DiskCache(tmp_path / "off", max_bytes=0)
    off.put("k" * 64, b"data")
    assert off.get("k" * 64) is None
    small = DiskCache(tmp_path / "small", max_bytes=1000)
    small.put("a" * 64, b"y" * 500)  # more than a tenth of the cache: not worth keeping
    assert small.get("a" * 64) is None


def test_pyramid_structure_matches_the_tiler(make_image, image_archive, pattern):
    img = make_image("A-1", pattern(1000, 700))
    info = image_archive.catalog.get_image(img)
    pyr = read_pyramid(image_archive.images.path(img, info.version))
    assert [(lv.width, lv.height) for lv in pyr.levels] == [(1000, 700), (500, 350), (250, 175)]
    assert all(lv.jpeg and lv.tile_width == 256 for lv in pyr.levels)


def test_exact_tiles_are_the_stored_tiles_and_match_rendering(make_image, iclient, noise):
    img = make_image("A-1", noise(1100, 1100))
    for region, size in [
        ("0,0,256,256", "256,"),
        ("256,512,256,256", "256,256"),
        ("512,0,512,512", "256,"),
        ("0,0,1024,1024", "256,"),
    ]:
        jpg = iclient.get(f"/iiif/3/{img}/{region}/{size}/0/default.jpg")
        png = iclient.get(f"/iiif/3/{img}/{region}/{size}/0/default.png")
        assert jpg.status_code == png.status_code == 200
        a, b = decode(jpg.data), decode(png.data)
        assert (a.width, a.height) == (b.width, b.height) == (256, 256)
        assert (a.cast("float") - b.cast("float")).abs().max() <= 2, region
    # Edge tiles are cut to the image, not the stored padded tile, at every level.
    edge = decode(iclient.get(f"/iiif/3/{img}/1024,1024,76,76/76,/0/default.jpg").data)
    assert (edge.width, edge.height) == (76, 76)
    for region, size, expected in [
        ("1024,0,76,256", "76,256", (76, 256)),  # right edge, full size
        ("0,1024,256,76", "256,76", (256, 76)),  # bottom edge
        ("1024,0,76,512", "38,256", (38, 256)),  # right edge, half size
        ("1024,1024,76,76", "19,19", (19, 19)),  # corner, quarter size
        ("0,0,1100,1100", "138,138", (138, 138)),  # the one tile of the smallest level
    ]:
        jpg = iclient.get(f"/iiif/3/{img}/{region}/{size}/0/default.jpg")
        png = iclient.get(f"/iiif/3/{img}/{region}/{size}/0/default.png")
        assert jpg.status_code == png.status_code == 200, region
        a, b = decode(jpg.data), decode(png.data)
        assert (a.width, a.height) == (b.width, b.height) == expected, region
        # One JPEG generation from the stored pixels, no worse than libvips' own encoder.
        libvips = decode(b.jpegsave_buffer(Q=85))
        generation = (libvips.cast("float") - b.cast("float")).abs().avg()
        assert (a.cast("float") - b.cast("float")).abs().avg() <= generation * 1.1 + 0.5, region


def test_reingest_never_serves_old_pixels(make_image, iclient, pattern, image_archive):
    black = pyvips.Image.black(1000, 700, bands=3).copy(interpretation="srgb")
    img = make_image("A-1", black, version="v1")
    urls = ["full/200,/0/default.png", "0,0,256,256/256,/0/default.jpg", "info.json"]
    first = {u: iclient.get(f"/iiif/3/{img}/{u}") for u in urls}
    assert decode(first[urls[0]].data).avg() < 2
    # Re-ingest: new pixels, new version, same id (what ingest does on a changed source).
    white = (pyvips.Image.black(1200, 800, bands=3) + 255).cast("uchar").copy(interpretation="srgb")
    assert make_image("A-1", white, version="v2") == img
    again = {u: iclient.get(f"/iiif/3/{img}/{u}") for u in urls}
    assert decode(again[urls[0]].data).avg() > 250
    assert decode(again[urls[1]].data).avg() > 250
    assert again["info.json"].get_json()["width"] == 1200
    for url in urls:
        assert again[url].headers["ETag"] != first[url].headers["ETag"]
        resp = iclient.get(
            f"/iiif/3/{img}/{url}", headers={"If-None-Match": first[url].headers["ETag"]}
        )
        assert resp.status_code == 200


def test_rendered_derivatives_are_cached_on_disk(make_image, iclient, image_archive, pattern):
    img = make_image("A-1", pattern(1000, 700))
    cache_dir = image_archive.home.cache / "iiif"
    before = sum(1 for _ in cache_dir.rglob("*")) if cache_dir.exists() else 0
    first = iclient.get(f"/iiif/3/{img}/full/300,/45/gray.png")
    after = sum(1 for p in cache_dir.rglob("*") if p.is_file())
    assert after > before
    second = iclient.get(f"/iiif/3/{img}/full/300,/45/gray.png")
    assert second.data == first.data


def test_service_cache_stays_within_cache_size_mb(config, add_image, noise):
    """Many different renders through the service never take the cache over its bound."""
    from flask import Flask

    from archive.context import Archive
    from iiif.routes import image_blueprint

    archive = Archive(config.replace(cache_size_mb=1))
    try:
        img = add_image(archive, "C-1", noise(800, 600))
        app = Flask(__name__)
        app.register_blueprint(image_blueprint(archive))
        client = app.test_client()
        cache = DiskCache(archive.home.cache / "iiif", 1024 * 1024)
        for width in range(200, 800, 20):  # noise PNGs of 50-700 KB each
            assert client.get(f"/iiif/3/{img}/full/{width},/0/default.png").status_code == 200
            assert cache.usage() <= 1024 * 1024
        assert cache.usage() > 0
    finally:
        archive.close()


@pytest.mark.parametrize("quality", [85, 90])
def test_copied_tiles_are_standalone_jpegs_in_the_right_colours(
    image_archive, add_image, pattern, iclient, quality
):
    """libvips codes JPEG tiles as YCbCr below Q90 and as RGB from Q90: either way a
    copied tile must be a JPEG file any decoder reads in the right colours (RGB ones carry
    the Adobe marker that says so)."""
    from archive.records import ImageRef, Record
    from ingest.tiling import write_pyramid

    img = add_image(image_archive, "J-1", pattern(1000, 700))
    record = image_archive.catalog.get_record("test-museum_J-1")
    temp = image_archive.images.temp_path()
    write_pyramid(pattern(1000, 700), temp, quality=quality)
    image_archive.images.commit(temp, img, f"q{quality}")
    ref = record.images[0]
    image_archive.catalog.put_record(
        Record(
            **{
                **record.__dict__,
                "images": [ImageRef(**{**ref.__dict__, "version": f"q{quality}"})],
            }
        )
    )
    data = iclient.get(f"/iiif/3/{img}/256,256,256,256/256,/0/default.jpg").data
    assert data[:2] == b"\xff\xd8"
    assert (b"\xff\xee\x00\x0eAdobe" in data[:40]) == (quality >= 90)
    pil = PILImage.open(io.BytesIO(data))
    assert pil.mode == "RGB" and pil.size == (256, 256)
    r, g, b = pil.getpixel((40, 100))
    assert abs(r - (256 + 40) % 256) <= 8 and abs(g - (256 + 100) % 256) <= 8 and abs(b - 128) <= 8
