"""One archive opened for use: its configuration, folders, catalog and pyramid store.

Blueprints and commands receive an ``Archive`` instead of reaching for globals.
The search backend is attached by whoever wires the application (the web app or
the CLI), because ``archive`` does not import ``search``.
"""

from __future__ import annotations

import logging
import sqlite3
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

    def attach_search(self, backend: Any) -> None:
        """Attach the search backend (a ``search.SearchBackend``). An index it could not
        keep (written by an older release, emptied on opening) is rebuilt from the
        catalog at once: the index is derived data, and visitors must not meet an empty
        search after an upgrade."""
        self.search = backend
        reason = backend.needs_rebuild()
        if reason:
            log.warning("%s; rebuilding it from the catalog", reason)
            count = self.rebuild_search()
            log.warning("search index rebuilt: %d public records", count)

    def rebuild_search(self) -> int:
        """Replace the search index with every public record of the catalog."""
        institutions = {inst.id: inst for inst in self.catalog.institutions()}
        count = self.search.rebuild(self.catalog.records(public_only=True), institutions)
        self.catalog.set_meta(SEARCH_BEHIND, None)
        return count

    def search_state(self) -> dict[str, Any]:
        """The search index as operators need it (``archive status``, ``/api/health``):
        its backend, documents and whether it is reachable (else the error), and why it
        is behind the catalog, if it is."""
        state: dict[str, Any] = {"backend": self.config.search_backend}
        try:
            state["documents"] = self.search.health().get("documents")
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
