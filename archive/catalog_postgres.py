"""The catalog on a PostgreSQL server (psycopg 3), shared by any number of nodes.

Same contract and same answers as the SQLite catalog (archive/catalog.py): text
columns are ``COLLATE "C"`` so ``ORDER BY id`` is SQLite's byte order, records are
stored as the same JSON text (read as jsonb where a query looks inside), timestamps
are the same ISO text, and the change log is numbered one more than its last entry
under the writers' lock, so its ``seq`` has no gaps, as SQLite's has none.

- Writers serialise on a transaction-level advisory lock (as SQLite's BEGIN
  IMMEDIATE) and bump ``catalog_state.generation``, which readers on every node poll
  at most once per ``poll_seconds``: ``generation()`` for cache keys.
- The ingest lock is a session-level advisory lock on a connection of its own, held
  for the whole run; the holder's host, pid and start sit in ``ingest_lock``. A holder
  killed with ``kill -9`` loses its session, and with it the lock. A session can also end
  under a holder that lives on (a server restart, ``pg_terminate_backend``, the network),
  so every write transaction of the holder checks, under the writers' lock and in the
  same round trip as its BEGIN, that the lock's session still holds it. If not, it is
  taken again only if nobody took it meanwhile (the ``ingest_lock`` row is still ours),
  else LockLost stops the run before it writes. A new holder takes the writers' lock
  once on acquiring, so a transaction of the old holder in flight finishes first.
- A server that goes away raises CatalogUnavailable (503 on the web); the broken
  connection is dropped and the next use connects again (``connect_timeout``). A server
  out of disk space (SQLSTATE 53100, or a file it may not grow) raises CatalogFull: the
  transaction is rolled back whole.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from .catalog import MIGRATIONS, SCHEMA_VERSION, Catalog, Migration, _stamp, safe_url
from .errors import (
    ArchiveError,
    CatalogFull,
    CatalogUnavailable,
    ConfigError,
    LockedError,
    LockLost,
)
from .lock import now

log = logging.getLogger(__name__)

_KEY = 0x41524348  # "ARCH": advisory lock class of this application
_WRITER = (_KEY, 1)  # transaction lock: one writing transaction at a time
_INGEST = (_KEY, 2)  # session lock: one ingest at a time

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS institutions (id TEXT COLLATE "C" PRIMARY KEY,'
    ' data TEXT NOT NULL, updated_at TEXT COLLATE "C" NOT NULL)',
    'CREATE TABLE IF NOT EXISTS records (id TEXT COLLATE "C" PRIMARY KEY,'
    ' institution TEXT COLLATE "C" NOT NULL, local_id TEXT COLLATE "C" NOT NULL,'
    " public INTEGER NOT NULL, checksum TEXT NOT NULL, date_start BIGINT, date_end BIGINT,"
    ' data TEXT NOT NULL, created_at TEXT COLLATE "C" NOT NULL,'
    ' updated_at TEXT COLLATE "C" NOT NULL, UNIQUE (institution, local_id))',
    "CREATE INDEX IF NOT EXISTS records_institution ON records (institution, public)",
    "CREATE INDEX IF NOT EXISTS records_updated ON records (updated_at)",
    'CREATE TABLE IF NOT EXISTS images (id TEXT COLLATE "C" PRIMARY KEY,'
    ' record_id TEXT COLLATE "C" NOT NULL REFERENCES records (id) ON DELETE CASCADE,'
    " position INTEGER NOT NULL, width BIGINT NOT NULL, height BIGINT NOT NULL,"
    ' version TEXT COLLATE "C" NOT NULL)',
    "CREATE INDEX IF NOT EXISTS images_record ON images (record_id)",
    "CREATE TABLE IF NOT EXISTS changes (seq BIGINT PRIMARY KEY,"
    ' record_id TEXT COLLATE "C" NOT NULL, institution TEXT COLLATE "C" NOT NULL,'
    " kind TEXT NOT NULL CHECK (kind IN ('Create', 'Update', 'Delete')),"
    ' at TEXT COLLATE "C" NOT NULL)',
    "CREATE INDEX IF NOT EXISTS changes_record ON changes (record_id)",
    "CREATE TABLE IF NOT EXISTS catalog_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " generation BIGINT NOT NULL)",
    "INSERT INTO catalog_state (id, generation) VALUES (1, 0) ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS ingest_lock (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL)",
)

# Connections a forked child inherited: kept referenced so that they are never
# finalised there, which would end the parent's sessions.
_inherited: list[Any] = []


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _failure(where: str, exc: psycopg.Error) -> ArchiveError:
    """A server error as ours: out of disk space is CatalogFull (SQLSTATE 53100 disk_full on
    ENOSPC; a file the server may not grow, EFBIG, comes as XX000 with the same hint),
    anything else CatalogUnavailable."""
    diag = getattr(exc, "diag", None)
    hint = (diag.message_hint if diag is not None else None) or ""
    if getattr(exc, "sqlstate", None) == "53100" or "free disk space" in hint:
        return CatalogFull(
            f"cannot write the catalog {where}: the database server is out of disk space "
            f"({_one_line(exc)}); the transaction was rolled back whole"
        )
    return CatalogUnavailable(f"{where}: {_one_line(exc)}")


# Whether the ingest lock's session still holds it (pg_locks: live, not MVCC).
_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = %s AND classid = %s AND objid = %s AND objsubid = 2"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


@dataclass
class _Held:
    """The ingest lock as this process holds it: its session, and who it says holds it."""

    conn: psycopg.Connection
    backend: int  # the session's server process id, as pg_locks names it
    owner: tuple[str, int, str]  # the ingest_lock row: host, pid, started_at


def pg_dump_path() -> str | None:
    """Debian's pg_dump (newest first), else one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), reverse=True)
    return found[0] if found else shutil.which("pg_dump")


