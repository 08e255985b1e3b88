"""Source images as museums have them, through the tiling worker, into pyramids."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
from ingest_helpers import rgb
from PIL import Image

from archive.storage import ImageStore
from ingest.images import ImageTask, TileParams, process_image

PARAMS = TileParams(tile_size=64, quality=90, max_pixels=10_000_000)


def run(path: Path, store: Path, params: TileParams = PARAMS, *, dry_run: bool = False):
    task = ImageTask(str(path), "test-museum_A-1", path.name, str(store))
    return process_image(task, params, dry_run)


def pyramid(store: Path, result, page: int = 0) -> pyvips.Image:
    from archive.records import image_id

    img_id = image_id("test-museum_A-1", result.task.source, page)
    path = ImageStore(store).path(img_id, result.pages[page].version)
    assert path.is_file()
    return pyvips.Image.new_from_file(str(path))


def check_pyramid(image: pyvips.Image, width: int, height: int) -> None:
    assert (image.width, image.height) == (width, height)
    assert image.bands == 3 and image.format == "uchar" and image.interpretation == "srgb"
    assert image.get("n-pages") >= 2  # full size plus reduced levels
    assert image.get("tile-width") == PARAMS.tile_size


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_jpeg(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "a.jpg"
    rgb(200, 120).write_to_file(str(path))
    result = run(path, store)
    assert result.error is None and len(result.checksum) == 64
    assert [(p.width, p.height, p.tiled) for p in result.pages] == [(200, 120, True)]
    check_pyramid(pyramid(store, result), 200, 120)
    assert result.pages[0].version.isalnum() and len(result.pages[0].version) == 12
    again = run(path, store)  # a finished pyramid is found, not tiled again
    assert again.pages[0].tiled is False and again.pages[0].version == result.pages[0].version
    assert run(path, store, TileParams(tile_size=128)).pages[0].version != result.pages[0].version


def test_16_bit_tiff_is_scaled_not_clipped(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "master16.tif"
    grey = pyvips.Image.black(130, 90) + 40000  # 40000/65535 of white
    image = grey.bandjoin([grey, grey]).cast("ushort").copy(interpretation="rgb16")
    image.tiffsave(str(path))
    result = run(path, store)
    assert result.error is None
    out = pyramid(store, result)
    check_pyramid(out, 130, 90)
    assert abs(out.avg() - 40000 / 257) < 2


def test_cmyk_tiff_with_icc_profile_becomes_srgb(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "cmyk.tif"
    red = (pyvips.Image.black(120, 80) + [220, 30, 30]).cast("uchar").copy(interpretation="srgb")
    cmyk = red.icc_transform("cmyk", input_profile="srgb")
    assert cmyk.interpretation == "cmyk" and "icc-profile-data" in cmyk.get_fields()
    cmyk.tiffsave(str(path))
    result = run(path, store)
    assert result.error is None
    out = pyramid(store, result)
    check_pyramid(out, 120, 80)
    r, g, b = out.getpoint(60, 40)
    assert r > 150 and g < 90 and b < 90, (r, g, b)


def test_exif_orientation_is_applied(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "rotated.jpg"
    image = rgb(160, 100).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    image.jpegsave(str(path))
    assert pyvips.Image.new_from_file(str(path)).get("orientation") == 6
    result = run(path, store)
    assert result.error is None
    check_pyramid(pyramid(store, result), 100, 160)


def test_multi_page_tiff_gives_one_image_per_page(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "pages.tif"
    pages = [rgb(90, 70, seed) for seed in range(3)]
    stacked = pyvips.Image.arrayjoin(pages, across=1).copy()
    stacked.set_type(pyvips.GValue.gint_type, "page-height", 70)
    stacked.tiffsave(str(path))
    result = run(path, store)
    assert result.error is None
    assert [p.page for p in result.pages] == [0, 1, 2]
    versions = {p.version for p in result.pages}
    assert len(versions) == 3
    for page in range(3):
        check_pyramid(pyramid(store, result, page), 90, 70)


def test_png_alpha_is_flattened_onto_white(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "alpha.png"
    alpha = pyvips.Image.black(80, 60).cast("uchar")  # fully transparent
    rgb(80, 60).bandjoin(alpha).copy(interpretation="srgb").write_to_file(str(path))
    result = run(path, store)
    assert result.error is None
    out = pyramid(store, result)
    check_pyramid(out, 80, 60)
    assert out.min() >= 250


def test_greyscale_becomes_three_bands(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "grey.png"
    pyvips.Image.xyz(70, 50)[0].cast("uchar").write_to_file(str(path))
    result = run(path, store)
    assert result.error is None
    check_pyramid(pyramid(store, result), 70, 50)


def test_jpeg_2000_is_read(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "scan.jp2"
    Image.new("RGB", (150, 110), (10, 120, 200)).save(path)
    result = run(path, store)
    assert result.error is None, result.error
    out = pyramid(store, result)
    check_pyramid(out, 150, 110)
    assert abs(out.getpoint(75, 55)[2] - 200) < 6


def test_truncated_jpeg_is_refused(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "cut.jpg"
    rgb(400, 300).write_to_file(str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = run(path, store)
    assert result.pages == [] and "truncated" in result.error
    assert not list(store.glob("??/*.tif")), "no pyramid for a damaged file"
    assert not any((store / "tmp").glob("*")), "no temporary file left behind"


def test_not_an_image(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("これは画像ではありません", encoding="utf-8")
    result = run(path, store)
    assert result.error == "not an image file (or a format we cannot read)"


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "big.png"
    rgb(300, 200).write_to_file(str(path))
    result = run(path, store, TileParams(max_pixels=50_000))
    assert "60,000 pixels, over the limit of 50,000" in result.error
    jp2 = tmp_path / "big.jp2"
    Image.new("RGB", (300, 200)).save(jp2)
    assert "over the limit" in run(jp2, store, TileParams(max_pixels=50_000)).error


def test_dry_run_decodes_but_writes_nothing(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "a.jpg"
    rgb(200, 120).write_to_file(str(path))
    result = run(path, store, dry_run=True)
    assert result.error is None and result.pages[0].width == 200
    assert not store.exists() or not list(store.rglob("*.tif"))
    cut = tmp_path / "cut.jpg"
    rgb(400, 300).write_to_file(str(cut))
    cut.write_bytes(cut.read_bytes()[:3000])
    assert "truncated" in run(cut, store, dry_run=True).error


def test_large_jpeg_2000_under_our_limit_is_not_refused_by_pillow(
    tmp_path: Path, store: Path
) -> None:
    # Pillow's own bomb guard (89 Mpx) must not override max_pixels; shrink it to prove it.
    import PIL.Image

    path = tmp_path / "wide.jp2"
    Image.new("RGB", (400, 100), (90, 90, 90)).save(path)
    saved = PIL.Image.MAX_IMAGE_PIXELS
    PIL.Image.MAX_IMAGE_PIXELS = 1000
    try:
        result = run(path, store)
    finally:
        PIL.Image.MAX_IMAGE_PIXELS = saved
    assert result.error is None, result.error


def test_a_short_pyramid_is_written_again(tmp_path: Path, store: Path) -> None:
    """A pyramid renamed into place but cut short (power loss before the pipeline's sync)
    is not taken as finished."""
    path = tmp_path / "a.jpg"
    rgb(300, 200).write_to_file(str(path))
    first = run(path, store)
    final = next(store.glob("??/*.tif"))
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    again = run(path, store)
    assert again.error is None and again.pages[0].tiled is True
    assert again.pages[0].version == first.pages[0].version
    check_pyramid(pyramid(store, again), 300, 200)


def test_embedded_profile_other_than_srgb_is_converted(tmp_path: Path, store: Path) -> None:
    srgb = (pyvips.Image.black(60, 40) + [200, 120, 40]).cast("uchar").copy(interpretation="srgb")
    p3 = srgb.icc_transform("p3", input_profile="srgb")
    assert "icc-profile-data" in p3.get_fields()
    assert p3.getpoint(5, 5) != [200.0, 120.0, 40.0]  # the file holds Display P3 numbers
    path = tmp_path / "p3.png"
    p3.pngsave(str(path))
    out = pyramid(store, run(path, store))
    assert all(abs(a - b) <= 4 for a, b in zip(out.getpoint(30, 20), (200, 120, 40), strict=True))


def test_srgb_tagged_image_keeps_its_pixels(tmp_path: Path, store: Path) -> None:
    tagged = rgb(60, 40).icc_transform("srgb", input_profile="srgb")
    path = tmp_path / "tagged.png"
    tagged.pngsave(str(path))
    out = pyramid(store, run(path, store))
    assert abs(out.avg() - tagged.avg()) < 1.5


def test_16_bit_greyscale_jpeg_2000(tmp_path: Path, store: Path) -> None:
    path = tmp_path / "scan16.jp2"
    Image.new("I;16", (150, 110), 40000).save(path)
    out = pyramid(store, run(path, store))
    check_pyramid(out, 150, 110)
    assert abs(out.avg() - 40000 / 256) < 2
