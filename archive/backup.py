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

A second backup brings the previous backup's snapshot (kept in the home's
``cache/backup/``; for PostgreSQL, else read back from the destination) up to date
rather than copying the whole catalog again: an SQLite catalog's ``row_log`` (filled by
triggers once a backup turned it on) says which rows were written since, and only those
are read and written; for PostgreSQL every row is read and only those that differ are
written. Either way the unchanged pages stay the same bytes, and the changed ones are
read from the snapshot's write-ahead log, so only their pieces are hashed again.

That snapshot file is stored as restic and borg store files: cut into pieces of
``CATALOG_CHUNK`` bytes (a multiple of SQLite's page size, so a changed page changes one
piece), each kept under the SHA-256 of its bytes; the manifest lists them in order. A
piece the destination already holds is not written again, so a second backup writes only
the pieces of the pages that changed.

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
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

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
#: Changed rows above which a whole new snapshot is taken rather than the last one updated.
ROWS_AT_MOST = 100_000
#: Rows of an SQLite catalog's row log kept at most for backups that have not run for a
#: while; beyond them the oldest are forgotten, and such a backup takes a whole snapshot.
ROW_LOG_KEEP = 2_000_000

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

    def pyramid_names(self) -> set[str]:
        """``xx/<id>.<version>.tif`` of every pyramid under ``images/``, in one listing."""
        return {relative_name(i, v) for i, v, _ in self.store.files()}

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

    def pyramid_names(self) -> set[str]:
        # Names only, not parsed: 146,000 of them in 0.1 s rather than 1 s.
        found: set[str] = set()
        root = self.root / "images"
        try:
            shards = [e.name for e in os.scandir(root) if len(e.name) == 2 and e.is_dir()]
        except FileNotFoundError:
            return found
        for shard in shards:
            found.update(map(f"{shard}/".__add__, os.listdir(root / shard)))
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
@dataclass
class Snapshot:
    """A consistent copy of the catalog as an SQLite catalog file, and how it was made."""

    path: Path
    #: "whole" (a new copy), "rows" (the last backup's snapshot, its changed rows written)
    kind: str = "whole"
    #: rows written into the last snapshot, for "rows"
    rows: int = 0
    #: keys of the images rows that changed since the last snapshot, for an SQLite "rows"
    images: list[str] | None = None
    #: where the SQLite catalog's row log stood: {"token": ..., "seq": ...}
    row_log: dict | None = None
    #: for "rows": the pieces that can differ from the last snapshot's (the others are the
    #: same bytes, their SHA-256 known); None: every piece is hashed
    changed: set[int] | None = None


def snapshot_catalog(catalog: Catalog, path: Path, base: Path | None = None) -> Snapshot:
    """A consistent copy of ``catalog`` as an SQLite catalog file at ``path``. For a
    catalog that is not an SQLite file, ``base`` (the previous backup's snapshot, same
    schema) is brought up to date in place rather than a new file filled, so that a
    second backup stores the pieces of the changed pages only."""
    if isinstance(catalog, SQLiteCatalog):
        return _sqlite_snapshot(catalog.path, path)
    if base is not None:
        with catalog.snapshot() as rows, _tracked(base) as (db, pieces):
            written = _bring_up_to_date(db, rows)
        return Snapshot(base, "rows", written, changed=pieces)
    path.unlink(missing_ok=True)
    copy = SQLiteCatalog(path, backups=path.parent)
    try:
        with catalog.snapshot() as rows:
            copy.load(rows)
    finally:
        copy.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    return Snapshot(path)


def _sqlite_snapshot(source_path: Path, path: Path) -> Snapshot:
    """The whole SQLite catalog copied with SQLite's online backup API, in one step, after
    its row log is turned on; the copy says where the log stood and carries none of it."""
    _start_row_log(source_path)
    path.unlink(missing_ok=True)
    target = sqlite3.connect(path, isolation_level=None)
    try:
        source = sqlite3.connect(source_path, timeout=30)
        try:
            source.backup(target)
        finally:
            source.close()
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        state = target.execute("SELECT token FROM row_log_state").fetchone()
        top = target.execute("SELECT seq FROM sqlite_sequence WHERE name = 'row_log'").fetchone()
        target.execute("BEGIN")
        target.execute("DELETE FROM row_log")
        target.execute("DELETE FROM row_log_state")
        target.execute("COMMIT")
    finally:
        target.close()
    log = {"token": state[0], "seq": top[0] if top else 0} if state else None
    return Snapshot(path, row_log=log)


