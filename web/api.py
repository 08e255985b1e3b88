"""The JSON research API under /api: search, suggestions, records, bulk export, OpenAPI.

Every parameter is checked here and a bad one is a 400 naming it; search being
down is a 503 with a message; nothing a client sends becomes a 500. The
description a client can rely on is ``/api/openapi.json`` (``web/openapi.py``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from archive import __version__
from archive.citation import rights_label
from archive.context import Archive
from archive.errors import (
    ArchiveError,
    BadRequest,
    CatalogUnavailable,
    NotFound,
    SearchUnavailable,
)
from archive.records import RECORD_ID_RE, Institution
from iiif.presentation import identifier
from iiif.routes import finish_response, json_document, request_links
from search.base import FACETS, MAX_PAGE_SIZE, MAX_SIMILAR, SORTS, SearchQuery

from . import export, openapi
from .openapi import (
    LANGS,
    MAX_PAGE,
    MAX_Q,
    MAX_VALUE,
    MAX_VALUES,
    SUGGEST_MAX_LIMIT,
    SUGGEST_MAX_Q,
    YEAR_MAX,
    YEAR_MIN,
)

_TRUE, _FALSE = "true", "false"
# A full export reads every record: a cache in front may serve it for a few minutes.
EXPORT_MAX_AGE = 300


def _one(name: str, default: str | None = None) -> str | None:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"{name} may be given only once", parameter=name)
    return values[0] if values else default


def _int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = _one(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(
            f"{name} must be a whole number, got {raw[:40]!r}", parameter=name
        ) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}", parameter=name)
    return value


def _choice(name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = _one(name)
    if raw is None:
        return default
    if raw not in choices:
        raise BadRequest(
            f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}", parameter=name
        )
    return raw


def _values(name: str) -> tuple[str, ...]:
    values = request.args.getlist(name)
    if len(values) > MAX_VALUES:
        raise BadRequest(f"{name} may be given at most {MAX_VALUES} times", parameter=name)
    for value in values:
        if not 1 <= len(value) <= MAX_VALUE:
            raise BadRequest(
                f"{name} values must be 1 to {MAX_VALUE} characters long", parameter=name
            )
    return tuple(dict.fromkeys(values))


def parse_search() -> SearchQuery:
    """The SearchQuery for the request's parameters; BadRequest names a bad one.

    As strict as ``/api/openapi.json`` says: a parameter given empty is an error
    (except ``q``, where empty lists everything).
    """
    q = _one("q", "") or ""
    if len(q) > MAX_Q:
        raise BadRequest(f"q is longer than {MAX_Q} characters", parameter="q")
    filters: dict[str, tuple[str, ...]] = {}
    for facet in FACETS:
        if facet == "has_images":
            value = _choice("has_images", (_TRUE, _FALSE), None)
            if value is not None:
                filters[facet] = (value,)
            continue
        values = _values(facet)
        if values:
            filters[facet] = values
    year_from = _int("year_from", None, YEAR_MIN, YEAR_MAX)
    year_to = _int("year_to", None, YEAR_MIN, YEAR_MAX)
    if year_from is not None and year_to is not None and year_from > year_to:
        raise BadRequest(
            f"year_from ({year_from}) is after year_to ({year_to})", parameter="year_from"
        )
    return SearchQuery(
        q=q.strip(),
        filters=filters,
        year_from=year_from,
        year_to=year_to,
        sort=_choice("sort", SORTS, "relevance") or "relevance",
        page=_int("page", 1, 1, MAX_PAGE) or 1,
        size=_int("size", 20, 1, MAX_PAGE_SIZE) or 20,
        lang=_choice("lang", LANGS, "ja") or "ja",
        semantic=_choice("semantic", (_TRUE, _FALSE), _TRUE) == _TRUE,
    )


def century_label(value: str, lang: str) -> str:
    try:
        n = int(value)
    except ValueError:
        return value
    if lang == "en":
        number = abs(n)
        suffix = (
            "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
        )
        return f"{number}{suffix} century" + (" BCE" if n < 0 else "")
    return f"紀元前{-n}世紀" if n < 0 else f"{n}世紀"


def facet_labeller(institutions: dict[str, Institution], lang: str) -> Callable[[str, str], str]:
    """Human labels for facet values: institution names, rights names, centuries."""

    def label(facet: str, value: str) -> str:
        if facet == "institution" and value in institutions:
            return institutions[value].label(lang)
        if facet == "rights":
            return rights_label(value, lang)
        if facet == "century":
            return century_label(value, lang)
        if facet == "has_images":
            yes = value == "true"
            if lang == "en":
                return "With images" if yes else "Without images"
            return "画像あり" if yes else "画像なし"
        return value

    return label


def api_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix="/api")
    catalog = archive.catalog

    def json_response(data: Any, status: int = 200) -> Response:
        return Response(
            json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
        )

    @bp.get("/search")
    def search() -> Response:
        """Search public records: free text, facet filters, year range, sort, pages."""
        query = parse_search()
        if archive.search is None:
            raise SearchUnavailable("search is not configured")
        result = archive.search.search(query)
        links = request_links(archive)
        institutions = {inst.id: inst for inst in catalog.institutions()}
        records = {r.id: r for r in catalog.get_records([h.id for h in result.hits])}
        label = facet_labeller(institutions, query.lang)
        items = []
        for hit in result.hits:
            record = records.get(hit.id)
            if record is None:  # the index is a little behind the catalog
                continue
            inst = institutions.get(record.institution)
            items.append(
                {
                    "id": record.id,
                    "local_id": record.local_id,
                    "institution": record.institution,
                    "institution_name": inst.label(query.lang) if inst else record.institution,
                    "title": record.label(query.lang),
                    "thumbnail": (
                        links.thumbnail(identifier(record.images[0], record.max_image_size))
                        if record.images
                        else None
                    ),
                    "manifest": links.manifest(record.id),
                    "url": links.object_page(record.id),
                    "date": record.get("date"),
                    "highlights": dict(hit.highlights),
                }
            )
        facets = {
            name: [
                {"value": value, "label": label(name, value), "count": count}
                for value, count in result.facets.get(name, [])
            ]
            for name in FACETS
        }
        body = {
            "total": result.total,
            "page": query.page,
            "size": query.size,
            "facets": facets,
            "items": items,
        }
        return json_document(json.dumps(body, ensure_ascii=False), "application/json", max_age=60)

    @bp.get("/suggest")
    def suggest() -> Response:
        """Completions for what a user is typing (titles, creators, types, keywords)."""
        q = _one("q", "") or ""
        lang = _choice("lang", LANGS, "ja") or "ja"
        limit = _int("limit", 10, 1, SUGGEST_MAX_LIMIT) or 10
        if len(q) > SUGGEST_MAX_Q:  # as sent, as the OpenAPI maxLength says (not stripped)
            raise BadRequest(f"q is longer than {SUGGEST_MAX_Q} characters", parameter="q")
        q = q.strip()
        if not q:
            return json_response({"q": q, "suggestions": []})
        if archive.search is None:
            raise SearchUnavailable("search is not configured")
        body = {"q": q, "suggestions": archive.search.suggest(q, lang, limit)}
        return json_document(json.dumps(body, ensure_ascii=False), "application/json", max_age=60)

    @bp.get("/records/<record_id>")
    def record(record_id: str) -> Response:
        """Every public field of a record, original and normalised, with its images."""
        if not RECORD_ID_RE.match(record_id):
            raise NotFound(f"no record {record_id!r}")
        rec = catalog.get_record(record_id, public_only=True)
        inst = catalog.get_institution(rec.institution)
        body = json.dumps(export.record_json(rec, inst, request_links(archive)), ensure_ascii=False)
        return json_document(body, "application/json", last_modified=rec.updated_at)

    @bp.get("/records/<record_id>/similar")
    def similar(record_id: str) -> Response:
        """Public records nearest in meaning to this one (the embeddings search uses)."""
        if not RECORD_ID_RE.match(record_id):
            raise NotFound(f"no record {record_id!r}")
        limit = _int("limit", 10, 1, MAX_SIMILAR) or 10
        lang = _choice("lang", LANGS, "ja") or "ja"
        rec = catalog.get_record(record_id, public_only=True)  # 404 unless public
        if archive.search is None:
            raise SearchUnavailable("search is not configured")
        if not archive.search.vectors_on:
            reason = "similar objects are off on this archive (setting search_vectors = false)"
            return json_response({"id": rec.id, "items": [], "reason": reason})
        near = archive.search.similar(rec.id, limit)
        links = request_links(archive)
        found = {r.id: r for r in catalog.get_records(near)}
        items = [
            {
                "id": r.id,
                "institution": r.institution,
                "title": r.label(lang),
                "thumbnail": links.thumbnail(r.images[0].id) if r.images else None,
                "url": links.object_page(r.id),
                "record": links.record_json(r.id),
            }
            for r in (found[i] for i in near if i in found and found[i].public)
        ]
        return json_response({"id": rec.id, "items": items})

    @bp.get("/export.jsonl")
    def export_jsonl() -> Response:
        """Every public record as JSON Lines, streamed."""
        links = request_links(archive)
        body = stream_with_context(export.jsonl_lines(export.public_records(catalog), links))
        return Response(
            body,
            content_type="application/x-ndjson; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="archive-export.jsonl"',
                "Cache-Control": f"public, max-age={EXPORT_MAX_AGE}",
            },
        )

    @bp.get("/export.csv")
    def export_csv() -> Response:
        """Every public record as CSV (UTF-8 with BOM), streamed."""
        links = request_links(archive)
        body = stream_with_context(export.csv_chunks(export.public_records(catalog), links))
        return Response(
            body,
            content_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="archive-export.csv"',
                "Cache-Control": f"public, max-age={EXPORT_MAX_AGE}",
            },
        )

    @bp.get("/health")
    def health() -> Response:
        """For load balancers and monitors: 200 "ok"; 200 "degraded" when search is
        unreachable or behind (records, manifests and images still answer); 503
        "unavailable" when the catalog cannot be read. Never cached."""
        data: dict[str, Any] = {"status": "ok", "version": __version__}
        try:
            data["catalog"] = {
                "public_records": catalog.count(),
                "last_modified": catalog.last_modified(),
            }
            data["search"] = archive.search_state()
        except (sqlite3.Error, OSError, CatalogUnavailable) as exc:
            reason = exc.public_message() if isinstance(exc, CatalogUnavailable) else exc
            data.update(status="unavailable", catalog={"error": f"catalog unreadable: {reason}"})
        else:
            if not data["search"]["reachable"] or "behind" in data["search"]:
                data["status"] = "degraded"
        response = json_response(data, 503 if data["status"] == "unavailable" else 200)
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/openapi.json")
    def openapi_json() -> Response:
        """The OpenAPI 3 description of this API."""
        base = (archive.config.public_url or request.url_root).rstrip("/")
        return json_document(
            json.dumps(openapi.document(base), ensure_ascii=False), "application/json", max_age=3600
        )

    bp.after_request(finish_response)

    @bp.errorhandler(ArchiveError)
    def archive_error(exc: ArchiveError) -> Response:
        data: dict[str, Any] = {"error": exc.public_message(), "status": exc.http_status}
        if isinstance(exc, BadRequest) and exc.parameter:
            data["parameter"] = exc.parameter
        response = json_response(data, exc.http_status)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    return bp
