"""One archive opened for use: its configuration, folders, catalog and pyramid store.

Blueprints and commands receive an ``Archive`` instead of reaching for globals.
The search backend is attached by whoever wires the application (the web app or
the CLI), because ``archive`` does not import ``search``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from .catalog import SEARCH_BEHIND, open_catalog
from .config import Config
from .errors import ArchiveError
from .storage import Home, PyramidStore, open_store

log = logging.getLogger(__name__)


class Archive:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.home = Home(config.home).ensure()
        self.catalog = open_catalog(config, self.home)
        self.images: PyramidStore = open_store(config, self.home)  # storage_url
        self.search: Any = None  # a search.SearchBackend, attached by the wiring code
        self._follow_lock = threading.Lock()
        self._follower: threading.Thread | None = None
        self._followed_at = 0.0  # monotonic time of the last look at the change log

    def attach_search(self, backend: Any) -> None:
        """Attach the search backend (a ``search.SearchBackend``). An index it could not
        keep (written by an older release, emptied on opening) is rebuilt from the
        catalog at once: the index is derived data, and visitors must not meet an empty
        search after an upgrade."""
        self.search = backend
        reason = backend.needs_rebuild()
        if not reason and self._follows() and backend.log_position() is None:
            reason = "this node's search index has not followed this catalog yet"
        if reason:
            log.warning("%s; rebuilding it from the catalog", reason)
            count = self.rebuild_search()
            log.warning("search index rebuilt: %d public records", count)

    def rebuild_search(self) -> int:
        """Replace the search index with every public record of the catalog."""
        seq = self.catalog.last_seq()  # first: changes made meanwhile are applied later
        institutions = {inst.id: inst for inst in self.catalog.institutions()}
        count = self.search.rebuild(self.catalog.records(public_only=True), institutions)
        self.catalog.set_meta(SEARCH_BEHIND, None)
        if self.search.follows_log:
            self.search.set_log_position(seq)
        return count

    def follow_search(self, *, interval: float = 1.0) -> None:
        """Keep this node's own search index current from the catalog's change log (an
        ingest on another machine writes the shared catalog, not this index): at most once
        per ``interval`` seconds, and in a thread of its own, so no request waits for the
        records to be indexed. Cheap to call on every page request."""
        if not self._follows():
            return
        now = time.monotonic()
        if now - self._followed_at < interval:
            return
        with self._follow_lock:
            if now - self._followed_at < interval:
                return
            self._followed_at = now
            if self._follower is not None and self._follower.is_alive():
                return
            self._follower = threading.Thread(
                target=self.apply_changes, name="search-follower", daemon=True
            )
            self._follower.start()

    def _follows(self) -> bool:
        """Whether this node's search index must follow the catalog's change log."""
        return self.search is not None and self.search.follows_log and self.catalog.shared

    def apply_changes(self, batch: int = 500) -> int:
        """Index the catalog changes this node's search index has not applied yet (public
        records created or changed are indexed, hidden or deleted ones removed); returns
        how many changes were applied. Applying one twice is harmless, so two processes
        of a node may race."""
        applied = 0
        try:
            position = self.search.log_position() or 0
            while changes := self.catalog.changes(after=position, limit=batch):
                ids = list(dict.fromkeys(change.record_id for change in changes))
                records = self.catalog.get_records(ids, public_only=True)
                if records:
                    institutions = {inst.id: inst for inst in self.catalog.institutions()}
                    self.search.index(records, institutions)
                found = {record.id for record in records}
                if gone := [rid for rid in ids if rid not in found]:
                    self.search.delete(gone)
                position = changes[-1].seq
                self.search.set_log_position(position)
                applied += len(changes)
        except (ArchiveError, sqlite3.Error, OSError) as exc:  # tried again on a later request
            log.warning("search index could not follow the catalog: %s", exc)
        return applied

    def search_state(self) -> dict[str, Any]:
        """The search index as operators need it (``archive status``, ``/api/health``):
        its backend, documents and whether it is reachable (else the error), whether
        records are embedded (``search_vectors``; how many have a vector, where the backend
        counts them), and why it is behind the catalog, if it is."""
        state: dict[str, Any] = {
            "backend": self.config.search_backend,
            "vectors": "on" if self.config.search_vectors else "off",
        }
        try:
            health = self.search.health()
            state["documents"] = health.get("documents")
            if health.get("with_vectors") is not None:
                state["with_vectors"] = health["with_vectors"]
            state["reachable"] = True
        except (ArchiveError, sqlite3.Error, OSError) as exc:
            state.update(reachable=False, error=str(exc))
        if behind := self.catalog.get_meta(SEARCH_BEHIND):
            state["behind"] = behind
        return state

    def close(self) -> None:
        self.catalog.close()
        if self.search is not None:
            self.search.close()
