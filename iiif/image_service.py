"""The Image API service: looks an image up, answers info and image requests.

No Flask here (routes translates to HTTP). One instance per process, shared by
its threads. Catalog lookups are cached per thread and dropped whenever the
catalog's ``generation()`` moves (any writer's commit, on any node), so a
re-ingested image is seen at once (within a second on PostgreSQL); the pyramid
path carries the version, so old pixels cannot leak.

Images are asked for by a published identifier: ``<image id>.<tag>`` (pinned to one
version of the pixels, ``info.versioned_id``) or the bare image id (whatever is
current). A pinned identifier whose tag is no longer current raises ``Stale``, so
that HTTP can send the client on to the current one instead of new pixels under it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path

import pyvips

from archive.catalog import ImageInfo
from archive.context import Archive
from archive.errors import ArchiveError, NotFound
from archive.records import IMAGE_ID_RE
from archive.storage import LocalFile, PyramidFile, PyramidStore

from . import info as info_mod
from .cache import DiskCache
from .image_request import FORMATS, Limits, Plan, parse, resolve
from .image_tiff import Pyramid, PyramidError, pyramid, read_pyramid
from .render import Rendered, available_formats, copyable_tile, render

log = logging.getLogger(__name__)
_SOURCES_PER_THREAD = 4096
# Bytes of remote structures a node keeps on disk when it has no derivative cache to keep
# them in (~10 KiB for a 6000x4000 pyramid).
STRUCTURE_CACHE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """One public image as clients see it: presented size, pyramid, validators."""

    info: ImageInfo
    width: int  # presented (capped) size
    height: int
    path: str  # where the pyramid is (a file, or an s3:// URL), for messages
    last_modified: datetime  # of the record, which changes whenever the pixels do
    http_date: str  # the same, as an HTTP date (RFC 9110 §5.6.7)
    store: PyramidStore | None = field(default=None, compare=False, repr=False)
    tag: str = ""  # of the current pixels at the presented size (info.image_tag)

    @property
    def identifier(self) -> str:
        """The pinned identifier of the current version: what manifests publish."""
        return f"{self.info.id}.{self.tag}"

    @property
    def pyramid(self) -> Pyramid:
        """The pyramid's structure, from the per-process cache: remembered sources stay
        small, and the memory for tile indexes has one bound, that cache's."""
        try:
            if self.store is None or self.store.local:
                return pyramid(self.path)  # the hot path of a local tile: one dict lookup
            return _remote_structure(self.store, self.info.id, self.info.version)
        except (OSError, PyramidError) as exc:  # gone since (a re-ingest swept it), or damaged
            raise unavailable(self.info.id, self.path, exc) from None

    def open(self) -> PyramidFile:
        """A handle on the pyramid for one request (no I/O until it is read on S3)."""
        if self.store is None or self.store.local:
            return LocalFile(Path(self.path))
        return self.store.open(self.info.id, self.info.version)


class ImageUnavailable(ArchiveError):
    """The catalog has the image but its pyramid cannot be read (damaged on disk): 503,
    so caches do not keep it as gone, and `archive check` says which and why."""

    http_status = 503
    logged = True  # once per pyramid and process, by ``unavailable``: HTTP need not again


_reported: set[str] = set()
_reported_lock = threading.Lock()


def unavailable(image_id: str, path: str, exc: Exception) -> ArchiveError:
    """The error to answer for an unreadable pyramid: 404 when the file is gone, else 503.
    Logged once per file and process, however many tiles of it are asked for."""
    with _reported_lock:
        first = path not in _reported
        _reported.add(path)
    if first:
        log.error("image %s: pyramid %s unreadable: %s", image_id, path, exc)
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"image {image_id!r} is not available")
    return ImageUnavailable(f"image {image_id!r} is unavailable: its pyramid is damaged")


def structure(store: PyramidStore, image_id: str, version: str) -> Pyramid:
    """A pyramid's structure, read once per process: a local file's through the cache
    keyed by its path, a remote one's by ranged reads of its header and directories.
    Failures are not remembered (a store that was down is asked again)."""
    if store.local:
        return pyramid(str(store.path(image_id, version)))
    return _remote_structure(store, image_id, version)


# The node's disk cache, where remote structures are shared by the node's processes.
_NODE_CACHE: dict[str, DiskCache] = {}


