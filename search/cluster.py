"""Elasticsearch 8/9 or OpenSearch 2/3, found out from the server's ``GET /``.

Reads and writes go through an alias (``config.search_index``); ``rebuild`` fills a
new index and switches the alias in one request, so search never goes down. Every
body sent is built in ``search.cluster_requests``. Any failure to reach the cluster
raises ``SearchUnavailable`` (the web answers 503; ingest reports and stops).
"""

from __future__ import annotations

import base64
import bisect
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

import numpy as np

from archive.config import Config
from archive.errors import ArchiveError, ConfigError, SearchUnavailable
from archive.records import Institution, Record

from . import cluster_requests as requests_
from . import vectors
from .base import FACETS, MAX_SIMILAR, Hit, SearchBackend, SearchQuery, SearchResult, check_query
from .documents import HIGHLIGHT_FIELDS, record_to_doc
from .highlight import Highlighter
from .query import parse

BULK_BATCH = 1000
#: Seconds a bulk write keeps sending again what the cluster turned away as too busy (429).
BULK_PATIENCE = 60.0
VECTOR_PAGE = 5000  # vectors read per request when the backend loads them
VECTOR_CHECK_S = 5.0  # how often a search asks whether the index changed
HYBRID_WINDOW = 200  # ranks of each list fused for a page by relevance (as on SQLite)
NEAR_POOL = 5  # nearest records checked against filters, per one that may be added
# What a page's hits bring of their documents: the original text their highlights are
# made from, as one path. Naming its dozen fields instead (original.title, ...) made the
# node's _mget of 20 documents take 24 ms against 4 (OpenSearch 3, 100,000 records).
PAGE_SOURCE = "original"


def _client_options(config: Config) -> dict[str, Any]:
    """Options shared by both clients: TLS, credentials and timeouts from the settings."""
    options: dict[str, Any] = {"verify_certs": bool(config.search_verify_certs)}
    if config.search_ca_certs:
        options["ca_certs"] = config.search_ca_certs
    return options


def make_client(flavour: str, config: Config) -> Any:
    """The official client for the flavour, configured from the archive's settings."""
    url = config.search_url
    options = _client_options(config)
    if flavour == "elasticsearch":
        from elasticsearch import Elasticsearch

        if config.search_api_key:
            options["api_key"] = config.search_api_key
        elif config.search_username:
            options["basic_auth"] = (config.search_username, config.search_password)
        return Elasticsearch(
            url, request_timeout=float(config.search_timeout), max_retries=1, **options
        )
    from opensearchpy import OpenSearch

    if config.search_api_key:
        options["headers"] = {"Authorization": f"ApiKey {config.search_api_key}"}
    elif config.search_username:
        options["http_auth"] = (config.search_username, config.search_password)
    if not options["verify_certs"]:
        options["ssl_show_warn"] = False
    return OpenSearch(
        [url],
        timeout=float(config.search_timeout),
        max_retries=1,
        use_ssl=url.startswith("https"),
        **options,
    )


