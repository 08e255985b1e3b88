"""The search contract every backend fulfils (see tests/search for the contract suite)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from archive.config import Config
from archive.errors import ConfigError
from archive.records import Institution, Record

# Facets every backend computes, in display order.
FACETS = ("institution", "object_type", "material", "era", "century", "creator", "rights",
          "has_images")
SORTS = ("relevance", "date_asc", "date_desc", "added")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""  # free text; "quoted phrases"; empty lists everything
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # facet -> values (OR)
    year_from: int | None = None
    year_to: int | None = None
    sort: str = "relevance"
    page: int = 1  # 1-based
    size: int = 20
    lang: str = "ja"  # language of snippets and facet labels
    facets: bool = True
    public_only: bool = True


@dataclass
class Hit:
    id: str
    score: float = 0.0
    highlights: dict[str, str] = field(default_factory=dict)  # field -> HTML with <mark>


@dataclass
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]  # facet -> [(value, count)], most frequent first
    page: int = 1
    size: int = 20


class SearchBackend:
    """Base class; concrete backends register in ``BACKENDS``."""

    name = "abstract"

    def __init__(self, config: Config) -> None:
        self.config = config

    def index(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        raise NotImplementedError

    def delete(self, record_ids: Iterable[str]) -> None:
        raise NotImplementedError

    def search(self, query: SearchQuery) -> SearchResult:
        raise NotImplementedError

    def suggest(self, prefix: str, lang: str = "ja", limit: int = 10) -> list[str]:
        raise NotImplementedError

    def rebuild(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        """Replace the whole index with these records; search keeps working meanwhile."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"backend": self.name}


# name -> "module:Class"; the default always exists.
BACKENDS: dict[str, str] = {}
BACKENDS.setdefault("sqlite", "search.sqlite_fts:SqliteBackend")
BACKENDS.setdefault("elasticsearch", "search.cluster:ClusterBackend")
BACKENDS.setdefault("opensearch", "search.cluster:ClusterBackend")


def get_backend(config: Config) -> SearchBackend:
    target = BACKENDS.get(config.search_backend)
    if target is None:
        raise ConfigError(
            f"unknown search_backend {config.search_backend!r}; choose one of {sorted(BACKENDS)}"
        )
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config)
