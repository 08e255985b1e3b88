"""SQLite connections as a threaded, forking web server needs them.

One connection per thread (sqlite3 connections are not shared across threads),
opened afresh after a fork (server workers must never use the parent's), in
autocommit mode with WAL, so readers never wait for the one writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class Connections:
    def __init__(
        self, path: str | Path, pragmas: Sequence[str] = (), *, rows: bool = False
    ) -> None:
        self.path = Path(path)
        self.pragmas = ("journal_mode=WAL", "synchronous=NORMAL", *pragmas)
        self.rows = rows  # sqlite3.Row results
        self._local = threading.local()
        self._pid = os.getpid()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        if self._pid != os.getpid():  # forked: never share a connection with the parent
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            if self.rows:
                conn.row_factory = sqlite3.Row
            for pragma in self.pragmas:
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the write lock at once); nested calls join the outer."""
        db = self.get()
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection, if it has one."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
