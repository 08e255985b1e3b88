"""The catalog: the archive's source of truth, behind one contract with two backends.

Records are stored whole as JSON (``Record.to_json``) with the columns we filter on
beside them. Every change to what the public can see is logged in ``changes``, which
drives IIIF Change Discovery and OAI-PMH. Writes happen in explicit transactions.

``Catalog`` is the contract: its public methods are everything the rest of the
archive may ask, written once here over a few primitives (run a query, run a write,
a transaction) that each backend provides with its own connections and SQL dialect.
Nothing outside a backend runs SQL on the catalog.

- ``SQLiteCatalog`` (the embedded default): ``<home>/catalog.sqlite``, connections
  per thread (the web server is threaded), WAL, the ingest lock a file in the home.
- ``PostgresCatalog`` (archive/catalog_postgres.py): a PostgreSQL server shared by
  any number of nodes, chosen by ``catalog_url = "postgresql://..."``.

``open_catalog(config, home)`` is the registry; ``Catalog(path)`` still opens an
SQLite catalog file directly, as it always did.

The schema is versioned (``meta.schema_version``). A new catalog is created at the
newest version; an older one is brought up to date by ``MIGRATIONS``, in order, each
in its transaction, after a backup, each reported once on stderr. A catalog of a newer
release is refused untouched.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import CatalogVersionError, ConfigError, NotFound
from .lock import lock_holder as file_lock_holder
from .lock import now
from .lock import write_lock as file_write_lock
from .records import FIELDS_BY_NAME, ImageRef, Institution, Record
from .sqlite import Connections

if TYPE_CHECKING:
    from .config import Config
    from .storage import Home

# Meta key set while the search index misses catalog changes (an ingest in progress or
# interrupted, a cluster that was down); its value says since when and why.
SEARCH_BEHIND = "search_behind"


@dataclass(frozen=True)
class Migration:
    """One numbered schema change: the statements for each backend, and what it does."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


# The tables whose rows a backup carries, each with its key: an SQLite catalog logs the
# keys of the rows written to them in ``row_log``, once a backup has enabled it (a row in
# ``row_log_state``), so that the next backup copies those rows only (archive/backup.py).
# Written out rather than taken from ``TABLES`` so that migration 3 never changes; a table
# added to ``TABLES`` needs its triggers in a new migration (a test checks the two agree).
ROW_KEYS = {
    "institutions": "id",
    "records": "id",
    "images": "id",
    "changes": "seq",
    "meta": "key",
}


def _row_log_sql() -> tuple[str, ...]:
    # AUTOINCREMENT: a sequence number is never used twice, even after the log is pruned.
    statements = [
        "CREATE TABLE IF NOT EXISTS row_log ("
        "seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, key NOT NULL)",
        "CREATE TABLE IF NOT EXISTS row_log_state ("
        "id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, pruned INTEGER NOT NULL)",
    ]
    on = "WHEN EXISTS (SELECT 1 FROM row_log_state)"
    for table, key in ROW_KEYS.items():
        log = f"INSERT INTO row_log (tbl, key) VALUES ('{table}', "
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS row_log_{table}_insert AFTER INSERT ON {table} "
            f"{on} BEGIN {log}NEW.{key}); END",
            f"CREATE TRIGGER IF NOT EXISTS row_log_{table}_update AFTER UPDATE ON {table} "
            f"{on} BEGIN {log}NEW.{key}); "
            f"INSERT INTO row_log (tbl, key) SELECT '{table}', OLD.{key} "
            f"WHERE OLD.{key} IS NOT NEW.{key}; END",
            f"CREATE TRIGGER IF NOT EXISTS row_log_{table}_delete AFTER DELETE ON {table} "
            f"{on} BEGIN {log}OLD.{key}); END",
        ]
    return tuple(statements)