def _start_row_log(source_path: Path) -> None:
    """Turn the SQLite catalog's row log on (once, before its first whole snapshot), so
    that every row written from then on is logged for the next backup. Best effort: a
    catalog busy for 30 s gets its log turned on by a later backup."""
    db = sqlite3.connect(source_path, timeout=30, isolation_level=None)
    try:
        db.execute(
            "INSERT INTO row_log_state (id, token, pruned) VALUES (1, ?, 0)"
            " ON CONFLICT (id) DO NOTHING",
            (os.urandom(12).hex(),),
        )
    except sqlite3.OperationalError:
        pass
    finally:
        db.close()


def _apply_row_log(source_path: Path, base: Path, log: dict) -> Snapshot | None:
    """Bring ``base`` (the last backup's snapshot of this SQLite catalog, taken when its
    row log stood at ``log``) up to date with the rows logged since, all read in one read
    transaction of the catalog, written in one transaction of ``base``. None when the log
    cannot say (another catalog file, pruned past ``log``, too many changes), or when the
    result does not hold as many rows as the catalog: the caller takes a whole snapshot."""
    src = sqlite3.connect(source_path, timeout=30, isolation_level=None)
    try:
        src.execute("BEGIN")
        state = src.execute("SELECT token, pruned FROM row_log_state").fetchone()
        top = src.execute("SELECT seq FROM sqlite_sequence WHERE name = 'row_log'").fetchone()
        top = top[0] if top else 0
        since = int(log["seq"])
        if state is None or state[0] != log["token"] or state[1] > since or top < since:
            return None
        dirty: dict[str, list] = {table: [] for table in TABLES}
        logged = src.execute("SELECT DISTINCT tbl, key FROM row_log WHERE seq > ?", (since,))
        for n, (table, key) in enumerate(logged):
            if table not in dirty or n >= ROWS_AT_MOST:
                return None
            dirty[table].append(key)
        counts = _table_counts(src)
        changes_seq = src.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
        ).fetchone()
        log_now = {"token": state[0], "seq": top}
        if not any(dirty.values()):  # nothing to write: not even a journal mode to switch
            if _table_counts(base) != counts:
                return None
            return Snapshot(base, "rows", 0, images=[], row_log=log_now, changed=set())
        with _tracked(base) as (db, pieces):
            db.execute("BEGIN")
            written = 0
            for table, columns in TABLES.items():
                written += _copy_rows(src, db, table, columns, dirty[table])
            held_seq = db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
            ).fetchone()
            if changes_seq and changes_seq != held_seq:  # the next change number, as it is
                db.execute("DELETE FROM sqlite_sequence WHERE name = 'changes'")
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', ?)", changes_seq
                )
            if _table_counts(db) != counts:
                db.execute("ROLLBACK")
                return None
            db.execute("COMMIT")
        return Snapshot(
            base,
            "rows",
            written,
            images=dirty["images"],
            row_log=log_now,
            changed=pieces,
        )
    finally:
        src.close()


def _table_counts(db: sqlite3.Connection | Path) -> dict[str, int]:
    if isinstance(db, Path):
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as opened:
            return _table_counts(opened)
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _copy_rows(
    src: sqlite3.Connection, db: sqlite3.Connection, table: str, columns: Sequence[str], keys: list
) -> int:
    """Make the rows of ``table`` with these ``keys`` in ``db`` what they are in ``src``:
    the ones gone deleted first (a UNIQUE column may pass to a new row), then the rest
    written whole."""
    key, names = columns[0], ",".join(columns)
    upsert = _upsert(table, columns)
    found: set = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            k for (k,) in src.execute(f"SELECT {key} FROM {table} WHERE {key} IN ({marks})", chunk)
        )
    db.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(k,) for k in keys if k not in found])
    present = [k for k in keys if k in found]
    for start in range(0, len(present), 500):
        chunk = present[start : start + 500]
        marks = ",".join("?" * len(chunk))
        db.executemany(
            upsert, src.execute(f"SELECT {names} FROM {table} WHERE {key} IN ({marks})", chunk)
        )
    return len(keys)


def _upsert(table: str, columns: Sequence[str]) -> str:
    return (
        f"INSERT INTO {table} ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        f" ON CONFLICT ({columns[0]}) DO UPDATE SET "
        + ",".join(f"{c} = excluded.{c}" for c in columns[1:])
    )


