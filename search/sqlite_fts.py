"""The embedded backend: SQLite FTS5 in the archive's data folder, no service to run.

FTS5 stores text already folded and cut by ``search.text`` (CJK bigrams, stemmed
words), so its ``unicode61`` tokenizer only splits on the spaces we put there. Facet
values, dates and sort keys live in the ``docs`` table beside it, keyed by the same
rowid. One connection per thread; readers never block on a writer (WAL), and a rebuild
is one transaction, so search sees the old index until the new one is complete.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np

from archive.config import Config
from archive.errors import BadRequest, SearchUnavailable
from archive.records import Institution, Record
from archive.sqlite import Connections
from archive.storage import Home

from . import vectors
from .base import FACETS, MAX_SIMILAR, Hit, SearchBackend, SearchQuery, SearchResult, check_query
from .documents import HIGHLIGHT_FIELDS, ROMAJI_FIELD, ROMAJI_WEIGHT, TEXT_FIELDS, record_to_doc
from .highlight import Highlighter
from .query import Clause, parse
from .sqlite_columns import Columns
from .text import fold, index_text

SCHEMA_VERSION = "2"  # 2: readings, normalised forms and romaji keys
_COLUMNS = (*TEXT_FIELDS, ROMAJI_FIELD)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    {", ".join(f"{name} TEXT" for name in FACETS)},
    date_start INTEGER,
    date_end INTEGER,
    added TEXT NOT NULL,
    title_sort TEXT NOT NULL,
    original TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    {", ".join(_COLUMNS)},
    tokenize = "unicode61 remove_diacritics 0"
);
CREATE TABLE IF NOT EXISTS suggest (
    doc INTEGER NOT NULL,
    key TEXT NOT NULL,
    term TEXT NOT NULL,
    lang TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS suggest_key ON suggest (key);
CREATE INDEX IF NOT EXISTS suggest_doc ON suggest (doc);
CREATE TABLE IF NOT EXISTS vectors (rowid INTEGER PRIMARY KEY, v BLOB NOT NULL);
"""
# bm25() weights, in column order.
_WEIGHTS = ", ".join(str({**TEXT_FIELDS, ROMAJI_FIELD: ROMAJI_WEIGHT}[name]) for name in _COLUMNS)
_TEXT_COLUMNS = "{" + " ".join(TEXT_FIELDS) + "}"
# Sort name -> order in Columns.orders (an empty query "by relevance" lists by id).
_ORDERS = {"relevance": "id", "date_asc": "date_asc", "date_desc": "date_desc", "added": "added"}
_EXTRA_TABLES = ("vectors",)
FACET_LIMIT = 100  # values returned per facet
RANK_LIMIT = 2000  # matches ranked by BM25 in full; beyond, see _ranked_page
TITLE_FIELDS = ("title", "kana")
HYBRID_WINDOW = 200  # ranks of each list fused for a page by relevance
# Candidates of the vector first pass scored again for the similarity half of a page by
# relevance (VectorIndex.nearest's ``wide``): a ranking of 200 to fuse, not ten nearest.
HYBRID_WIDE = 2000
_NONE = np.zeros(0, dtype=np.int64)


def _quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _tokens_phrase(tokens: tuple[str, ...], prefix: bool) -> str:
    return " + ".join(map(_quote, tokens)) + (" *" if prefix else "")


def _phrase(clause: Clause) -> str:
    """One clause: its tokens in a row in the text columns (or its fields), or, for a bare
    word, its normalised form in ``norm`` or its romaji key in ``romaji``."""
    expr = _tokens_phrase(clause.tokens, clause.prefix)
    columns = "{" + " ".join(clause.fields) + "}" if clause.fields else _TEXT_COLUMNS
    expr = f"{columns} : ({expr})"
    if not clause.widened:
        return expr
    alternatives = [expr]
    if clause.norm_tokens:
        alternatives.append(
            "{norm} : (" + _tokens_phrase(clause.norm_tokens, clause.norm_prefix) + ")"
        )
    if clause.romaji:
        star = " *" if clause.romaji_prefix else ""
        alternatives.append(f"{{{ROMAJI_FIELD}}} : ({_quote(clause.romaji)}{star})")
    return "(" + " OR ".join(alternatives) + ")"


