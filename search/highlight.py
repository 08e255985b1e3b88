"""Highlighted snippets: the curator's text, HTML-escaped, with <mark> around what matched.

Matching is done on folded text and mapped back to the original characters, so a
query 国 marks 國 and a query lacquers marks "Lacquered".
"""

from __future__ import annotations

import html

from .query import Clause
from .text import _RUN_RE, fold, fold_with_map, runs, stem

SNIPPET_CHARS = 160


def _spans(folded: str, clauses: list[Clause], field: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    words: list[tuple[int, int, str]] | None = None
    for clause in clauses:
        if clause.negate or (clause.fields and field not in clause.fields):
            continue
        for cjk, run in runs(clause.text):
            if cjk:
                start = folded.find(run)
                while start >= 0:
                    spans.append((start, start + len(run)))
                    start = folded.find(run, start + len(run))
                continue
            if words is None:
                words = [
                    (m.start(2), m.end(2), stem(m.group(2)))
                    for m in _RUN_RE.finditer(folded)
                    if m.group(2)
                ]
            target = stem(run)
            spans.extend((s, e) for s, e, w in words if w == target)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _may_match(folded: str, clauses: list[Clause], field: str) -> bool:
    """A cheap test that skips the character map for fields nothing can match in."""
    for clause in clauses:
        if clause.negate or (clause.fields and field not in clause.fields):
            continue
        for cjk, run in runs(clause.text):
            if (run in folded) if cjk else (stem(run)[:3] in folded):
                return True
    return False


def highlight(
    text: str, clauses: list[Clause], field: str, snippet: int | None = None
) -> str | None:
    """``text`` escaped with <mark>s, or None when nothing in it matched.

    With ``snippet``, a window of about that many characters around the first match,
    with an ellipsis where text was cut.
    """
    if not text or not clauses or not _may_match(fold(text), clauses, field):
        return None
    folded, where = fold_with_map(text)
    spans = [(where[s], where[e - 1] + 1) for s, e in _spans(folded, clauses, field)]
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
