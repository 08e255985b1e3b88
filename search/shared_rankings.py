"""Hybrid rankings shared by the server processes of one archive home.

Each worker process remembers the rankings it made (``search.base.RANKINGS``), but a
server has one worker per core and each would rank a new search again: the query's
embedding, the vector passes and the text ranking, about 40 ms of CPU at 100,000
records, once per worker. So a ranking is also written to a small SQLite file beside
the index (``<home>/search-rankings.sqlite``), keyed by the state of the index it was
made from, and the next worker that meets the search reads it (well under a
millisecond) instead. Only this node's processes share it; it is a cache: deleting the
file loses nothing, and an error reading or writing it only means ranking again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from archive.sqlite import Connections

log = logging.getLogger(__name__)

FILE_NAME = "search-rankings.sqlite"
LIMIT = 4096  # rankings kept (about 8 kB each); the oldest go first
_PRUNE_EVERY = 256  # writes between two prunings


class SharedRankings:
    """A key (JSON text of the index's state and the query) to a JSON document."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILE_NAME
        # A writer waits for another at most 200 ms: a cache is never worth a slow answer.
        self._connections = Connections(self.path, ("busy_timeout=200",))
        self._lock = threading.Lock()
        self._writes = 0
        self._failed = False
        try:
            self._connections.get().execute(
                "CREATE TABLE IF NOT EXISTS rankings (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            self._warn(exc)

    @staticmethod
    def key(*parts: Any) -> str:
        return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))

    def get(self, key: str) -> Any:
        """The document kept under ``key``, or None."""
        try:
            row = (
                self._connections.get()
                .execute("SELECT value FROM rankings WHERE key = ?", (key,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            self._warn(exc)
            return None
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``; now and then, drop all but the LIMIT newest."""
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._writes += 1
            prune = self._writes % _PRUNE_EVERY == 0
        try:
            db = self._connections.get()
            db.execute("INSERT OR REPLACE INTO rankings (key, value) VALUES (?, ?)", (key, text))
            if prune:
                db.execute(
                    "DELETE FROM rankings WHERE rowid <= (SELECT max(rowid) FROM rankings) - ?",
                    (LIMIT,),
                )
        except sqlite3.Error as exc:
            self._warn(exc)

    def _warn(self, exc: sqlite3.Error) -> None:
        """Say once per process that the shared rankings are not working (each worker
        then ranks for itself, as without them)."""
        if not self._failed:
            self._failed = True
            log.warning("shared search rankings %s: %s (ranking in each process)", self.path, exc)

    def close(self) -> None:
        self._connections.close()
