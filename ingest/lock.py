"""The single-writer lock, kept importable here for scripts and tests that take the
embedded archive's file lock directly. Ingest itself asks the catalog for its lock
(``Catalog.write_lock()``), which is this file lock on SQLite and an advisory lock in
the server on PostgreSQL."""

from __future__ import annotations

from archive.lock import lock_holder, write_lock

__all__ = ["lock_holder", "write_lock"]