def _prune_row_log(source_path: Path, home: Home, token: str) -> None:
    """Forget the logged rows every backup of this catalog kept in this home has taken
    (and all but the newest ``ROW_LOG_KEEP``, whatever a forgotten destination still
    needs: it gets a whole snapshot). Best effort: skipped while an ingest writes."""
    seqs = []
    for sidecar in (home.root / "cache" / "backup").glob("*.json"):
        try:
            log = json.loads(sidecar.read_text()).get("row_log") or {}
        except (OSError, ValueError):
            continue
        if log.get("token") == token:
            seqs.append(int(log["seq"]))
    if not seqs:
        return
    db = sqlite3.connect(source_path, timeout=2, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        top = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'row_log'").fetchone()
        cutoff = max(min(seqs), (top[0] if top else 0) - ROW_LOG_KEEP)
        db.execute("DELETE FROM row_log WHERE seq <= ?", (cutoff,))
        db.execute("UPDATE row_log_state SET pruned = max(pruned, ?)", (cutoff,))
        db.execute("COMMIT")
    except sqlite3.OperationalError:
        pass  # busy: the next backup prunes
    finally:
        db.close()


def _bring_up_to_date(db: sqlite3.Connection, rows: Callable[[str], Iterator[Sequence]]) -> int:
    """Make the SQLite catalog file ``db`` is open on (the previous backup's snapshot) hold
    exactly the rows ``rows(table)`` gives, writing only the rows that differ, in one
    transaction: SQLite updates a row in its page, so the pages, and the pieces, of what
    did not change stay the same bytes. Returns how many rows it wrote or deleted."""
    db.execute("BEGIN")
    written = 0
    gone: dict[str, list[Any]] = {}
    for table, columns in TABLES.items():
        names = ",".join(columns)
        held = {row[0]: hash(row) for row in db.execute(f"SELECT {names} FROM {table}")}
        if table == "meta":
            held.pop("schema_version", None)  # the file's own, as in Catalog.load
        upsert = _upsert(table, columns)
        batch: list[tuple] = []
        for row in rows(table):
            row = tuple(row)
            if table == "meta" and row[0] == "schema_version":
                continue
            if held.pop(row[0], None) != hash(row):
                batch.append(row)
                written += 1
                if len(batch) >= 1000:
                    db.executemany(upsert, batch)
                    batch = []
        db.executemany(upsert, batch)
        gone[table] = list(held)
    for table in reversed(TABLES):
        db.executemany(
            f"DELETE FROM {table} WHERE {TABLES[table][0]} = ?", [(k,) for k in gone[table]]
        )
        written += len(gone[table])
    db.execute("COMMIT")
    return written


@contextmanager
def _tracked(path: Path) -> Iterator[tuple[sqlite3.Connection, set[int]]]:
    """A connection to the SQLite file at ``path`` whose commits go to a write-ahead log
    first; on a clean exit, ``pieces`` holds the pieces (of ``CATALOG_CHUNK`` bytes) of
    the file that they wrote, read from the log's frame headers, and the log is folded
    back into the one file."""
    db = sqlite3.connect(path, isolation_level=None)
    pieces: set[int] = set()
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        yield db, pieces
        pieces.update(_wal_pieces(Path(f"{path}-wal")))
        if db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            raise ArchiveError(f"{path}: busy (is another backup using it?)")
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()


def _wal_pieces(path: Path) -> set[int]:
    """The pieces of its database file that an SQLite WAL file writes. Its format
    (https://sqlite.org/fileformat2.html#walformat): a 32-byte header (page size at byte
    8, salts at 16), then frames of a 24-byte header (page number first, the same salts
    at 8) and one page. A frame with other salts is left from an earlier log: the end."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    if len(data) < 32:
        return set()
    size = int.from_bytes(data[8:12], "big")
    size = 65536 if size == 1 else size
    salts, frame = data[16:24], 24 + size
    pieces = set()
    for offset in range(32, len(data) - frame + 1, frame):
        if data[offset + 8 : offset + 16] != salts:
            break
        page = int.from_bytes(data[offset : offset + 4], "big")
        pieces.add((page - 1) * size // CATALOG_CHUNK)
    return pieces


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
        manifest = orjson.loads(data)
    except ValueError:
        return {}  # a damaged manifest: copy everything again
    return manifest if isinstance(manifest, dict) and manifest.get("format") in READS else {}


def store_catalog(
    dest: Destination,
    snapshot: Path,
    have: set[str],
    known: tuple[list[str], set[int]] | None,
    whole_file: Future,
) -> tuple[dict, int, int]:
    """Write the pieces of ``snapshot`` that ``dest`` lacks (``have``: the names already
    under ``chunks/``, updated); returns (the manifest's description of the file, pieces
    written, bytes written). ``known``: the last snapshot's pieces and which of them the
    file was changed in since (the first and last are hashed whatever it says).
    ``whole_file``: the file's (size, SHA-256), being computed beside this."""
    pieces: list[str] = []
    size = written = written_bytes = 0
    last, changed = known or ([], set())
    with open(snapshot, "rb") as fh:
        while piece := fh.read(CATALOG_CHUNK):
            size += len(piece)
            n = len(pieces)
            if known and 0 < n < len(last) - 1 and n not in changed:
                digest = last[n]  # the same bytes as then
            else:
                digest = _sha256(piece)
            pieces.append(digest)
            if digest not in have:
                data = zlib.compress(piece, 1)
                dest.put(f"{CHUNKS}/{digest}", data)
                have.add(digest)
                written += 1
                written_bytes += len(data)
    whole_size, whole_sha256 = whole_file.result()
    if whole_size != size:
        raise ArchiveError(f"{snapshot}: changed while it was stored")
    described = {
        "size": size,
        "sha256": whole_sha256,
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
        with _Kept(home, dest) as kept, ThreadPoolExecutor(1) as pool:
            return _backup(catalog, store, home, dest, kept, pool, tmp, verify, progress, timeout)


def _backup(
    catalog: Catalog,
    store: PyramidStore,
    home: Home,
    dest: Destination,
    kept: _Kept,
    pool: ThreadPoolExecutor,
    tmp: Path,
    verify: bool,
    progress: Progress,
    timeout: float,
) -> BackupResult:
    previous = _previous(dest)
    known = {(e["id"], e["version"]): e for e in previous.get("pyramids", [])}
    there = dest.pyramid_names()  # the one listing of the pyramids
    result = BackupResult(dest.url, {})

    copied: dict[tuple[str, str], dict] = {}
    gone: set[tuple[str, str]] = set()
    for attempt in range(RETRIES + 1):
        snap = _take_snapshot(catalog, dest, previous if attempt == 0 else {}, kept, tmp)
        counts = _counts(snap.path)
        progress(
            f"Catalog snapshot: {counts['records']} records, {counts['images']} images, "
            f"{counts['changes']} changes"
            + (f" ({snap.rows} rows written into the last one)" if snap.kind == "rows" else "")
        )
        wanted = _wanted(snap, previous, counts["images"])
        todo = [
            k
            for k in wanted
            if k not in copied and not ((e := known.get(k)) and e["name"] in there)
        ]
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

    # The whole file's SHA-256 beside the rest (hashlib lets go of the GIL).
    whole_file = pool.submit(_file_sha256, snap.path)
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
    unchanged = None
    if snap.changed is not None and "chunks" in previous.get("catalog", {}):
        unchanged = (previous["catalog"]["chunks"], snap.changed)
    described, result.chunks_written, result.chunks_bytes = store_catalog(
        dest, snap.path, have, unchanged, whole_file
    )
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
            "catalog_snapshot": {"kind": snap.kind, "rows": snap.rows},
            "swept": result.swept,
        },
    }
    # orjson, compact: 0.06 s for 146,000 pyramids, where json takes 0.3 s (2.4 s with
    # ``indent``), which every second backup pays.
    dest.put(MANIFEST, orjson.dumps(manifest))
    dest.sync()
    result.manifest = manifest
    kept.save(snap, manifest)  # the next backup's base
    if snap.row_log:
        _prune_row_log(catalog.path, home, snap.row_log["token"])

    # What the new manifest no longer names: catalog files of format 1, pieces of
    # older snapshots, replaced pyramids, leftovers of runs cut short.
    for name in dest.names("catalog-"):
        dest.delete(name)
    for name in stale_chunks - set(described["chunks"]):
        dest.delete(f"{CHUNKS}/{name}")
    keep = {e["name"] for e in entries}
    for name in (there | {e["name"] for e in copied.values()}) - keep:
        parsed = parse_name(name.rsplit("/", 1)[-1])
        if parsed:
            dest.store.remove(*parsed)
            result.removed += 1
    if isinstance(dest, Folder) and dest.store.tmp.is_dir():  # copies cut short
        for path in dest.store.tmp.iterdir():
            path.unlink(missing_ok=True)
    if verify:
        result.problems = verify_backup(dest.url, tmp, timeout=timeout, progress=progress)
    return result


