"""Backups, restores and migrations of a whole archive: catalog, pyramids, reports, settings.

A backup is a folder or an ``s3://bucket/prefix`` holding::

    manifest.json              what is in it: counts, sizes and SHA-256 of every file
    chunks/<sha256>            the catalog snapshot, cut in page-aligned pieces (zlib)
    archive.toml               the home's settings, if it has any
    reports/ingest-*.json      the ingest reports
    images/xx/<id>.<version>.tif   the pyramids the snapshot refers to

The catalog is read first, as of one moment, while the archive serves and an ingest
writes: SQLite's online backup API for the embedded catalog; for PostgreSQL one
REPEATABLE READ transaction copied row for row into an SQLite catalog file through the
catalog contract (``Catalog.snapshot``), so that one backup format restores into either
backend and needs no PostgreSQL client tools of the same major version.

For PostgreSQL, that copy is made into the previous backup's snapshot (kept in the home's
``cache/backup/``, or read back from the destination) by writing only the rows that
differ, so its unchanged pages stay the same bytes.

That snapshot file is stored as restic and borg store files: cut into pieces of
``CATALOG_CHUNK`` bytes (a multiple of SQLite's page size, so a changed page changes one
piece), each kept under the SHA-256 of its bytes; the manifest lists them in order. A
piece the destination already holds is not written again, so a second backup writes only
the pages that changed (SQLite's backup API copies pages in place, page n to page n).

Only then are pyramids copied, and only those the snapshot refers to: an ingest commits a
pyramid before its catalog refers to it, so every one is there. Pyramid names carry their
versions, so a pyramid already in the backup (listed in its previous manifest, with its
SHA-256, and found in the one listing of the destination) is neither copied nor read
again. If an ingest replaced an image and swept its old version while the backup ran,
the backup takes a newer snapshot (which no longer refers to it), copies what that adds,
and says so. The manifest is written last: a backup cut short leaves the previous manifest
and the pieces it names in place, and the pyramids already copied for the next run.

Backups written by earlier releases (format 1: one ``catalog-<stamp>.sqlite`` file) are
read by ``verify_backup`` and ``restore``, and a new backup into such a folder keeps
their pyramids.

The search index is derived from the catalog: a backup records that it must be rebuilt,
and ``archive restore`` rebuilds it.

``migrate`` copies an archive's catalog and pyramids to another catalog and store
(SQLite and a folder into PostgreSQL and S3, and back) without re-tiling: pyramids
first, each committed whole, so a killed run continues where it was; then the catalog
in one transaction; then both sides are counted and checksummed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .catalog import SCHEMA_VERSION, TABLES, Catalog, SQLiteCatalog, safe_url
from .errors import ArchiveError
from .storage import (
    Home,
    ImageStore,
    PyramidFile,
    PyramidStore,
    parse_name,
    relative_name,
    store_at,
)

FORMAT = 2
#: Backup formats this release reads (1: the catalog as one file).
READS = (1, 2)
MANIFEST = "manifest.json"
CHUNK = 8 << 20
#: Pieces of the catalog snapshot: a multiple of every SQLite page size (512..65536).
CATALOG_CHUNK = 64 << 10
CHUNKS = "chunks"
#: Newer snapshots taken when pyramids were swept during a backup, before giving up.
RETRIES = 3

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


# -- where a backup lives ------------------------------------------------------------------------
class Destination:
    """A backup's place: small files by name, and a pyramid store under ``images/``."""

    url: str
    store: PyramidStore

    def put(self, name: str, data: bytes) -> None:
        """Write ``name`` whole (durable once ``sync`` returns)."""
        raise NotImplementedError

    def put_file(self, name: str, path: Path) -> None:
        self.put(name, path.read_bytes())

    def get(self, name: str) -> bytes | None:
        """The file's bytes, or None when there is none."""
        raise NotImplementedError

    def fetch(self, name: str, path: Path) -> None:
        data = self.get(name)
        if data is None:
            raise ArchiveError(f"{self.url}: {name} is missing")
        path.write_bytes(data)

    def delete(self, name: str) -> None:
        raise NotImplementedError

    def names(self, prefix: str) -> list[str]:
        """Files at the top whose names start with ``prefix``."""
        raise NotImplementedError

    def listing(self, folder: str) -> set[str]:
        """Base names of the files in ``folder`` (one listing)."""
        raise NotImplementedError

    def pyramids(self) -> set[tuple[str, str]]:
        """(image id, version) of every pyramid under ``images/``, in one listing."""
        return {(i, v) for i, v, _ in self.store.files()}

    def written(self, image_id: str, version: str) -> None:
        """Note a pyramid committed under ``images/`` for the next ``sync``."""

    def sync(self) -> None:
        """Make everything written so far durable (before a manifest names it)."""