@lru_cache(maxsize=4096)
def _remote_structure(store: PyramidStore, image_id: str, version: str) -> Pyramid:
    """Read once per node: from the node's disk cache when another worker has read it
    already (when the cache is on), else by ranged reads, then kept there."""
    cache = _NODE_CACHE.get(store.url)
    key = DiskCache.key("structure", store.url, image_id, version)
    if cache is not None and (data := cache.get(key)) is not None:
        try:
            return Pyramid.from_bytes(data)
        except PyramidError:
            pass  # a damaged entry: read the pyramid again, and replace it
    with store.open(image_id, version) as fh:
        pyr = read_pyramid(f"{store.url}/{image_id}.{version}", fh)
    if cache is not None:
        cache.put(key, pyr.to_bytes())
    return pyr


class Stale(Exception):
    """A pinned identifier of pixels the image no longer has; ``current`` is the one it has."""

    def __init__(self, current: str) -> None:
        super().__init__(current)
        self.current = current


@dataclass(frozen=True)
class ImageResult:
    plan: Plan
    etag: str
    source: Source
    body: Rendered | None = None  # None until rendered (a 304 never renders)
    how: str = ""  # once rendered: "stored" (a tile copied), "hit" or "miss" (derivative cache)
    pinned: bool = False  # asked for by a pinned identifier: the response never changes