def _counts(path: Path) -> dict[str, int]:
    """The manifest's counts: rows of every table a backup carries but ``meta``."""
    counts = _table_counts(path)
    del counts["meta"]
    return counts


class _Kept:
    """The last catalog snapshot this home sent to one destination, kept in the home's
    ``cache/backup/`` so that the next backup brings it up to date rather than copying
    the whole catalog again. A sidecar JSON file says which backup it is (its manifest's
    stamp and the file's SHA-256, size and mtime): it counts only for that backup. It is
    changed in place, so the sidecar goes first; the lock keeps two backups of this home
    to one destination from changing it at once."""

    def __init__(self, home: Home, dest: Destination) -> None:
        name = hashlib.sha256(dest.url.encode()).hexdigest()[:16]
        folder = home.root / "cache" / "backup"
        self.path = folder / f"{name}.sqlite"
        self.sidecar = folder / f"{name}.json"
        self._lock_path = folder / f"{name}.lock"
        self._lock: Any = None
        self.url = dest.url

    def __enter__(self) -> _Kept:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self._lock_path, "a")  # noqa: SIM115 - closed in __exit__
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ArchiveError(
                f"{self.url}: another backup of this archive to it is running"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.close()

    def state(self, previous: dict) -> dict | None:
        """The sidecar, when the kept file is the snapshot of the ``previous`` backup."""
        cat = previous.get("catalog") or {}
        try:
            info = json.loads(self.sidecar.read_text())
            stat = self.path.stat()
        except (OSError, ValueError):
            return None
        if (
            "chunks" not in cat
            or previous.get("schema_version") != SCHEMA_VERSION
            or info.get("created") != previous.get("created")
            or info.get("sha256") != cat.get("sha256")
            or stat.st_size != cat.get("size")
            or info.get("mtime_ns") != stat.st_mtime_ns
        ):
            return None
        return info

    def changing(self) -> Path:
        """The kept file, to be changed: from now on it is no backup's snapshot."""
        self.sidecar.unlink(missing_ok=True)
        return self.path

    def save(self, snap: Snapshot, manifest: dict) -> None:
        if snap.path != self.path:
            part = self.path.with_suffix(".part")
            shutil.move(snap.path, part)  # a rename when the scratch is on the home's disk
            os.replace(part, self.path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        info = {
            "created": manifest["created"],
            "sha256": manifest["catalog"]["sha256"],
            "mtime_ns": self.path.stat().st_mtime_ns,
            "row_log": snap.row_log,
        }
        part = self.sidecar.with_suffix(".part")
        part.write_text(json.dumps(info))
        os.replace(part, self.sidecar)


def _take_snapshot(
    catalog: Catalog, dest: Destination, previous: dict, kept: _Kept, tmp: Path
) -> Snapshot:
    """The catalog as of now: the last backup's snapshot brought up to date when this home
    kept it (or, for a catalog that is not an SQLite file, can read it back from
    ``dest``), else a whole new copy."""
    state = kept.state(previous)
    if isinstance(catalog, SQLiteCatalog):
        if state and state.get("row_log"):
            snap = _apply_row_log(catalog.path, kept.changing(), state["row_log"])
            if snap is not None:
                return snap
        return snapshot_catalog(catalog, tmp / "catalog.sqlite")
    if state:
        return snapshot_catalog(catalog, tmp / "catalog.sqlite", kept.changing())
    return snapshot_catalog(catalog, tmp / "catalog.sqlite", _fetched(dest, previous, tmp))


def _fetched(dest: Destination, previous: dict, tmp: Path) -> Path | None:
    """The previous backup's catalog snapshot read back from ``dest``; None for a first
    backup, another schema, or a previous backup that cannot be read."""
    cat = previous.get("catalog") or {}
    if "chunks" not in cat or previous.get("schema_version") != SCHEMA_VERSION:
        return None
    fetched = tmp / "previous.sqlite"
    try:
        fetch_catalog(dest, previous, fetched)
    except ArchiveError:
        return None  # a damaged previous backup: a new snapshot, whole
    return fetched


def _wanted(snap: Snapshot, previous: dict, images: int) -> list[tuple[str, str]]:
    """(image id, version) of every pyramid the snapshot refers to, sorted: the previous
    manifest's with the changed images rows applied when the row log says which changed,
    else read from the snapshot."""
    if snap.images is not None:
        versions = {e["id"]: e["version"] for e in previous.get("pyramids", [])}
        db = sqlite3.connect(f"file:{snap.path}?mode=ro", uri=True)
        try:
            for start in range(0, len(snap.images), 500):
                chunk = snap.images[start : start + 500]
                for key in chunk:
                    versions.pop(key, None)
                marks = ",".join("?" * len(chunk))
                versions.update(
                    db.execute(f"SELECT id, version FROM images WHERE id IN ({marks})", chunk)
                )
        finally:
            db.close()
        if len(versions) == images:
            return sorted(versions.items())
    return _referenced(snap.path)


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
        manifest = orjson.loads(data)
    except ValueError as exc:
        raise ArchiveError(f"{dest.url}/{MANIFEST}: not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{dest.url}/{MANIFEST}: not a backup manifest (no JSON object)")
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