class Folder(Destination):
    #: Above this many files written, one ``os.sync()`` beats an fsync per file.
    SYNC_EACH = 256

    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = root.resolve()
        self.url = str(self.root)
        self.store = ImageStore(self.root / "images", self.root / "reports")
        self._unsynced: list[Path] = []

    def put(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        tmp.replace(path)
        self._unsynced.append(path)

    def put_file(self, name: str, path: Path) -> None:
        target = self.root / name
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
        self._unsynced.append(target)

    def written(self, image_id: str, version: str) -> None:
        self._unsynced.append(self.store.path(image_id, version))

    def sync(self) -> None:
        paths, self._unsynced = self._unsynced, []
        if not paths:
            return
        if len(paths) > self.SYNC_EACH:
            os.sync()
            return
        for path in [*paths, *{p.parent for p in paths}]:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def fetch(self, name: str, path: Path) -> None:
        try:
            shutil.copyfile(self.root / name, path)
        except FileNotFoundError:
            raise ArchiveError(f"{self.url}: {name} is missing") from None

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def names(self, prefix: str) -> list[str]:
        return sorted(p.name for p in self.root.glob(f"{prefix}*") if p.is_file())

    def listing(self, folder: str) -> set[str]:
        try:
            with os.scandir(self.root / folder) as entries:
                return {e.name for e in entries if e.is_file()}
        except FileNotFoundError:
            return set()

    def pyramids(self) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        root = self.root / "images"
        try:
            shards = [e.path for e in os.scandir(root) if len(e.name) == 2 and e.is_dir()]
        except FileNotFoundError:
            return found
        for path in shards:
            with os.scandir(path) as entries:
                for entry in entries:
                    parsed = parse_name(entry.name)
                    if parsed:
                        found.add(parsed)
        return found


class Bucket(Destination):
    def __init__(self, url: str, scratch: Path, timeout: float) -> None:
        from .storage_s3 import S3Store, _storage_errors

        rest = url.split("://", 1)[1]
        self.bucket, _, prefix = rest.partition("/")
        self.prefix = prefix.strip("/")
        self.url = url.rstrip("/")
        images = f"{self.url}/images"
        self.store = S3Store.from_url(images, home=_ScratchHome(scratch), timeout=timeout)
        self._errors = _storage_errors()
        self.store.check()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _fail(self, what: str, exc: BaseException) -> ArchiveError:
        return ArchiveError(f"{self.url}: cannot {what}: {exc}")

    def put(self, name: str, data: bytes) -> None:
        try:
            self.store.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)
        except self._errors as exc:
            raise self._fail(f"write {name}", exc) from None

    def put_file(self, name: str, path: Path) -> None:
        try:
            self.store.client.upload_file(str(path), self.bucket, self._key(name))
        except self._errors as exc:
            raise self._fail(f"write {name}", exc) from None

    def get(self, name: str) -> bytes | None:
        try:
            body = self.store.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            return body.read()
        except self._errors as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._fail(f"read {name}", exc) from None

    def delete(self, name: str) -> None:
        try:
            self.store.client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except self._errors as exc:
            raise self._fail(f"delete {name}", exc) from None

    def names(self, prefix: str) -> list[str]:
        base = self._key("")
        found = []
        for obj in self.store._list(self._key(prefix)):
            rest = obj["Key"][len(base) :]
            if "/" not in rest:
                found.append(rest)
        return sorted(found)

    def listing(self, folder: str) -> set[str]:
        base = self._key(folder.strip("/") + "/")
        found = set()
        for obj in self.store._list(base):
            rest = obj["Key"][len(base) :]
            if rest and "/" not in rest:
                found.add(rest)
        return found