# Version 1 is the schema every earlier release wrote (``_SCHEMA`` below). Append only:
# a migration, once released, is never changed; its number is the version it produces.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index the change log by time (OAI-PMH from/until, Change Discovery)",
        ("CREATE INDEX IF NOT EXISTS changes_at ON changes (at)",),
        ("CREATE INDEX IF NOT EXISTS changes_at ON changes (at)",),
    ),
    Migration(
        3,
        "log which rows change, for incremental backups of the SQLite catalog "
        "(nothing to do on PostgreSQL)",
        _row_log_sql(),
        (),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version if MIGRATIONS else 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS institutions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL,
    local_id TEXT NOT NULL,
    public INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    date_start INTEGER,
    date_end INTEGER,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (institution, local_id)
);
CREATE INDEX IF NOT EXISTS records_institution ON records (institution, public);
CREATE INDEX IF NOT EXISTS records_updated ON records (updated_at);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_record ON images (record_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,
    institution TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('Create', 'Update', 'Delete')),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_record ON changes (record_id);
"""


# Every table a whole-catalog copy carries, in an order foreign keys accept, with its
# columns and key. Backend-private tables (PostgreSQL's catalog_state, ingest_lock) stay.
TABLES: dict[str, tuple[str, ...]] = {
    "institutions": ("id", "data", "updated_at"),
    "records": (
        "id",
        "institution",
        "local_id",
        "public",
        "checksum",
        "date_start",
        "date_end",
        "data",
        "created_at",
        "updated_at",
    ),
    "images": ("id", "record_id", "position", "width", "height", "version"),
    "changes": ("seq", "record_id", "institution", "kind", "at"),
    "meta": ("key", "value"),
}


def _select_all(table: str) -> str:
    columns = TABLES[table]
    return f"SELECT {','.join(columns)} FROM {table} ORDER BY {columns[0]}"


@dataclass(frozen=True)
class ImageInfo:
    """What the Image API needs to know about one image, public or not."""

    id: str
    record_id: str
    institution: str
    position: int
    width: int
    height: int
    version: str
    public: bool
    max_image_size: int  # 0 = no cap
    updated_at: str


@dataclass(frozen=True)
class Change:
    seq: int
    record_id: str
    institution: str
    kind: str  # Create | Update | Delete
    at: str


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Catalog(ABC):
    """The catalog contract. Backends implement the primitives at the end of the class;
    every public method is built on them once, so both answer alike.

    SQL here uses ``?`` placeholders and only what SQLite and PostgreSQL share; a backend
    translates placeholders and supplies ``_json`` (a JSON member as a Python value).
    """

    #: True when other machines may write this catalog (a database server): each node's
    #: embedded search index then follows the change log (``Archive.follow_search``).
    #: An embedded catalog is written only by ingests on this machine, into this home,
    #: which keep the embedded index themselves.
    shared = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Catalog:
        # ``Catalog(path)`` opens an SQLite catalog file, as it did before the contract.
        return super().__new__(SQLiteCatalog if cls is Catalog else cls)

    #: Where the catalog lives, for messages (a path, or a URL without its password).
    where: str = ""

    # -- institutions ------------------------------------------------------------------------
    def put_institution(self, inst: Institution) -> None:
        with self.transaction():
            self._write(
                "INSERT INTO institutions (id, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at "
                "WHERE institutions.data != excluded.data",
                (inst.id, inst.to_json(), now()),
            )

    def get_institution(self, inst_id: str) -> Institution:
        row = self._one("SELECT data FROM institutions WHERE id = ?", (inst_id,))
        if row is None:
            raise NotFound(f"no institution {inst_id!r}")
        return Institution.from_json(row[0])

    def institutions(self) -> list[Institution]:
        rows = self._rows("SELECT data FROM institutions ORDER BY id")
        return [Institution.from_json(r[0]) for r in rows]

    def institution_updated_at(self, inst_id: str | None = None) -> str | None:
        """When an institution's data (or, without an id, any institution's) last changed:
        part of Last-Modified for documents that show it (manifests, collections)."""
        if inst_id is None:
            row = self._one("SELECT max(updated_at) FROM institutions")
        else:
            row = self._one("SELECT updated_at FROM institutions WHERE id = ?", (inst_id,))
        return row[0] if row else None

    # -- records -----------------------------------------------------------------------------
    def put_record(self, record: Record) -> str | None:
        """Insert or update a record and its images.

        Returns the change the public sees ('Create', 'Update', 'Delete' when a
        record stops being public) or None when nothing changed. Images whose
        ids disappear are dropped from the catalog; their files are the
        caller's to remove.
        """
        checksum = record.content_checksum()
        stamp = now()
        with self.transaction():
            old = self._one(
                "SELECT checksum, public, created_at FROM records WHERE id = ?", (record.id,)
            )
            if old is not None and old[0] == checksum:
                return None
            record.created_at = old[2] if old else stamp
            record.updated_at = stamp
            self._write(
                "INSERT INTO records (id, institution, local_id, public, checksum, date_start,"
                " date_end, data, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET public = excluded.public,"
                " checksum = excluded.checksum, date_start = excluded.date_start,"
                " date_end = excluded.date_end, data = excluded.data,"
                " updated_at = excluded.updated_at",
                (
                    record.id,
                    record.institution,
                    record.local_id,
                    int(record.public),
                    checksum,
                    record.date_start,
                    record.date_end,
                    record.to_json(),
                    record.created_at,
                    record.updated_at,
                ),
            )
            if old is not None:
                self._write("DELETE FROM images WHERE record_id = ?", (record.id,))
            self._write_many(
                "INSERT INTO images (id, record_id, position, width, height, version)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (img.id, record.id, pos, img.width, img.height, img.version)
                    for pos, img in enumerate(record.images)
                ],
            )
            was_public = bool(old[1]) if old else False
            if record.public and not was_public:
                kind = "Create"
            elif record.public:
                kind = "Update"
            elif was_public:
                kind = "Delete"
            else:
                kind = None
            if kind:
                self._log(record.id, record.institution, kind, stamp)
            return kind

    def delete_record(self, rec_id: str) -> Record | None:
        """Remove a record; returns it (for its image files) or None if it was not there."""
        with self.transaction():
            row = self._one("SELECT data, public FROM records WHERE id = ?", (rec_id,))
            if row is None:
                return None
            record = Record.from_json(row[0])
            self._write("DELETE FROM records WHERE id = ?", (rec_id,))
            if row[1]:
                self._log(rec_id, record.institution, "Delete", now())
            return record

    def get_record(self, rec_id: str, *, public_only: bool = True) -> Record:
        sql = "SELECT data FROM records WHERE id = ?" + (" AND public = 1" if public_only else "")
        row = self._one(sql, (rec_id,))
        if row is None:
            raise NotFound(f"no record {rec_id!r}")
        return Record.from_json(row[0])

    def get_records(self, ids: list[str], *, public_only: bool = True) -> list[Record]:
        """Records in the order of ``ids``; missing (or non-public) ones are left out."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql = f"SELECT id, data FROM records WHERE id IN ({marks})"
        if public_only:
            sql += " AND public = 1"
        found = {r[0]: r[1] for r in self._rows(sql, ids)}
        return [Record.from_json(found[i]) for i in ids if i in found]

    def records(
        self, institution: str | None = None, *, public_only: bool = True, batch: int = 1000
    ) -> Iterator[Record]:
        """Every record (of one institution), in id order, read in batches."""
        last = ""
        while True:
            sql = "SELECT id, data FROM records WHERE id > ?"
            args: list = [last]
            if institution is not None:
                sql += " AND institution = ?"
                args.append(institution)
            if public_only:
                sql += " AND public = 1"
            rows = self._rows(sql + " ORDER BY id LIMIT ?", (*args, batch))
            if not rows:
                return
            for row in rows:
                yield Record.from_json(row[1])
            last = rows[-1][0]

    def record_ids(self, institution: str | None = None, *, public_only: bool = True) -> list[str]:
        sql = "SELECT id FROM records WHERE 1=1"
        args: list = []
        if institution is not None:
            sql += " AND institution = ?"
            args.append(institution)
        if public_only:
            sql += " AND public = 1"
        return [r[0] for r in self._rows(sql + " ORDER BY id", args)]

    def checksums(self, institution: str) -> dict[str, str]:
        """local_id -> content checksum for one institution: what incremental ingest compares."""
        rows = self._rows(
            "SELECT local_id, checksum FROM records WHERE institution = ?", (institution,)
        )
        return {r[0]: r[1] for r in rows}

    def count(self, institution: str | None = None, *, public_only: bool = True) -> int:
        sql = "SELECT count(*) FROM records WHERE 1=1"
        args: list = []
        if institution is not None:
            sql += " AND institution = ?"
            args.append(institution)
        if public_only:
            sql += " AND public = 1"
        return int(self._one(sql, args)[0])

    def english_names(self, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """For each field, each value on public records -> the English name the curators
        give it in ``<field>_en`` most often (institutions that export no English are
        outvoted, not counted). One pass over the catalog for all fields: cache it."""
        for name in fields:
            if name not in FIELDS_BY_NAME or f"{name}_en" not in FIELDS_BY_NAME:
                raise ValueError(f"{name!r} has no English twin field")
        pairs = ", ".join(
            f"{self._json('data', 'fields', name)}, {self._json('data', 'fields', name + '_en')}"
            for name in fields
        )
        counts: dict[str, dict[str, dict[str, int]]] = {name: {} for name in fields}
        for row in self._rows(f"SELECT {pairs} FROM records WHERE public = 1"):
            for n, name in enumerate(fields):
                value, english = row[2 * n], row[2 * n + 1]
                if value and english and isinstance(value, str) and isinstance(english, str):
                    seen = counts[name].setdefault(value, {})
                    seen[english] = seen.get(english, 0) + 1
        return {
            name: {
                value: min(seen, key=lambda english, seen=seen: (-seen[english], english))
                for value, seen in by_value.items()
            }
            for name, by_value in counts.items()
        }

    def stats(self) -> list[dict]:
        """Per institution: records, public records, images, last update."""
        rows = self._rows(
            "SELECT i.id,"
            " (SELECT count(*) FROM records r WHERE r.institution = i.id),"
            " (SELECT count(*) FROM records r WHERE r.institution = i.id AND r.public = 1),"
            " (SELECT count(*) FROM images m JOIN records r ON r.id = m.record_id"
            "   WHERE r.institution = i.id),"
            " (SELECT max(updated_at) FROM records r WHERE r.institution = i.id)"
            " FROM institutions i ORDER BY i.id"
        )
        keys = ("institution", "records", "public", "images", "updated_at")
        return [
            {
                k: (int(v) if k in ("records", "public", "images") else v)
                for k, v in zip(keys, r, strict=True)
            }
            for r in rows
        ]

    # -- images ------------------------------------------------------------------------------
    def get_image(self, img_id: str) -> ImageInfo:
        """Image facts joined with its record's visibility and cap. Raises NotFound."""
        row = self._one(
            "SELECT m.id, m.record_id, r.institution, m.position, m.width, m.height, m.version,"
            f" r.public, {self._json('r.data', 'max_image_size')}, r.updated_at"
            " FROM images m JOIN records r ON r.id = m.record_id WHERE m.id = ?",
            (img_id,),
        )
        if row is None:
            raise NotFound(f"no image {img_id!r}")
        return ImageInfo(
            id=row[0],
            record_id=row[1],
            institution=row[2],
            position=row[3],
            width=row[4],
            height=row[5],
            version=row[6],
            public=bool(row[7]),
            max_image_size=row[8] or 0,
            updated_at=row[9],
        )

    def image_versions(self) -> set[tuple[str, str]]:
        """(image id, version) of every image the catalog refers to: what storage must keep."""
        return {(r[0], r[1]) for r in self._rows("SELECT id, version FROM images")}

    def image_sizes(self, institution: str) -> dict[str, tuple[str, int, int]]:
        """image id -> (version, width, height) for one institution: what ingest may reuse."""
        rows = self._rows(
            "SELECT m.id, m.version, m.width, m.height FROM images m"
            " JOIN records r ON r.id = m.record_id WHERE r.institution = ?",
            (institution,),
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def public_images(self) -> list[tuple[str, str]]:
        """(image id, record id) of every image of a public record, in image id order."""
        return [
            (r[0], r[1])
            for r in self._rows(
                "SELECT m.id, m.record_id FROM images m JOIN records r ON r.id = m.record_id"
                " WHERE r.public = 1 ORDER BY m.id"
            )
        ]

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) one meta value, e.g. SEARCH_BEHIND after a failed index."""
        with self.transaction():
            if value is None:
                self._write("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._write(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def schema_version(self) -> int:
        return int(self.get_meta("schema_version") or 1)

    # -- changes -----------------------------------------------------------------------------
    def last_seq(self) -> int:
        """The number of the newest change (0 for none): where a follower of the log is."""
        row = self._one("SELECT coalesce(max(seq), 0) FROM changes")
        return int(row[0]) if row else 0

    def changes(self, after: int = 0, limit: int = 1000) -> list[Change]:
        rows = self._rows(
            "SELECT seq, record_id, institution, kind, at FROM changes WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [Change(*r) for r in rows]

    def latest_changes(
        self,
        *,
        after: int = 0,
        record_id: str | None = None,
        institution: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
    ) -> list[Change]:
        """Each record's newest change (what the public sees now: Create/Update means
        public, Delete means gone or hidden) in change order, after ``after``, optionally
        of one record or institution and with ``since <= at <= until``: what a harvester
        (OAI-PMH) lists, a page at a time."""
        sql = (
            "SELECT seq, record_id, institution, kind, at FROM changes AS c WHERE seq > ? "
            "AND seq = (SELECT max(seq) FROM changes WHERE record_id = c.record_id)"
        )
        args: list = [after]
        if record_id is not None:
            sql += " AND record_id = ?"
            args.append(record_id)
        if institution is not None:
            sql += " AND institution = ?"
            args.append(institution)
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        if until is not None:
            sql += " AND at <= ?"
            args.append(until)
        return [Change(*r) for r in self._rows(sql + " ORDER BY seq LIMIT ?", (*args, limit))]

    def earliest_change(self) -> str | None:
        return self._one("SELECT min(at) FROM changes")[0]

    def change_count(self) -> int:
        return int(self._one("SELECT count(*) FROM changes")[0])

    def last_modified(self) -> str | None:
        return self._one("SELECT max(at) FROM changes")[0]

    # -- what each backend provides ----------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction grouping catalog calls; nested calls join the outer one."""

    @abstractmethod
    def generation(self) -> Any:
        """A value that changes whenever any writer, in any process on any machine, has
        committed: cheap enough to call on every tile request (cache keys)."""

    @abstractmethod
    def write_lock(self) -> AbstractContextManager[None]:
        """The single-writer (ingest) lock, held for the block; raises LockedError at once,
        naming the holder, when another process holds it."""

    @abstractmethod
    def lock_holder(self) -> str | None:
        """Who holds the write lock ("host h, pid 1, started ..."), or None."""

    @abstractmethod
    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""

    @abstractmethod
    def _rows(self, sql: str, args: Sequence = ()) -> list[Sequence]: ...

    def _one(self, sql: str, args: Sequence = ()) -> Sequence | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    @abstractmethod
    def _write(self, sql: str, args: Sequence = ()) -> None:
        """One statement inside ``transaction()``."""

    @abstractmethod
    def _write_many(self, sql: str, rows: Iterable[Sequence]) -> None: ...

    @abstractmethod
    def _log(self, rec_id: str, inst: str, kind: str, at: str) -> None:
        """Append one change, numbered one more than the last (no gaps)."""

    @abstractmethod
    def _json(self, column: str, *path: str) -> str:
        """SQL for a JSON member of a TEXT column, read back as the Python value."""

    # -- whole-catalog copies (backup, restore, migrate) --------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[Callable[[str], Iterator[Sequence]]]:
        """A consistent read of the whole catalog while writers go on: yields ``rows(table)``,
        every row of a table in ``TABLES`` (its columns, in key order), all as of one moment."""
        with self._snapshot() as rows:
            yield lambda table: rows(_select_all(table))

    def load(self, rows: Callable[[str], Iterator[Sequence]], *, replace: bool = False) -> None:
        """Fill this catalog with every row ``rows(table)`` gives (another catalog's
        ``snapshot``), in one transaction: all of it or nothing. ``replace`` empties it first.
        The schema version stays this catalog's own (both are at ``SCHEMA_VERSION``)."""
        with self.transaction():
            if replace:
                for table in reversed(TABLES):
                    self._write(
                        f"DELETE FROM {table}"
                        + (" WHERE key <> 'schema_version'" if table == "meta" else "")
                    )
            for table, columns in TABLES.items():
                marks = ",".join("?" * len(columns))
                sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})"
                if table == "meta":
                    sql += " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                batch: list[Sequence] = []
                for row in rows(table):
                    if table == "meta" and row[0] == "schema_version":
                        continue
                    batch.append(tuple(row))
                    if len(batch) >= 1000:
                        self._write_many(sql, batch)
                        batch = []
                self._write_many(sql, batch)

    def _snapshot(self) -> AbstractContextManager[Callable[[str], Iterator[Sequence]]]:
        """``rows(sql)`` on one read-only transaction of its own (backends provide it)."""
        raise NotImplementedError

    # -- schema versions, shared ----------------------------------------------------------------
    def _check_version(self, found: int) -> None:
        if found > SCHEMA_VERSION:
            raise CatalogVersionError(
                f"catalog {self.where} has schema version {found}, written by a newer release; "
                f"this release knows versions up to {SCHEMA_VERSION}: upgrade it (the catalog "
                "was not modified)"
            )

    def _migrate(self, found: int, backup: Callable[[int], str]) -> None:
        """Apply the migrations after version ``found``, in order, each in a transaction,
        after one backup of the catalog as it was; each reported once on stderr."""
        pending = [m for m in MIGRATIONS if m.version > found]
        if not pending:
            return
        if any(self._migration_sql(m) for m in pending):  # none: nothing to back up
            saved = backup(found)
            _report(f"catalog {self.where}: backed up schema version {found} to {saved}")
        for migration in pending:
            with self.transaction():
                current = self.schema_version()  # another process may have migrated meanwhile
                if current >= migration.version:
                    continue
                for statement in self._migration_sql(migration):
                    self._write(statement)
                self._write(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(migration.version),),
                )
            _report(
                f"catalog {self.where}: migrated to schema version {migration.version}: "
                f"{migration.description}"
            )

    @abstractmethod
    def _migration_sql(self, migration: Migration) -> tuple[str, ...]: ...


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


