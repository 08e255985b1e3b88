"""The embedded backend: SQLite FTS5 in the archive's data folder, no service to run.

FTS5 stores text already folded and cut by ``search.text`` (CJK bigrams, stemmed
words), so its ``unicode61`` tokenizer only splits on the spaces we put there. Facet
values, dates and sort keys live in the ``docs`` table beside it, keyed by the same
rowid. One connection per thread; readers never block on a writer (WAL), and a rebuild
is one transaction, so search sees the old index until the new one is complete.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from archive.config import Config
from archive.records import Institution, Record
from archive.storage import Home

from .base import FACETS, Hit, SearchBackend, SearchQuery, SearchResult, check_query
from .documents import HIGHLIGHT_FIELDS, TEXT_FIELDS, record_to_doc
from .highlight import SNIPPET_CHARS, highlight
from .query import Clause, parse
from .text import fold, index_text

SCHEMA_VERSION = "1"
_COLUMNS = tuple(TEXT_FIELDS)
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
CREATE INDEX IF NOT EXISTS docs_date_start ON docs (date_start);
CREATE INDEX IF NOT EXISTS docs_date_end ON docs (date_end);
CREATE INDEX IF NOT EXISTS docs_added ON docs (added);
{"".join(f"CREATE INDEX IF NOT EXISTS docs_{name} ON docs ({name});" for name in FACETS)}
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    {", ".join(_COLUMNS)},
    tokenize = "unicode61 remove_diacritics 0",
    prefix = '1'
);
CREATE TABLE IF NOT EXISTS suggest (
    doc INTEGER NOT NULL,
    key TEXT NOT NULL,
    term TEXT NOT NULL,
    lang TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS suggest_key ON suggest (key);
CREATE INDEX IF NOT EXISTS suggest_doc ON suggest (doc);
"""
# bm25() weights, in column order.
_WEIGHTS = ", ".join(str(TEXT_FIELDS[name]) for name in _COLUMNS)
_ORDER = {
    "relevance": "score, d.rowid",
    "date_asc": "d.date_start IS NULL, d.date_start, d.rowid",
    "date_desc": "d.date_end IS NULL, d.date_end DESC, d.rowid DESC",
    "added": "d.added DESC, d.rowid DESC",
}
FACET_LIMIT = 100  # values returned per facet


def _phrase(clause: Clause) -> str:
    quoted = " + ".join('"' + token.replace('"', '""') + '"' for token in clause.tokens)
    expr = quoted + (" *" if clause.prefix else "")
    if clause.fields:
        expr = "{" + " ".join(clause.fields) + "} : (" + expr + ")"
    return expr


def match_expression(clauses: list[Clause]) -> str:
    """The FTS5 MATCH expression of parsed clauses: phrases ANDed, exclusions NOTed."""
    positive = [_phrase(c) for c in clauses if not c.negate]
    expr = " AND ".join(positive)
    for clause in clauses:
        if clause.negate:
            expr = f"({expr}) NOT {_phrase(clause)}"
    return expr


