"""One archive opened for use: its configuration, folders, catalog and image store.

Blueprints and commands receive an ``Archive`` instead of reaching for globals.
The search backend is attached by whoever wires the application (the web app or
the CLI), because ``archive`` does not import ``search``.
"""

from __future__ import annotations

from typing import Any

from .catalog import Catalog
from .config import Config
from .storage import Home, ImageStore


class Archive:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.home = Home(config.home).ensure()
        self.catalog = Catalog(self.home.catalog)
        self.images = ImageStore(self.home.images)
        self.search: Any = None  # a search.SearchBackend, attached by the wiring code

    def close(self) -> None:
        self.catalog.close()
        if self.search is not None:
            self.search.close()
