"""The contract suite against the embedded SQLite FTS5 backend."""

from __future__ import annotations

import pytest
from search_contract import BackendContract

from archive.config import Config
from search.base import get_backend
from search.sqlite_fts import SqliteBackend


class TestSqliteBackend(BackendContract):
    @pytest.fixture
    def backend(self, config: Config):
        backend = get_backend(config)
        assert isinstance(backend, SqliteBackend)
        yield backend
        backend.close()
