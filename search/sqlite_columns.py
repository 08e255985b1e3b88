"""The embedded backend's in-memory columns: facet codes, dates and sort orders by rowid.

FTS5 finds matching rowids quickly; counting eight facets, filtering and sorting
tens of thousands of them in SQL (or through bm25) is what made a search slow. So
each process keeps, per index generation, one list per facet (value code by rowid)
and the global orders for each sort, built in one pass over ``docs``. A search is
then: rowids from FTS5, filters and facet counts over lists, and the page taken by
walking a precomputed order. Memory: about 15 small ints per document.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .base import FACETS

_MISSING = 1 << 40  # sorts after every real year


@dataclass
class Columns:
    generation: int
    live: list[int]  # rowids in the index, ascending
    codes: dict[str, list[int]]  # facet -> code by rowid (-1: none)
    values: dict[str, list[str]]  # facet -> value by code
    date_start: list[int]  # by rowid; _MISSING when unknown
    date_end: list[int]
    orders: dict[str, list[int]]  # sort name -> rowids in that order
    ranks: dict[str, list[int]]  # sort name -> position in that order, by rowid
    all_facets: dict[str, list[tuple[str, int]]] | None = None  # of the whole index, once

    @classmethod
    def load(cls, db: sqlite3.Connection, generation: int) -> Columns:
        rows = db.execute(
            f"SELECT rowid, {', '.join(FACETS)}, date_start, date_end, added, id,"
            " length(title_sort) FROM docs ORDER BY rowid"
        ).fetchall()
        size = (rows[-1][0] + 1) if rows else 1
        codes = {name: [-1] * size for name in FACETS}
        values: dict[str, list[str]] = {name: [] for name in FACETS}
        lookup: dict[str, dict[str, int]] = {name: {} for name in FACETS}
        start = [_MISSING] * size
        end = [_MISSING] * size
        live = []
        n_facets = len(FACETS)
        for row in rows:
            rowid = row[0]
            live.append(rowid)
            for i, name in enumerate(FACETS):
                value = row[1 + i]
                if value is None:
                    continue
                table = lookup[name]
                code = table.get(value)
                if code is None:
                    code = table[value] = len(values[name])
                    values[name].append(value)
                codes[name][rowid] = code
            if row[1 + n_facets] is not None:
                start[rowid] = row[1 + n_facets]
            if row[2 + n_facets] is not None:
                end[rowid] = row[2 + n_facets]
        added = {row[0]: row[3 + n_facets] for row in rows}
        ident = {row[0]: row[4 + n_facets] for row in rows}
        title_len = {row[0]: row[5 + n_facets] or 0 for row in rows}
        orders = {
            "id": sorted(live, key=ident.__getitem__),
            "date_asc": sorted(live, key=lambda r: (start[r], r)),
            "date_desc": sorted(live, key=lambda r: (-end[r] if end[r] != _MISSING else 1, -r)),
            "added": sorted(live, key=lambda r: (added[r], r), reverse=True),
        }
        # The static relevance order: shorter titles (closer to the words searched) first.
        orders["prior"] = sorted(live, key=lambda r: (title_len[r], ident[r]))
        ranks = {}
        for name, sequence in orders.items():
            rank = [0] * size
            for position, rowid in enumerate(sequence):
                rank[rowid] = position
            ranks[name] = rank
        return cls(generation, live, codes, values, start, end, orders, ranks)

    # -- per query ---------------------------------------------------------------------------
    def filter(self, rowids: Iterable[int], filters: dict[str, Sequence[str]],
               year_from: int | None, year_to: int | None) -> list[int]:
        """The rowids that pass the facet filters (OR within one, AND across) and years."""
        out = list(rowids)
        for name, wanted in filters.items():
            if not wanted:
                continue
            lookup = {value: code for code, value in enumerate(self.values[name])}
            codes = {lookup[v] for v in wanted if v in lookup}
            column = self.codes[name]
            out = [r for r in out if column[r] in codes]
        if year_from is not None:
            end = self.date_end
            out = [r for r in out if end[r] != _MISSING and end[r] >= year_from]
        if year_to is not None:
            start = self.date_start
            out = [r for r in out if start[r] <= year_to]
        return out

    def facets(self, rowids: list[int], limit: int) -> dict[str, list[tuple[str, int]]]:
        """Counts per facet value over ``rowids``, most frequent first (ties by value)."""
        result: dict[str, list[tuple[str, int]]] = {}
        for name in FACETS:
            counts = Counter(map(self.codes[name].__getitem__, rowids))
            counts.pop(-1, None)
            values = self.values[name]
            ranked = sorted(((values[c], n) for c, n in counts.items()),
                            key=lambda item: (-item[1], item[0]))
            result[name] = ranked[:limit]
        return result

    def page(self, order: str, members: set[int] | None, offset: int, size: int) -> list[int]:
        """Rowids ``offset``..``offset+size`` of ``members`` (None: all) in a global order.

        Dense members are found by walking the precomputed order; sparse ones (under 1 in
        20) are sorted by their position in it, which is cheaper than the walk."""
        sequence = self.orders[order]
        if members is None:
            return sequence[offset : offset + size]
        if len(members) * 20 < len(sequence):
            return sorted(members, key=self.ranks[order].__getitem__)[offset : offset + size]
        out: list[int] = []
        skipped = 0
        for rowid in sequence:
            if rowid in members:
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(rowid)
                if len(out) == size:
                    break
        return out
