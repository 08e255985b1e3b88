"""The embedded backend's in-memory columns: facet codes, dates and sort orders by rowid.

FTS5 finds matching rowids quickly; counting eight facets, filtering and sorting
tens of thousands of them in SQL (or through bm25) is what made a search slow. So
each process keeps, per index generation, one numpy array per facet (value code by
rowid), the years, and each sort order as a rank by rowid, built in one pass over
``docs``. A search is then: rowids from FTS5, then masks, ``bincount`` and a partial
sort over arrays. Memory: about 60 bytes per document.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import FACETS

_MISSING = np.iinfo(np.int64).max // 2  # sorts after every real year
# Match results remembered per generation (rowids and scores of what FTS5 found for an
# expression: visitors repeat words, and a broad one's rows cost milliseconds to read),
# in array elements: 8 MB of int64 at most per process.
REMEMBER_ELEMENTS = 1_000_000
Rowids = np.ndarray  # int64 rowids


@dataclass
class Columns:
    generation: int
    live: Rowids  # rowids in the index, ascending
    codes: dict[str, np.ndarray]  # facet -> int32 code by rowid (-1: none)
    values: dict[str, list[str]]  # facet -> value by code
    date_start: np.ndarray  # int64 by rowid; _MISSING when unknown
    date_end: np.ndarray
    ranks: dict[str, np.ndarray]  # sort name -> position in that order, by rowid
    orders: dict[str, Rowids]  # sort name -> rowids in that order
    all_facets: dict[str, list[tuple[str, int]]] | None = None  # of the whole index, once
    # the embeddings aligned with ``live`` (a search.vectors.VectorIndex, loaded on first use)
    vectors: Any = None
    # rowid -> its position in ``live`` (-1: not in the index)
    position: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    _memo: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _memo_size: int = 0
    _memo_lock: Any = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, db: sqlite3.Connection, generation: int) -> Columns:
        rows = db.execute(
            f"SELECT rowid, {', '.join(FACETS)}, date_start, date_end, added, id,"
            " length(title_sort) FROM docs ORDER BY rowid"
        ).fetchall()
        size = (rows[-1][0] + 1) if rows else 1
        live = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        codes: dict[str, np.ndarray] = {}
        values: dict[str, list[str]] = {}
        for i, name in enumerate(FACETS, 1):
            column = np.full(size, -1, dtype=np.int32)
            lookup: dict[str, int] = {}
            raw = [row[i] for row in rows]
            column[live] = [-1 if v is None else lookup.setdefault(v, len(lookup)) for v in raw]
            codes[name] = column
            values[name] = list(lookup)
        n = len(FACETS)
        start = np.full(size, _MISSING, dtype=np.int64)
        end = np.full(size, _MISSING, dtype=np.int64)
        start[live] = [_MISSING if row[n + 1] is None else row[n + 1] for row in rows]
        end[live] = [_MISSING if row[n + 2] is None else row[n + 2] for row in rows]
        added = [row[n + 3] for row in rows]
        ident = [row[n + 4] for row in rows]
        title_len = np.array([row[n + 5] or 0 for row in rows], dtype=np.int64)
        # Positions (into ``live``) in each order; ties by rowid.
        by_id = np.array(sorted(range(len(rows)), key=ident.__getitem__), dtype=np.int64)
        by_added = np.array(
            sorted(range(len(rows)), key=lambda i: (added[i], live[i]), reverse=True),
            dtype=np.int64,
        )
        has_end = end[live] != _MISSING
        positions = {
            "id": by_id,
            "date_asc": np.lexsort((live, start[live])),
            "date_desc": np.lexsort((-live, np.where(has_end, -end[live], 1), ~has_end)),
            "added": by_added,
            # The static relevance order: shorter titles (closer to the words searched) first.
            "prior": np.lexsort((np.argsort(by_id), title_len)),
        }
        orders: dict[str, Rowids] = {}
        ranks: dict[str, np.ndarray] = {}
        for name, position in positions.items():
            orders[name] = live[position]
            rank = np.zeros(size, dtype=np.int64)
            rank[orders[name]] = np.arange(len(rows), dtype=np.int64)
            ranks[name] = rank
        position = np.full(size, -1, dtype=np.int32)
        position[live] = np.arange(len(live), dtype=np.int32)
        return cls(generation, live, codes, values, start, end, ranks, orders, position=position)

    def positions(self, rowids: Rowids) -> np.ndarray:
        """Positions in ``live`` of the rowids (-1 for one not in the index)."""
        rowids = np.asarray(rowids, dtype=np.int64)
        inside = (rowids >= 0) & (rowids < len(self.position))
        if inside.all():
            return self.position[rowids]
        out = np.full(len(rowids), -1, dtype=np.int32)
        out[inside] = self.position[rowids[inside]]
        return out

    def remembered(self, key: Any) -> Any:
        """What ``remember`` kept under ``key`` for this generation, or None."""
        with self._memo_lock:
            found = self._memo.get(key)
            if found is not None:
                self._memo.move_to_end(key)
            return found

    def remember(self, key: Any, value: Any) -> None:
        """Keep an array (or a tuple of arrays) for this generation, the least recently
        used going first beyond REMEMBER_ELEMENTS."""
        size = sum(len(a) for a in value) if isinstance(value, tuple) else len(value)
        if size > REMEMBER_ELEMENTS // 4:
            return
        with self._memo_lock:
            old = self._memo.pop(key, None)
            if old is not None:
                self._memo_size -= _elements(old)
            self._memo[key] = value
            self._memo_size += size
            while self._memo_size > REMEMBER_ELEMENTS and self._memo:
                _key, dropped = self._memo.popitem(last=False)
                self._memo_size -= _elements(dropped)

    # -- per query ---------------------------------------------------------------------------
    def filter(
        self,
        rowids: Rowids,
        filters: dict[str, Sequence[str]],
        year_from: int | None,
        year_to: int | None,
    ) -> Rowids:
        """The rowids that pass the facet filters (OR within one, AND across) and years."""
        keep = np.ones(len(rowids), dtype=bool)
        for name, wanted in filters.items():
            if not wanted:
                continue
            lookup = {value: code for code, value in enumerate(self.values[name])}
            codes = [lookup[v] for v in wanted if v in lookup]
            keep &= np.isin(self.codes[name][rowids], codes)
        if year_from is not None:
            end = self.date_end[rowids]
            keep &= (end != _MISSING) & (end >= year_from)
        if year_to is not None:
            keep &= self.date_start[rowids] <= year_to
        return rowids[keep]

    def facets(self, rowids: Rowids, limit: int) -> dict[str, list[tuple[str, int]]]:
        """Counts per facet value over ``rowids``, most frequent first (ties by value)."""
        result: dict[str, list[tuple[str, int]]] = {}
        for name in FACETS:
            values = self.values[name]
            codes = self.codes[name][rowids]
            counts = np.bincount(codes[codes >= 0], minlength=len(values))
            present = np.flatnonzero(counts)
            ranked = sorted(
                ((values[c], int(counts[c])) for c in present), key=lambda item: (-item[1], item[0])
            )
            result[name] = ranked[:limit]
        return result

    def page(self, order: str, members: Rowids | None, offset: int, size: int) -> Rowids:
        """Rowids ``offset``..``offset+size`` of ``members`` (None: all) in a global order,
        by a partial sort of their ranks."""
        if members is None:
            return self.orders[order][offset : offset + size]
        end = min(offset + size, len(members))
        if offset >= end:
            return members[:0]
        ranks = self.ranks[order][members]
        if end < len(members):
            top = np.argpartition(ranks, end - 1)[:end]
        else:
            top = np.arange(len(members))
        top = top[np.argsort(ranks[top], kind="stable")]
        return members[top[offset:end]]


def _elements(value: Any) -> int:
    return sum(len(a) for a in value) if isinstance(value, tuple) else len(value)
