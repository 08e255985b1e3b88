"""The public site and JSON API: ``create_app(config)`` is the one app factory.

Besides registering the blueprints, the factory owns what every response shares:
the language of the request, security headers (a Content-Security-Policy the
pages satisfy, nosniff, Referrer-Policy), gzip for our text responses, and one
error handler so that nothing a client sends is ever answered with a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from archive.config import Config
from archive.context import Archive
from archive.errors import ArchiveError, CatalogFull, CatalogUnavailable, SearchUnavailable

from .i18n import COOKIE, LANGS, choose_lang, translate
from .vendor import ALLOWED, package_version

log = logging.getLogger(__name__)

# What our pages need and nothing more: all scripts and styles are files of this site;
# JSON data islands (<script type="application/json">) are not executed, so no 'unsafe-inline'.
# The one hash is the small stylesheet OpenSeadragon 6 injects (its touch-device focus rule).
_OSD_STYLE_HASH = "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='"
_CSP_REST = (
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)
CSP = f"default-src 'self'; script-src 'self'; style-src 'self' {_OSD_STYLE_HASH}; {_CSP_REST}"
# Mirador (React with emotion) injects <style> elements; only its pages allow that.
CSP_MIRADOR = (
    f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; {_CSP_REST}"
)
_MACHINE_PREFIXES = ("/api/", "/iiif/")
_COMPRESSIBLE = (
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
)


def create_app(config: Config | None = None, *, access_log: bool = False) -> Flask:
    """The whole site. ``access_log`` writes one JSON access-log record per request
    (``archive serve`` asks for it when ``log_format = "json"``)."""
    config = config or Config.load()
    archive = Archive(config)
    from search import get_backend

    archive.attach_search(get_backend(config))
    metrics = _metrics_enabled(config)
    if metrics:
        from .metrics import instrument

        instrument(archive)  # before the blueprints take the catalog's methods

    app = Flask(__name__)
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["archive"] = archive

    from iiif.routes import image_blueprint, presentation_blueprint

    from .api import api_blueprint
    from .oai import oai_blueprint
    from .site import site_blueprint
    from .vendor import vendor_blueprint

    app.register_blueprint(image_blueprint(archive))
    app.register_blueprint(presentation_blueprint(archive))
    app.register_blueprint(api_blueprint(archive))
    app.register_blueprint(site_blueprint(archive))
    app.register_blueprint(vendor_blueprint())
    app.register_blueprint(oai_blueprint(archive))

    _install_follower(app, archive)
    _install_language(app)
    _install_templates(app, config)
    _install_headers(app)
    _install_errors(app)
    if metrics or access_log:
        from .metrics import Observer

        # Outermost, so tiles (answered ahead of Flask) are observed too.
        app.wsgi_app = Observer(
            app.wsgi_app,
            archive,
            metrics=metrics,
            log_access=access_log,
            token=config.metrics_token,
        )
    return app


def _metrics_enabled(config: Config) -> bool:
    return bool(config.metrics_listen or config.metrics_token)


# --- language -------------------------------------------------------------------------------
def _install_follower(app: Flask, archive: Archive) -> None:
    @app.before_request
    def follow_catalog() -> None:  # a node's own search index, after another's ingest
        archive.follow_search()


def _install_language(app: Flask) -> None:
    @app.before_request
    def pick_language() -> None:
        g.lang, g.lang_explicit = choose_lang(request)

    @app.after_request
    def remember_language(resp: Response) -> Response:
        if getattr(g, "lang_explicit", False) and request.cookies.get(COOKIE) != g.lang:
            resp.set_cookie(
                COOKIE,
                g.lang,
                max_age=365 * 86400,
                samesite="Lax",
                secure=request.is_secure,
                httponly=True,
            )
            # Runs after _cache_policy (Flask calls these hooks last-registered first): a
            # response that sets a cookie is this visitor's, never a shared cache's.
            resp.headers["Cache-Control"] = "private, no-cache"
        if resp.mimetype == "text/html":
            resp.vary.update(("Accept-Language", "Cookie"))
        return resp


# --- templates ------------------------------------------------------------------------------
def _install_templates(app: Flask, config: Config) -> None:
    static = Path(app.static_folder or "")
    digests: dict[str, str] = {}
    versions = {name: package_version(name) for name in ALLOWED}

    def asset(filename: str) -> str:
        """URL of a static file with a content hash, so it can be cached for a year."""
        if filename not in digests or app.debug:
            try:
                digests[filename] = hashlib.sha256((static / filename).read_bytes()).hexdigest()[
                    :12
                ]
            except OSError:
                digests[filename] = "0"
        return f"/static/{filename}?v={digests[filename]}"

    def vendor(package: str, name: str) -> str:
        return f"/vendor/{package}/{name}?v={versions.get(package, '')}"

    def base_url() -> str:
        """Absolute root of the site: the configured public URL, else the request's."""
        return (config.public_url or request.url_root).rstrip("/")

    def lang_url(lang: str) -> str:
        """This page in ``lang``: same path and parameters, ``lang`` replaced."""
        pairs = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
        pairs.append(("lang", lang))
        return f"{request.path}?{urlencode(pairs)}"

    def t(key: str, **values: object) -> str:
        return translate(key, getattr(g, "lang", "ja"), **values)

    @app.context_processor
    def globals_() -> dict:
        lang = getattr(g, "lang", "ja")
        return {
            "lang": lang,
            "other_lang": "en" if lang == "ja" else "ja",
            "langs": LANGS,
            "t": t,
            "site_name": config.site_name_en if lang == "en" else config.site_name_ja,
            "asset": asset,
            "vendor": vendor,
            "base_url": base_url(),
            "lang_url": lang_url,
        }


