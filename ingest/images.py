"""Source images to pyramids: checks, colour, orientation, and the work one tiling process does.

Everything here runs in the tiling worker processes. Sources are opened with
sequential access, so libvips streams them through in strips and memory stays
flat whatever the image size; only images that must be rotated (EXIF
orientation) need random access, which libvips backs with a temporary file when
large. JPEG 2000 is read with Pillow (its wheels bundle OpenJPEG; pyvips-binary
has no JPEG 2000 loader) and handed to pyvips as pixels.
"""

from __future__ import annotations

import errno
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyvips

# Bump when the conversion below changes, so every pyramid gets a new version.
PIPELINE_VERSION = "1"
_CHUNK = 1 << 20
_JP2_SIGNATURES = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


class ImageRefused(Exception):
    """This source cannot become a pyramid; the message says why, for the curator."""


@dataclass(frozen=True)
class TileParams:
    tile_size: int = 256
    quality: int = 85
    max_pixels: int = 400_000_000

    def version(self, checksum: str, page: int) -> str:
        """Short alphanumeric version: changes with the pixels or with how they are processed."""
        key = f"{checksum}:{page}:{self.tile_size}:{self.quality}:{PIPELINE_VERSION}"
        return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ImageTask:
    """One source file of one record (all its pages)."""

    path: str  # absolute
    record_id: str
    source: str  # as the curator wrote it; the image id derives from it
    store_root: str  # PyramidStore.location(): a local folder or an s3:// URL
    checksum: str = ""  # sha256 the pipeline already computed (saves reading the file twice)
    size: int = 0
    home: str = ""  # the archive home (a remote store tiles into its scratch folder)
    storage_timeout: float = 5.0


@dataclass
class PageResult:
    page: int
    version: str
    width: int
    height: int
    tiled: bool  # False when a finished pyramid with this version already existed


@dataclass
class ImageResult:
    task: ImageTask
    checksum: str = ""
    pages: list[PageResult] = field(default_factory=list)
    error: str | None = None
    bytes_read: int = 0
    cpu_seconds: float = 0.0  # CPU this task took in its worker (all libvips threads)
    write_failed: bool = False  # the archive's disk refused the pyramid: stop the run


# What the kernel says when the archive's disk (or a quota, or a file-size limit) is full.
_FULL = ("No space left on device", "File too large", "Disk quota exceeded")


