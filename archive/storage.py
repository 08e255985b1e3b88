"""Where the archive keeps its files: the archive home, and the pyramid store.

Layout of an archive home::

    <home>/archive.toml            settings (optional)
    <home>/catalog.sqlite          the catalog (source of truth)
    <home>/search.sqlite           the embedded search index
    <home>/images/<xx>/<id>.<version>.tif   one pyramidal TIFF per image (local storage)
    <home>/images/tmp/             pyramids being written
    <home>/cache/                  rendered derivatives (bounded, disposable)
    <home>/reports/                one JSON report per ingest run (local storage)
    <home>/ingest.lock             held by the one ingest that writes (SQLite catalog)
    <home>/backups/                catalog backups taken before schema migrations

Pyramids (and ingest reports) live in a ``PyramidStore``: the contract below, with
two implementations chosen by the ``storage_url`` setting (``open_store``): the
local folder ``ImageStore`` (the default, ``<home>/images``) and S3-compatible
object storage (``storage_s3.S3Store``, ``s3://bucket/prefix``). A pyramid's name
carries its version, so replacing an image writes a new one and switches the
catalog to it: no reader ever sees half a pyramid or the old pixels under the new
version, and nothing is overwritten.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError, NotFound
from .records import IMAGE_ID_RE

SUFFIX = ".tif"
REPORT_PREFIX = "ingest-"


class Home:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    @property
    def search_db(self) -> Path:
        return self.root / "search.sqlite"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def scratch(self) -> Path:
        """Pyramids being tiled before they are uploaded to a remote store."""
        return self.root / "tmp"

    @property
    def lock(self) -> Path:
        return self.root / "ingest.lock"

    def ensure(self) -> Home:
        for path in (self.root, self.images, self.cache, self.reports):
            path.mkdir(parents=True, exist_ok=True)
        return self


def check_name(image_id: str, version: str) -> None:
    """Ids and versions become file names and object keys: checked, never trusted."""
    if not IMAGE_ID_RE.match(image_id) or not version.isalnum():
        raise NotFound(f"no image {image_id!r}")


def shard(image_id: str) -> str:
    return hashlib.sha1(image_id.encode()).hexdigest()[:2]


def relative_name(image_id: str, version: str) -> str:
    """``xx/<image id>.<version>.tif``: the same layout on disk and in a bucket."""
    check_name(image_id, version)
    return f"{shard(image_id)}/{image_id}.{version}{SUFFIX}"


def parse_name(name: str) -> tuple[str, str] | None:
    """(image id, version) of a stored pyramid's base name, or None for anything else."""
    if not name.endswith(SUFFIX):
        return None
    image_id, _, version = name[: -len(SUFFIX)].rpartition(".")
    if not IMAGE_ID_RE.match(image_id) or not version.isalnum():
        return None
    return image_id, version


class StoredPyramid(NamedTuple):
    """One committed pyramid, as ``files()`` lists it. ``location`` says where it lives
    (a ``Path`` in the local folder, an ``s3://`` URL in a bucket), for messages; read
    it through ``PyramidStore.open``."""

    image_id: str
    version: str
    location: Any


