"""The public, bilingual, server-rendered site: home, search, object, institution,
compare, about, help, and the sitemap.

Views only gather data and render templates; language, headers and errors are
handled once in ``web/__init__.py``. Everything shown comes from the catalog with
``public_only=True`` or from search (which indexes public records only), so a
non-public record is a 404 here like everywhere else.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape as xml_escape

from flask import Blueprint, Response, g, render_template, request, stream_with_context
from markupsafe import Markup, escape

from archive.citation import bibtex, citation
from archive.context import Archive
from archive.errors import NotFound, SearchUnavailable
from archive.records import RECORD_ID_RE, Institution, Record
from iiif.presentation import Links, canvas_size, identifier, viewing_direction_of
from search.base import FACETS, MAX_RESULT_WINDOW, SearchQuery, SearchResult

from . import content_state
from .i18n import era_label, translate
from .present import (
    downloads,
    fit,
    info_url,
    json_ld,
    metadata_rows,
    period,
    rights_info,
    safe_link,
    thumb_url,
)
from .search_state import PAGE_SIZES, SearchState, pages

T = TypeVar("T")
log = logging.getLogger(__name__)
COMPARE_COOKIE = "compare"  # record ids joined by "." (never in an id, never quoted)
MAX_COMPARE = 6
SIMILAR_ON_PAGE = 6  # similar objects shown on an object page
SITEMAP_CHUNK = 40_000  # URLs per sitemap file (the protocol allows 50,000)
FACET_VALUES = 30  # values listed per facet (8 shown, the rest behind "show more")
# Facets whose values have an English twin field (`material` -> `material_en`).
ENGLISH_TWINNED_FACETS = ("object_type", "material", "creator")


class _TTLCache:
    """Small per-process cache for data every page shows (institutions, home facets).

    Stale-while-revalidate: once a value exists, an expired one is still served while
    one background thread recomputes it, so no visitor waits for the archive-wide
    facet counts except the very first after a start.

    ``version`` (the catalog's ``generation()`` and this node's search index position)
    says when the data behind the cache changed, on this node or any other: an entry of
    an older version is refreshed as an expired one, once it is ``fresh`` seconds old
    (so an ingest, which changes the version at every commit, costs at most one refresh
    per key per ``fresh`` seconds). A change anywhere shows everywhere within about
    ``fresh`` seconds plus the catalog's poll interval and one refresh.
    """

    def __init__(
        self, seconds: float, version: Callable[[], Any] | None = None, fresh: float = 2.0
    ) -> None:
        self.seconds = seconds
        self.fresh = fresh
        self._version = version
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[float, Any, Any]] = {}  # key -> (made at, value, version)
        self._refreshing: set[Any] = set()
        self._generation = 0  # bumped by clear(): what was computed before is not stored

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._generation += 1

    def version(self) -> Any:
        if self._version is None:
            return None
        try:
            return self._version()
        except Exception:  # unknown (a service away): the age alone decides
            log.warning("the site cache could not read the archive's version", exc_info=True)
            return None

    def get(self, key: Any, make: Callable[[], T]) -> T:
        version = self.version()
        now = time.monotonic()
        with self._lock:
            generation = self._generation
            hit = self._items.get(key)
            if hit:
                age = now - hit[0]
                current = version is None or hit[2] == version or age < self.fresh
                if age < self.seconds and current:
                    return hit[1]
            if hit and key not in self._refreshing:
                self._refreshing.add(key)
                threading.Thread(
                    target=self._refresh, args=(key, make, generation), daemon=True
                ).start()
            if hit:
                return hit[1]
        value = make()
        self._store(key, generation, value, version)
        return value

    def _store(
        self, key: Any, generation: int, value: Any, version: Any, *, age: float = 0.0
    ) -> None:
        with self._lock:
            if generation == self._generation:
                self._items[key] = (time.monotonic() - age, value, version)

    def _refresh(self, key: Any, make: Callable[[], Any], generation: int) -> None:
        version = self.version()  # before: a change made meanwhile refreshes it again
        try:
            value = make()
        except Exception:  # keep serving the stale value; the next expiry tries again
            log.exception("refreshing the site cache failed")
            with self._lock:
                hit = self._items.get(key)
            if hit is not None:
                self._store(key, generation, hit[1], hit[2], age=self.seconds / 2)
        else:
            self._store(key, generation, value, version)
        finally:
            with self._lock:
                self._refreshing.discard(key)


@dataclass
class Card:
    """One object as a result, related item or featured object."""

    record: Record
    url: str
    title: str | Markup  # Markup when the search marked words in it
    title_lang: str
    institution: str
    thumb: str | None = None
    thumb_w: int = 0
    thumb_h: int = 0
    highlights: list[Markup] = field(default_factory=list)


def safe_highlight(html: str) -> Markup:
    """Search snippets arrive escaped with <mark>; keep exactly that and escape anything else."""
    out = []
    for i, piece in enumerate(html.replace("</mark>", "<mark>").split("<mark>")):
        text = piece if "<" not in piece and ">" not in piece else str(escape(piece))
        out.append(f"<mark>{text}</mark>" if i % 2 else text)
    return Markup("".join(out))


def site_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("site", __name__)
    catalog = archive.catalog

    def version() -> tuple[Any, Any] | None:
        """What the cached data is made of: the catalog (any node's commit) and this
        node's own search index, which follows the catalog's change log a moment later."""
        if not catalog.shared:  # one node; SQLite's generation() is per connection: by age
            return None
        backend = archive.search
        follows = backend is not None and backend.follows_log
        return catalog.generation(), backend.log_position() if follows else None

    short = _TTLCache(30, version)
    slow = _TTLCache(600)
    # Exposed so benchmarks (and an operator's shell) can measure or drop it.
    bp.record_once(lambda state: state.app.extensions.setdefault("site_cache", short))

    # -- shared helpers --------------------------------------------------------------------
    def base() -> str:
        return (archive.config.public_url or request.url_root).rstrip("/")

    def links() -> Links:
        return Links(base())

    def institutions() -> dict[str, Institution]:
        return short.get("institutions", lambda: {i.id: i for i in catalog.institutions()})

    def public_counts() -> dict[str, int]:
        """Public objects per institution: the search's facet counts (cheap at any size),
        or the catalog's own counts when search is down."""
        try:
            overview = short.get(("counts",), lambda: search(SearchQuery(size=1)))
            return dict(overview.facets.get("institution", []))
        except SearchUnavailable:
            g.search_down = True
            return {i: catalog.count(i) for i in institutions()}

    def inst_label(inst_id: str) -> str:
        inst = institutions().get(inst_id)
        return inst.label(g.lang) if inst else inst_id

    def search(query: SearchQuery) -> SearchResult:
        return archive.search.search(query)

    def cards(
        records: list[Record],
        hits: dict[str, dict[str, str]] | None = None,
        link_suffix: Callable[[int], str] | None = None,
    ) -> list[Card]:
        out = []
        for n, rec in enumerate(records):
            title = rec.label(g.lang)
            own = rec.text("title", g.lang) == rec.get("title_en") and g.lang == "en"
            marks = dict((hits or {}).get(rec.id, {}))
            shown = "title_en" if own else "title"
            titled = marks.pop(shown, None)  # the title itself carries its highlight
            for twin in ("title", "title_en"):
                marks.pop(twin, None)
            card = Card(
                record=rec,
                url=f"/object/{rec.id}" + (link_suffix(n) if link_suffix else ""),
                title=safe_highlight(titled) if titled else title,
                title_lang="en" if own else "ja",
                institution=inst_label(rec.institution),
                highlights=[safe_highlight(h) for h in list(marks.values())[:2]],
            )
            if rec.images:
                img = rec.images[0]
                card.thumb = thumb_url("", identifier(img, rec.max_image_size))
                w, h = canvas_size(img, rec.max_image_size)
                card.thumb_w, card.thumb_h = fit(w, h, 400)
            out.append(card)
        return out

    def records_for(result: SearchResult) -> list[Record]:
        return catalog.get_records([h.id for h in result.hits])

    def english_names(name: str) -> dict[str, str]:
        """Japanese facet value -> the curators' English name for it (``<name>_en``), for
        English pages: object types, materials, creators. Kept ten minutes."""
        names = slow.get("english_names", lambda: catalog.english_names(ENGLISH_TWINNED_FACETS))
        return names[name]

    def facet_label(name: str, value: str) -> str:
        if name in ENGLISH_TWINNED_FACETS and g.lang == "en":
            return english_names(name).get(value, value)
        if name == "institution":
            return inst_label(value)
        if name in ("era", "century"):
            return era_label(value, g.lang)
        if name == "rights":
            return rights_info(value).label(g.lang)
        if name == "has_images":
            return translate(f"facet.has_images.{value}", g.lang)
        return value

    def render(template: str, **context: Any) -> str:
        return render_template(template, facet_label=facet_label, **context)

    # -- home ------------------------------------------------------------------------------
    @bp.get("/")
    def home() -> str:
        lang = g.lang

        def gather() -> dict[str, Any]:
            overview = search(SearchQuery(size=1, lang=lang))
            recent = search(
                SearchQuery(
                    filters={"has_images": ("true",)},
                    sort="added",
                    size=60,
                    lang=lang,
                    facets=False,
                )
            )
            return {
                "stats": dict(overview.facets.get("institution", [])),
                "facets": overview.facets,
                "featured_ids": _spread(catalog.get_records([h.id for h in recent.hits]), 8),
            }

        try:
            data = short.get(("home", lang), gather)
        except SearchUnavailable:  # the catalog still knows the institutions: show them
            data = {"stats": public_counts(), "facets": {}, "featured_ids": []}
            g.search_down = True
        insts = [i for i in institutions().values() if data["stats"].get(i.id)]
        return render(
            "home.html",
            institutions=insts,
            stats=data["stats"],
            total=sum(data["stats"].values()),
            types=data["facets"].get("object_type", [])[:12],
            eras=data["facets"].get("era", [])[:12],
            featured=cards(catalog.get_records(data["featured_ids"])),
        )

    # -- search ----------------------------------------------------------------------------
    @bp.get("/search")
    def search_page() -> str:
        state = SearchState.from_args(request.args)
        last_allowed = max(1, MAX_RESULT_WINDOW // state.size)
        if state.page > last_allowed:
            state = state.at_page(last_allowed)
        result = search(state.query(g.lang))
        records = records_for(result)
        hits = {h.id: h.highlights for h in result.hits}
        offset = (state.page - 1) * state.size
        context = urlencode([("s", state.qs())])

        def suffix(n: int) -> str:
            return f"?{context}&i={offset + n}"

        last = max(1, min(math.ceil(result.total / state.size), last_allowed))
        return render(
            "search.html",
            state=state,
            result=result,
            items=cards(records, hits, suffix),
            facets=_facet_links(state, result, facet_label),
            first=offset + 1,
            last_item=offset + len(result.hits),
            pages=pages(state.page, last),
            last_page=last,
            page_sizes=PAGE_SIZES,
            canonical_path="/search" + (f"?{state.qs()}" if state.qs() else ""),
        )

    # -- object ----------------------------------------------------------------------------
    @bp.get("/object/<record_id>")
    def object_page(record_id: str) -> str:
        if not RECORD_ID_RE.match(record_id):
            raise NotFound(f"no object {record_id!r}")
        record = catalog.get_record(record_id, public_only=True)
        inst = institutions().get(record.institution) or catalog.get_institution(record.institution)
        lang = g.lang
        link = links()
        url = link.object_page(record.id)
        manifest = link.manifest(record.id)
        rights = rights_info(record.rights or inst.rights)
        canvases = [f"{manifest}/canvas/{n}" for n in range(1, len(record.images) + 1)]
        images = []
        for n, img in enumerate(record.images):
            w, h = canvas_size(img, record.max_image_size)
            tw, th = fit(w, h, 400)
            images.append(
                {
                    "id": img.id,
                    "n": n + 1,
                    "width": w,
                    "height": h,
                    "thumb": thumb_url("", identifier(img, record.max_image_size)),
                    "thumb_w": tw,
                    "thumb_h": th,
                    "downloads": downloads("", img, record, rights),
                }
            )
        view, view_error = _shared_view(request.args.get(content_state.PARAM), manifest, canvases)
        viewer = {
            "tileSources": [
                info_url("", identifier(img, record.max_image_size)) for img in record.images
            ],
            "canvases": canvases,
            "sizes": [[i["width"], i["height"]] for i in images],
            "manifest": manifest,
            "url": url,
            "initial": view[0] if view else 0,
            "region": list(view[1]) if view and view[1] else None,
            "labels": {k: translate(f"object.{k}", lang) for k in ("share_copied",)},
        }
        accessed = datetime.now(UTC).strftime("%Y-%m-%d")
        compare_ids = _compare_ids(request.cookies.get(COMPARE_COOKIE, "").split("."))
        add_ids = [i for i in compare_ids if i != record.id][: MAX_COMPARE - 1] + [record.id]
        return render(
            "object.html",
            record=record,
            inst=inst,
            title=record.label(lang),
            title_lang="en" if lang == "en" and record.get("title_en") else "ja",
            other_title=_other_title(record, lang),
            rows=metadata_rows(record, lang),
            period=period(record, lang),
            keywords=record.get("keywords") or [],
            extra=record.extra,
            rights=rights,
            images=images,
            viewer=viewer,
            rtl=viewing_direction_of(record) == "right-to-left",
            view_error=view_error,
            manifest=manifest,
            record_json=link.record_json(record.id),
            homepage=safe_link(inst.homepage),
            credit=(inst.credit or inst.name),
            cite=citation(record, inst, url, lang)
            + (f"（{accessed} 閲覧）" if lang == "ja" else f" (accessed {accessed})"),
            bibtex=bibtex(record, inst, url),
            share_url=url,
            neighbours=_neighbours(record.id),
            related=_related(record),
            compare_url="/compare?" + urlencode([("id", i) for i in add_ids]),
            mirador_url="/compare?" + urlencode([("id", record.id), ("open", "1")]),
            jsonld=json_ld(record, inst, url=url, base=base(), manifest=manifest, lang=lang),
            og_image=(
                base() + images[0]["thumb"].replace("!400,400", "!1200,1200")
                if record.images
                else None
            ),
            canonical_path=f"/object/{record.id}",
            description=(record.text("description", lang) or "")[:160],
        )

    def _shared_view(encoded: str | None, manifest: str, canvases: list[str]):
        """(canvas index, xywh) from an ``iiif-content`` parameter, or an error to show."""
        if not encoded:
            return None, None
        try:
            view = content_state.decode(encoded)
        except content_state.ContentStateError as exc:
            return None, f"{content_state.PARAM}: {exc}"
        canvas = view.canvas.rsplit("/canvas/", 1)
        if (
            len(canvas) != 2
            or not canvas[1].isdigit()
            or not view.manifest.endswith(manifest.split("/iiif/3/", 1)[1])
        ):
            return None, f"{content_state.PARAM}: the view is not of this object"
        index = int(canvas[1]) - 1
        if not 0 <= index < len(canvases):
            return None, f"{content_state.PARAM}: no such image of this object"
        return (index, view.xywh), None

    def _neighbours(record_id: str) -> dict[str, Any] | None:
        """Previous and next object within the search the visitor came from (``s`` and ``i``)."""
        try:
            return _neighbours_from_search(record_id)
        except SearchUnavailable:  # the object page does not need search to be useful
            g.search_down = True
            return None

    def _neighbours_from_search(record_id: str) -> dict[str, Any] | None:
        raw, pos = request.args.get("s"), request.args.get("i", "")
        if raw is None or not pos.isdigit() or len(raw) > 2000:
            return None
        try:
            state = SearchState.from_args(_multidict(raw))
        except Exception:  # a hand-edited link: no navigation, not an error page
            return None
        position = int(pos)
        if position >= MAX_RESULT_WINDOW:
            return None
        wanted = [p for p in (position - 1, position + 1) if p >= 0]
        found: dict[int, str] = {}
        size = 20
        for page in sorted({p // size + 1 for p in wanted}):
            result = search(
                SearchQuery(
                    q=state.q,
                    filters=state.filters,
                    year_from=state.year_from,
                    year_to=state.year_to,
                    sort=state.sort,
                    page=page,
                    size=size,
                    lang=g.lang,
                    facets=False,
                )
            )
            for n, hit in enumerate(result.hits):
                found[(page - 1) * size + n] = hit.id
        s = urlencode([("s", raw)])
        out: dict[str, Any] = {"back": "/search" + (f"?{raw}" if raw else "")}
        for key, p in (("prev", position - 1), ("next", position + 1)):
            if p in found and found[p] != record_id:
                out[key] = f"/object/{found[p]}?{s}&i={p}"
        return out

    def _related(record: Record) -> list[tuple[str, list[Card]]]:
        if archive.search is None:
            return []
        try:
            return _related_from_search(record)
        except SearchUnavailable:
            g.search_down = True
            return []

    def _related_from_search(record: Record) -> list[tuple[str, list[Card]]]:
        groups: list[tuple[str, list[Card]]] = []
        seen = {record.id}
        # Nearest in meaning first (the same embeddings as search; public records only).
        similar = [i for i in archive.search.similar(record.id, SIMILAR_ON_PAGE) if i not in seen]
        if similar:
            seen.update(similar)
            found = {r.id: r for r in catalog.get_records(similar)}
            groups.append(("object.similar", cards([found[i] for i in similar if i in found])))
        criteria = []
        if record.get("creator"):
            criteria.append(("object.same_creator", {"creator": (record.get("creator"),)}))
        if record.get("object_type"):
            criteria.append(
                (
                    "object.same_type",
                    {
                        "object_type": (record.get("object_type"),),
                        "institution": (record.institution,),
                    },
                )
            )
        criteria.append(("object.same_institution", {"institution": (record.institution,)}))
        for key, filters in criteria:
            # Newest first for the institution, so it does not repeat the other groups.
            sort = "added" if key == "object.same_institution" else "relevance"
            query = SearchQuery(filters=filters, size=13, sort=sort, lang=g.lang, facets=False)
            if key == "object.same_creator":  # one creator's few objects: no reuse to speak of
                found_ids = [h.id for h in search(query).hits]
            else:  # the same for every object of an institution (and type): kept 30 s
                found_ids = short.get(
                    ("related", key, tuple(sorted(filters.items())), sort, g.lang),
                    lambda query=query: [h.id for h in search(query).hits],
                )
            ids = [i for i in found_ids if i not in seen][:6]
            seen.update(ids)
            if ids:
                groups.append((key, cards(catalog.get_records(ids))))
        return groups

    # -- institution -----------------------------------------------------------------------
    @bp.get("/institution/<inst_id>")
    def institution_page(inst_id: str) -> str:
        inst = institutions().get(inst_id)
        if inst is None:
            raise NotFound(f"no institution {inst_id!r}")
        try:
            result = search(
                SearchQuery(
                    filters={"institution": (inst.id,)}, size=24, lang=g.lang, sort="relevance"
                )
            )
            total, records, facets = result.total, records_for(result), result.facets
        except SearchUnavailable:  # the catalog alone can list the first objects
            g.search_down = True
            total, facets = catalog.count(inst.id), {}
            records = list(itertools.islice(catalog.records(inst.id, batch=24), 24))
        return render(
            "institution.html",
            inst=inst,
            total=total,
            items=cards(records),
            types=facets.get("object_type", [])[:12],
            eras=facets.get("era", [])[:12],
            homepage=safe_link(inst.homepage),
            logo=links().logo(inst.id) if inst.logo else None,
            collection=links().collection(inst.id),
            canonical_path=f"/institution/{inst.id}",
        )

    # -- compare (Mirador) -----------------------------------------------------------------
    @bp.get("/compare")
    def compare() -> Response:
        asked = request.args.getlist("id")
        ids = _compare_ids(asked if asked else request.cookies.get(COMPARE_COOKIE, "").split("."))
        records = catalog.get_records(ids)
        g.mirador = bool(records)
        link = links()
        chosen = []
        for rec in records:
            rest = [r.id for r in records if r.id != rec.id]
            chosen.append(
                {
                    "record": rec,
                    "title": rec.label(g.lang),
                    "remove": "/compare?" + urlencode([("id", i) for i in rest])
                    if rest
                    else "/compare?clear=1",
                }
            )
        html = render(
            "compare.html",
            chosen=chosen,
            mirador={"manifests": [link.manifest(r.id) for r in records], "lang": g.lang},
            canonical_path="/compare",
        )
        resp = Response(html, mimetype="text/html")
        if request.args.get("clear"):
            resp.delete_cookie(COMPARE_COOKIE)
        elif asked and not request.args.get("open"):
            resp.set_cookie(
                COMPARE_COOKIE,
                ".".join(r.id for r in records),
                max_age=30 * 86400,
                samesite="Lax",
                httponly=True,
                secure=request.is_secure,
            )
        return resp

    # -- static pages ----------------------------------------------------------------------
    @bp.get("/about")
    def about() -> str:
        return render(
            "about.html",
            counts=public_counts(),
            institutions=institutions(),
            canonical_path="/about",
        )

    @bp.get("/help")
    def help_page() -> str:
        return render("help.html", canonical_path="/help")

    # -- for machines ----------------------------------------------------------------------
    @bp.get("/robots.txt")
    def robots() -> Response:
        body = f"User-agent: *\nAllow: /\nSitemap: {base()}/sitemap.xml\n"
        return Response(body, mimetype="text/plain")

    @bp.get("/sitemap.xml")
    def sitemap() -> Response:
        """Every public object (sitemaps.org); over one file's worth, a sitemap index."""
        total = catalog.count()
        root = base()
        if total <= SITEMAP_CHUNK:
            return _sitemap_response(_urlset(root, catalog.record_ids(), with_pages=True))
        chunks = math.ceil(total / SITEMAP_CHUNK)
        body = [
            '<?xml version="1.0" encoding="UTF-8"?>\n',
            '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n',
        ]
        body += [
            f"<sitemap><loc>{root}/sitemap/{n}.xml</loc></sitemap>\n" for n in range(1, chunks + 1)
        ]
        body.append("</sitemapindex>\n")
        return _sitemap_response(iter(body))

    @bp.get("/sitemap/<int:n>.xml")
    def sitemap_part(n: int) -> Response:
        ids = catalog.record_ids()
        part = ids[(n - 1) * SITEMAP_CHUNK : n * SITEMAP_CHUNK] if n >= 1 else []
        if not part:
            raise NotFound(f"no sitemap part {n}")
        return _sitemap_response(_urlset(base(), part, with_pages=n == 1))

    def _urlset(root: str, ids: list[str], *, with_pages: bool) -> Iterator[str]:
        yield '<?xml version="1.0" encoding="UTF-8"?>\n'
        yield '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        if with_pages:
            for path in ("/", "/search", "/about", "/help"):
                yield f"<url><loc>{root}{path}</loc></url>\n"
            for inst_id in institutions():
                yield f"<url><loc>{root}/institution/{xml_escape(inst_id)}</loc></url>\n"
        for rid in ids:
            yield f"<url><loc>{root}/object/{xml_escape(rid)}</loc></url>\n"
        yield "</urlset>\n"

    return bp


# --- small pure helpers -------------------------------------------------------------------------
@dataclass(frozen=True)
class FacetLink:
    label: str
    href: str
    count: int
    on: bool


def _facet_links(
    state: SearchState, result: SearchResult, label: Callable[[str, str], str]
) -> list[tuple[str, list[FacetLink]]]:
    """Each facet's values as ready links (toggling the value), in FACETS order."""
    groups = []
    for name in FACETS:
        values = result.facets.get(name) or []
        if values:
            groups.append(
                (
                    name,
                    [
                        FacetLink(
                            label(name, value),
                            "/search?" + state.toggle_qs(name, value),
                            count,
                            state.has(name, value),
                        )
                        for value, count in values
                    ],
                )
            )
    return groups


def _sitemap_response(body: Iterator[str]) -> Response:
    return Response(stream_with_context(body), mimetype="application/xml")


def _multidict(query: str):
    from werkzeug.datastructures import MultiDict

    return MultiDict(parse_qsl(query, keep_blank_values=False))


def _spread(records: list[Record], count: int) -> list[str]:
    """Up to ``count`` ids taking turns across institutions, so no one museum fills the home."""
    queues: dict[str, list[str]] = {}
    for rec in records:
        queues.setdefault(rec.institution, []).append(rec.id)
    out: list[str] = []
    while len(out) < count and any(queues.values()):
        for ids in queues.values():
            if ids and len(out) < count:
                out.append(ids.pop(0))
    return out


def _compare_ids(values: list[str]) -> list[str]:
    ids = [v.strip() for v in values if RECORD_ID_RE.match(v.strip())]
    return list(dict.fromkeys(ids))[:MAX_COMPARE]


def _other_title(record: Record, lang: str) -> tuple[str, str] | None:
    """The title in the other language, when there is one and it differs."""
    ja, en = record.get("title"), record.get("title_en")
    if lang == "en" and en and ja and ja != en:
        return ja, "ja"
    if lang == "ja" and en and ja and ja != en:
        return en, "en"
    return None
