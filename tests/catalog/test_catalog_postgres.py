"""The catalog contract on a real PostgreSQL server (tests/pg_server.py)."""

from __future__ import annotations

import pytest
from catalog_contract import CatalogContract

from archive.catalog import open_catalog
from archive.catalog_postgres import PostgresCatalog
from archive.storage import Home


class TestPostgresCatalog(CatalogContract):
    @pytest.fixture
    def open_catalog(self, config, postgres_url):
        config = config.replace(catalog_url=postgres_url)
        opened = []

        def again():
            catalog = open_catalog(config, Home(config.home))
            assert isinstance(catalog, PostgresCatalog)
            opened.append(catalog)
            return catalog

        yield again
        for catalog in opened:
            catalog.close()