def sha256_file(path: str | Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _is_jp2(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return any(head.startswith(sig) for sig in _JP2_SIGNATURES)


def _check_pixels(width: int, height: int, params: TileParams) -> None:
    if width * height > params.max_pixels:
        raise ImageRefused(
            f"{width}×{height} is {width * height:,} pixels, over the limit of "
            f"{params.max_pixels:,} (max_pixels): refused as a possible decompression bomb"
        )
    if width < 1 or height < 1:
        raise ImageRefused("the image has no pixels")


def _load_jp2(path: str, params: TileParams) -> pyvips.Image:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # we apply max_pixels ourselves, from the header
    try:
        with Image.open(path) as im:
            _check_pixels(im.width, im.height, params)
            icc = im.info.get("icc_profile")
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                im = im.point(lambda v: v / 256).convert("L")  # noqa: PLW2901
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")  # noqa: PLW2901
            im.load()
            image = pyvips.Image.new_from_memory(
                im.tobytes(), im.width, im.height, len(im.getbands()), "uchar"
            )
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ImageRefused(f"unreadable JPEG 2000: {exc}") from None
    image = image.copy(interpretation="srgb")
    if icc:
        image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    return image


def open_source(path: str) -> tuple[int, pyvips.Image | None]:
    """(pages, header of the first page) of a source: pages > 1 only for multi-page TIFF.
    The header (no pixels decoded) is None for JPEG 2000, which Pillow reads."""
    if _is_jp2(path):
        return 1, None
    header = pyvips.Image.new_from_file(path)
    fields = header.get_fields()
    if "n-pages" not in fields or not header.get("vips-loader").startswith("tiff"):
        return 1, header  # an animated GIF or WebP is one picture, not pages
    return header.get("n-pages"), header


def open_page(
    path: str, page: int, params: TileParams, header: pyvips.Image | None = None
) -> pyvips.Image:
    """One page of a source, checked and converted to what a pyramid holds (see to_srgb8)."""
    if _is_jp2(path):
        return to_srgb8(_load_jp2(path, params))
    options = {"page": page} if page else {}
    if header is None:
        header = pyvips.Image.new_from_file(path, **options)
    _check_pixels(header.width, header.height, params)
    orientation = header.get("orientation") if "orientation" in header.get_fields() else 1
    access = "sequential" if orientation in (0, 1) else "random"
    image = pyvips.Image.new_from_file(path, access=access, fail_on="truncated", **options)
    if access == "random":
        image = image.autorot()
    return to_srgb8(image)


def to_srgb8(image: pyvips.Image) -> pyvips.Image:
    """sRGB, 8 bits, 3 bands: embedded ICC profiles honoured (CMYK too), 16-bit scaled,
    alpha flattened onto white."""
    fields = image.get_fields()
    profile = image.get("icc-profile-data") if "icc-profile-data" in fields else None
    if profile is not None and image.format == "uchar" and _is_srgb_profile(profile):
        profile = None  # already sRGB: converting would be a costly identity
    if profile is not None or image.interpretation == "cmyk":
        try:
            image = image.icc_transform(
                "srgb",
                embedded=True,
                intent="perceptual",
                **({"input_profile": "cmyk"} if image.interpretation == "cmyk" else {}),
            )
        except pyvips.Error:
            # A broken embedded profile: fall back to the standard conversion.
            image = image.colourspace("srgb")
    if image.interpretation not in ("srgb",) or image.format != "uchar":
        if image.interpretation in ("multiband", "histogram", "fourier", "matrix"):
            image = image.copy(interpretation="b-w" if image.bands < 3 else "srgb")
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands > 3:
        image = image.extract_band(0, n=3)
    elif image.bands == 1:
        image = image.bandjoin([image, image])
    if image.format != "uchar":
        image = image.cast("uchar")
    return image.copy(interpretation="srgb")


def _is_srgb_profile(blob: bytes) -> bool:
    """An RGB profile that names itself sRGB (ASCII or UTF-16 description): what most
    cameras and scanners embed."""
    head = bytes(blob[:4096])
    return head[16:20] == b"RGB " and (b"sRGB" in head or b"\x00s\x00R\x00G\x00B" in head)


_STORES: dict[tuple, object] = {}


def task_store(task: ImageTask):
    """The pyramid store a task writes to, made once per tiling process (and client)."""
    from archive.storage import Home, store_at

    key = (task.store_root, task.home, task.storage_timeout)
    store = _STORES.get(key)
    if store is None:
        home = Home(task.home or Path(task.store_root).parent)
        store = _STORES[key] = store_at(task.store_root, home, task.storage_timeout)
    return store


def stored_size(store, img_id: str, version: str) -> tuple[int, int] | None:
    """Width and height of a pyramid already in a remote store (read from its TIFF header
    through ranged reads), or None when it is not there. An object in a bucket is whole
    or absent, so there is no half-written pyramid to look for, unlike on a disk."""
    if not store.exists(img_id, version):
        return None
    with store.open(img_id, version) as fh:
        source = pyvips.SourceCustom()
        source.on_read(lambda size: fh.read(size))
        source.on_seek(lambda offset, whence: fh.seek(offset, whence))
        header = pyvips.Image.new_from_source(source, "", access="sequential")
        return header.width, header.height


def finished_pyramid(path: Path) -> pyvips.Image | None:
    """A committed pyramid if it is complete (its last, smallest level decodes), else None
    and the file is removed. Pyramids are renamed into place before the pipeline's
    ``os.sync()``; after a power cut one may be short, and is then simply written again."""
    try:
        full = pyvips.Image.new_from_file(str(path))
        levels = full.get("n-pages") if "n-pages" in full.get_fields() else 1
        pyvips.Image.new_from_file(str(path), page=levels - 1, fail_on="truncated").avg()
        return full
    except pyvips.Error:
        path.unlink(missing_ok=True)
        return None


def process_image(task: ImageTask, params: TileParams, dry_run: bool = False) -> ImageResult:
    """Hash a source and write a pyramid for each of its pages, unless one with the same
    version is already committed (a re-run, or a run killed after it finished this one).

    A dry run decodes every new page fully (so truncated files are caught) but writes nothing.
    """
    from archive.errors import StorageUnavailable
    from archive.records import image_id

    from .tiling import write_pyramid

    cpu_start = time.process_time()
    result = ImageResult(task)
    try:
        store = task_store(task)
        if task.checksum:
            result.checksum, result.bytes_read = task.checksum, task.size
        else:
            result.checksum, result.bytes_read = sha256_file(task.path)
        pages, first = open_source(task.path)
        for page in range(pages):
            img_id = image_id(task.record_id, task.source, page)
            version = params.version(result.checksum, page)
            if store.local:
                final = store.path(img_id, version)
                done = finished_pyramid(final) if final.is_file() else None
                size = (done.width, done.height) if done is not None else None
            else:
                size = stored_size(store, img_id, version)
            if size is not None:
                result.pages.append(PageResult(page, version, *size, False))
                continue
            image = open_page(task.path, page, params, first if page == 0 else None)
            if dry_run:
                image.avg()  # decode every pixel: damage shows up now, not in the real run
                result.pages.append(PageResult(page, version, image.width, image.height, False))
                continue
            temp = store.temp_path()
            try:
                write_pyramid(image, temp, tile_size=params.tile_size, quality=params.quality)
                # Local: renamed in place (the pipeline syncs); remote: uploaded whole.
                store.commit(temp, img_id, version, fsync=False)
            except (pyvips.Error, OSError) as exc:
                reason = _write_reason(exc)
                if reason is None:
                    raise
                result.error = f"cannot write the pyramid {temp}: {reason}"
                result.write_failed = True
                break
            finally:
                temp.unlink(missing_ok=True)
            result.pages.append(PageResult(page, version, image.width, image.height, True))
    except ImageRefused as exc:
        result.error = str(exc)
    except StorageUnavailable as exc:
        result.error = f"could not store the pyramid ({exc}); the next run tries again"
    except pyvips.Error as exc:
        result.error = _vips_reason(exc)
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the run; say what
        result.error = f"unexpected error reading this image: {type(exc).__name__}: {exc}"
    if result.error:
        result.pages = []
    result.cpu_seconds = time.process_time() - cpu_start
    return result


def _write_reason(exc: Exception) -> str | None:
    """Why the archive's disk refused a pyramid, or None when the error is not that."""
    if isinstance(exc, OSError):
        return exc.strerror if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else None
    text = f"{exc.message} {exc.detail or ''}"
    return next((reason for reason in _FULL if reason in text), None)


def _vips_reason(exc: pyvips.Error) -> str:
    detail = (exc.detail or exc.message or "").strip().splitlines()
    text = " ".join(line.strip() for line in detail[:3])
    if "not a known file format" in text or "is not a known" in text:
        return "not an image file (or a format we cannot read)"
    if "truncated" in text.lower() or "premature end" in text.lower():
        return f"the file is truncated or damaged ({text})"
    return f"unreadable image: {text or exc.message}"