def detect_flavour(info: dict[str, Any]) -> str:
    """'opensearch' or 'elasticsearch' from the body of ``GET /``."""
    version = info.get("version") or {}
    if version.get("distribution") == "opensearch":
        return "opensearch"
    major = str(version.get("number", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 7:
        raise ConfigError(f"search_url: unsupported search server version {version!r}")
    return "elasticsearch"


class ClusterBackend(SearchBackend):
    """An Elasticsearch or OpenSearch cluster behind an alias."""

    name = "elasticsearch"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if not config.search_url:
            raise ConfigError(
                f"search_backend {config.search_backend!r} needs search_url "
                "(e.g. ARCHIVE_SEARCH_URL=http://127.0.0.1:9200)"
            )
        self.alias = config.search_index
        self._client: Any = None
        self.flavour: str | None = None
        self.version = ""
        self._kuromoji: bool | None = None
        self._vectors_lock = threading.Lock()
        self._vectors: tuple[Any, list[str], vectors.VectorIndex] | None = None
        self._vectors_checked = 0.0

    # -- transport ---------------------------------------------------------------------------
    def _connect(self) -> Any:
        """Find out the server from GET / (lazily, so the site starts while it is down)."""
        if self._client is None:
            probe = make_client("opensearch", self.config)
            try:
                info = self._call(probe, "GET", "/")
            finally:
                probe.close()
            self.flavour = detect_flavour(info)
            self.version = info["version"]["number"]
            self.name = self.flavour
            self._client = make_client(self.flavour, self.config)
        return self._client

    def _call(
        self,
        client: Any,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ndjson: bool = False,
    ) -> Any:
        """One request through the client; errors become SearchUnavailable or ArchiveError."""
        headers = {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        if self.flavour == "elasticsearch":
            headers["accept"] = "application/json"
        try:
            if self.flavour == "elasticsearch":
                response = client.perform_request(
                    method, path, params=params, headers=headers, body=body
                )
                return response.body
            return client.transport.perform_request(
                method, path, params=params, body=body, headers=headers
            )
        except Exception as exc:
            raise _translate(exc, self.config.search_url) from None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        ndjson: bool = False,
    ) -> Any:
        return self._call(self._connect(), method, path, body, params, ndjson)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- index management --------------------------------------------------------------------
    @property
    def kuromoji(self) -> bool:
        """Whether the cluster has the kuromoji plugin (asked once)."""
        if self._kuromoji is None:
            try:
                probe = {"tokenizer": "kuromoji_tokenizer", "text": "日本"}
                self.request("POST", "/_analyze", probe)
                self._kuromoji = True
            except SearchUnavailable:
                raise
            except ArchiveError:
                self._kuromoji = False
        return self._kuromoji

    def _indices_of_alias(self) -> list[str]:
        try:
            found = self.request("GET", f"/_alias/{self.alias}")
        except _Missing:
            return []
        return sorted(found)

    def _create_index(self, bulk_load: bool = False) -> str:
        name = f"{self.alias}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
        self.request("PUT", f"/{name}", requests_.index_body(self.kuromoji, bulk_load))
        return name

    def _ensure_alias(self) -> None:
        if not self._indices_of_alias():
            name = self._create_index()
            self.request("POST", "/_aliases", requests_.alias_switch(self.alias, name, []))

    def _bulk(self, target: str, lines: list[dict[str, Any]], refresh: str | None) -> None:
        """Send bulk actions; what the cluster turns away as too busy (429: the whole
        request, or some of its items) is sent again after a growing pause, as its
        clients are asked to, for up to ``BULK_PATIENCE`` seconds in all."""
        waited, pause = 0.0, 0.5
        while lines:
            body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
            params = {"refresh": refresh} if refresh else None
            try:
                result = self.request("POST", f"/{target}/_bulk", body, params=params, ndjson=True)
            except SearchUnavailable as exc:
                if getattr(exc, "status", None) != 429 or waited >= BULK_PATIENCE:
                    raise
                result = None  # all of it again
            busy: list[dict[str, Any]] = [] if result is not None else lines
            if result is not None and result.get("errors"):
                failures = []
                for item, action in zip(result["items"], _actions(lines), strict=True):
                    outcome = next(iter(item.values()))
                    if not outcome.get("error"):
                        continue
                    if outcome.get("status") == 429:
                        busy.extend(action)
                    elif not (outcome.get("status") == 404 and "delete" in item):
                        failures.append(item)
                if failures:
                    raise ArchiveError(
                        f"cluster refused documents: {json.dumps(failures[:3])[:800]}"
                    )
            if busy and waited >= BULK_PATIENCE:
                raise SearchUnavailable(
                    f"search cluster at {self.config.search_url} stayed too busy (429) "
                    f"for {waited:.0f} s"
                )
            if busy:
                time.sleep(pause)
                waited += pause
                pause = min(pause * 2, 8.0)
            lines = busy

    def _docs(
        self,
        records: Iterable[Record],
        institutions: dict[str, Institution],
        known: dict[bytes, bytes] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """Bulk items of records, embedded a batch at a time: while one batch is embedded
        (``bulk``: in other processes) the next is analysed. ``known``: vectors to reuse by
        passage digest (a rebuild's); else those of the same ids in the index now."""
        batch: list[tuple[str, dict[str, Any] | None]] = []
        pending: tuple[list, vectors.Embedding] | None = None
        for record in records:
            if not record.public:
                batch.append((record.id, None))
            else:
                doc = record_to_doc(record, institutions.get(record.institution))
                doc["original"] = {
                    name: record.get(name) for name in HIGHLIGHT_FIELDS if record.get(name)
                }
                batch.append((record.id, doc))
            if len(batch) >= BULK_BATCH:
                started = self._embed(batch, known)
                if pending is not None:
                    yield from self._sources(*pending)
                pending, batch = started, []
        started = self._embed(batch, known) if batch else None
        if pending is not None:
            yield from self._sources(*pending)
        if started is not None:
            yield from self._sources(*started)

    def _embed(
        self, batch: list[tuple[str, dict[str, Any] | None]], known: dict[bytes, bytes] | None
    ) -> tuple[list, vectors.Embedding]:
        docs = [doc for _id, doc in batch if doc is not None]
        if known is None:
            known = self._known_vectors(self.alias, [doc["id"] for doc in docs])
        texts = [vectors.passage_text(doc) for doc in docs]
        return batch, self.submit_passages(texts, known)

    @staticmethod
    def _sources(
        batch: list[tuple[str, dict[str, Any] | None]], embedding: vectors.Embedding
    ) -> Iterator[tuple[str, dict[str, Any] | None]]:
        docs = [doc for _id, doc in batch if doc is not None]
        matrix, scales = embedding.result()
        for doc, row, scale in zip(docs, matrix, scales, strict=True):
            if scale > 0:  # none when search_vectors is off and nothing was stored for it
                doc["vector"] = base64.b64encode(vectors.to_bytes(row, scale)).decode("ascii")
        for record_id, doc in batch:
            yield record_id, None if doc is None else requests_.doc_source(doc)

    def _known_vectors(self, target: str, ids: list[str] | None) -> dict[bytes, bytes]:
        """The vectors an index (or the alias's) holds, by the digest of their passage
        text (of the records ``ids``, or all), when made by this model and passage recipe
        (the mapping's ``_meta``): reused for records whose text is the same."""
        if ids is not None and not ids:
            return {}
        try:
            mappings = self.request("GET", f"/{target}/_mapping")
        except _Missing:
            return {}
        if len(mappings) != 1:
            return {}
        meta = next(iter(mappings.values())).get("mappings", {}).get("_meta") or {}
        if meta.get("embedding") != vectors.EMBEDDING_VERSION:
            return {}
        known: dict[bytes, bytes] = {}

        def keep(raw: dict[str, Any]) -> None:
            source = raw.get("_source") or {}
            if source.get("vector"):
                text = vectors.passage_text({"original": source.get("original") or {}})
                known[vectors.passage_digest(text)] = base64.b64decode(source["vector"])

        if ids is not None:
            params = {"_source_includes": "original,vector"}
            found = self.request("POST", f"/{target}/_mget", {"ids": ids}, params=params)
            for raw in found.get("docs", []):
                keep(raw)
            return known
        after = None
        while True:
            body = requests_.vectors_body(VECTOR_PAGE, after, with_original=True)
            page = self.request("POST", f"/{target}/_search", body)["hits"]["hits"]
            for raw in page:
                keep(raw)
            if len(page) < VECTOR_PAGE:
                return known
            after = page[-1]["sort"][0]

    def _write(
        self, target: str, items: Iterable[tuple[str, dict | None]], refresh: str | None
    ) -> int:
        count = 0
        lines: list[dict[str, Any]] = []
        for record_id, source in items:
            if source is None:
                lines.append({"delete": {"_id": record_id}})
            else:
                lines.extend(({"index": {"_id": record_id}}, source))
                count += 1
            if len(lines) >= 2 * BULK_BATCH:
                self._bulk(target, lines, refresh)
                lines = []
        self._bulk(target, lines, refresh)
        return count

    def _written(self) -> None:
        self._vectors_checked = 0.0  # the next search asks whether the index changed

    def index(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        self._written()
        self._ensure_alias()
        return self._write(self.alias, self._docs(records, institutions), "wait_for")

    def delete(self, record_ids: Iterable[str]) -> None:
        self._written()
        self._ensure_alias()
        self._write(self.alias, ((rid, None) for rid in record_ids), "wait_for")

    def rebuild(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        """Fill a new index, then move the alias to it in one atomic request."""
        self._written()
        old = self._indices_of_alias()
        known = self._known_vectors(old[0], None) if len(old) == 1 else {}
        new = self._create_index(bulk_load=True)
        try:
            with self.bulk():
                count = self._write(new, self._docs(records, institutions, known), None)
            self.request("PUT", f"/{new}/_settings", {"index": {"refresh_interval": "1s"}})
            self.request("POST", f"/{new}/_refresh")
            self.request("POST", "/_aliases", requests_.alias_switch(self.alias, new, old))
        except BaseException:
            try:
                self.request("DELETE", f"/{new}")
            except ArchiveError:
                pass  # the original error matters more; a stray index is harmless
            raise
        for name in old:
            self.request("DELETE", f"/{name}")
        return count

    def count(self) -> int:
        try:
            return int(self.request("GET", f"/{self.alias}/_count")["count"])
        except _Missing:
            return 0

    def document_ids(self) -> set[str]:
        """Every id, a thousand at a time in _id order (search_after: no result window)."""
        ids: set[str] = set()
        body: dict[str, Any] = {"size": 1000, "_source": False, "sort": [{"id": "asc"}]}
        while True:
            try:
                result = self.request("POST", f"/{self.alias}/_search", body)
            except _Missing:
                return ids
            hits = result["hits"]["hits"]
            ids.update(hit["_id"] for hit in hits)
            if len(hits) < body["size"]:
                return ids
            body["search_after"] = hits[-1]["sort"]

    def health(self) -> dict[str, Any]:
        self._connect()
        return {
            "backend": self.flavour,
            "version": self.version,
            "alias": self.alias,
            "indices": self._indices_of_alias(),
            "kuromoji": self.kuromoji,
            "documents": self.count(),
        }

    # -- reading -----------------------------------------------------------------------------
    # -- meaning -----------------------------------------------------------------------------
    def _index_state(self) -> Any:
        """What changes when the alias moves or documents are written."""
        stats = self.request("GET", f"/{self.alias}/_stats/docs,indexing")["indices"]
        return tuple(
            sorted(
                (
                    name,
                    s["primaries"]["docs"]["count"],
                    s["primaries"]["indexing"]["index_total"],
                    s["primaries"]["indexing"]["delete_total"],
                )
                for name, s in stats.items()
            )
        )

    def _vector_index(self) -> tuple[list[str], vectors.VectorIndex]:
        """(ids in id order, their vectors) of the index, read once per change of the index
        (no k-NN plugin is served for this node version: the backend searches them)."""
        with self._vectors_lock:
            now = time.monotonic()
            if self._vectors is not None and now - self._vectors_checked < VECTOR_CHECK_S:
                return self._vectors[1:]
            state = self._index_state()
            self._vectors_checked = now
            if self._vectors is not None and self._vectors[0] == state:
                return self._vectors[1:]
            ids: list[str] = []
            blobs: list[bytes] = []
            after = None
            while True:
                body = requests_.vectors_body(VECTOR_PAGE, after)
                page = self.request("POST", f"/{self.alias}/_search", body)["hits"]["hits"]
                for raw in page:
                    blob = (raw.get("_source") or {}).get("vector")
                    if blob:
                        ids.append(raw["_id"])
                        blobs.append(base64.b64decode(blob))
                if len(page) < VECTOR_PAGE:
                    break
                after = page[-1]["sort"][0]
            if any(a > b for a, b in zip(ids, ids[1:], strict=False)):  # bisect needs them sorted
                order = sorted(range(len(ids)), key=ids.__getitem__)
                ids = [ids[i] for i in order]
                blobs = [blobs[i] for i in order]
            raw_rows = np.frombuffer(b"".join(blobs), dtype=np.uint8)
            raw_rows = raw_rows.reshape(len(blobs), 4 + vectors.DIM)
            del blobs
            index = vectors.VectorIndex(
                raw_rows[:, 4:].view(np.int8), raw_rows[:, :4].copy().view(np.float32)[:, 0]
            )
            self._vectors = (state, ids, index)
            return self._vectors[1:]

    @staticmethod
    def _positions(ids: list[str], wanted: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """(the wanted ids that have a vector, their positions in ``ids``, sorted by id)."""
        found: list[str] = []
        positions: list[int] = []
        for rid in wanted:
            at = bisect.bisect_left(ids, rid)
            if at < len(ids) and ids[at] == rid:
                found.append(rid)
                positions.append(at)
        return found, np.array(positions, dtype=np.int64)

    def _pool(
        self, near_vector: tuple[np.ndarray, float], index: vectors.VectorIndex, ids: list[str]
    ) -> list[str]:
        """The ids nearest the query's vector that may be added, nearest first: NEAR_POOL
        for each of SEMANTIC_K, since the query's filters and text matches take some."""
        limit = vectors.SEMANTIC_K * NEAR_POOL
        nearest, _sims = vectors.semantic_neighbours(index, near_vector, limit=limit)
        return [ids[i] for i in nearest]

    @staticmethod
    def _passing(pool: list[str], found: dict[str, Any]) -> tuple[list[str], dict[str, dict]]:
        """(the first SEMANTIC_K of ``pool`` that the neighbours' search returned, their
        facet values by id, as ``{"facets": {...}}``)."""
        facets: dict[str, dict] = {}
        for raw in found.get("hits", {}).get("hits", []):
            fields = raw.get("fields") or {}
            values = {}
            for name in FACETS:
                value = fields.get(f"facets.{name}")
                if value:
                    values[name] = value[0]
            facets[raw["_id"]] = {"facets": values}
        added = [rid for rid in pool if rid in facets][: vectors.SEMANTIC_K]
        return added, {rid: facets[rid] for rid in added}

    def _added(
        self,
        query: SearchQuery,
        clauses: list,
        kuromoji: bool,
        near_vector: tuple[np.ndarray, float],
        index: vectors.VectorIndex,
        ids: list[str],
    ) -> tuple[list[str], dict[str, dict]]:
        """(the nearest records in meaning that the text did not find and that pass the
        query's filters and exclusions, nearest first; their facet values by id)."""
        pool = self._pool(near_vector, index, ids)
        if not pool:
            return [], {}
        body = requests_.neighbours_body(query, clauses, kuromoji, pool)
        params = {"filter_path": requests_.NEIGHBOURS_FILTER_PATH}
        found = self.request("POST", f"/{self.alias}/_search", body, params=params)
        return self._passing(pool, found)

    def _msearch(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Several searches in one request (the node runs them side by side); a failed
        one raises as a failed request would."""
        lines = "".join(
            json.dumps(line, ensure_ascii=False) + "\n" for body in bodies for line in ({}, body)
        )
        params = {"filter_path": requests_.MSEARCH_FILTER_PATH}
        found = self.request("POST", f"/{self.alias}/_msearch", lines, params=params, ndjson=True)
        answers = found.get("responses", [])
        if len(answers) != len(bodies):
            raise ArchiveError(f"search cluster answered {len(answers)} of {len(bodies)} searches")
        for answer in answers:
            error = answer.get("error")
            if error is not None:
                reason = f"{error.get('type')}: {error.get('reason')}"
                status = int(answer.get("status") or 500)
                raise _status_error(status, reason, self.config.search_url)
        return answers

    def _page_sources(self, ids: list[str]) -> dict[str, dict]:
        """The _source (original text) of these documents, by id."""
        params = {"_source_includes": PAGE_SOURCE, "filter_path": "docs._id,docs._source"}
        body = requests_.page_sources(ids)
        found = self.request("POST", f"/{self.alias}/_mget", body, params=params)
        return {raw["_id"]: raw.get("_source") or {} for raw in found.get("docs", [])}

    def similar(self, record_id: str, limit: int = 10) -> list[str]:
        limit = max(1, min(limit, MAX_SIMILAR))
        if not self.vectors_on:
            return []
        try:
            ids, index = self._vector_index()
        except _Missing:
            return []
        _found, at = self._positions(ids, [record_id])
        if not len(at):
            return []
        position = int(at[0])
        others = np.arange(len(ids))
        others = others[others != position]
        near = index.vector(position)
        best, _sims = index.nearest(near, limit, others)
        return [ids[i] for i in best]

    def search(self, query: SearchQuery) -> SearchResult:
        check_query(query)
        clauses = parse(query.q)
        kuromoji = self.kuromoji
        try:
            return self._search(query, clauses, kuromoji)
        except _Missing:
            return SearchResult(
                total=0,
                hits=[],
                facets={name: [] for name in FACETS} if query.facets else {},
                page=query.page,
                size=query.size,
            )

    def _search(self, query: SearchQuery, clauses: list, kuromoji: bool) -> SearchResult:
        text = self.semantic_text(query, clauses)
        # The query's vector is made in a thread while the node answers the text.
        pending = vectors.query_soon(text, self.shared_queries) if text else None
        near: list[str] = []
        if pending is not None:
            ids, index = self._vector_index()
            if ids and query.sort == "relevance" and query.page * query.size <= HYBRID_WINDOW:
                return self._fused(query, clauses, kuromoji, pending, index, ids)
            if ids:  # another order, or deeper: the neighbours are sorted in with the rest
                near, _sources = self._added(query, clauses, kuromoji, pending.result(), index, ids)
        body = requests_.search_body(query, clauses, kuromoji, near=near)
        params = {"filter_path": requests_.SEARCH_FILTER_PATH}
        result = self.request("POST", f"/{self.alias}/_search", body, params=params)
        raws = result.get("hits", {}).get("hits", [])
        page = [(raw["_id"], float(raw.get("_score") or 0.0)) for raw in raws]
        hits = _hits(page, {raw["_id"]: raw.get("_source") or {} for raw in raws}, clauses)
        facets = _facets(result) if query.facets else {}
        return SearchResult(
            total=_total(result), hits=hits, facets=facets, page=query.page, size=query.size
        )

    def _fused(
        self,
        query: SearchQuery,
        clauses: list,
        kuromoji: bool,
        pending: Future,
        index: vectors.VectorIndex,
        ids: list[str],
    ) -> SearchResult:
        """A page by relevance: the text's first HYBRID_WINDOW and the similarity ranking
        fused (RRF), the total and facets of the text matches and the added neighbours.

        A query whose vector is known already (``pending`` done: a query this node or a
        sibling embedded before) has its neighbours checked in the same ``_msearch`` as
        the text's count and ranking, one request to the node; otherwise the text goes
        first, and its vector is made while the node counts and ranks it."""
        bodies = requests_.fused_bodies(query, clauses, kuromoji, HYBRID_WINDOW)
        pool: list[str] | None = None
        if pending.done():
            pool = self._pool(pending.result(), index, ids)
            if pool:
                bodies.append(requests_.neighbours_body(query, clauses, kuromoji, pool))
        answers = self._msearch(bodies)
        counted, ranked = answers[0], answers[1]
        if pool is None:
            added, sources = self._added(query, clauses, kuromoji, pending.result(), index, ids)
        else:
            added, sources = self._passing(pool, answers[2] if pool else {})
        near_vector = pending.result()
        text_ranked = [raw["_id"] for raw in ranked.get("hits", {}).get("hits", [])]
        members = list(dict.fromkeys(text_ranked + added))
        having, positions = self._positions(ids, members)
        by_id = dict(zip(having, index.scores(near_vector, positions).tolist(), strict=True))
        similar = sorted(members, key=lambda rid: -by_id.get(rid, -1.0))
        end = query.page * query.size
        fused = vectors.rrf([text_ranked, similar])[(query.page - 1) * query.size : end]
        found: dict[str, dict] = {}
        if fused and clauses:  # highlights need the page's text; nothing else does
            found = self._page_sources([rid for rid, _score in fused])
        hits = _hits(fused, found, clauses)
        facets: dict[str, list[tuple[str, int]]] = {}
        if query.facets:
            facets = self._with_added(query, clauses, kuromoji, _facets(counted), sources)
        return SearchResult(
            total=_total(counted) + len(added),
            hits=hits,
            facets=facets,
            page=query.page,
            size=query.size,
        )

    def _with_added(
        self,
        query: SearchQuery,
        clauses: list,
        kuromoji: bool,
        facets: dict[str, list[tuple[str, int]]],
        sources: dict[str, dict],
    ) -> dict[str, list[tuple[str, int]]]:
        """The text matches' facets (every value, up to FACET_COUNTED) with the added
        neighbours counted in, as one search over both would count them, cut to
        FACET_LIMIT. A value of theirs beyond a facet's FACET_COUNTED buckets has a text
        count the buckets do not say: those are asked for."""
        extra: dict[str, Counter] = {name: Counter() for name in FACETS}
        for source in sources.values():
            for name, value in (source.get("facets") or {}).items():
                if name in extra and value not in (None, ""):
                    extra[name][str(value)] += 1
        unknown: dict[str, list[str]] = {}
        for name, counts in extra.items():
            listed = {key for key, _n in facets.get(name, [])}
            if len(facets.get(name, [])) >= requests_.FACET_COUNTED:
                missing = sorted(value for value in counts if value not in listed)
                if missing:
                    unknown[name] = missing
        known: dict[str, dict[str, int]] = {}
        if unknown:
            body = requests_.facet_counts_body(query, clauses, kuromoji, unknown)
            (answer,) = self._msearch([body])
            for name in unknown:
                buckets = answer.get("aggregations", {}).get(name, {}).get("buckets", {})
                known[name] = {key: int(b.get("doc_count", 0)) for key, b in buckets.items()}
        merged: dict[str, list[tuple[str, int]]] = {}
        for name in FACETS:
            counts = dict(facets.get(name, []))
            for value, n in known.get(name, {}).items():
                counts[value] = n
            for value, n in extra[name].items():
                counts[value] = counts.get(value, 0) + n
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            merged[name] = [(key, n) for key, n in ranked if n > 0][: requests_.FACET_LIMIT]
        return merged

    def suggest(self, prefix: str, lang: str = "ja", limit: int = 10) -> list[str]:
        from .text import fold

        key = fold(prefix).strip()
        if not key:
            return []
        limit = max(1, min(limit, 50))
        try:
            result = self.request("POST", f"/{self.alias}/_search", requests_.suggest_body(prefix))
        except _Missing:
            return []
        counts: Counter[tuple[str, str]] = Counter()
        for raw in result["hits"]["hits"]:
            original = raw["_source"].get("original", {})
            pairs = [tuple(p) for p in original.get("_suggest", [])]
            for text, text_lang in pairs:
                if fold(text).startswith(key):
                    counts[(text, text_lang)] += 1
            reading = original.get("_reading")
            if reading and fold(reading).startswith(key) and pairs:
                counts[(pairs[0][0], "ja")] += 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0][0]))
        out: list[str] = []
        for preferred in (True, False):
            for (text, text_lang), _n in ranked:
                if (text_lang == lang) == preferred and text not in out:
                    out.append(text)
        return out[:limit]


def _total(result: dict[str, Any]) -> int:
    total = result.get("hits", {}).get("total", 0)
    return total["value"] if isinstance(total, dict) else int(total)


def _facets(result: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """The terms aggregations of a search's answer: facet -> [(value, count)]."""
    aggregations = result.get("aggregations", {})
    return {
        name: [
            (str(b["key"]), int(b["doc_count"]))
            for b in aggregations.get(name, {}).get("buckets", [])
        ]
        for name in FACETS
    }


class _Missing(ArchiveError):
    """The alias or index does not exist (yet)."""

    http_status = 404


def _actions(lines: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The lines of a bulk body, one list per action: a delete alone, else with its source."""
    n = 0
    while n < len(lines):
        size = 1 if "delete" in lines[n] else 2
        yield lines[n : n + size]
        n += size


def _hits(page: list[tuple[str, float]], sources: dict[str, dict], clauses: list) -> list[Hit]:
    """The page's hits, (id, score) in order, marked where their ``sources``' original
    text matches the query (no query: no marks)."""
    marker = Highlighter(clauses)
    hits = []
    for rid, score in page:
        original = (sources.get(rid) or {}).get("original") or {}
        marks = marker.fields(original, HIGHLIGHT_FIELDS) if clauses else {}
        hits.append(Hit(id=rid, score=score, highlights=marks))
    return hits


def _translate(exc: Exception, url: str) -> ArchiveError:
    """The client's exception as one of ours: unreachable or overloaded -> SearchUnavailable."""
    status = getattr(exc, "status_code", None)
    meta = getattr(exc, "meta", None)
    if status is None and meta is not None:
        status = getattr(meta, "status", None)
    if not isinstance(status, int):
        return SearchUnavailable(f"search cluster at {url} is unreachable: {type(exc).__name__}")
    return _status_error(status, str(exc), url)


def _status_error(status: int, reason: str, url: str) -> ArchiveError:
    """What a failed request (or one search of an ``_msearch``) with this HTTP status is:
    404 the index missing, 401/403 our credentials refused, 429 and 5xx the cluster too
    busy or failing for now (``SearchUnavailable``, with ``.status``: to be asked again
    later), anything else a request the cluster rejected."""
    if status == 404:
        return _Missing(reason[:300])
    if status in (401, 403):
        return SearchUnavailable(f"search cluster at {url} refused our credentials ({status})")
    if status >= 500 or status == 429:
        busy = SearchUnavailable(f"search cluster at {url} answered {status}")
        busy.status = status
        return busy
    return ArchiveError(f"search cluster at {url} rejected a request ({status}): {reason[:500]}")