class _ScratchHome(Home):
    def __init__(self, scratch: Path) -> None:
        super().__init__(scratch)

    @property
    def scratch(self) -> Path:
        return self.root


def destination(url: str, scratch: Path, timeout: float = 30.0) -> Destination:
    """A backup's place from what the operator typed: a folder, or ``s3://bucket/prefix``."""
    if url.lower().startswith("s3://"):
        return Bucket(url, scratch, timeout)
    if "://" in url:
        raise ArchiveError(f"{url!r}: a backup goes to a folder or to s3://bucket/prefix")
    return Folder(Path(url), scratch)


# -- copying pyramids ----------------------------------------------------------------------------
def copy_pyramid(source: PyramidStore, target: PyramidStore, image_id: str, version: str) -> dict:
    """Copy one pyramid whole (committed under its name at once, or not at all); returns
    its manifest entry (name, size, sha256 of the bytes read)."""
    digest = hashlib.sha256()
    temp = target.temp_path()
    size = 0
    try:
        with source.open(image_id, version) as src, open(temp, "wb") as out:
            for chunk in _chunks(src):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if size == 0:
            raise ArchiveError(f"{source.url}: pyramid {image_id} version {version} is empty")
        target.commit(temp, image_id, version, fsync=False)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return _entry(image_id, version, size, digest.hexdigest())


def _chunks(fh: PyramidFile) -> Iterator[bytes]:
    """The whole stored file, in ranged reads (a remote size is known after the first)."""
    offset = 0
    while fh.size < 0 or offset < fh.size:
        chunk = fh.read_range(offset, CHUNK if fh.size < 0 else min(CHUNK, fh.size - offset))
        if not chunk:
            break
        yield chunk
        offset += len(chunk)


