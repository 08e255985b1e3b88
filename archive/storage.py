"""Where the archive keeps its files, and the image store's atomic writes.

Layout of an archive home::

    <home>/archive.toml            settings (optional)
    <home>/catalog.sqlite          the catalog (source of truth)
    <home>/search.sqlite           the embedded search index
    <home>/images/<xx>/<id>.<version>.tif   one pyramidal TIFF per image
    <home>/images/tmp/             pyramids being written
    <home>/cache/                  rendered derivatives (bounded, disposable)
    <home>/reports/                one JSON report per ingest run
    <home>/ingest.lock             held by the one ingest that writes (SQLite catalog)
    <home>/backups/                catalog backups taken before schema migrations

A pyramid's file name carries its version, so replacing an image writes a new
file and switches the catalog to it: no reader ever sees half a file or the old
pixels under the new version.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import NotFound
from .records import IMAGE_ID_RE


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
    def lock(self) -> Path:
        return self.root / "ingest.lock"

    def ensure(self) -> Home:
        for path in (self.root, self.images, self.cache, self.reports):
            path.mkdir(parents=True, exist_ok=True)
        return self


class ImageStore:
    """Pyramid files addressed by (image id, version); ids are checked, never trusted."""

    SUFFIX = ".tif"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.tmp = self.root / "tmp"

    def path(self, image_id: str, version: str) -> Path:
        if not IMAGE_ID_RE.match(image_id) or not version.isalnum():
            raise NotFound(f"no image {image_id!r}")
        shard = hashlib.sha1(image_id.encode()).hexdigest()[:2]
        return self.root / shard / f"{image_id}.{version}{self.SUFFIX}"

    def exists(self, image_id: str, version: str) -> bool:
        return self.path(image_id, version).is_file()

    def temp_path(self, suffix: str = SUFFIX) -> Path:
        """A fresh path to write a pyramid to before ``commit`` moves it in place."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def commit(self, temp: Path, image_id: str, version: str, *, fsync: bool = True) -> Path:
        """Atomically move a finished pyramid to its final path (fsynced first).

        ``fsync=False`` is for bulk writers that flush many files at once (ingest calls
        ``os.sync()`` before its catalog refers to them): one fsync per small pyramid
        costs more than writing it.
        """
        final = self.path(image_id, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        if fsync:
            with open(temp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(temp, final)
        return final

    def remove(self, image_id: str, version: str) -> None:
        try:
            self.path(image_id, version).unlink()
        except FileNotFoundError:
            pass

    def files(self) -> Iterator[tuple[str, str, Path]]:
        """(image id, version, path) of every committed pyramid."""
        for path in self.root.glob(f"??/*{self.SUFFIX}"):
            stem = path.name[: -len(self.SUFFIX)]
            image_id, _, version = stem.rpartition(".")
            yield image_id, version, path

    def sweep(self, keep: set[tuple[str, str]]) -> int:
        """Delete pyramids the catalog no longer refers to, and abandoned temp files."""
        removed = 0
        for image_id, version, path in list(self.files()):
            if (image_id, version) not in keep:
                path.unlink(missing_ok=True)
                removed += 1
        if self.tmp.is_dir():
            for path in self.tmp.iterdir():
                path.unlink(missing_ok=True)
        return removed
