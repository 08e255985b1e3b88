"""The single-writer lock of the embedded catalog: only one ingest writes at a time.

An advisory ``flock`` on ``<home>/ingest.lock``: the kernel drops it when the
process dies, even by ``kill -9``, so a crashed run never leaves a stale lock.
The SQLite catalog's ``write_lock()`` and ``lock_holder()`` use it; the PostgreSQL
catalog holds an advisory lock in the server instead (archive/catalog_postgres.py).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import LockedError


def now() -> str:
    """UTC timestamp, ISO 8601 with seconds, as IIIF and Activity Streams want it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold the archive's ingest lock, or raise LockedError at once naming the holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise LockedError(
                f"another ingest is writing to this archive ({holder}); "
                f"wait for it to finish (lock: {path})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {now()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(path: Path) -> str | None:
    """Who holds the lock ("pid 123, started ..."), read without taking it, so asking
    never delays an ingest that starts at that moment; None when nobody does (a holder
    killed with SIGKILL leaves its line behind, but not a live process)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("pid "):
        return None
    try:
        pid = int(text.split()[1].rstrip(","))
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return None
    except PermissionError:  # alive, under another user
        pass
    return text
