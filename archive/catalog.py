"""The catalog: the archive's source of truth, one SQLite file.

Records are stored whole as JSON (``Record.to_json``) with the columns we
filter on beside them. Every change to what the public can see is logged in
``changes``, which drives IIIF Change Discovery. Connections are per thread
(the web server is threaded); writes happen in explicit transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .errors import NotFound
from .records import FIELDS_BY_NAME, ImageRef, Institution, Record
from .sqlite import Connections

SCHEMA_VERSION = 1
# Meta key set while the search index misses catalog changes (an ingest in progress or
# interrupted, a cluster that was down); its value says since when and why.
SEARCH_BEHIND = "search_behind"

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


def now() -> str:
    """UTC timestamp, ISO 8601 with seconds, as IIIF and Activity Streams want it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


class Catalog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = Connections(self.path, ("foreign_keys=ON",), rows=True)
        self.db.executescript(_SCHEMA)  # executescript commits by itself: no transaction here
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    # -- connections -------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction; nested calls join the outer one."""
        return self._connections.transaction()

    # -- institutions ------------------------------------------------------------------------
    def put_institution(self, inst: Institution) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO institutions (id, data, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data,"
                " updated_at = excluded.updated_at "
                "WHERE institutions.data != excluded.data",
                (inst.id, inst.to_json(), now()),
            )

    def get_institution(self, inst_id: str) -> Institution:
        row = self.db.execute("SELECT data FROM institutions WHERE id = ?", (inst_id,)).fetchone()
        if row is None:
            raise NotFound(f"no institution {inst_id!r}")
        return Institution.from_json(row["data"])

    def institutions(self) -> list[Institution]:
        rows = self.db.execute("SELECT data FROM institutions ORDER BY id").fetchall()
        return [Institution.from_json(r["data"]) for r in rows]

    def institution_updated_at(self, inst_id: str | None = None) -> str | None:
        """When an institution's data (or, without an id, any institution's) last changed:
        part of Last-Modified for documents that show it (manifests, collections)."""
        if inst_id is None:
            row = self.db.execute("SELECT max(updated_at) FROM institutions").fetchone()
        else:
            row = self.db.execute(
                "SELECT updated_at FROM institutions WHERE id = ?", (inst_id,)
            ).fetchone()
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
        with self.transaction() as db:
            old = db.execute(
                "SELECT checksum, public, created_at FROM records WHERE id = ?", (record.id,)
            ).fetchone()
            if old is not None and old["checksum"] == checksum:
                return None
            record.created_at = old["created_at"] if old else stamp
            record.updated_at = stamp
            db.execute(
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
            db.execute("DELETE FROM images WHERE record_id = ?", (record.id,))
            db.executemany(
                "INSERT INTO images (id, record_id, position, width, height, version)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (img.id, record.id, pos, img.width, img.height, img.version)
                    for pos, img in enumerate(record.images)
                ],
            )
            was_public = bool(old["public"]) if old else False
            if record.public and not was_public:
                kind = "Create"
            elif record.public:
                kind = "Update"
            elif was_public:
                kind = "Delete"
            else:
                kind = None
            if kind:
                self._log(db, record.id, record.institution, kind, stamp)
            return kind

    def delete_record(self, rec_id: str) -> Record | None:
        """Remove a record; returns it (for its image files) or None if it was not there."""
        with self.transaction() as db:
            row = db.execute("SELECT data, public FROM records WHERE id = ?", (rec_id,)).fetchone()
            if row is None:
                return None
            record = Record.from_json(row["data"])
            db.execute("DELETE FROM records WHERE id = ?", (rec_id,))
            if row["public"]:
                self._log(db, rec_id, record.institution, "Delete", now())
            return record

    def _log(self, db: sqlite3.Connection, rec_id: str, inst: str, kind: str, at: str) -> None:
        db.execute(
            "INSERT INTO changes (record_id, institution, kind, at) VALUES (?,?,?,?)",
            (rec_id, inst, kind, at),
        )

    def get_record(self, rec_id: str, *, public_only: bool = True) -> Record:
        sql = "SELECT data FROM records WHERE id = ?" + (" AND public = 1" if public_only else "")
        row = self.db.execute(sql, (rec_id,)).fetchone()
        if row is None:
            raise NotFound(f"no record {rec_id!r}")
        return Record.from_json(row["data"])

    def get_records(self, ids: list[str], *, public_only: bool = True) -> list[Record]:
        """Records in the order of ``ids``; missing (or non-public) ones are left out."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql = f"SELECT id, data FROM records WHERE id IN ({marks})"
        if public_only:
            sql += " AND public = 1"
        found = {r["id"]: r["data"] for r in self.db.execute(sql, ids)}
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
            rows = self.db.execute(sql + " ORDER BY id LIMIT ?", (*args, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield Record.from_json(row["data"])
            last = rows[-1]["id"]

    def record_ids(self, institution: str | None = None, *, public_only: bool = True) -> list[str]:
        sql = "SELECT id FROM records WHERE 1=1"
        args: list = []
        if institution is not None:
            sql += " AND institution = ?"
            args.append(institution)
        if public_only:
            sql += " AND public = 1"
        return [r["id"] for r in self.db.execute(sql + " ORDER BY id", args)]

    def checksums(self, institution: str) -> dict[str, str]:
        """local_id -> content checksum for one institution: what incremental ingest compares."""
        rows = self.db.execute(
            "SELECT local_id, checksum FROM records WHERE institution = ?", (institution,)
        )
        return {r["local_id"]: r["checksum"] for r in rows}

    def count(self, institution: str | None = None, *, public_only: bool = True) -> int:
        sql = "SELECT count(*) FROM records WHERE 1=1"
        args: list = []
        if institution is not None:
            sql += " AND institution = ?"
            args.append(institution)
        if public_only:
            sql += " AND public = 1"
        return self.db.execute(sql, args).fetchone()[0]

    def english_names(self, fields: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """For each field, each value on public records -> the English name the curators
        give it in ``<field>_en`` most often (institutions that export no English are
        outvoted, not counted). One pass over the catalog for all fields: cache it."""
        for name in fields:
            if name not in FIELDS_BY_NAME or f"{name}_en" not in FIELDS_BY_NAME:
                raise ValueError(f"{name!r} has no English twin field")
        pairs = ", ".join(
            f"json_extract(data, '$.fields.{name}'), json_extract(data, '$.fields.{name}_en')"
            for name in fields
        )
        counts: dict[str, dict[str, dict[str, int]]] = {name: {} for name in fields}
        for row in self.db.execute(f"SELECT {pairs} FROM records WHERE public = 1"):
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
        rows = self.db.execute(
            "SELECT i.id AS institution,"
            " (SELECT count(*) FROM records r WHERE r.institution = i.id) AS records,"
            " (SELECT count(*) FROM records r"
            "   WHERE r.institution = i.id AND r.public = 1) AS public,"
            " (SELECT count(*) FROM images m JOIN records r ON r.id = m.record_id"
            "   WHERE r.institution = i.id) AS images,"
            " (SELECT max(updated_at) FROM records r WHERE r.institution = i.id) AS updated_at"
            " FROM institutions i ORDER BY i.id"
        ).fetchall()
        return [dict(r) for r in rows]

    # -- images ------------------------------------------------------------------------------
    def get_image(self, img_id: str) -> ImageInfo:
        """Image facts joined with its record's visibility and cap. Raises NotFound."""
        row = self.db.execute(
            "SELECT m.id, m.record_id, r.institution, m.position, m.width, m.height, m.version,"
            " r.public, json_extract(r.data, '$.max_image_size') AS cap, r.updated_at"
            " FROM images m JOIN records r ON r.id = m.record_id WHERE m.id = ?",
            (img_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no image {img_id!r}")
        return ImageInfo(
            id=row["id"],
            record_id=row["record_id"],
            institution=row["institution"],
            position=row["position"],
            width=row["width"],
            height=row["height"],
            version=row["version"],
            public=bool(row["public"]),
            max_image_size=row["cap"] or 0,
            updated_at=row["updated_at"],
        )

    def image_versions(self) -> set[tuple[str, str]]:
        """(image id, version) of every image the catalog refers to: what storage must keep."""
        return {(r[0], r[1]) for r in self.db.execute("SELECT id, version FROM images")}

    def image_sizes(self, institution: str) -> dict[str, tuple[str, int, int]]:
        """image id -> (version, width, height) for one institution: what ingest may reuse."""
        rows = self.db.execute(
            "SELECT m.id, m.version, m.width, m.height FROM images m"
            " JOIN records r ON r.id = m.record_id WHERE r.institution = ?",
            (institution,),
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or, with None, delete) one meta value, e.g. SEARCH_BEHIND after a failed index."""
        with self.transaction() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # -- changes -----------------------------------------------------------------------------
    def changes(self, after: int = 0, limit: int = 1000) -> list[Change]:
        rows = self.db.execute(
            "SELECT seq, record_id, institution, kind, at FROM changes WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [Change(**dict(r)) for r in rows]

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
        rows = self.db.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [Change(**dict(r)) for r in rows]

    def earliest_change(self) -> str | None:
        return self.db.execute("SELECT min(at) FROM changes").fetchone()[0]

    def change_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM changes").fetchone()[0]

    def last_modified(self) -> str | None:
        row = self.db.execute("SELECT max(at) FROM changes").fetchone()
        return row[0]


__all__ = ["Catalog", "Change", "ImageInfo", "ImageRef", "now"]