# --- headers --------------------------------------------------------------------------------
def _install_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(resp: Response) -> Response:
        headers = resp.headers
        policy = CSP_MIRADOR if getattr(g, "mirador", False) else CSP
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.endpoint == "static" and request.args.get("v"):
            resp.cache_control.no_cache = None
            resp.cache_control.public = True
            resp.cache_control.max_age = 31_536_000
            resp.cache_control.immutable = True
        _cache_policy(resp)
        return _gzip(resp)


# --- caching (docs/deployment.md) -----------------------------------------------------------
PAGE_MAX_AGE = 60  # pages show search counts and "recently added": a minute behind is fine
MACHINE_MAX_AGE = 3600  # robots.txt and sitemaps
ERROR_MAX_AGE = 60
_CACHEABLE_PAGES = ("text/html", "application/xml", "text/plain")


def _cache_policy(resp: Response) -> None:
    """Say how long every response may be kept, so no cache (a CDN's default lifetime
    included) ever guesses: pages a minute, validated with an ETag (304 when unchanged);
    what is personal or degraded not at all in shared caches; errors a minute (4xx) or
    never (5xx). The IIIF and API blueprints set their own lifetimes first."""
    if "Cache-Control" in resp.headers:
        return
    status = resp.status_code
    if status >= 500:
        resp.headers["Cache-Control"] = "no-store"
        return
    if status >= 400:
        resp.headers["Cache-Control"] = f"public, max-age={ERROR_MAX_AGE}"
        return
    if request.path.startswith(_MACHINE_PREFIXES):  # OAI-PMH and such: revalidate each time
        resp.headers["Cache-Control"] = "no-cache"
        return
    if "Set-Cookie" in resp.headers or getattr(g, "search_down", False):
        # A cookie is this visitor's own; a page without search results must not outlive
        # the outage in a cache.
        resp.headers["Cache-Control"] = "private, no-cache"
        return
    if (
        status != 200
        or resp.mimetype not in _CACHEABLE_PAGES
        or request.method not in ("GET", "HEAD")
    ):
        resp.headers["Cache-Control"] = "no-cache"
        return
    machine = request.path in ("/robots.txt", "/sitemap.xml") or request.path.startswith(
        "/sitemap/"
    )
    resp.cache_control.public = True
    resp.cache_control.max_age = MACHINE_MAX_AGE if machine else PAGE_MAX_AGE
    if resp.direct_passthrough or resp.is_streamed:  # sitemaps: a lifetime, no validator
        return

    resp.set_etag(hashlib.sha256(resp.get_data()).hexdigest()[:32])
    resp.make_conditional(request)