def pyramid_digest(store: PyramidStore, image_id: str, version: str) -> tuple[int, str]:
    """(size, sha256) of a stored pyramid, read back."""
    digest = hashlib.sha256()
    size = 0
    with store.open(image_id, version) as fh:
        for chunk in _chunks(fh):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _entry(image_id: str, version: str, size: int, sha256: str) -> dict:
    return {
        "id": image_id,
        "version": version,
        "name": relative_name(image_id, version),
        "size": size,
        "sha256": sha256,
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _missing(source: PyramidStore, image_id: str, version: str) -> ArchiveError:
    return ArchiveError(
        f"{source.url}: pyramid {image_id} version {version}, which the catalog refers to, "
        "is missing (replaced by an ingest during the backup? run the backup again; "
        "`archive check` tells whether the archive itself is damaged)"
    )


# -- the catalog snapshot ------------------------------------------------------------------------
def snapshot_catalog(catalog: Catalog, path: Path, base: Path | None = None) -> None:
    """A consistent copy of ``catalog`` as an SQLite catalog file at ``path``. For a
    catalog that is not an SQLite file, ``base`` (the previous backup's snapshot, same
    schema) is brought up to date rather than a new file filled, so that a second backup
    stores the pieces of the changed pages only."""
    path.unlink(missing_ok=True)
    if isinstance(catalog, SQLiteCatalog):
        target = sqlite3.connect(path)
        try:
            with target:
                source = sqlite3.connect(catalog.path, timeout=30)
                try:
                    source.backup(target)  # SQLite's online backup API, in one step
                finally:
                    source.close()
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
        return
    if base is not None:
        shutil.copyfile(base, path)
        with catalog.snapshot() as rows:
            _bring_up_to_date(path, rows)
        return
    copy = SQLiteCatalog(path, backups=path.parent)
    try:
        with catalog.snapshot() as rows:
            copy.load(rows)
    finally:
        copy.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()


def _bring_up_to_date(path: Path, rows: Callable[[str], Iterator[Sequence]]) -> None:
    """Make the SQLite catalog file at ``path`` (the previous backup's snapshot) hold
    exactly the rows ``rows(table)`` gives, writing only the rows that differ, in one
    transaction: SQLite updates a row in its page, so the pages, and the pieces, of what
    did not change stay the same bytes."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        gone: dict[str, list[Any]] = {}
        for table, columns in TABLES.items():
            key, names = columns[0], ",".join(columns)
            held = {row[0]: hash(row) for row in db.execute(f"SELECT {names} FROM {table}")}
            if table == "meta":
                held.pop("schema_version", None)  # the file's own, as in Catalog.load
            upsert = (
                f"INSERT INTO {table} ({names}) VALUES ({','.join('?' * len(columns))})"
                f" ON CONFLICT ({key}) DO UPDATE SET "
                + ",".join(f"{c} = excluded.{c}" for c in columns[1:])
            )
            batch: list[tuple] = []
            for row in rows(table):
                row = tuple(row)
                if table == "meta" and row[0] == "schema_version":
                    continue
                if held.pop(row[0], None) != hash(row):
                    batch.append(row)
                    if len(batch) >= 1000:
                        db.executemany(upsert, batch)
                        batch = []
            db.executemany(upsert, batch)
            gone[table] = list(held)
        for table in reversed(TABLES):
            db.executemany(
                f"DELETE FROM {table} WHERE {TABLES[table][0]} = ?", [(k,) for k in gone[table]]
            )
        db.execute("COMMIT")
    finally:
        db.close()


def table_summary(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Rows and a SHA-256 over every row of each table, read as of one moment: the same
    figures on any backend for the same contents (values compared as JSON)."""
    summary: dict[str, dict[str, Any]] = {}
    with catalog.snapshot() as rows:
        for table in TABLES:
            digest = hashlib.sha256()
            count = 0
            for row in rows(table):
                if table == "meta" and row[0] == "schema_version":
                    continue
                digest.update(json.dumps(list(row), ensure_ascii=False).encode() + b"\n")
                count += 1
            summary[table] = {"rows": count, "sha256": digest.hexdigest()}
    return summary


def _referenced(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT id, version FROM images ORDER BY id")]
    finally:
        db.close()


# -- backup --------------------------------------------------------------------------------------
@dataclass
class BackupResult:
    url: str
    manifest: dict
    copied: int = 0
    copied_bytes: int = 0
    reused: int = 0
    removed: int = 0
    chunks_written: int = 0
    chunks_bytes: int = 0
    chunks_kept: int = 0
    swept: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _previous(dest: Destination) -> dict:
    data = dest.get(MANIFEST)
    if data is None:
        return {}
    try:
        manifest = json.loads(data)
    except ValueError:
        return {}  # a damaged manifest: copy everything again
    return manifest if manifest.get("format") in READS else {}


def store_catalog(dest: Destination, snapshot: Path, have: set[str]) -> tuple[dict, int, int]:
    """Write the pieces of ``snapshot`` that ``dest`` lacks (``have``: the names already
    under ``chunks/``, updated); returns (the manifest's description of the file, pieces
    written, bytes written)."""
    whole = hashlib.sha256()
    pieces: list[str] = []
    size = written = written_bytes = 0
    with open(snapshot, "rb") as fh:
        while piece := fh.read(CATALOG_CHUNK):
            whole.update(piece)
            size += len(piece)
            digest = _sha256(piece)
            pieces.append(digest)
            if digest not in have:
                data = zlib.compress(piece, 1)
                dest.put(f"{CHUNKS}/{digest}", data)
                have.add(digest)
                written += 1
                written_bytes += len(data)
    described = {
        "size": size,
        "sha256": whole.hexdigest(),
        "chunk_size": CATALOG_CHUNK,
        "compression": "zlib",
        "chunks": pieces,
    }
    return described, written, written_bytes


def fetch_catalog(dest: Destination, manifest: dict, path: Path) -> None:
    """The backup's catalog snapshot, whole, at ``path``, every piece and the whole file
    checked against the manifest (ArchiveError naming the piece otherwise)."""
    cat = manifest["catalog"]
    if "chunks" not in cat:  # format 1: one file
        dest.fetch(cat["name"], path)
        if _file_sha256(path) != (cat["size"], cat["sha256"]):
            raise ArchiveError(f"{dest.url}/{cat['name']}: checksum differs from the manifest")
        return
    whole = hashlib.sha256()
    size = 0
    with open(path, "wb") as out:
        for n, digest in enumerate(cat["chunks"]):
            name = f"{CHUNKS}/{digest}"
            data = dest.get(name)
            if data is None:
                raise ArchiveError(f"{dest.url}/{name}: missing (catalog piece {n})")
            try:
                piece = zlib.decompress(data)
            except zlib.error:
                piece = b""
            if _sha256(piece) != digest:
                raise ArchiveError(
                    f"{dest.url}/{name}: checksum differs from the manifest (catalog piece {n})"
                )
            whole.update(piece)
            size += len(piece)
            out.write(piece)
    if (size, whole.hexdigest()) != (cat["size"], cat["sha256"]):
        raise ArchiveError(f"{dest.url}/{MANIFEST}: the catalog's pieces do not make up its file")


def backup(
    catalog: Catalog,
    store: PyramidStore,
    home: Home,
    dest_url: str,
    *,
    verify: bool = False,
    progress: Progress = _quiet,
    timeout: float = 30.0,
) -> BackupResult:
    """Back the archive up into ``dest_url`` (a folder or s3://bucket/prefix)."""
    with tempfile.TemporaryDirectory(prefix="backup-", dir=_scratch_dir(home)) as tmp_name:
        tmp = Path(tmp_name)
        dest = destination(dest_url, tmp, timeout)
        if isinstance(dest, Folder):
            _refuse_inside(dest.root, home)
            dest.root.mkdir(parents=True, exist_ok=True)
        previous = _previous(dest)
        known = {(e["id"], e["version"]): e for e in previous.get("pyramids", [])}
        there = dest.pyramids()  # the one listing of the pyramids
        result = BackupResult(dest.url, {})

        snapshot = tmp / "catalog.sqlite"
        copied: dict[tuple[str, str], dict] = {}
        gone: set[tuple[str, str]] = set()
        base = None if isinstance(catalog, SQLiteCatalog) else _base(dest, previous, home, tmp)
        for _attempt in range(RETRIES + 1):
            snapshot_catalog(catalog, snapshot, base)
            counts = _counts(snapshot)
            progress(
                f"Catalog snapshot: {counts['records']} records, {counts['images']} images, "
                f"{counts['changes']} changes"
            )
            wanted = _referenced(snapshot)
            todo = [k for k in wanted if k not in copied and not (k in known and k in there)]
            swept = []
            for n, (image_id, version) in enumerate(todo, 1):
                try:
                    entry = copy_pyramid(store, dest.store, image_id, version)
                except FileNotFoundError:
                    if (image_id, version) in gone:  # a newer snapshot still wants it
                        raise _missing(store, image_id, version) from None
                    swept.append((image_id, version))
                    continue
                dest.written(image_id, version)
                copied[(image_id, version)] = entry
                if n % 1000 == 0:
                    progress(f"Pyramids: {n}/{len(todo)} copied")
            if not swept:
                break
            gone.update(swept)
            for image_id, version in swept:
                name = relative_name(image_id, version)
                result.swept.append(name)
                progress(
                    f"Pyramid {name} was replaced and swept by an ingest during the backup: "
                    "taking a newer catalog snapshot"
                )
        else:
            raise ArchiveError(
                f"{store.url}: ingests replaced pyramids during {RETRIES + 1} catalog "
                "snapshots in a row: run the backup again when they are done"
            )

        entries = []
        for key in wanted:
            if key in copied:
                entry = copied[key]
                result.copied += 1
                result.copied_bytes += entry["size"]
            else:
                entry = known[key]
                result.reused += 1
            entries.append(entry)

        old_reports = {e["name"]: e for e in previous.get("reports", [])}
        reports_there = dest.listing("reports") if old_reports else set()
        reports = []
        for name in store.reports():
            data = store.get_report(name)
            item = {"name": f"reports/{name}", "size": len(data), "sha256": _sha256(data)}
            if old_reports.get(item["name"]) != item or name not in reports_there:
                dest.put(item["name"], data)
            reports.append(item)

        settings = None
        toml_path = home.root / "archive.toml"
        if toml_path.is_file():
            data = toml_path.read_bytes()
            settings = {"name": "archive.toml", "size": len(data), "sha256": _sha256(data)}
            if previous.get("settings") != settings:
                dest.put("archive.toml", data)

        have = dest.listing(CHUNKS)
        stale_chunks = set(have)
        described, result.chunks_written, result.chunks_bytes = store_catalog(dest, snapshot, have)
        result.chunks_kept = len(described["chunks"]) - result.chunks_written
        dest.sync()  # everything the manifest names is on the disk before it names it
        stamp = _stamp()
        manifest = {
            "format": FORMAT,
            "created": stamp,
            "source": {
                "home": str(home.root),
                "catalog": safe_url(getattr(catalog, "url", "")) or str(home.catalog),
                "storage": store.url,
            },
            "schema_version": SCHEMA_VERSION,
            "catalog": {"name": f"catalog-{stamp}.sqlite", **described, **counts},
            "pyramids": entries,
            "pyramid_bytes": sum(e["size"] for e in entries),
            "reports": reports,
            "settings": settings,
            "search": "derived from the catalog: rebuilt by archive restore",
            "this_run": {
                "copied": result.copied,
                "copied_bytes": result.copied_bytes,
                "reused": result.reused,
                "catalog_chunks_written": result.chunks_written,
                "catalog_chunks_kept": result.chunks_kept,
                "catalog_bytes_written": result.chunks_bytes,
                "swept": result.swept,
            },
        }
        # Compact: with ``indent`` json encodes in Python, not C, 4x slower (2.4 s against
        # 0.6 s for 146,000 pyramids), which a second backup pays every time.
        body = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
        dest.put(MANIFEST, body.encode())
        dest.sync()
        result.manifest = manifest
        if not isinstance(catalog, SQLiteCatalog):  # the next backup's base, kept here
            kept = _base_path(home, dest)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(snapshot, kept.with_suffix(".part"))  # a rename, on the home's disk
            os.replace(kept.with_suffix(".part"), kept)

        # What the new manifest no longer names: catalog files of format 1, pieces of
        # older snapshots, replaced pyramids, leftovers of runs cut short.
        for name in dest.names("catalog-"):
            dest.delete(name)
        for name in stale_chunks - set(described["chunks"]):
            dest.delete(f"{CHUNKS}/{name}")
        keep = {(e["id"], e["version"]) for e in entries}
        for image_id, version in (there | set(copied)) - keep:
            dest.store.remove(image_id, version)
            result.removed += 1
        if isinstance(dest, Folder) and dest.store.tmp.is_dir():  # copies cut short
            for path in dest.store.tmp.iterdir():
                path.unlink(missing_ok=True)
        if verify:
            result.problems = verify_backup(dest_url, tmp, timeout=timeout, progress=progress)
        return result


def _counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("institutions", "records", "images", "changes")
        }
    finally:
        db.close()


def _base_path(home: Home, dest: Destination) -> Path:
    """Where a catalog that is not an SQLite file keeps its last snapshot for ``dest``."""
    name = hashlib.sha256(dest.url.encode()).hexdigest()[:16]
    return home.root / "cache" / "backup" / f"{name}.sqlite"


def _base(dest: Destination, previous: dict, home: Home, tmp: Path) -> Path | None:
    """The previous backup's catalog snapshot, if it can be brought up to date: the copy
    this home kept when it matches the manifest, else the pieces read back from ``dest``;
    None for a first backup, another schema, or a previous backup that cannot be read."""
    cat = previous.get("catalog") or {}
    if "chunks" not in cat or previous.get("schema_version") != SCHEMA_VERSION:
        return None
    kept = _base_path(home, dest)
    if kept.is_file() and _file_sha256(kept) == (cat["size"], cat["sha256"]):
        return kept
    fetched = tmp / "previous.sqlite"
    try:
        fetch_catalog(dest, previous, fetched)
    except ArchiveError:
        return None  # a damaged previous backup: a new snapshot, whole
    return fetched


def _scratch_dir(home: Home) -> Path:
    path = home.root / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _refuse_inside(root: Path, home: Home) -> None:
    if root == home.root or home.root in root.parents or root in home.root.parents:
        raise ArchiveError(
            f"{root}: a backup must live outside the archive home {home.root}, and not around it"
        )


def read_manifest(dest: Destination) -> dict:
    data = dest.get(MANIFEST)
    if data is None:
        raise ArchiveError(f"{dest.url}: no {MANIFEST}: not a backup of this archive")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{dest.url}/{MANIFEST}: not valid JSON: {exc}") from None
    if manifest.get("format") not in READS:
        raise ArchiveError(
            f"{dest.url}/{MANIFEST}: backup format {manifest.get('format')!r}, "
            f"this release reads formats {', '.join(map(str, READS))}"
        )
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise ArchiveError(
            f"{dest.url}: the backup's catalog is schema version {manifest['schema_version']}, "
            f"newer than this release's {SCHEMA_VERSION}: restore it with a newer release"
        )
    return manifest


def verify_backup(
    url: str, scratch: Path, *, timeout: float = 30.0, progress: Progress = _quiet
) -> list[str]:
    """Re-read everything the manifest names and compare sizes and SHA-256; the problems,
    each naming the file (empty: the backup is whole)."""
    dest = destination(url, scratch, timeout)
    manifest = read_manifest(dest)
    problems = []
    local = scratch / "verify-catalog.sqlite"
    try:
        fetch_catalog(dest, manifest, local)
    except ArchiveError as exc:
        problems.append(str(exc))
    finally:
        local.unlink(missing_ok=True)
    for item in [*manifest.get("reports", []), *filter(None, [manifest.get("settings")])]:
        data = dest.get(item["name"])
        if data is None:
            problems.append(f"{dest.url}/{item['name']}: missing")
        elif _sha256(data) != item["sha256"]:
            problems.append(f"{dest.url}/{item['name']}: checksum differs from the manifest")
    for n, entry in enumerate(manifest["pyramids"], 1):
        where = f"{dest.url}/images/{entry['name']}"
        try:
            size, digest = pyramid_digest(dest.store, entry["id"], entry["version"])
        except FileNotFoundError:
            problems.append(f"{where}: missing")
            continue
        if size != entry["size"] or digest != entry["sha256"]:
            problems.append(f"{where}: checksum differs from the manifest")
        if n % 1000 == 0:
            progress(f"Verified {n}/{len(manifest['pyramids'])} pyramids")
    return problems


# -- restore -------------------------------------------------------------------------------------
@dataclass
class RestoreResult:
    manifest: dict
    copied: int = 0
    present: int = 0
    settings: str | None = None


def is_empty(catalog: Catalog) -> bool:
    return catalog.count(public_only=False) == 0 and not catalog.institutions()


def restore(
    catalog: Catalog,
    store: PyramidStore,
    home: Home,
    src_url: str,
    *,
    force: bool = False,
    progress: Progress = _quiet,
    timeout: float = 30.0,
) -> RestoreResult:
    """Fill ``catalog`` and ``store`` from the backup at ``src_url``. Refuses a catalog
    that holds anything unless ``force``, which replaces its contents. Every file is
    checked against the manifest before the catalog refers to it; the catalog comes last,
    in one transaction. The search index is the caller's to rebuild."""
    if not force and not is_empty(catalog):
        raise ArchiveError(
            f"catalog {catalog.where} is not empty ({catalog.count(public_only=False)} records):"
            " restore fills an empty archive; --force replaces what it holds"
        )
    with tempfile.TemporaryDirectory(prefix="restore-", dir=_scratch_dir(home)) as tmp_name:
        tmp = Path(tmp_name)
        src = destination(src_url, tmp, timeout)
        manifest = read_manifest(src)
        result = RestoreResult(manifest)
        snapshot = tmp / "catalog.sqlite"
        fetch_catalog(src, manifest, snapshot)

        pyramids = manifest["pyramids"]
        for n, entry in enumerate(pyramids, 1):
            image_id, version = entry["id"], entry["version"]
            if store.exists(image_id, version):
                result.present += 1  # versioned names: the same version, the same bytes
                continue
            try:
                copied = copy_pyramid(src.store, store, image_id, version)
            except FileNotFoundError:
                raise ArchiveError(f"{src.url}/images/{entry['name']}: missing") from None
            if copied["sha256"] != entry["sha256"]:
                store.remove(image_id, version)
                raise ArchiveError(
                    f"{src.url}/images/{entry['name']}: checksum differs from the manifest"
                )
            result.copied += 1
            if n % 1000 == 0:
                progress(f"Pyramids: {n}/{len(pyramids)}")
        if store.local:
            os.sync()
        for item in manifest.get("reports", []):
            data = src.get(item["name"])
            if data is not None and _sha256(data) == item["sha256"]:
                store.put_report(item["name"].rsplit("/", 1)[-1], data)

        copy = SQLiteCatalog(snapshot, backups=tmp)  # brings an older backup up to date
        try:
            with copy.snapshot() as rows:
                catalog.load(rows, replace=force)
        finally:
            copy.close()

        if manifest.get("settings"):
            data = src.get("archive.toml")
            target = home.root / "archive.toml"
            if data is not None and target.exists() and target.read_bytes() != data:
                target = home.root / "archive.toml.from-backup"
            if data is not None:
                target.write_bytes(data)
                result.settings = str(target)
        return result


# -- migrate -------------------------------------------------------------------------------------
@dataclass
class MigrateResult:
    copied: int = 0
    present: int = 0
    pyramid_bytes: int = 0
    pyramids_sha256: str = ""
    target_pyramids_sha256: str = ""
    catalog_copied: bool = False
    source: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return self.source == self.target and self.pyramids_sha256 == self.target_pyramids_sha256


def migrate(
    catalog: Catalog,
    store: PyramidStore,
    target_catalog: Catalog,
    target_store: PyramidStore,
    *,
    progress: Progress = _quiet,
) -> MigrateResult:
    """Copy catalog and pyramids to another catalog and store, under the source's ingest
    lock (nothing changes meanwhile). Resumable: committed pyramids are kept, the catalog
    goes in one transaction. Ends by counting and checksumming both sides."""
    result = MigrateResult()
    with catalog.write_lock():
        result.source = table_summary(catalog)
        if not is_empty(target_catalog):
            result.target = table_summary(target_catalog)
            if result.target != result.source:
                raise ArchiveError(
                    f"catalog {target_catalog.where} holds other records "
                    f"({target_catalog.count(public_only=False)}): migrate fills an empty one"
                )
        wanted = sorted(catalog.image_versions())
        source_digest = hashlib.sha256()
        target_digest = hashlib.sha256()
        for n, (image_id, version) in enumerate(wanted, 1):
            line = f"{image_id}.{version}"
            if target_store.exists(image_id, version):
                size, digest = pyramid_digest(store, image_id, version)
                result.present += 1
                _, there = pyramid_digest(target_store, image_id, version)
            else:
                try:
                    entry = copy_pyramid(store, target_store, image_id, version)
                except FileNotFoundError:
                    raise _missing(store, image_id, version) from None
                size, digest = entry["size"], entry["sha256"]
                result.copied += 1
                _, there = pyramid_digest(target_store, image_id, version)
            result.pyramid_bytes += size
            source_digest.update(f"{line} {digest}\n".encode())
            target_digest.update(f"{line} {there}\n".encode())
            if n % 1000 == 0:
                progress(f"Pyramids: {n}/{len(wanted)}")
        if target_store.local:
            os.sync()
        for name in store.reports():
            target_store.put_report(name, store.get_report(name))
        result.pyramids_sha256 = source_digest.hexdigest()
        result.target_pyramids_sha256 = target_digest.hexdigest()
        if is_empty(target_catalog):
            with catalog.snapshot() as rows:
                target_catalog.load(rows)
            result.catalog_copied = True
        result.target = table_summary(target_catalog)
    return result


def open_target(
    home: Home, catalog_url: str, storage_url: str, timeout: float
) -> tuple[Catalog, PyramidStore]:
    """The catalog and store a migration writes to (empty URLs: ``home``'s embedded ones)."""
    from .catalog import BACKENDS

    url = catalog_url.strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ("" if not url else None)
    if scheme not in BACKENDS:
        raise ArchiveError(
            f"--to-catalog: {safe_url(url)!r} is not a catalog URL: empty for the home's "
            "catalog.sqlite, or postgresql://user:password@host:port/dbname"
        )
    home.ensure()
    target_store = store_at(storage_url.strip(), home, timeout)
    target_store.check()
    return BACKENDS[scheme](url, home), target_store


def summary_lines(summary: dict[str, dict[str, Any]]) -> Iterator[str]:
    for table, figures in summary.items():
        yield f"  {table:<13} {figures['rows']:>9} rows  sha256 {figures['sha256'][:16]}"


__all__: Sequence[str] = (
    "backup",
    "destination",
    "migrate",
    "restore",
    "table_summary",
    "verify_backup",
)