def match_expression(clauses: list[Clause]) -> str:
    """The FTS5 MATCH expression of parsed clauses: phrases ANDed, exclusions NOTed."""
    positive = [_phrase(c) for c in clauses if not c.negate]
    expr = " AND ".join(positive)
    for clause in clauses:
        if clause.negate:
            expr = f"({expr}) NOT {_phrase(clause)}"
    return expr


def hybrid_window(offset: int, size: int) -> int:
    """How deep each ranking is fused for a page: HYBRID_WINDOW, or deeper for a deep page."""
    return max(offset + size, HYBRID_WINDOW)


class SqliteBackend(SearchBackend):
    """SQLite FTS5 at ``Home(config.home).search_db``."""

    name = "sqlite"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.path = Home(config.home).search_db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connections = Connections(self.path, ("cache_size=-65536",))
        self._lock = threading.Lock()
        self._cols: Columns | None = None
        # Batches whose vectors are still being embedded, within bulk(): (first rowid,
        # the documents' ids, the embedding), oldest first.
        self._deferred: list[tuple[int, list[str], vectors.Embedding]] = []
        self._upgrade()
        self.db.executescript(_SCHEMA)  # idempotent; executescript manages its own commit
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?),"
                " ('generation', '0'), ('embedding', ?)",
                (SCHEMA_VERSION, vectors.EMBEDDING_VERSION),
            )

    def _upgrade(self) -> None:
        """An index of an older schema is dropped, and marked for a rebuild from the
        catalog (``needs_rebuild``; ``Archive.attach_search`` does it at once): its columns
        cannot answer this version's queries. The mark stays until a rebuild finishes, so
        an interrupted one is done again."""
        db = self.db
        has_meta = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] == SCHEMA_VERSION:
            return
        with self._connections.transaction() as tx:
            for table in ("fts", "suggest", "docs", *_EXTRA_TABLES):
                tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('needs_rebuild', ?)",
                (
                    f"the search index was written by schema {row[0]}, this release reads "
                    f"schema {SCHEMA_VERSION}",
                ),
            )
            tx.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )

    # -- connections -------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connections.transaction() as db:
            yield db
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )

    def _generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    # -- writing -----------------------------------------------------------------------------
    def _delete_ids(self, db: sqlite3.Connection, record_ids: list[str]) -> None:
        for chunk in range(0, len(record_ids), 500):
            ids = record_ids[chunk : chunk + 500]
            rows = db.execute(
                f"SELECT rowid FROM docs WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
            for table, key in (
                ("fts", "rowid"),
                ("suggest", "doc"),
                ("vectors", "rowid"),
                ("docs", "rowid"),
            ):
                db.executemany(f"DELETE FROM {table} WHERE {key} = ?", rows)

    def _insert_many(
        self, db: sqlite3.Connection, docs: list[dict[str, Any]], known: dict[bytes, bytes]
    ) -> tuple[int, vectors.Embedding | None]:
        """Insert documents' text, facets and suggestions (three executemany calls, with
        rowids we assign) while their passages are embedded; returns the first rowid and
        the embedding, for ``_insert_vectors``."""
        if not docs:
            return 0, None
        embedding = self.submit_passages([vectors.passage_text(doc) for doc in docs], known)
        first = (db.execute("SELECT max(rowid) FROM docs").fetchone()[0] or 0) + 1
        doc_rows, fts_rows, suggest_rows = [], [], []
        for rowid, doc in enumerate(docs, first):
            facets = doc["facets"]
            doc_rows.append(
                (
                    rowid,
                    doc["id"],
                    *(facets[name] for name in FACETS),
                    doc["date_start"],
                    doc["date_end"],
                    doc["added"],
                    fold(doc["title_sort"]),
                    json.dumps(doc["original"], ensure_ascii=False),
                )
            )
            fts_rows.append(
                (rowid, *(index_text(doc[name]) for name in TEXT_FIELDS), doc[ROMAJI_FIELD])
            )
            suggest_rows.extend((rowid, fold(text), text, lang) for text, lang in doc["suggest"])
            if doc["reading"] and doc["suggest"]:
                suggest_rows.append((rowid, fold(doc["reading"]), doc["suggest"][0][0], "ja"))
        db.executemany(
            f"INSERT INTO docs (rowid, id, {', '.join(FACETS)}, date_start, date_end, added,"
            f" title_sort, original) VALUES ({', '.join('?' * (len(FACETS) + 7))})",
            doc_rows,
        )
        db.executemany(
            f"INSERT INTO fts (rowid, {', '.join(_COLUMNS)})"
            f" VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})",
            fts_rows,
        )
        db.executemany(
            "INSERT INTO suggest (doc, key, term, lang) VALUES (?, ?, ?, ?)", suggest_rows
        )
        return first, embedding

    @staticmethod
    def _insert_vectors(
        db: sqlite3.Connection,
        first: int,
        embedding: vectors.Embedding | None,
        ids: list[str] | None = None,
    ) -> None:
        """The vectors of documents ``_insert_many`` wrote (waits for their embedding);
        a document without one (scale 0: ``search_vectors`` off) gets no row. With their
        ``ids`` (written later, ``_settle``), a document deleted or replaced since (its
        rowid no longer holds its id) gets none either."""
        if embedding is None:
            return
        matrix, scales = embedding.result()
        rowids = range(first, first + len(matrix))
        if ids is None:
            sql = "INSERT INTO vectors (rowid, v) VALUES (?, ?)"
            rows = (
                (rowid, vectors.to_bytes(row, scale))
                for rowid, row, scale in zip(rowids, matrix, scales, strict=True)
                if scale > 0
            )
        else:
            sql = (
                "INSERT OR REPLACE INTO vectors (rowid, v) SELECT ?, ?"
                " WHERE EXISTS (SELECT 1 FROM docs WHERE rowid = ? AND id = ?)"
            )
            rows = (
                (rowid, vectors.to_bytes(row, scale), rowid, record_id)
                for rowid, record_id, row, scale in zip(rowids, ids, matrix, scales, strict=True)
                if scale > 0
            )
        db.executemany(sql, rows)

    def _known_vectors(self, db: sqlite3.Connection, ids: list[str] | None) -> dict[bytes, bytes]:
        """The vectors this index holds, by the digest of their passage text (of the
        records ``ids``, or of every record): reused for records whose text is the same,
        when they were made by this model and passage recipe."""
        row = db.execute("SELECT value FROM meta WHERE key = 'embedding'").fetchone()
        if row is None or row[0] != vectors.EMBEDDING_VERSION:
            return {}
        query = "SELECT d.original, v.v FROM docs d JOIN vectors v ON v.rowid = d.rowid"
        chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)] if ids is not None else [None]
        known: dict[bytes, bytes] = {}
        for chunk in chunks:
            if chunk is None:
                rows = db.execute(query)
            else:
                rows = db.execute(f"{query} WHERE d.id IN ({','.join('?' * len(chunk))})", chunk)
            for original, blob in rows:
                text = vectors.passage_text({"original": json.loads(original)})
                known[vectors.passage_digest(text)] = blob
        return known

    def _docs(
        self, records: Iterable[Record], institutions: dict[str, Institution]
    ) -> Iterator[tuple[Record, dict[str, Any] | None]]:
        for record in records:
            if not record.public:
                yield record, None
                continue
            doc = record_to_doc(record, institutions.get(record.institution))
            doc["original"] = {
                name: record.get(name) for name in HIGHLIGHT_FIELDS if record.get(name)
            }
            yield record, doc

    def _batches(
        self, records: Iterable[Record], institutions: dict[str, Institution], batch: int
    ) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
        ids: list[str] = []
        docs: list[dict[str, Any]] = []
        for record, doc in self._docs(records, institutions):
            ids.append(record.id)
            if doc is not None:
                docs.append(doc)
            if len(ids) >= batch:
                yield ids, docs
                ids, docs = [], []
        if ids:
            yield ids, docs

    def index(
        self, records: Iterable[Record], institutions: dict[str, Institution], *, batch: int = 1000
    ) -> int:
        """Add or replace these records (non-public ones are removed); returns how many."""
        count = 0
        for ids, docs in self._batches(records, institutions, batch):
            docs = list({doc["id"]: doc for doc in docs}.values())  # the last copy wins
            with self._write() as db:
                self._settle(db, wait=False)
                known = self._known_vectors(db, [doc["id"] for doc in docs])
                self._delete_ids(db, ids)
                first, embedding = self._insert_many(db, docs, known)
                if self._deferring and embedding is not None and not embedding.done():
                    # Within bulk(): the caller goes on (an ingest tiles and reads the next
                    # records) while the embedding processes work; written on a later call.
                    self._deferred.append((first, [doc["id"] for doc in docs], embedding))
                else:
                    self._insert_vectors(db, first, embedding)
            count += len(docs)
        return count

    def _settle(self, db: sqlite3.Connection, *, wait: bool) -> None:
        """Write the deferred batches' vectors: those embedded already, or all (``wait``)."""
        while self._deferred and (wait or self._deferred[0][2].done()):
            first, ids, embedding = self._deferred.pop(0)
            self._insert_vectors(db, first, embedding, ids)

    def settle_vectors(self, discard: bool = False) -> None:
        if discard:
            self._deferred.clear()
        elif self._deferred:
            with self._write() as db:
                self._settle(db, wait=True)

    def delete(self, record_ids: Iterable[str]) -> None:
        with self._write() as db:
            self._delete_ids(db, list(record_ids))

    def rebuild(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        """Replace everything in one transaction: readers see the old index until commit."""
        count = 0
        self.settle_vectors()  # what an ingest's bulk() left being embedded goes first
        with self._write() as db, self.bulk():
            known = self._known_vectors(db, None)
            for table in ("fts", "suggest", "vectors", "docs"):
                db.execute(f"DELETE FROM {table}")
            pending: tuple[int, vectors.Embedding | None] = (0, None)
            # While one batch is embedded, the next is analysed (Sudachi) and written.
            for _ids, docs in self._batches(records, institutions, 2000):
                written = self._insert_many(db, docs, known)
                self._insert_vectors(db, *pending)
                pending = written
                count += len(docs)
            self._insert_vectors(db, *pending)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedding', ?)",
                (vectors.EMBEDDING_VERSION,),
            )
            db.execute("DELETE FROM meta WHERE key = 'needs_rebuild'")
        db.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        return count

    follows_log = True

    def log_position(self) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'log_position'").fetchone()
        return int(row[0]) if row else None

    def set_log_position(self, seq: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('log_position', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(seq),),
            )

    def needs_rebuild(self) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'needs_rebuild'").fetchone()
        return row[0] if row else None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM docs").fetchone()[0]

    def document_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM docs")}

    def health(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "path": str(self.path),
            "documents": self.count(),
            "with_vectors": self.db.execute("SELECT count(*) FROM vectors").fetchone()[0],
        }

    # -- reading -----------------------------------------------------------------------------
    def _columns(self) -> Columns:
        """The in-memory columns of the current index generation (rebuilt when it changes)."""
        generation = self._generation()
        with self._lock:
            if self._cols is None or self._cols.generation != generation:
                self._cols = Columns.load(self.db, generation)
            return self._cols

    def _rowids(self, expr: str, cols: Columns | None = None) -> np.ndarray:
        """The rowids matching ``expr``, ascending (remembered per index generation in
        ``cols``: a broad word's tens of thousands of rows cost milliseconds to read)."""
        if cols is not None:
            found = cols.remembered(("match", expr))
            if found is not None:
                return found
        # One string, not a Python tuple per row: twice as fast for a broad word.
        (joined,) = self.db.execute(
            "SELECT group_concat(rowid) FROM fts WHERE fts MATCH ?", (expr,)
        ).fetchone()
        rowids = np.fromstring(joined, dtype=np.int64, sep=",") if joined else _NONE
        if len(rowids) > 1 and (rowids[1:] < rowids[:-1]).any():
            rowids = np.sort(rowids)
        if cols is not None:
            cols.remember(("match", expr), rowids)
        return rowids

    def _bm25(self, expr: str, members: np.ndarray, cols: Columns) -> list[tuple[int, float]]:
        """(rowid, score) of the members (sorted rowids) matching ``expr``, best first
        (field-weighted BM25; ties by rowid)."""
        found = cols.remembered(("bm25", expr))
        if found is None:
            rows = self.db.execute(
                f"SELECT rowid, bm25(fts, {_WEIGHTS}) FROM fts WHERE fts MATCH ?", (expr,)
            ).fetchall()
            rowids = np.fromiter((r for r, _s in rows), dtype=np.int64, count=len(rows))
            scores = np.fromiter((s for _r, s in rows), dtype=np.float64, count=len(rows))
            order = np.lexsort((rowids, scores))
            found = (rowids[order], scores[order])
            cols.remember(("bm25", expr), found)
        rowids, scores = found
        keep = np.isin(rowids, members, assume_unique=True)
        return list(zip(rowids[keep].tolist(), (-scores[keep]).tolist(), strict=True))

    def _ranked_page(
        self,
        clauses: list[Clause],
        matched: int,
        members: np.ndarray,
        offset: int,
        size: int,
        cols: Columns,
    ) -> list[tuple[int, float]]:
        """A page by relevance. Up to RANK_LIMIT matches are all ranked by BM25; beyond,
        records matching every word in the title (or its reading) come first, by BM25
        when few enough, and the rest follow in the static order (shorter titles first)."""
        end = offset + size
        if matched <= RANK_LIMIT:
            return self._bm25(match_expression(clauses), members, cols)[offset:end]
        in_title = [c if c.fields or c.negate else replace(c, fields=TITLE_FIELDS) for c in clauses]
        title_expr = match_expression(in_title)
        tier = self._rowids(title_expr, cols)
        tier = tier[np.isin(tier, members)]
        if len(tier) <= RANK_LIMIT:
            first = self._bm25(title_expr, tier, cols)[:end]
        else:
            first = [(int(r), 0.0) for r in cols.page("prior", tier, 0, end)]
        if end <= len(first):
            return first[offset:end]
        rest = members[~np.isin(members, tier)]
        tail = cols.page("prior", rest, max(0, offset - len(tier)), end - max(offset, len(tier)))
        return first[offset:] + [(int(r), 0.0) for r in tail]

    # -- meaning -----------------------------------------------------------------------------
    def _vectors(self, cols: Columns) -> vectors.VectorIndex:
        """The embeddings of this generation, aligned with ``cols.live`` (loaded once)."""
        with self._lock:
            if cols.vectors is None:
                matrix = np.zeros((len(cols.live), vectors.DIM), dtype=np.int8)
                scales = np.zeros(len(cols.live), dtype=np.float32)
                cursor = self.db.execute("SELECT rowid, v FROM vectors ORDER BY rowid")
                while rows := cursor.fetchmany(8192):
                    rowids = np.fromiter((r for r, _v in rows), dtype=np.int64, count=len(rows))
                    blobs = np.frombuffer(b"".join(v for _r, v in rows), dtype=np.uint8)
                    blobs = blobs.reshape(len(rows), 4 + vectors.DIM)
                    positions = np.minimum(np.searchsorted(cols.live, rowids), len(cols.live) - 1)
                    ok = cols.live[positions] == rowids
                    matrix[positions[ok]] = blobs[ok, 4:].view(np.int8)
                    scales[positions[ok]] = blobs[ok, :4].copy().view(np.float32)[:, 0]
                cols.vectors = vectors.VectorIndex(matrix, scales)
            return cols.vectors

    @staticmethod
    def _mask(cols: Columns, rowids: np.ndarray) -> np.ndarray:
        """A boolean mask over ``cols.live`` of the positions of ``rowids``."""
        mask = np.zeros(len(cols.live), dtype=bool)
        positions = cols.positions(rowids)
        mask[positions[positions >= 0]] = True
        return mask

    def _query_vector(self, query: SearchQuery, clauses: list[Clause], cols: Columns) -> Any:
        """The query's vector being made meanwhile (``vectors.query_soon``), or None when
        the query is not one to widen by meaning."""
        text = self.semantic_text(query, clauses)
        if not text or not len(cols.live):
            return None
        return vectors.query_soon(text, self.shared_queries)

    def _semantic(
        self,
        query: SearchQuery,
        clauses: list[Clause],
        cols: Columns,
        text_rowids: np.ndarray,
        filtered: bool,
        pending: Any,
    ) -> tuple[vectors.VectorIndex, tuple[np.ndarray, float], Any, np.ndarray] | None:
        """(the vectors, the query's vector, its first-pass scores or None, rowids to add:
        the nearest records the text did not find that pass the filters and exclusions),
        or None when the query is not one to widen by meaning (``pending`` is None)."""
        if pending is None:
            return None
        index = self._vectors(cols)
        near = pending.result()
        live = cols.live
        allowed = ~self._mask(cols, text_rowids)
        if filtered:
            passing = cols.filter(live, query.filters, query.year_from, query.year_to)
            allowed &= self._mask(cols, passing)
        negative = [c for c in clauses if c.negate]
        if negative:
            excluded = self._rowids(" OR ".join(_phrase(c) for c in negative), cols)
            allowed &= ~self._mask(cols, excluded)
        allowed &= index.present  # a record without a vector is never "near"
        rough = index.first_pass(near, None) if index.planes is not None else None
        positions, _sims = vectors.semantic_neighbours(index, near, allowed, rough=rough)
        return index, near, rough, live[positions]

    def _hybrid_page(
        self,
        text_ranked: list[int],
        members: np.ndarray,
        semantic: tuple[vectors.VectorIndex, tuple[np.ndarray, float], Any, np.ndarray],
        cols: Columns,
        offset: int,
        size: int,
    ) -> list[tuple[int, float]]:
        """A page of the text ranking (its first ``hybrid_window``, ranked meanwhile) and
        the similarity ranking fused (RRF), over the same depth of each."""
        end = offset + size
        window = hybrid_window(offset, size)
        index, near, rough, _added = semantic
        at = cols.positions(members)
        positions, _sims = index.nearest(
            near, window, at[at >= 0], pool=2 * window, rough=rough, wide=HYBRID_WIDE
        )
        fused = vectors.rrf([text_ranked, cols.live[positions].tolist()])
        return [(int(r), float(score)) for r, score in fused[offset:end]]

    def similar(self, record_id: str, limit: int = 10) -> list[str]:
        limit = max(1, min(limit, MAX_SIMILAR))
        if not self.vectors_on:
            return []
        db = self.db
        db.execute("BEGIN")
        try:
            cols = self._columns()
            found = db.execute("SELECT rowid FROM docs WHERE id = ?", (record_id,)).fetchone()
            if found is None:
                return []
            index = self._vectors(cols)
            position = int(np.searchsorted(cols.live, found[0]))
            if not index.present[position]:
                return []
            others = np.flatnonzero(index.present)
            others = others[others != position]
            near = index.vector(position)
            best, _sims = index.nearest(near, limit, others)
            rowids = [int(cols.live[i]) for i in best]
            if not rowids:
                return []
            marks = ",".join("?" * len(rowids))
            names = dict(db.execute(f"SELECT rowid, id FROM docs WHERE rowid IN ({marks})", rowids))
            return [names[r] for r in rowids if r in names]
        finally:
            db.execute("COMMIT")

    def search(self, query: SearchQuery) -> SearchResult:
        check_query(query)
        clauses = parse(query.q)
        db = self.db
        db.execute("BEGIN")  # one snapshot: the columns and the matches agree
        try:
            return self._search(query, clauses)
        except sqlite3.OperationalError as exc:
            if "fts5" in str(exc):  # a query FTS5 cannot parse: the client's to fix
                raise BadRequest(f"q cannot be searched: {exc}", parameter="q") from None
            raise SearchUnavailable(f"search index {self.path}: {exc}") from None
        finally:
            db.execute("COMMIT")

    def _search(self, query: SearchQuery, clauses: list[Clause]) -> SearchResult:
        cols = self._columns()
        positive = [c for c in clauses if not c.negate]
        negative = [c for c in clauses if c.negate]
        if positive:
            rowids = self._rowids(match_expression(clauses), cols)
        else:
            rowids = cols.live
            if negative:
                excluded = self._rowids(" OR ".join(_phrase(c) for c in negative), cols)
                rowids = rowids[~np.isin(rowids, excluded)]
        matched = len(rowids)
        filtered = (
            any(query.filters.values()) or query.year_from is not None or query.year_to is not None
        )
        if filtered:
            rowids = cols.filter(rowids, query.filters, query.year_from, query.year_to)
        text_rowids = rowids
        offset = (query.page - 1) * query.size
        pending = self._query_vector(query, clauses, cols)
        text_ranked = None
        if positive and query.sort == "relevance" and pending is not None:
            # Ranked while the query's vector is made: the text half of the fused page.
            window = hybrid_window(offset, query.size)
            text_ranked = [
                r for r, _s in self._ranked_page(clauses, matched, text_rowids, 0, window, cols)
            ]
        semantic = self._semantic(query, clauses, cols, text_rowids, filtered, pending)
        if semantic is not None and len(semantic[3]):
            added = semantic[3]  # never text matches (_semantic leaves them out)
            rowids = np.sort(np.concatenate([rowids, added]))
        plain = not clauses and not filtered
        facets: dict[str, list[tuple[str, int]]] = {}
        if query.facets:
            if plain:
                if cols.all_facets is None:
                    cols.all_facets = cols.facets(rowids, FACET_LIMIT)
                facets = cols.all_facets
            else:
                facets = cols.facets(rowids, FACET_LIMIT)
        if text_ranked is not None and semantic is not None:
            page = self._hybrid_page(text_ranked, rowids, semantic, cols, offset, query.size)
        elif positive and query.sort == "relevance":
            page = self._ranked_page(clauses, matched, rowids, offset, query.size, cols)
        else:
            members = None if plain else rowids
            page = [
                (int(r), 0.0) for r in cols.page(_ORDERS[query.sort], members, offset, query.size)
            ]
        hits = self._hits(page, clauses)
        return SearchResult(
            total=len(rowids), hits=hits, facets=facets, page=query.page, size=query.size
        )

    def _hits(self, page: list[tuple[int, float]], clauses: list[Clause]) -> list[Hit]:
        if not page:
            return []
        marks = ",".join("?" * len(page))
        found = {
            rowid: (rid, original)
            for rowid, rid, original in self.db.execute(
                f"SELECT rowid, id, original FROM docs WHERE rowid IN ({marks})",
                [r for r, _s in page],
            )
        }
        marker = Highlighter(clauses)
        return [
            Hit(
                id=found[r][0],
                score=score,
                highlights=marker.fields(json.loads(found[r][1]), HIGHLIGHT_FIELDS)
                if clauses
                else {},
            )
            for r, score in page
            if r in found
        ]

    def suggest(self, prefix: str, lang: str = "ja", limit: int = 10) -> list[str]:
        """Titles, creators, types and keywords starting with ``prefix`` (or whose reading
        does), most common first, in ``lang`` when there are any."""
        key = fold(prefix).strip()
        if not key:
            return []
        limit = max(1, min(limit, 50))
        rows = self.db.execute(
            "SELECT term, lang, count(*) AS n FROM suggest WHERE key >= ? AND key < ?"
            " GROUP BY term, lang ORDER BY n DESC, term LIMIT 500",
            (key, key + "\U0010ffff"),
        ).fetchall()
        preferred = [term for term, term_lang, _n in rows if term_lang == lang]
        others = [term for term, term_lang, _n in rows if term_lang != lang]
        out: list[str] = []
        for term in preferred + others:
            if term not in out:
                out.append(term)
            if len(out) >= limit:
                break
        return out
