"""Flask blueprints for the IIIF APIs: the only Flask import in ``iiif``."""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, request, send_file

from archive.context import Archive
from archive.errors import ArchiveError, NotFound
from archive.records import INSTITUTION_ID_RE, RECORD_ID_RE, Institution

from . import changes, presentation
from .presentation import Links


# --- Image API (3.0 at /iiif/3/, 2.1 at /iiif/2/) ------------------------------------------
def image_blueprint(archive: Archive) -> Blueprint:
    """Image API 3.0 and 2.1 over the same pyramids.

    Answered by the plain WSGI handler in iiif.image_wsgi, installed ahead of Flask's
    dispatch when the blueprint is registered (a tile must not pay for the site's
    request machinery); the blueprint adds CORS to Flask's own /iiif/ errors.
    """
    from .image_service import ImageService
    from .image_wsgi import ImageAPI, install

    bp = Blueprint("iiif_image", __name__)
    api = ImageAPI(ImageService(archive), archive.config.public_url)

    @bp.record_once
    def install_handler(state) -> None:
        state.app.wsgi_app = install(state.app.wsgi_app, api)

    @bp.after_app_request
    def cors(resp: Response) -> Response:
        """3.0 §7.1: CORS on every /iiif/ response, Flask's routing errors included."""
        if request.path.startswith("/iiif/"):
            resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp

    return bp


# --- Presentation API 3.0 and Change Discovery ---------------------------------------------
# Served as JSON-LD (Presentation 3.0 §6.1, Change Discovery 1.0 §2.1) with CORS (§6.2),
# validators for conditional requests, and gzip for clients that ask for it.
GZIP_MIN_BYTES = 1024
ERROR_MAX_AGE = 60

_COMPRESSIBLE = ("application/json", "application/ld+json", "text/csv", "application/x-ndjson")


class DocumentCache:
    """A small thread-safe LRU of serialised documents.

    Keys hold everything a document depends on (the record's content checksum, the
    catalog's change count, the institution's data, the base URL), so an entry is
    never stale, only unused.
    Building a manifest with iiif-prezi3 costs a few milliseconds; viewers and
    harvesters ask for the same ones again and again.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, build: Callable[[], str]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build().encode("utf-8")
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def request_links(archive: Archive) -> Links:
    """URLs from ``public_url`` when configured, else from the request's own root."""
    return Links(archive.config.public_url or request.url_root)