class PyramidFile:
    """A random-access handle on one stored pyramid (what ``PyramidStore.open`` returns).

    ``read_range`` is one read (one ranged GET on S3); ``read``/``seek``/``tell`` make
    it a file object for parsers, and may read ahead. ``path`` is the local file when
    there is one (libvips then opens it directly), else None. ``size`` in bytes.
    """

    path: str | None = None
    size: int = 0

    def read_range(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def read(self, n: int = -1) -> bytes:
        raise NotImplementedError

    def seek(self, offset: int, whence: int = 0) -> int:
        raise NotImplementedError

    def tell(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> PyramidFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PyramidStore:
    """The storage contract: pyramids addressed by (image id, version), written once.

    Writers tile into ``temp_path()`` (always a local file) and ``commit`` it, which
    makes it appear whole under its versioned name or not at all; a name that exists
    is never written again. ``sweep`` removes what the catalog no longer refers to.
    Ingest reports are kept beside the pyramids (``put_report``/``reports``).
    Failures to reach a remote store raise ``StorageUnavailable``; a missing pyramid
    raises ``FileNotFoundError`` from ``open``.
    """

    #: True when pyramids are files on this machine (``path`` works).
    local = False

    @property
    def url(self) -> str:
        """Where this store is, for messages (a folder or an ``s3://`` URL)."""
        raise NotImplementedError

    def location(self) -> str:
        """The ``store_root`` a tiling process reopens this store from (``store_at``)."""
        raise NotImplementedError

    @classmethod
    def from_url(
        cls, url: str, *, home: Home, timeout: float, block_kb: int = 64, read_cache_mb: int = 0
    ) -> PyramidStore:
        """The store a ``storage_url`` of this kind names (the registry calls this).
        A remote store reads in aligned blocks of ``block_kb`` KiB and keeps up to
        ``read_cache_mb`` MiB of them per process (0: exact ranges, nothing kept)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise ConfigError naming ``storage_url`` when the store cannot be used."""

    def exists(self, image_id: str, version: str) -> bool:
        raise NotImplementedError

    def open(self, image_id: str, version: str) -> PyramidFile:
        raise NotImplementedError

    def temp_path(self, suffix: str = SUFFIX) -> Path:
        raise NotImplementedError

    def commit(self, temp: Path, image_id: str, version: str, *, fsync: bool = True) -> Any:
        raise NotImplementedError

    def remove(self, image_id: str, version: str) -> None:
        raise NotImplementedError

    def files(self) -> Iterator[StoredPyramid]:
        raise NotImplementedError

    def sweep(self, keep: set[tuple[str, str]]) -> int:
        """Delete pyramids the catalog no longer refers to, and abandoned temp files."""
        removed = 0
        for image_id, version, _ in list(self.files()):
            if (image_id, version) not in keep:
                self.remove(image_id, version)
                removed += 1
        return removed

    # -- ingest reports ------------------------------------------------------------------------
    def put_report(self, name: str, data: bytes) -> str:
        """Keep one ingest report; returns where it went."""
        raise NotImplementedError

    def reports(self) -> list[str]:
        """Names of the kept reports, oldest first (their names sort by time)."""
        raise NotImplementedError

    def get_report(self, name: str) -> bytes:
        raise NotImplementedError

    def report_location(self, name: str) -> str:
        raise NotImplementedError


class LocalFile(PyramidFile):
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.size = os.fstat(self._fh.fileno()).st_size

    def read_range(self, offset: int, length: int) -> bytes:
        return os.pread(self._fh.fileno(), length, offset)

    def read(self, n: int = -1) -> bytes:
        return self._fh.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


class ImageStore(PyramidStore):
    """The local folder (the default): ``<root>/xx/<id>.<version>.tif``, as always."""

    local = True
    SUFFIX = SUFFIX

    def __init__(self, root: str | os.PathLike, reports: str | os.PathLike | None = None) -> None:
        self.root = Path(root).resolve()
        self.tmp = self.root / "tmp"
        self.reports_dir = Path(reports).resolve() if reports else self.root.parent / "reports"

    @property
    def url(self) -> str:
        return str(self.root)

    def location(self) -> str:
        return str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"storage_url: cannot use {self.root}: {exc.strerror}") from None

    def path(self, image_id: str, version: str) -> Path:
        return self.root / relative_name(image_id, version)

    def exists(self, image_id: str, version: str) -> bool:
        return self.path(image_id, version).is_file()

    def open(self, image_id: str, version: str) -> LocalFile:
        return LocalFile(self.path(image_id, version))

    def temp_path(self, suffix: str = SUFFIX) -> Path:
        """A fresh path to write a pyramid to before ``commit`` moves it in place."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def commit(self, temp: Path, image_id: str, version: str, *, fsync: bool = True) -> Path:
        """Atomically put a finished pyramid at its final path (fsynced first), unless
        that version is committed already.

        ``fsync=False`` is for bulk writers that flush many files at once (ingest calls
        ``os.sync()`` before its catalog refers to them): one fsync per small pyramid
        costs more than writing it.
        """
        final = self.path(image_id, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        if fsync:
            with open(temp, "rb") as fh:
                os.fsync(fh.fileno())
        try:
            os.link(temp, final)  # atomic, and never over a committed pyramid
        except FileExistsError:
            pass  # the same version holds the same pixels: the committed one stays
        os.unlink(temp)
        return final

    def remove(self, image_id: str, version: str) -> None:
        try:
            self.path(image_id, version).unlink()
        except FileNotFoundError:
            pass

    def files(self) -> Iterator[StoredPyramid]:
        """(image id, version, path) of every committed pyramid."""
        for path in self.root.glob(f"??/*{self.SUFFIX}"):
            parsed = parse_name(path.name)
            if parsed:
                yield StoredPyramid(parsed[0], parsed[1], path)

    def sweep(self, keep: set[tuple[str, str]]) -> int:
        removed = 0
        for image_id, version, path in list(self.files()):
            if (image_id, version) not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        if self.tmp.is_dir():
            for path in self.tmp.iterdir():
                path.unlink(missing_ok=True)
        return removed

    def put_report(self, name: str, data: bytes) -> str:
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        path = self.reports_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return str(path)

    def reports(self) -> list[str]:
        return sorted(p.name for p in self.reports_dir.glob(f"{REPORT_PREFIX}*.json"))

    def get_report(self, name: str) -> bytes:
        return (self.reports_dir / name).read_bytes()

    def report_location(self, name: str) -> str:
        return str(self.reports_dir / name)


LocalStore = ImageStore

# The registry, as the search backends have it: a storage_url's scheme names the
# implementation ("module:Class", imported when used); the local folder always exists.
STORES: dict[str, str] = {}
STORES.setdefault("", "archive.storage:ImageStore")
STORES.setdefault("s3", "archive.storage_s3:S3Store")


def _store_class(scheme: str) -> type[PyramidStore]:
    module_name, _, class_name = STORES[scheme].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def open_store(config: Any, home: Home) -> PyramidStore:
    """The store the ``storage_url`` setting names. Opens no connection: ``check`` does."""
    return store_at(
        str(config.storage_url or "").strip(),
        home,
        float(config.storage_timeout),
        block_kb=int(config.storage_block_kb),
        read_cache_mb=int(config.storage_read_cache_mb),
    )


def store_at(
    url: str, home: Home, timeout: float = 5.0, *, block_kb: int = 64, read_cache_mb: int = 0
) -> PyramidStore:
    """The store at ``url``: empty for ``<home>/images``, ``s3://bucket/prefix``, or (for
    a tiling process reopening its parent's store from ``location()``) a local folder.
    Without ``read_cache_mb`` (tiling, backups: each byte read once) a remote store reads
    exactly the ranges asked for."""
    if not url:
        return ImageStore(home.images, home.reports)
    if url.startswith("/"):
        return ImageStore(url, home.reports)
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme not in STORES or not scheme:
        raise ConfigError(
            f"storage_url: {url!r} is not a storage URL: leave it empty for <home>/images, "
            f"or use one of {sorted(s + '://...' for s in STORES if s)}"
        )
    return _store_class(scheme).from_url(
        url, home=home, timeout=timeout, block_kb=block_kb, read_cache_mb=read_cache_mb
    )