def _gzip(resp: Response) -> Response:
    """Compress our own text responses (pages, CSS, JS, sitemaps) when the client accepts it."""
    if request.endpoint == "static" and resp.status_code == 200 and resp.direct_passthrough:
        resp.direct_passthrough = False  # our CSS and JS are small: read them to compress
        resp.set_data(resp.get_data())
    if (
        request.path.startswith(_MACHINE_PREFIXES)  # the API and IIIF blueprints decide themselves
        or resp.direct_passthrough
        or resp.is_streamed
        or resp.status_code not in (200, 304)
        or "Content-Encoding" in resp.headers
        or resp.mimetype not in _COMPRESSIBLE
    ):
        return resp
    body = resp.get_data()
    if len(body) < 1024:
        return resp
    # Compressed or not, this body depends on Accept-Encoding: say so either way, or a
    # cache that stored the plain one would hand it to everyone (and the gzipped one to
    # clients that cannot read it).
    resp.vary.add("Accept-Encoding")
    if "gzip" not in request.headers.get("Accept-Encoding", ""):
        return resp
    if resp.status_code == 200:
        resp.set_data(gzip.compress(body, 6))
        resp.headers["Content-Encoding"] = "gzip"
    # A 304 carries the validator its 200 would have: the gzipped one's.
    etag, weak = resp.get_etag()
    if etag:  # same content, other bytes: a weak validator (RFC 9110 §8.8.1)
        resp.set_etag(etag, weak=True)
    return resp


# --- errors ---------------------------------------------------------------------------------
def _install_errors(app: Flask) -> None:
    """One translation of errors into responses: JSON under /api and /iiif, a page elsewhere."""

    @app.errorhandler(ArchiveError)
    def archive_error(exc: ArchiveError):
        status = exc.http_status
        if isinstance(exc, CatalogUnavailable | CatalogFull):  # one line: the cause is known
            log.error("catalog unavailable on %s: %s", request.path, exc)
        elif status >= 500 and not isinstance(exc, SearchUnavailable):
            log.exception("archive error on %s", request.path)
        response = app.make_response(
            _error_response(status, exc.public_message(), getattr(exc, "parameter", None))
        )
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = app.make_response(_error_response(exc.code or 500, exc.description or exc.name))
        for name, value in exc.get_headers():  # e.g. Allow on a 405 (RFC 9110 §15.5.6)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error on %s", request.path)
        return _error_response(500, "internal error")


def _error_response(status: int, message: str, parameter: str | None = None):
    if request.path.startswith(_MACHINE_PREFIXES):
        body = {"error": message, "status": status}
        if parameter:
            body["parameter"] = parameter
        return jsonify(body), status
    try:
        html = render_template(
            "error.html",
            status=status,
            message=message,
            parameter=parameter,
            hint=_hint_from_path(request.path) if status == 404 else "",
            institutions=_institutions_for_404() if status == 404 else [],
        )
    except Exception:  # the error page itself must never fail into a traceback
        log.exception("error page failed")
        return Response(f"{status} {message}\n", status=status, mimetype="text/plain")
    resp = Response(html, status=status, mimetype="text/html")
    if status == 503:
        resp.headers["Retry-After"] = "30"
    return resp


def _hint_from_path(path: str) -> str:
    """Words a lost visitor might search for: the last segment of the URL they tried."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    last = last.split("~")[0].split("__")[0]
    if "_" in last:
        last = last.split("_", 1)[1]
    return " ".join(last.replace("-", " ").split())[:60]


def _institutions_for_404() -> list:
    from flask import current_app

    try:
        return current_app.extensions["archive"].catalog.institutions()
    except Exception:  # a broken catalog must not turn a 404 into a 500
        return []


__all__ = ["create_app"]
