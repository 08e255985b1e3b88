"""Cutting pixels for an Image API request: the only place that does.

Given a resolved ``Plan`` (region and size in the *presented* image), render
picks the smallest pyramid level that still has enough pixels, crops, scales,
mirrors, rotates, converts the quality and encodes the format.

Restricted images: the presented image may be smaller than the pyramid (a cap).
Pixels are first produced at no more than the presented resolution of the
region, and only those are upscaled, so no request yields more detail than the
capped image has (the cap is enforced here, not trusted to the caller).

Exact viewer tiles of an uncapped image in jpg are copied out of the pyramid
file without decoding (see image_tiff).
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import pyvips

from archive.errors import NotImplementedFeature
from archive.storage import PyramidFile

from .image_request import FORMATS, Plan
from .image_tiff import Pyramid

JPEG_QUALITY = 85
# libvips' operation cache would keep decoded regions and open TIFFs of recently served
# images in every worker; our own disk cache keeps what is worth keeping.
pyvips.cache_set_max(0)
# Formats that can carry transparency for the corners of an arbitrary rotation.
_ALPHA_FORMATS = {"png", "webp", "tif", "gif"}
_MAX_JOINED_TILES = 16
_MAX_REMOTE_TILES = 2048  # the largest render (iiif_max_area) needs about 600 at its level


@dataclass(frozen=True)
class Rendered:
    data: bytes
    media_type: str


def choose_level(pyr: Pyramid, fw: float, fh: float, out_w: int, out_h: int) -> int:
    """The smallest level whose pixels still cover ``out_w``×``out_h`` for a region that is
    ``fw``×``fh`` full-resolution pixels. Level n is the full image shrunk by 2**n."""
    best = 0
    for n in range(1, len(pyr.levels)):
        if fw / 2**n + 1e-6 >= out_w and fh / 2**n + 1e-6 >= out_h:
            best = n
        else:
            break
    return best


def _to_size(image: pyvips.Image, w: int, h: int) -> pyvips.Image:
    """Scale ``image`` to exactly ``w``×``h`` (the aspect ratio may change)."""
    if image.width == w and image.height == h:
        return image
    out = image.resize(w / image.width, vscale=h / image.height)
    if out.width != w or out.height != h:  # rounding in resize: trim or extend one pixel
        out = out.gravity("north-west", w, h, extend="copy")
    return out


def _region_pixels(
    source: PyramidFile,
    pyr: Pyramid,
    plan: Plan,
    pres_w: int,
    pres_h: int,
    work_w: int,
    work_h: int,
) -> pyvips.Image:
    """The plan's region, at ``work_w``×``work_h`` (never more than presented detail)."""
    full_w, full_h = pyr.width, pyr.height
    kx, ky = full_w / pres_w, full_h / pres_h
    fx, fy = plan.x * kx, plan.y * ky
    fw, fh = plan.region_w * kx, plan.region_h * ky
    n = choose_level(pyr, fw, fh, work_w, work_h)
    level = pyr.levels[n]
    scale = 1 / 2**n  # level pixel i covers full pixels [i * 2**n, (i + 1) * 2**n)
    x0, y0 = fx * scale, fy * scale
    x1, y1 = min((fx + fw) * scale, level.width), min((fy + fh) * scale, level.height)
    ix0, iy0 = int(math.floor(x0 + 1e-6)), int(math.floor(y0 + 1e-6))
    ix1, iy1 = int(math.ceil(x1 - 1e-6)), int(math.ceil(y1 - 1e-6))
    ix1, iy1 = max(ix1, ix0 + 1), max(iy1, iy0 + 1)
    crop = level_region(source, pyr, n, ix0, iy0, ix1 - ix0, iy1 - iy0)
    return _to_size(crop, work_w, work_h)