class PostgresCatalog(Catalog):
    """The catalog in a PostgreSQL database named by a ``postgresql://`` URL."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        backups: str | Path | None = None,
        connect_timeout: int = 3,
        poll_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.where = f"catalog_url {safe_url(url)}"
        self.backups = Path(backups) if backups else None
        self.connect_timeout = connect_timeout
        self.poll_seconds = poll_seconds
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            reason = _one_line(exc)
            raise ConfigError(f"setting 'catalog_url' is not a valid URL: {reason}") from None
        self._local = threading.local()
        self._pid = os.getpid()
        self._seen: tuple[int, float] | None = None  # (generation, monotonic time read)
        self._sql: dict[str, str] = {}
        self._held: _Held | None = None  # the ingest lock, while this process holds it
        self._held_lock = threading.Lock()
        self._open()

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name="archive",
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise CatalogUnavailable(f"{self.where}: cannot connect: {_one_line(exc)}") from None

    def _state(self) -> threading.local:
        if self._pid != os.getpid():  # forked: never use (nor finalise) the parent's sessions
            _inherited.append(self._local)
            self._local = threading.local()
            self._pid = os.getpid()
            if self._held is not None:  # the parent's lock is not the child's
                _inherited.append(self._held)
                self._held = None
        return self._local

    def _conn(self) -> psycopg.Connection:
        local = self._state()
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = local.conn = self._connect()
            local.depth = 0
        return conn

    def _drop(self) -> None:
        conn = getattr(self._state(), "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A lost server becomes CatalogUnavailable; outside a transaction the broken
        connection is dropped at once (inside one, the transaction does it)."""
        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if not getattr(self._local, "depth", 0):
                self._drop()
            raise _failure(self.where, exc) from None
        except psycopg.InternalError as exc:  # XX000: a file the server may not grow
            raise _failure(self.where, exc) from None

    def close(self) -> None:
        self._drop()

    # -- schema --------------------------------------------------------------------------------
    def _open(self) -> None:
        exists = self._one("SELECT to_regclass('meta') IS NOT NULL")[0]
        if exists:
            row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
            if row is not None:
                found = int(row[0])
                self._check_version(found)  # before anything could write
                self._migrate(found, self._backup)
                return
        with self.transaction():  # created once, under the writers' lock
            for statement in _SCHEMA:
                self._write(statement)
            for migration in MIGRATIONS:
                for statement in migration.postgres:
                    self._write(statement)
            self._write(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )

    def _migration_sql(self, migration: Migration) -> tuple[str, ...]:
        return migration.postgres

    def _backup(self, version: int) -> str:
        """pg_dump of the database as it is, before a migration touches it."""
        pg_dump = pg_dump_path()
        if pg_dump is None or self.backups is None:
            raise ArchiveError(
                f"{self.where}: schema version {version} must be migrated to {SCHEMA_VERSION},"
                " after a backup with pg_dump, which was not found: install postgresql-client"
                " (or back the database up and migrate from a machine that has it)"
            )
        self.backups.mkdir(parents=True, exist_ok=True)
        dest = self.backups / f"catalog-v{version}-{_stamp()}-{os.getpid()}.dump"
        done = subprocess.run(
            [pg_dump, "--format=custom", f"--file={dest}", f"--dbname={self.url}"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ArchiveError(f"{self.where}: pg_dump failed: {_one_line(done.stderr)}")
        return str(dest)

    # -- whole-catalog copies --------------------------------------------------------------
    @contextmanager
    def _snapshot(self) -> Iterator[Callable[[str], Iterator[Sequence]]]:
        """One REPEATABLE READ, READ ONLY transaction on a connection of its own: every
        table as of one moment, ingest or not, read through server-side cursors."""
        try:
            conn = psycopg.connect(self.url, connect_timeout=self.connect_timeout)
        except psycopg.Error as exc:
            raise CatalogUnavailable(f"{self.where}: cannot connect: {_one_line(exc)}") from None
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        counter = iter(range(1 << 30))

        def rows(sql: str) -> Iterator[Sequence]:
            try:
                with conn.cursor(name=f"snapshot{next(counter)}") as cur:
                    cur.itersize = 2000
                    cur.execute(sql)
                    yield from cur
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise CatalogUnavailable(f"{self.where}: {_one_line(exc)}") from None

        try:
            yield rows
        finally:
            conn.close()

    # -- primitives ----------------------------------------------------------------------------
    def _translate(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = sql.replace("?", "%s")
        return found

    def _rows(self, sql: str, args: Sequence = ()) -> list[Sequence]:
        with self._guard():
            return self._conn().execute(self._translate(sql), args).fetchall()

    def _write(self, sql: str, args: Sequence = ()) -> None:
        with self._guard():
            self._conn().execute(self._translate(sql), args)

    def _write_many(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = list(rows)
        if rows:
            with self._guard(), self._conn().cursor() as cur:
                cur.executemany(self._translate(sql), rows)

    def _log(self, rec_id: str, inst: str, kind: str, at: str) -> None:
        self._write(
            "INSERT INTO changes (seq, record_id, institution, kind, at)"
            " SELECT coalesce(max(seq), 0) + 1, ?, ?, ?, ? FROM changes",
            (rec_id, inst, kind, at),
        )

    def _json(self, column: str, *path: str) -> str:
        return f"(({column})::jsonb #> '{{{','.join(path)}}}')"

    def transaction(self) -> AbstractContextManager[None]:
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        local = self._state()
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        conn = self._conn()
        held = self._held
        with self._guard():
            with conn.pipeline():  # one round trip: begin, the writers' lock, our ingest lock
                conn.execute("BEGIN")
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _WRITER)
                holds = conn.execute(_HOLDS, (held.backend, *_INGEST)) if held else None
        local.depth = 1
        try:
            if holds is not None and not holds.fetchone()[0]:
                self._regain(held)  # or LockLost, before anything is written
            # Pipeline mode: writes go out without waiting for their answers (a read, or
            # the end of the pipeline, collects them), so a record costs one round trip.
            try:
                with conn.pipeline():
                    yield
                    conn.execute("UPDATE catalog_state SET generation = generation + 1")
                conn.execute("COMMIT")
            except (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError) as exc:
                raise _failure(self.where, exc) from None
        except BaseException:
            try:
                if not conn.closed and not conn.broken:
                    conn.execute("ROLLBACK")
            except psycopg.Error:
                pass
            raise
        finally:
            local.depth = 0
            if conn.closed or conn.broken:
                self._drop()
        self._seen = None  # our own commit shows at once

    # -- visibility across nodes ---------------------------------------------------------------
    def generation(self) -> Any:
        """The change counter, read from the server at most once per ``poll_seconds`` in this
        process. While the server is away the last value read stands, so what a node has
        cached (tiles, sources) is still served; the catalog reads themselves answer 503."""
        seen, at = self._seen, time.monotonic()
        if seen is not None and at - seen[1] < self.poll_seconds:
            return seen[0]
        try:
            value = int(self._one("SELECT generation FROM catalog_state WHERE id = 1")[0])
        except CatalogUnavailable:
            if seen is None:
                raise
            self._seen = (seen[0], at)  # try the server again after the next interval
            return seen[0]
        self._seen = (value, at)
        return value

    # -- the ingest lock -----------------------------------------------------------------------
    def _take(self, conn: psycopg.Connection) -> bool:
        return bool(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", _INGEST).fetchone()[0])

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        conn = self._connect()
        owner = (socket.gethostname(), os.getpid(), now())
        try:
            with self._guard():
                if not self._take(conn):
                    holder = self._holder(conn) or "another process"
                    raise LockedError(
                        f"another ingest is writing to this archive ({holder}); wait for it "
                        f"to finish (lock: an advisory lock in {self.where})"
                    )
                # Under the writers' lock: a transaction of an earlier holder that lost its
                # session but still runs finishes first, and fails its check after this.
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _WRITER)
                    conn.execute(
                        "INSERT INTO ingest_lock (id, host, pid, started_at) VALUES (1, %s, %s, %s)"
                        " ON CONFLICT (id) DO UPDATE SET host = excluded.host,"
                        " pid = excluded.pid, started_at = excluded.started_at",
                        owner,
                    )
            self._held = _Held(conn, conn.info.backend_pid, owner)
            try:
                yield
            finally:
                held, self._held = self._held, None
                conn = held.conn if held is not None else conn
                forget = (
                    "DELETE FROM ingest_lock WHERE id = 1 AND host = %s AND pid = %s"
                    " AND started_at = %s"
                )  # only our own row: after LockLost it may be another holder's
                try:
                    conn.execute(forget, owner)
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", _INGEST)
                except psycopg.Error:  # the session ended (a restart): the lock went with it
                    try:  # and the row, which names a holder no more, goes on a new session
                        fresh = self._connect()
                        try:
                            fresh.execute(forget, owner)
                        finally:
                            fresh.close()
                    except (psycopg.Error, CatalogUnavailable):
                        pass  # still away: the row is ignored while nobody holds the lock
        finally:
            conn.close()

    def _regain(self, held: _Held) -> None:
        """The ingest lock's session no longer holds it (the server restarted, the backend
        was terminated, the network dropped it). Take it again on a new session if nobody
        held it meanwhile (``ingest_lock`` still names us); else raise LockLost. Called in a
        write transaction, under the writers' lock, before it writes."""
        with self._held_lock:
            if self._held is not held:  # another thread regained it already
                if self._held is not None:
                    return
                raise LockLost(f"{self.where}: this ingest no longer holds the ingest lock")
            resume = "nothing after its last commit was written; run the same command again"
            conn = self._connect()
            try:
                with self._guard():
                    took = self._take(conn)
                    row = conn.execute(
                        "SELECT host, pid, started_at FROM ingest_lock WHERE id = 1"
                    ).fetchone()
                if took and row is not None and tuple(row) == held.owner:
                    try:
                        held.conn.close()
                    except psycopg.Error:
                        pass
                    self._held = _Held(conn, conn.info.backend_pid, held.owner)
                    log.warning(
                        "%s: the ingest lock's session was lost; nobody took the lock "
                        "meanwhile, so this ingest took it again and goes on",
                        self.where,
                    )
                    return
                holder = self._holder(conn) if not took else None
            except BaseException:
                conn.close()
                raise
            conn.close()  # ends the session: a lock taken here goes with it
            other = f"it is held by {holder}" if holder else "another ingest held it meanwhile"
            raise LockLost(
                f"this ingest lost its lock in {self.where} (its database session ended) and "
                f"{other}: this ingest stopped so that two never write at once; {resume}"
            )

    def write_lock(self) -> AbstractContextManager[None]:
        return self._write_lock()

    def _holder(self, conn: psycopg.Connection) -> str | None:
        row = conn.execute(
            "SELECT host, pid, started_at FROM ingest_lock WHERE id = 1 AND EXISTS ("
            " SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 2)",
            _INGEST,
        ).fetchone()
        return None if row is None else f"host {row[0]}, pid {row[1]}, started {row[2]}"

    def lock_holder(self) -> str | None:
        with self._guard():
            return self._holder(self._conn())
