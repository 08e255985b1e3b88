"""The catalog contract on the embedded SQLite catalog (the default)."""

from __future__ import annotations

import pytest
from catalog_contract import CatalogContract

from archive.catalog import SQLiteCatalog, open_catalog
from archive.storage import Home


class TestSQLiteCatalog(CatalogContract):
    @pytest.fixture
    def open_catalog(self, config):
        opened = []

        def again():
            catalog = open_catalog(config, Home(config.home))
            assert isinstance(catalog, SQLiteCatalog)
            opened.append(catalog)
            return catalog

        yield again
        for catalog in opened:
            catalog.close()