def level_region(
    fh: PyramidFile, pyr: Pyramid, n: int, x: int, y: int, w: int, h: int
) -> pyvips.Image:
    """Pixels ``x, y, w, h`` of pyramid level ``n`` of the pyramid open as ``fh``.

    A few JPEG tiles are decoded straight from their bytes (cheaper than opening the
    TIFF page through libtiff for a small region; on S3 one ranged GET each); larger
    regions go through libvips, which opens a local file itself and reads a remote
    one through ``fh`` (``_remote_page``), only the tiles it needs.
    """
    level = pyr.levels[n]
    tw, th = level.tile_width, level.tile_height
    c0, c1 = x // tw, (x + w - 1) // tw
    r0, r1 = y // th, (y + h - 1) // th
    count = (c1 - c0 + 1) * (r1 - r0 + 1)
    # From object storage every region is assembled from its tiles, fetched a few at a
    # time: measured on a 6000×4000 pyramid over s3proxy, a 1536×1024 region took 24
    # ranged GETs and 240 KiB this way, and 56 GETs and 3.3 MiB through libvips' reads.
    remote = fh.path is None
    if level.jpeg and (count <= _MAX_JOINED_TILES or (remote and count <= _MAX_REMOTE_TILES)):
        cells = [(col, row) for row in range(r0, r1 + 1) for col in range(c0, c1 + 1)]
        if remote and count > 1:
            blobs = list(_fetcher().map(lambda cell: level.tile_bytes(fh, *cell), cells))
        else:
            blobs = [level.tile_bytes(fh, col, row) for col, row in cells]
        tiles = []
        for data in blobs:
            if data is None:
                break
            tiles.append(pyvips.Image.jpegload_buffer(data))
        if len(tiles) == count:
            mosaic = tiles[0] if count == 1 else pyvips.Image.arrayjoin(tiles, across=c1 - c0 + 1)
            return mosaic.crop(x - c0 * tw, y - r0 * th, w, h)
    if fh.path is not None:
        page = pyvips.Image.new_from_file(fh.path, page=n, access="random")
    else:
        page = _remote_page(fh, n)
    return page.crop(x, y, w, h)


@lru_cache(maxsize=1)
def _fetcher() -> ThreadPoolExecutor:
    """Threads that fetch a region's tiles from object storage side by side (a GET's
    latency, not its Python, is what a remote tile costs). One pool per process."""
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="tile-fetch")


def _remote_page(fh: PyramidFile, n: int) -> pyvips.Image:
    """Page ``n`` read by libvips through ``fh`` (ranged reads with read-ahead). A store
    error inside libvips' callbacks is kept and raised again once libvips gives up, so a
    store that goes away is a StorageUnavailable (503), not a libvips error."""
    source = pyvips.SourceCustom()

    def on_read(size: int) -> bytes:
        try:
            return fh.read(size)
        except Exception as exc:  # noqa: BLE001 - re-raised by render (see above)
            fh.failure = exc
            return b""

    def on_seek(offset: int, whence: int) -> int:
        return fh.seek(offset, whence)

    source.on_read(on_read)
    source.on_seek(on_seek)
    return pyvips.Image.new_from_source(source, "", page=n, access="random")


def _rotate(image: pyvips.Image, degrees: float, alpha: bool) -> pyvips.Image:
    if degrees == 0:
        return image
    if degrees in (90.0, 180.0, 270.0):
        return image.rot(f"d{int(degrees)}")
    if alpha and not image.hasalpha():
        image = image.bandjoin(255)
    background = [0] * (image.bands - 1) + [0] if alpha else [255] * image.bands
    return image.rotate(degrees, background=background)


def _quality(image: pyvips.Image, quality: str) -> pyvips.Image:
    if quality in ("default", "color"):
        return image
    alpha = image.extract_band(image.bands - 1) if image.hasalpha() else None
    base = image.extract_band(0, n=image.bands - 1) if alpha is not None else image
    gray = base.colourspace("b-w") if base.bands >= 3 else base
    if quality == "bitonal":
        gray = (gray > 127).ifthenelse(255, 0).cast("uchar")
    return gray.bandjoin(alpha) if alpha is not None else gray