def json_document(
    body: str | bytes, content_type: str, *, last_modified: str | None = None, max_age: int = 300
) -> Response:
    """A cacheable JSON response: strong ETag of the body, Last-Modified, 304 when unchanged."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    resp = Response(data, content_type=content_type)
    resp.set_etag(hashlib.sha256(data).hexdigest()[:32])
    if last_modified:
        try:
            resp.last_modified = datetime.strptime(last_modified, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC
            )
        except ValueError:  # not our timestamp format: the ETag alone validates
            pass
    resp.cache_control.public = True
    resp.cache_control.max_age = max_age
    return resp.make_conditional(request)


def finish_response(resp: Response) -> Response:
    """CORS for every response, and gzip when the client accepts it (after conditionals).
    Errors say how long they may be kept: a minute for a 4xx, never for a 5xx."""
    resp.headers["Access-Control-Allow-Origin"] = "*"
    if "Cache-Control" not in resp.headers and resp.status_code >= 400:
        resp.headers["Cache-Control"] = (
            "no-store" if resp.status_code >= 500 else f"public, max-age={ERROR_MAX_AGE}"
        )
    if resp.status_code == 503:
        resp.headers.setdefault("Retry-After", "30")
    resp.headers.setdefault(
        "Access-Control-Expose-Headers", "ETag, Last-Modified, Content-Length, Link"
    )
    if request.method == "OPTIONS":
        resp.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Accept, If-None-Match, If-Modified-Since"
    if resp.mimetype not in _COMPRESSIBLE or resp.is_streamed or resp.direct_passthrough:
        return resp
    resp.vary.add("Accept-Encoding")
    if (
        "gzip" not in request.accept_encodings
        or resp.status_code not in (200, 304)
        or "Content-Encoding" in resp.headers
        or request.method == "HEAD"
    ):
        return resp
    data = resp.get_data()  # a 304 still holds the body it stands for
    if len(data) < GZIP_MIN_BYTES:
        return resp
    if resp.status_code == 200:
        resp.set_data(gzip.compress(data, compresslevel=6, mtime=0))
        resp.headers["Content-Encoding"] = "gzip"
    # A 304 carries the validator its 200 would have: the gzipped one's.
    etag, weak = resp.get_etag()

    if etag:  # same content, other bytes: a weak validator (RFC 9110 §8.8.1)
        resp.set_etag(etag, weak=True)
    return resp


def latest(*stamps: str | None) -> str | None:
    """The latest of some catalog timestamps (ISO 8601 UTC strings sort as times)."""
    present = [s for s in stamps if s]
    return max(present) if present else None


def error_document(exc: ArchiveError) -> Response:
    """Errors as JSON with their HTTP status; never a traceback."""
    resp = Response(
        json.dumps({"error": exc.public_message(), "status": exc.http_status}, ensure_ascii=False),
        status=exc.http_status,
        content_type="application/json",
    )
    if exc.retry_after:
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


def presentation_blueprint(archive: Archive) -> Blueprint:
    bp = Blueprint("iiif_presentation", __name__, url_prefix="/iiif/3")
    catalog = archive.catalog
    site_name = {"ja": archive.config.site_name_ja, "en": archive.config.site_name_en}
    manifests = DocumentCache(2048)
    collections = DocumentCache(32)  # a page of 1,000 manifests is about half a megabyte

    def institution_or_404(inst_id: str) -> Institution:
        if not INSTITUTION_ID_RE.match(inst_id):
            raise NotFound(f"no institution {inst_id!r}")
        return catalog.get_institution(inst_id)

    @bp.get("/manifest/<record_id>")
    def manifest(record_id: str) -> Response:
        if not RECORD_ID_RE.match(record_id):
            raise NotFound(f"no record {record_id!r}")
        record = catalog.get_record(record_id, public_only=True)
        inst = catalog.get_institution(record.institution)
        links = request_links(archive)
        body = manifests.get(
            (record.id, record.content_checksum(), inst.to_json(), links.base),
            lambda: presentation.to_json(presentation.build_manifest(record, inst, links)),
        )
        return json_document(
            body,
            presentation.CONTENT_TYPE,
            last_modified=latest(record.updated_at, catalog.institution_updated_at(inst.id)),
        )

    @bp.get("/collection/top")
    def top_collection() -> Response:
        insts = [(inst, catalog.count(inst.id)) for inst in catalog.institutions()]
        doc = presentation.build_top_collection(insts, request_links(archive), site_name)
        return json_document(
            presentation.to_json(doc),
            presentation.CONTENT_TYPE,
            last_modified=latest(catalog.last_modified(), catalog.institution_updated_at()),
        )

    @bp.get("/collection/<inst_id>")
    def institution_collection(inst_id: str) -> Response:
        inst = institution_or_404(inst_id)
        total = catalog.count(inst.id)
        links = request_links(archive)
        changed = latest(catalog.last_modified(), catalog.institution_updated_at(inst.id))

        def build() -> str:
            records = (
                catalog.records(inst.id) if total <= presentation.COLLECTION_PAGE_SIZE else None
            )
            return presentation.to_json(
                presentation.build_institution_collection(inst, total, links, records)
            )

        key = (inst.id, 0, catalog.change_count(), inst.to_json(), links.base)
        body = collections.get(key, build)
        return json_document(body, presentation.CONTENT_TYPE, last_modified=changed)

    @bp.get("/collection/<inst_id>/<int:page>")
    def institution_page(inst_id: str, page: int) -> Response:
        inst = institution_or_404(inst_id)
        total = catalog.count(inst.id)
        if total <= presentation.COLLECTION_PAGE_SIZE or not 1 <= page <= presentation.page_count(
            total
        ):
            raise NotFound(f"no page {page} of the collection {inst_id!r}")
        links = request_links(archive)
        changed = latest(catalog.last_modified(), catalog.institution_updated_at(inst.id))

        def build() -> str:
            size = presentation.COLLECTION_PAGE_SIZE
            ids = catalog.record_ids(inst.id)[(page - 1) * size : page * size]
            return presentation.to_json(
                presentation.build_page_collection(
                    inst, page, total, links, catalog.get_records(ids)
                )
            )

        key = (inst.id, page, catalog.change_count(), inst.to_json(), links.base)
        body = collections.get(key, build)
        return json_document(body, presentation.CONTENT_TYPE, last_modified=changed)

    @bp.get("/activity/all-changes")
    def all_changes() -> Response:
        doc = changes.ordered_collection(catalog, request_links(archive))
        return json_document(
            json.dumps(doc, ensure_ascii=False),
            changes.CONTENT_TYPE,
            last_modified=catalog.last_modified(),
            max_age=60,
        )

    @bp.get("/activity/page/<int:n>")
    def activity_page(n: int) -> Response:
        doc = changes.ordered_collection_page(catalog, request_links(archive), n)
        if doc is None:
            raise NotFound(f"no page {n} of the change stream")
        full = changes.page_is_full(catalog, n)
        return json_document(
            json.dumps(doc, ensure_ascii=False), changes.CONTENT_TYPE, max_age=86400 if full else 60
        )

    @bp.get("/logo/<inst_id>")
    def logo(inst_id: str) -> Response:
        """The institution's logo file, from inside its collection folder only."""
        inst = institution_or_404(inst_id)
        if not inst.logo or not inst.source:
            raise NotFound(f"institution {inst_id!r} has no logo")
        folder = Path(inst.source).resolve()
        path = (folder / inst.logo).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise NotFound(f"institution {inst_id!r} has no logo")
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if not mimetype.startswith("image/"):
            raise NotFound(f"institution {inst_id!r} has no logo")
        resp = send_file(path, mimetype=mimetype, conditional=True, max_age=86400)
        return resp

    bp.after_request(finish_response)

    @bp.errorhandler(ArchiveError)
    def archive_error(exc: ArchiveError) -> Response:
        return error_document(exc)

    return bp
