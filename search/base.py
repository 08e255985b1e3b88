"""The search contract every backend fulfils (see tests/search for the contract suite)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from archive.config import Config
from archive.errors import BadRequest, ConfigError
from archive.records import Institution, Record
from archive.storage import Home

# Facets every backend computes, in display order.
FACETS = (
    "institution",
    "object_type",
    "material",
    "era",
    "century",
    "creator",
    "rights",
    "has_images",
)
SORTS = ("relevance", "date_asc", "date_desc", "added")
MAX_PAGE_SIZE = 100
MAX_SIMILAR = 50
# Deepest result reachable by paging (the cluster's index.max_result_window): 100,000
# records at 100 a page are all reachable.
MAX_RESULT_WINDOW = 100_000


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
    # Hybrid: add the records nearest in meaning (sentence embeddings) to the text
    # matches and fuse both rankings. Off: text matching only.
    semantic: bool = True


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


def check_query(query: SearchQuery) -> None:
    """Raise BadRequest, naming the parameter, for a query no backend can answer."""
    if query.sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}", parameter="sort")
    if query.page < 1:
        raise BadRequest("page must be 1 or more", parameter="page")
    if not 1 <= query.size <= MAX_PAGE_SIZE:
        raise BadRequest(f"size must be between 1 and {MAX_PAGE_SIZE}", parameter="size")
    if query.page * query.size > MAX_RESULT_WINDOW:
        raise BadRequest(
            f"page * size must be at most {MAX_RESULT_WINDOW}; narrow the search instead",
            parameter="page",
        )
    years = (query.year_from, query.year_to)
    if None not in years and years[0] > years[1]:
        raise BadRequest("year_from is after year_to", parameter="year_from")
    for name in query.filters:
        if name not in FACETS:
            raise BadRequest(
                f"unknown filter {name!r}; filters are {', '.join(FACETS)}", parameter=name
            )


class SearchBackend:
    """Base class; concrete backends register in ``BACKENDS``."""

    name = "abstract"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._shared_queries: Any = None
        self._deferring = 0  # bulk() depth: within it, index() may leave vectors to settle

    @property
    def shared_queries(self) -> Any:
        """The node's query vectors, shared by its processes (``vectors.SharedQueries``,
        in the home's cache); made on first use, so nothing loads numpy before then."""
        if self._shared_queries is None:
            from . import vectors

            path = Home(self.config.home).cache / "search" / "query-vectors.sqlite"
            self._shared_queries = vectors.SharedQueries(path)
        return self._shared_queries

    def index(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        raise NotImplementedError

    def delete(self, record_ids: Iterable[str]) -> None:
        raise NotImplementedError

    def search(self, query: SearchQuery) -> SearchResult:
        raise NotImplementedError

    def suggest(self, prefix: str, lang: str = "ja", limit: int = 10) -> list[str]:
        raise NotImplementedError

    def similar(self, record_id: str, limit: int = 10) -> list[str]:
        """Ids of the indexed (public) records nearest in meaning to this one, nearest
        first; empty when it is not in the index."""
        raise NotImplementedError

    def rebuild(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        """Replace the whole index with these records; search keeps working meanwhile."""
        raise NotImplementedError

    #: True for an index kept by each node for itself (the embedded one): it follows the
    #: catalog's change log (``log_position``; ``Archive.follow_search``). A cluster index
    #: is shared, and kept current by the ingest that writes the catalog.
    follows_log = False

    def log_position(self) -> int | None:
        """The catalog change (``Change.seq``) this index has applied up to; None when it
        has never followed this catalog (a new node's empty home)."""
        return None

    def set_log_position(self, seq: int) -> None:
        """Remember that every catalog change up to ``seq`` is in the index."""

    def needs_rebuild(self) -> str | None:
        """Why the index must be rebuilt from the catalog before it can answer (an index
        of an older schema, emptied on opening), or None. ``Archive.attach_search``
        rebuilds it at once."""
        return None

    def count(self) -> int:
        raise NotImplementedError

    def document_ids(self) -> set[str]:
        """The id of every document in the index, public or not: what `archive check`
        compares with the catalog. Backends answer it from their own storage; this
        fallback pages through ``search``, as far as the result window reaches."""
        ids: set[str] = set()
        page = 1
        while page * MAX_PAGE_SIZE <= MAX_RESULT_WINDOW:
            result = self.search(
                SearchQuery(
                    sort="added", page=page, size=MAX_PAGE_SIZE, facets=False, public_only=False
                )
            )
            ids.update(hit.id for hit in result.hits)
            if len(result.hits) < MAX_PAGE_SIZE:
                break
            page += 1
        return ids

    @property
    def vectors_on(self) -> bool:
        """The ``search_vectors`` setting: records are embedded, and searches and similar
        objects use the vectors. Off, nothing loads the model."""
        return bool(getattr(self.config, "search_vectors", True))

    def semantic_text(self, query: SearchQuery, clauses: list[Any]) -> str:
        """What of ``query`` to embed and widen by meaning (``vectors.semantic_text`` of its
        parsed clauses), or "" when it is not one to widen: ``semantic`` off, vectors off,
        or nothing but phrases, fields and exclusions."""
        if not (query.semantic and self.vectors_on):
            return ""
        from . import vectors

        return vectors.semantic_text(clauses)

    def submit_passages(self, texts: list[str], known: dict[bytes, bytes]) -> Any:
        """The vectors of these passages, being made (``vectors.submit_passages``); with
        ``search_vectors`` off, only those ``known`` (already stored for the same text):
        the rest get none (scale 0), which the backends do not store."""
        from . import vectors

        if self.vectors_on:
            return vectors.submit_passages(texts, known)
        return StoredVectors(texts, known)

    def bulk(self, workers: int | None = None) -> AbstractContextManager[None]:
        """Within: many records will be indexed (an ingest, a rebuild), so passages are
        embedded in ``workers`` processes (default: the ``workers`` setting, else one per
        core) while this process analyses and writes the next batch. ``index`` need not
        wait for a batch's vectors: a backend may write them once they are made, and all
        of them by the time the outermost ``bulk`` ends (``settle_vectors``). If it ends
        with an exception, what is still being embedded is let go: the caller marks the
        index behind, and the next run rebuilds it. Nothing is started when
        ``search_vectors`` is off."""
        if not self.vectors_on:
            return nullcontext()
        return self._bulk_embedding(workers)

    @contextmanager
    def _bulk_embedding(self, workers: int | None) -> Iterator[None]:
        from . import vectors  # numpy and the model only where records are embedded

        with vectors.parallel(workers or self._embed_workers()):
            self._deferring += 1
            finished = False
            try:
                yield
                finished = True
            finally:
                self._deferring -= 1
                if not self._deferring:
                    self.settle_vectors(discard=not finished)

    def settle_vectors(self, discard: bool = False) -> None:
        """Write the vectors ``index`` left to their embedding (waiting for it), or let
        them go (``discard``). Backends that write a batch's vectors with it have none."""

    def _embed_workers(self) -> int:
        return max(1, int(self.config.workers or 0) or os.cpu_count() or 1)

    def close(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"backend": self.name}


class StoredVectors:
    """In place of a ``vectors.Embedding`` when ``search_vectors`` is off: the vectors
    already stored for the same passage text (``known``, by ``passage_digest``), and none
    (a zero row, scale 0) for the others, without the model."""

    def __init__(self, texts: list[str], known: dict[bytes, bytes]) -> None:
        self.texts = list(texts)
        self.known = known
        self.embedded = 0

    def result(self) -> tuple[Any, Any]:
        import numpy as np

        from . import vectors

        rows = np.zeros((len(self.texts), vectors.DIM), dtype=np.int8)
        scales = np.zeros(len(self.texts), dtype=np.float32)
        for i, text in enumerate(self.texts):
            blob = self.known.get(vectors.passage_digest(text)) if self.known else None
            if blob is not None:
                rows[i], scales[i] = vectors.from_bytes(blob)
        return rows, scales


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