def _pillow_encode(image: pyvips.Image, fmt: str) -> bytes:
    """PDF and JPEG 2000: written by Pillow (pyvips-binary has neither saver)."""
    from PIL import Image

    if image.hasalpha():  # neither format needs transparency for our purposes
        image = image.flatten(background=[255] * (image.bands - 1))
    image = image.cast("uchar")
    mode = {1: "L", 3: "RGB"}[image.bands]
    pil = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    buf = io.BytesIO()
    if fmt == "pdf":
        pil.save(buf, "PDF", resolution=72.0)
    else:
        pil.save(buf, "JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[20])
    return buf.getvalue()


@lru_cache(maxsize=1)
def available_formats() -> tuple[str, ...]:
    """The formats this build can really write (info.json advertises only these).

    jpg, png, webp, gif and tif come from libvips' savers; pdf and jp2 from Pillow
    (pyvips-binary has neither), jp2 only when Pillow was built with OpenJPEG.
    """
    from PIL import features

    suffixes = set(pyvips.get_suffixes())
    out = [
        fmt
        for fmt, suffix in (
            ("jpg", ".jpg"),
            ("png", ".png"),
            ("webp", ".webp"),
            ("gif", ".gif"),
            ("tif", ".tif"),
        )
        if suffix in suffixes
    ]
    out.append("pdf")
    if features.check("jpg_2000"):
        out.append("jp2")
    return tuple(out)


def encode(image: pyvips.Image, fmt: str) -> bytes:
    if fmt == "jpg":
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        return image.jpegsave_buffer(Q=JPEG_QUALITY, strip=True, optimize_coding=False)
    if fmt == "png":
        return image.pngsave_buffer(compression=3, strip=True)
    if fmt == "webp":
        return image.webpsave_buffer(Q=JPEG_QUALITY, strip=True)
    if fmt == "gif":
        return image.gifsave_buffer(strip=True)
    if fmt == "tif":
        return image.tiffsave_buffer(compression="deflate", strip=True)
    return _pillow_encode(image, fmt)


def stored_tile(
    pyr: Pyramid, plan: Plan, pres_w: int, pres_h: int
) -> tuple[int, int, int, int, int] | None:
    """(level, col, row, w, h) when the plan is one stored tile as it is, or, at the right
    and bottom edges, the top-left ``w``×``h`` of one (edge tiles are stored padded).

    Only for plain JPEG requests of an uncapped image: no scaling, rotation or quality.
    """
    if (pres_w, pres_h) != (pyr.width, pyr.height) or plan.format != "jpg":
        return None
    if plan.quality not in ("default", "color") or plan.rotation.mirror or plan.rotation.degrees:
        return None
    n = 0
    for n, level in enumerate(pyr.levels):  # noqa: B007 - the level whose scale matches
        factor = 1 << n
        if plan.width == -(-plan.region_w // factor) and plan.height == -(-plan.region_h // factor):
            break
    else:
        return None
    level = pyr.levels[n]
    tw, th = level.tile_width, level.tile_height
    if not level.jpeg or plan.x % (tw * factor) or plan.y % (th * factor):
        return None
    col, row = plan.x // (tw * factor), plan.y // (th * factor)
    full_w = min(tw, level.width - col * tw)
    full_h = min(th, level.height - row * th)
    if (plan.width, plan.height) != (full_w, full_h) or full_w <= 0 or full_h <= 0:
        return None
    # The region must end where the tile ends (or at the image's edge).
    if plan.region_w != min(tw * factor, pres_w - plan.x):
        return None
    if plan.region_h != min(th * factor, pres_h - plan.y):
        return None
    return n, col, row, full_w, full_h


def copyable_tile(pyr: Pyramid, plan: Plan, pres_w: int, pres_h: int) -> bool:
    """True when the answer is a whole stored tile, sent as its bytes: caching it gains nothing."""
    tile = stored_tile(pyr, plan, pres_w, pres_h)
    if tile is None:
        return False
    n, _, _, w, h = tile
    return (w, h) == (pyr.levels[n].tile_width, pyr.levels[n].tile_height)


def _crop_jpeg(data: bytes, w: int, h: int) -> bytes:
    """The top-left w×h of a small JPEG, re-encoded: Pillow does this in a third of the
    time libvips' pipeline set-up costs for one 256-pixel tile."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as tile:
        out = io.BytesIO()
        tile.convert("RGB").crop((0, 0, w, h)).save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


def render(fh: PyramidFile, pyr: Pyramid, plan: Plan, pres_w: int, pres_h: int) -> Rendered:
    """Produce the bytes for ``plan`` from the pyramid open as ``fh``, presented as
    pres_w×pres_h. A store error met while libvips reads is raised as itself."""
    try:
        return _render(fh, pyr, plan, pres_w, pres_h)
    except pyvips.Error:
        failure = getattr(fh, "failure", None)
        if failure is not None:
            raise failure from None
        raise


def _render(fh: PyramidFile, pyr: Pyramid, plan: Plan, pres_w: int, pres_h: int) -> Rendered:
    if plan.format not in available_formats():
        raise NotImplementedFeature(f"format {plan.format!r} is not available on this server")
    media_type = FORMATS[plan.format]
    tile = stored_tile(pyr, plan, pres_w, pres_h)
    if tile is not None:
        n, col, row, w, h = tile
        level = pyr.levels[n]
        data = level.tile_bytes(fh, col, row)
        if data is not None:
            if (w, h) == (level.tile_width, level.tile_height):
                return Rendered(data, media_type)  # copied as stored: no decoding at all
            return Rendered(_crop_jpeg(data, w, h), media_type)
    # Never more pixels than the presented region has; upscaling comes after.
    work_w, work_h = min(plan.width, plan.region_w), min(plan.height, plan.region_h)
    image = _region_pixels(fh, pyr, plan, pres_w, pres_h, work_w, work_h)
    image = _to_size(image, plan.width, plan.height)
    if plan.rotation.mirror:
        image = image.fliphor()
    image = _rotate(image, plan.rotation.degrees, plan.format in _ALPHA_FORMATS)
    image = _quality(image, plan.quality)
    return Rendered(encode(image, plan.format), media_type)