class SQLiteCatalog(Catalog):
    """The embedded catalog: one SQLite file, WAL, one connection per thread."""

    def __init__(self, path: str | Path, *, backups: str | Path | None = None) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.backups = Path(backups) if backups else self.path.parent / "backups"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = Connections(self.path, ("foreign_keys=ON",))
        db = self._connections.get()
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            found = int(row[0]) if row else 1
            self._check_version(found)  # before anything could write
            self._migrate(found, self._backup)
            return
        db.executescript(_SCHEMA)  # executescript commits by itself: no transaction here
        with self.transaction():
            for migration in MIGRATIONS:
                for statement in migration.sqlite:
                    self._write(statement)
            self._write(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection: for this module and the SQLite catalog's own tests."""
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    def transaction(self) -> AbstractContextManager[None]:
        @contextmanager
        def grouped() -> Iterator[None]:
            with self._connections.transaction():
                yield

        return grouped()

    def generation(self) -> Any:
        # data_version moves on other connections' commits (an ingest), total_changes on
        # this connection's own; both are per connection, hence the connection's id.
        db = self._connections.get()
        return (id(db), db.execute("PRAGMA data_version").fetchone()[0], db.total_changes)

    def write_lock(self) -> AbstractContextManager[None]:
        return file_write_lock(self.path.parent / "ingest.lock")

    def lock_holder(self) -> str | None:
        return file_lock_holder(self.path.parent / "ingest.lock")

    def _rows(self, sql: str, args: Sequence = ()) -> list[Sequence]:
        return self._connections.get().execute(sql, args).fetchall()

    def _write(self, sql: str, args: Sequence = ()) -> None:
        self._connections.get().execute(sql, args)

    def _write_many(self, sql: str, rows: Iterable[Sequence]) -> None:
        self._connections.get().executemany(sql, rows)

    def _log(self, rec_id: str, inst: str, kind: str, at: str) -> None:
        self._write(
            "INSERT INTO changes (record_id, institution, kind, at) VALUES (?,?,?,?)",
            (rec_id, inst, kind, at),
        )

    def _json(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def _migration_sql(self, migration: Migration) -> tuple[str, ...]:
        return migration.sqlite

    def _snapshot(self) -> AbstractContextManager[Callable[[str], Iterator[Sequence]]]:
        @contextmanager
        def reader() -> Iterator[Callable[[str], Iterator[Sequence]]]:
            # A read transaction on its own connection: under WAL it sees one moment,
            # while the ingest commits beside it.
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                db.execute("BEGIN")
                db.execute("SELECT count(*) FROM meta").fetchone()  # the snapshot starts here
                yield lambda sql: iter(db.execute(sql))
            finally:
                db.close()

        return reader()

    def _backup(self, version: int) -> str:
        """A consistent copy with SQLite's online backup API, readers and writers welcome."""
        self.backups.mkdir(parents=True, exist_ok=True)
        dest = self.backups / f"catalog-v{version}-{_stamp()}-{os.getpid()}.sqlite"
        target = sqlite3.connect(dest)
        try:
            self._connections.get().backup(target)
        finally:
            target.close()
        return str(dest)


# -- the registry ------------------------------------------------------------------------------
def _postgres(url: str, home: Home) -> Catalog:
    from .catalog_postgres import PostgresCatalog

    return PostgresCatalog(url, backups=home.root / "backups")


BACKENDS: dict[str, Callable[[str, Home], Catalog]] = {
    "": lambda url, home: SQLiteCatalog(home.catalog),
    "postgresql": _postgres,
    "postgres": _postgres,
}


def safe_url(url: str) -> str:
    """A database URL fit for messages and logs: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_catalog(config: Config, home: Home) -> Catalog:
    """The catalog ``catalog_url`` names: empty is ``<home>/catalog.sqlite``."""
    url = str(config.catalog_url or "").strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ("" if not url else None)
    if scheme not in BACKENDS:
        raise ConfigError(
            f"setting 'catalog_url' must be empty (the embedded SQLite catalog) or "
            f"postgresql://user:password@host:port/dbname, got {safe_url(url)!r}"
        )
    return BACKENDS[scheme](url, home)


__all__ = [
    "Catalog",
    "Change",
    "ImageInfo",
    "ImageRef",
    "Migration",
    "SQLiteCatalog",
    "now",
    "open_catalog",
]
