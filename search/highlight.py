"""Highlighted snippets: the curator's text, HTML-escaped, with <mark> around what matched.

Matching is done on folded text and mapped back to the original characters, so a
query 国 marks 國 and a query lacquers marks "Lacquered". A ``Highlighter`` is built
once per query; both backends use it, so their snippets are the same.
"""

from __future__ import annotations

import html
from functools import lru_cache

from .query import Clause
from .text import _RUN_RE, fold, fold_with_map, runs, stem

SNIPPET_CHARS = 160
_SHORT = 80  # texts this long or shorter (names, kinds, materials) have their folds kept

_fold_short = lru_cache(maxsize=20_000)(fold)


def _folded(text: str) -> str:
    """``fold``, remembered for short texts: a page of hits repeats its types, materials
    and makers, and every query's hits fold them again."""
    return _fold_short(text) if len(text) <= _SHORT else fold(text)


class Highlighter:
    """The query's words per field: CJK runs found as substrings, Latin words by stem."""

    def __init__(self, clauses: list[Clause]) -> None:
        self._terms: list[tuple[tuple[str, ...], list[str], list[str]]] = []
        for clause in clauses:
            if clause.negate:
                continue
            pieces = runs(clause.text)
            cjk = [run for is_cjk, run in pieces if is_cjk]
            latin = [stem(run) for is_cjk, run in pieces if not is_cjk]
            self._terms.append((clause.fields, cjk, latin))
        self._fields: dict[str, tuple[list[str], set[str]]] = {}

    def _for(self, field: str) -> tuple[list[str], set[str]]:
        found = self._fields.get(field)
        if found is None:
            found = self._fields[field] = self._terms_for(field)
        return found

    def _terms_for(self, field: str) -> tuple[list[str], set[str]]:
        cjk: list[str] = []
        latin: set[str] = set()
        for fields, runs_, stems in self._terms:
            if not fields or field in fields:
                cjk.extend(runs_)
                latin.update(stems)
        return cjk, latin

    def _may_match(self, folded: str, field: str) -> bool:
        """The cheap test: most fields of a hit match nothing."""
        cjk, latin = self._for(field)
        return any(run in folded for run in cjk) or any(s[:3] in folded for s in latin)

    def spans(self, folded: str, field: str) -> list[tuple[int, int]]:
        """Merged (start, end) spans of matches in folded text."""
        if not self._may_match(folded, field):
            return []
        cjk, latin = self._for(field)
        spans: list[tuple[int, int]] = []
        for run in cjk:
            start = folded.find(run)
            while start >= 0:
                spans.append((start, start + len(run)))
                start = folded.find(run, start + len(run))
        if latin:
            spans.extend(
                (m.start(2), m.end(2))
                for m in _RUN_RE.finditer(folded)
                if m.group(2) and stem(m.group(2)) in latin
            )
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def __call__(self, text: str, field: str, snippet: int | None = None) -> str | None:
        """``text`` escaped with <mark>s, or None when nothing in it matched.

        With ``snippet``, a window of about that many characters around the first
        match, with an ellipsis where text was cut.
        """
        if not text or not self._terms or not self._may_match(_folded(text), field):
            return None
        folded, where = fold_with_map(text)
        spans = [(where[s], where[e - 1] + 1) for s, e in self.spans(folded, field)]
        if not spans:
            return None
        lo, hi = 0, len(text)
        if snippet and len(text) > snippet:
            lo = max(0, spans[0][0] - snippet // 4)
            hi = min(len(text), lo + snippet)
            lo = max(0, hi - snippet)
        out: list[str] = ["…" if lo > 0 else ""]
        cursor = lo
        for start, end in spans:
            if end <= lo or start >= hi:
                continue
            start, end = max(start, lo), min(end, hi)
            out.append(html.escape(text[cursor:start]))
            out.append(f"<mark>{html.escape(text[start:end])}</mark>")
            cursor = end
        out.append(html.escape(text[cursor:hi]))
        out.append("…" if hi < len(text) else "")
        return "".join(out)

    def fields(self, original: dict, names: dict[str, str]) -> dict[str, str]:
        """Highlights of a record's original fields (record field -> search field)."""
        out: dict[str, str] = {}
        if not self._terms:
            return out
        for name, value in original.items():
            field = names.get(name)
            if field is None or not value:
                continue
            text = "、".join(value) if isinstance(value, list) else str(value)
            marked = self(text, field, SNIPPET_CHARS if field == "description" else None)
            if marked:
                out[name] = marked
        return out


def highlight(
    text: str, clauses: list[Clause], field: str, snippet: int | None = None
) -> str | None:
    """``text`` escaped with <mark>s where ``clauses`` match it in ``field``, or None."""
    return Highlighter(clauses)(text, field, snippet)