class SqliteBackend(SearchBackend):
    """SQLite FTS5 at ``Home(config.home).search_db``."""

    name = "sqlite"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.path = Home(config.home).search_db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._pid = os.getpid()
        self._facet_cache: tuple[int, dict[str, list[tuple[str, int]]]] | None = None
        self.db.executescript(_SCHEMA)  # idempotent; executescript manages its own commit
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?),"
                " ('generation', '0')",
                (SCHEMA_VERSION,),
            )

    # -- connections -------------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: never share a connection with the parent
            self._local = threading.local()
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    # -- writing -----------------------------------------------------------------------------
    def _delete(self, db: sqlite3.Connection, record_id: str) -> None:
        row = db.execute("SELECT rowid FROM docs WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            return
        db.execute("DELETE FROM fts WHERE rowid = ?", row)
        db.execute("DELETE FROM suggest WHERE doc = ?", row)
        db.execute("DELETE FROM docs WHERE rowid = ?", row)

    def _insert(self, db: sqlite3.Connection, doc: dict[str, Any]) -> None:
        facets = doc["facets"]
        original = {name: doc["original"][name] for name in doc["original"]}
        cursor = db.execute(
            f"INSERT INTO docs (id, {', '.join(FACETS)}, date_start, date_end, added, title_sort,"
            f" original) VALUES (?, {', '.join('?' * len(FACETS))}, ?, ?, ?, ?, ?)",
            (
                doc["id"], *(facets[name] for name in FACETS), doc["date_start"],
                doc["date_end"], doc["added"], fold(doc["title_sort"]),
                json.dumps(original, ensure_ascii=False),
            ),
        )
        rowid = cursor.lastrowid
        db.execute(
            f"INSERT INTO fts (rowid, {', '.join(_COLUMNS)})"
            f" VALUES (?, {', '.join('?' * len(_COLUMNS))})",
            (rowid, *(index_text(doc[name]) for name in _COLUMNS)),
        )
        rows = [(rowid, fold(text), text, lang) for text, lang in doc["suggest"]]
        if doc["reading"]:
            rows.append((rowid, fold(doc["reading"]), doc["suggest"][0][0], "ja"))
        db.executemany("INSERT INTO suggest (doc, key, term, lang) VALUES (?, ?, ?, ?)", rows)

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

    def index(
        self, records: Iterable[Record], institutions: dict[str, Institution], *, batch: int = 500
    ) -> int:
        """Add or replace these records (non-public ones are removed); returns how many."""
        count = 0
        pending: list[tuple[Record, dict[str, Any] | None]] = []

        def flush() -> None:
            with self._write() as db:
                for record, doc in pending:
                    self._delete(db, record.id)
                    if doc is not None:
                        self._insert(db, doc)
            pending.clear()

        for item in self._docs(records, institutions):
            pending.append(item)
            count += item[1] is not None
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        return count

    def delete(self, record_ids: Iterable[str]) -> None:
        with self._write() as db:
            for record_id in record_ids:
                self._delete(db, record_id)

    def rebuild(self, records: Iterable[Record], institutions: dict[str, Institution]) -> int:
        """Replace everything in one transaction: readers see the old index until commit."""
        count = 0
        with self._write() as db:
            for table in ("fts", "suggest", "docs"):
                db.execute(f"DELETE FROM {table}")
            for _record, doc in self._docs(records, institutions):
                if doc is not None:
                    self._insert(db, doc)
                    count += 1
        db.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        return count

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM docs").fetchone()[0]

    def health(self) -> dict[str, Any]:
        return {"backend": self.name, "path": str(self.path), "documents": self.count()}

    # -- reading -----------------------------------------------------------------------------
    def _where(self, query: SearchQuery, clauses: list[Clause]) -> tuple[str, list[Any]]:
        conditions: list[str] = []
        args: list[Any] = []
        if any(not c.negate for c in clauses):
            conditions.append("fts MATCH ?")
            args.append(match_expression(clauses))
        elif clauses:  # only exclusions: everything but what they match
            conditions.append("d.rowid NOT IN (SELECT rowid FROM fts WHERE fts MATCH ?)")
            args.append(" OR ".join(_phrase(c) for c in clauses))
        for name, values in query.filters.items():
            if name not in FACETS:
                continue  # validated by check_query; unknown names are ignored here
            values = tuple(values)
            if values:
                conditions.append(f"d.{name} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        if query.year_from is not None:
            conditions.append("d.date_end >= ?")
            args.append(query.year_from)
        if query.year_to is not None:
            conditions.append("d.date_start <= ?")
            args.append(query.year_to)
        return (" AND ".join(conditions) or "1"), args

    def search(self, query: SearchQuery) -> SearchResult:
        check_query(query)
        clauses = parse(query.q)
        where, args = self._where(query, clauses)
        ranked = any(not c.negate for c in clauses)
        source = "docs d JOIN fts ON fts.rowid = d.rowid" if ranked else "docs d"
        sort = query.sort if (ranked or query.sort != "relevance") else None
        order = _ORDER[sort] if sort else "d.id"
        score = f"bm25(fts, {_WEIGHTS})" if ranked else "0.0"
        offset = (query.page - 1) * query.size
        rows = self.db.execute(
            f"SELECT d.id, {score} AS score, d.original FROM {source} WHERE {where}"
            f" ORDER BY {order} LIMIT ? OFFSET ?",
            (*args, query.size, offset),
        ).fetchall()
        hits = [
            Hit(id=rid, score=0.0 - float(s), highlights=self._highlights(original, clauses))
            for rid, s, original in rows
        ]
        if query.facets:
            total, facets = self._facets(source, where, args, plain=where == "1")
        else:
            total = self.db.execute(f"SELECT count(*) FROM {source} WHERE {where}", args)
            total, facets = total.fetchone()[0], {}
        return SearchResult(total=total, hits=hits, facets=facets, page=query.page, size=query.size)

    def _highlights(self, original: str, clauses: list[Clause]) -> dict[str, str]:
        if not clauses:
            return {}
        out: dict[str, str] = {}
        for name, value in json.loads(original).items():
            text = "、".join(value) if isinstance(value, list) else str(value)
            field = HIGHLIGHT_FIELDS[name]
            snippet = SNIPPET_CHARS if field == "description" else None
            marked = highlight(text, clauses, field, snippet)
            if marked:
                out[name] = marked
        return out

    def _facets(
        self, source: str, where: str, args: list[Any], *, plain: bool
    ) -> tuple[int, dict[str, list[tuple[str, int]]]]:
        """Total and facet counts over every match, in one pass over the matching rows."""
        generation = self._generation() if plain else -1
        if plain and self._facet_cache and self._facet_cache[0] == generation:
            facets = self._facet_cache[1]
            return sum(c for _v, c in facets["has_images"]), facets
        counters = [Counter() for _ in FACETS]
        total = 0
        cursor = self.db.execute(
            f"SELECT {', '.join('d.' + name for name in FACETS)} FROM {source} WHERE {where}", args
        )
        for row in cursor:
            total += 1
            for counter, value in zip(counters, row, strict=True):
                if value is not None:
                    counter[value] += 1
        facets = {
            name: sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:FACET_LIMIT]
            for name, counter in zip(FACETS, counters, strict=True)
        }
        if plain:
            self._facet_cache = (generation, facets)
        return total, facets

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

