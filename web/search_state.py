"""The search page's state, parsed from and written back to its URL.

The URL carries the whole state (query, filters, years, sort, page size, page,
grid or list), so a results page can be shared and the back button works. Parsing
is strict about form: a malformed value is a ``BadRequest`` naming the parameter,
never a 500; unknown parameters are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from urllib.parse import quote_plus, urlencode

from werkzeug.datastructures import MultiDict

from archive.errors import BadRequest
from search.base import FACETS, SORTS, SearchQuery

PAGE_SIZES = (20, 50, 100)
VIEWS = ("grid", "list")
MAX_PAGE = 100_000
MAX_Q = 500
MAX_VALUES = 20  # values of one facet that may be combined


@dataclass(frozen=True)
class SearchState:
    q: str = ""
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    year_from: int | None = None
    year_to: int | None = None
    sort: str = "relevance"
    size: int = PAGE_SIZES[0]
    page: int = 1
    view: str = "grid"

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def from_args(cls, args: MultiDict) -> SearchState:
        q = " ".join(args.get("q", "").split())
        if len(q) > MAX_Q:
            raise BadRequest(f"q: at most {MAX_Q} characters", "q")
        filters: dict[str, tuple[str, ...]] = {}
        for name in FACETS:
            values = tuple(dict.fromkeys(v.strip() for v in args.getlist(name) if v.strip()))
            if len(values) > MAX_VALUES:
                raise BadRequest(f"{name}: at most {MAX_VALUES} values", name)
            if any(len(v) > 200 for v in values):
                raise BadRequest(f"{name}: value too long", name)
            if values:
                filters[name] = values
        sort = args.get("sort", "relevance") or "relevance"
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}", "sort")
        view = args.get("view", "grid") or "grid"
        if view not in VIEWS:
            raise BadRequest("view must be grid or list", "view")
        size = _int(args, "size", PAGE_SIZES[0])
        if size not in PAGE_SIZES:
            raise BadRequest(f"size must be one of {', '.join(map(str, PAGE_SIZES))}", "size")
        page = _int(args, "page", 1)
        if not 1 <= page <= MAX_PAGE:
            raise BadRequest(f"page must be between 1 and {MAX_PAGE}", "page")
        year_from = _year(args, "year_from")
        year_to = _year(args, "year_to")
        if year_from is not None and year_to is not None and year_from > year_to:
            raise BadRequest("year_from must not be after year_to", "year_from")
        return cls(q, filters, year_from, year_to, sort, size, page, view)

    def query(self, lang: str, *, facets: bool = True) -> SearchQuery:
        return SearchQuery(
            q=self.q,
            filters=self.filters,
            year_from=self.year_from,
            year_to=self.year_to,
            sort=self.sort,
            page=self.page,
            size=self.size,
            lang=lang,
            facets=facets,
        )

    # -- writing -------------------------------------------------------------------------
    def params(self) -> list[tuple[str, str]]:
        """Query-string pairs; defaults are left out so URLs stay short and canonical."""
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        for name in FACETS:
            pairs.extend((name, v) for v in self.filters.get(name, ()))
        if self.year_from is not None:
            pairs.append(("year_from", str(self.year_from)))
        if self.year_to is not None:
            pairs.append(("year_to", str(self.year_to)))
        if self.sort != "relevance":
            pairs.append(("sort", self.sort))
        if self.size != PAGE_SIZES[0]:
            pairs.append(("size", str(self.size)))
        if self.page != 1:
            pairs.append(("page", str(self.page)))
        if self.view != "grid":
            pairs.append(("view", self.view))
        return pairs

    def qs(self) -> str:
        return urlencode(self.params())

    @cached_property
    def _pieces(self) -> list[tuple[str, str, str]]:
        """(name, value, encoded "name=value") of every parameter but the page."""
        return [(k, v, f"{quote_plus(k)}={quote_plus(v)}") for k, v in self.params() if k != "page"]

    def toggle_qs(self, name: str, value: str) -> str:
        """The query string with one facet value added or removed, back at page 1.

        Equal to ``with_filter``/``without_filter(...).qs()``, without building a state:
        a results page links every facet value, so this is its hot path.
        """
        pieces = self._pieces
        kept = [p for p in pieces if not (p[0] == name and p[1] == value)]
        if len(kept) == len(pieces):
            before = {"q", *FACETS[: FACETS.index(name) + 1]}
            at = max((i + 1 for i, p in enumerate(pieces) if p[0] in before), default=0)
            kept = [
                *pieces[:at],
                (name, value, f"{quote_plus(name)}={quote_plus(value)}"),
                *pieces[at:],
            ]
        return "&".join(p[2] for p in kept)

    def with_filter(self, name: str, value: str) -> SearchState:
        values = self.filters.get(name, ())
        if value in values:
            return self
        return replace(self, filters={**self.filters, name: (*values, value)}, page=1)

    def without_filter(self, name: str, value: str) -> SearchState:
        values = tuple(v for v in self.filters.get(name, ()) if v != value)
        filters = {k: v for k, v in self.filters.items() if k != name}
        if values:
            filters[name] = values
        return replace(self, filters=filters, page=1)

    def without_years(self) -> SearchState:
        return replace(self, year_from=None, year_to=None, page=1)

    def cleared(self) -> SearchState:
        return replace(self, filters={}, year_from=None, year_to=None, page=1)

    def at_page(self, page: int) -> SearchState:
        return replace(self, page=page)

    def with_view(self, view: str) -> SearchState:
        return replace(self, view=view)

    def has(self, name: str, value: str) -> bool:
        return value in self.filters.get(name, ())

    @property
    def active(self) -> bool:
        return bool(self.filters or self.year_from is not None or self.year_to is not None)


def _int(args: MultiDict, name: str, default: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        raise BadRequest(f"{name} must be a positive whole number", name)
    return int(raw)


def _year(args: MultiDict, name: str) -> int | None:
    raw = args.get(name, "").strip()
    if raw == "":
        return None
    sign = -1 if raw.startswith("-") else 1
    digits = raw.lstrip("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > 4:
        raise BadRequest(f"{name} must be a year such as 1868", name)
    return sign * int(digits)


def pages(current: int, last: int, around: int = 2) -> list[int | None]:
    """Page numbers to show, with None for a gap: 1 … 4 5 [6] 7 8 … 40."""
    shown = {1, last, *range(current - around, current + around + 1)}
    out: list[int | None] = []
    prev = 0
    for n in sorted(p for p in shown if 1 <= p <= last):
        if n - prev > 1:
            out.append(None)
        out.append(n)
        prev = n
    return out