class ImageService:
    def __init__(self, archive: Archive) -> None:
        config = archive.config
        self.archive = archive
        self.limits = Limits(
            max_width=int(config.iiif_max_width),
            max_height=int(config.iiif_max_height),
            max_area=int(config.iiif_max_area),
        )
        self.cache = DiskCache(archive.home.cache / "iiif", int(config.cache_size_mb) * 1024 * 1024)
        if not archive.images.local:
            # Remote structures are shared by the node's workers even with no derivative
            # cache: each costs a few GETs, and a node serving many images reads each once.
            _NODE_CACHE[archive.images.url] = (
                self.cache
                if self.cache.enabled
                else DiskCache(archive.home.cache / "structure", STRUCTURE_CACHE)
            )
        self._local = threading.local()

    # -- lookup --------------------------------------------------------------------------------
    def lookup(self, identifier: str) -> tuple[Source, bool]:
        """(Source, pinned) for a published identifier; NotFound, or Stale for an old tag."""
        image_id, tag = info_mod.split_identifier(identifier)
        src = self.source(image_id)
        if tag is None:
            return src, False
        if tag != src.tag:
            raise Stale(src.identifier)
        return src, True

    def source(self, image_id: str) -> Source:
        """The public image ``image_id``, or NotFound (also for non-public ones, on purpose).

        Cached per thread until the catalog's generation moves: any writer's commit, in
        this process or another, on this machine or another (archive/catalog.py).
        """
        if not IMAGE_ID_RE.match(image_id):
            raise NotFound(f"no image {image_id!r}")
        local = self._local
        state = self.archive.catalog.generation()
        if getattr(local, "state", None) != state:
            local.state, local.sources = state, {}
        found = local.sources.get(image_id)
        if found is None:
            found = self._load(image_id)
            if len(local.sources) >= _SOURCES_PER_THREAD:
                local.sources.clear()
            local.sources[image_id] = found
        if isinstance(found, ArchiveError):  # remembered absence: a fresh error each time
            raise type(found)(str(found))
        return found

    def _load(self, image_id: str) -> Source | ArchiveError:
        """The image's Source, or the error that says why there is none."""
        try:
            image = self.archive.catalog.get_image(image_id)
        except NotFound as exc:
            return exc
        if not image.public:
            return NotFound(f"no image {image_id!r}")
        store = self.archive.images
        path = str(store.path(image.id, image.version)) if store.local else store.url
        try:
            pyr = structure(store, image.id, image.version)  # StorageUnavailable: a 503
        except (OSError, PyramidError) as exc:
            return unavailable(image_id, path, exc)
        width, height = info_mod.presented_size(pyr.width, pyr.height, image.max_image_size)
        modified = datetime.strptime(image.updated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        # The tag from the catalog's sizes, as manifests compute it (presentation.py).
        tag = info_mod.image_tag(
            image.version,
            *info_mod.presented_size(image.width, image.height, image.max_image_size),
        )
        http_date = format_datetime(modified, usegmt=True)
        return Source(image, width, height, path, modified, http_date, store, tag)

    # -- info.json -----------------------------------------------------------------------------
    def info_json(self, version: str, identifier: str, base_url: str) -> tuple[bytes, Source, bool]:
        """(info.json serialised, Source, pinned); memoised, as viewers ask for it on every
        page view. Its id is the identifier asked for (3.0 §5.1: the image's base URI)."""
        src, pinned = self.lookup(identifier)
        base = base_url.rstrip("/")
        service_id = f"{base}/iiif/{version}/{identifier}"
        manifest = f"{base}/iiif/3/manifest/{src.info.record_id}" if version == "3" else None
        body = _info_bytes(
            version,
            service_id,
            src.width,
            src.height,
            src.pyramid.tile_size,
            self.limits,
            available_formats(),
            manifest,
        )
        return body, src, pinned

    def info_etag(self, version: str, src: Source, base_url: str, identifier: str = "") -> str:
        return _etag(
            "info",
            version,
            identifier or src.info.id,
            src.info.version,
            str(src.width),
            str(src.height),
            base_url,
            repr(self.limits),
        )

    # -- image requests ------------------------------------------------------------------------
    def plan(
        self,
        version: str,
        identifier: str,
        region: str,
        size: str,
        rotation: str,
        quality_format: str,
    ) -> ImageResult:
        """Parse and resolve a request (400 before any pixel is decoded), without rendering."""
        src, pinned = self.lookup(identifier)
        plan = _plan(
            version, region, size, rotation, quality_format, src.width, src.height, self.limits
        )
        etag = _etag(
            "image",
            version,
            src.info.id,
            src.info.version,
            str(src.width),
            str(src.height),
            plan.canonical,
        )
        return ImageResult(plan, etag, src, pinned=pinned)

    def render(self, result: ImageResult) -> ImageResult:
        """The bytes: an exact stored tile as it is, else from the disk cache or rendered.
        A pyramid gone (swept by a re-ingest: 404) or damaged where this request reads it
        (503) is answered as ``unavailable`` says."""
        src, plan = result.source, result.plan
        # A stored tile on the local disk is one read: caching it gains nothing. From
        # object storage it is a network round trip, which the disk cache saves.
        if src.store.local and copyable_tile(src.pyramid, plan, src.width, src.height):
            body = self._render(src, plan)
            return ImageResult(plan, result.etag, src, body, "stored", result.pinned)
        key = self.cache.key(
            src.info.id, src.info.version, str(src.width), str(src.height), plan.canonical
        )
        data = self.cache.get(key)
        if data is not None:
            body = Rendered(data, FORMATS[plan.format])
            return ImageResult(plan, result.etag, src, body, "hit", result.pinned)
        body = self._render(src, plan)
        self.cache.put(key, body.data)
        return ImageResult(plan, result.etag, src, body, "miss", result.pinned)

    @staticmethod
    def _render(src: Source, plan: Plan) -> Rendered:
        pyr = src.pyramid
        try:
            with src.open() as fh:
                return render(fh, pyr, plan, src.width, src.height)
        except (OSError, PyramidError, pyvips.Error) as exc:
            raise unavailable(src.info.id, src.path, exc) from None


@lru_cache(maxsize=4096)
def _info_bytes(
    version: str,
    service_id: str,
    width: int,
    height: int,
    tile_size: int,
    limits: Limits,
    formats: tuple[str, ...],
    manifest: str | None,
) -> bytes:
    if version == "3":
        doc = info_mod.info_v3(
            service_id,
            width,
            height,
            tile_size=tile_size,
            limits=limits,
            formats=formats,
            part_of=manifest,
        )
    else:
        doc = info_mod.info_v2(
            service_id, width, height, tile_size=tile_size, limits=limits, formats=formats
        )
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


@lru_cache(maxsize=65536)
def _plan(
    version: str,
    region: str,
    size: str,
    rotation: str,
    quality_format: str,
    width: int,
    height: int,
    limits: Limits,
) -> Plan:
    """Parse and resolve, memoised: viewers ask the same few thousand tile URLs over and
    over, for images of the same few sizes. Refusals raise and are not cached."""
    return resolve(parse(version, region, size, rotation, quality_format), width, height, limits)


def _etag(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode("utf-8")).hexdigest()[:24]
